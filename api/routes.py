"""The whole route table of the API, in one list (the invocation path is in proxy.py)."""

from __future__ import annotations

from starlette.routing import Route

from api import apply, async_routes, audit, logs, namespaces, openapi, secrets, system
from api.ui_routes import UI_ROUTES

ROUTES = [
    Route("/healthz", system.healthz, methods=["GET", "HEAD"]),
    Route("/system/info", system.info, methods=["GET"]),
    Route("/system/openapi.json", openapi.openapi, methods=["GET"]),
    Route("/system/functions", system.list_functions, methods=["GET"]),
    Route("/system/functions", system.deploy, methods=["POST"]),
    Route("/system/functions", system.update, methods=["PUT"]),
    Route("/system/functions", system.delete, methods=["DELETE"]),
    Route("/system/function/{name}", system.get_function, methods=["GET"]),
    Route("/system/scale-function/{name}", system.scale, methods=["POST"]),
    Route("/system/function/{name}/history", audit.function_history, methods=["GET"]),
    Route("/system/events", audit.list_events, methods=["GET"]),
    Route("/system/apply", apply.apply, methods=["POST"]),
    Route("/system/logs", logs.logs, methods=["GET"]),
    Route("/system/async/{call_id}", async_routes.async_status, methods=["GET"]),
    Route("/system/secrets", secrets.list_secrets, methods=["GET"]),
    Route("/system/secrets", secrets.create_secret, methods=["POST"]),
    Route("/system/secrets", secrets.update_secret, methods=["PUT"]),
    Route("/system/secrets", secrets.delete_secret, methods=["DELETE"]),
    Route("/system/namespaces", namespaces.list_namespaces, methods=["GET"]),
    Route("/system/namespace/{ns}", namespaces.get_namespace, methods=["GET"]),
    Route("/system/namespace/", namespaces.create_namespace, methods=["POST"]),
    Route("/system/namespace/{ns}", namespaces.create_namespace, methods=["POST"]),
    Route("/system/namespace/{ns}", namespaces.update_namespace, methods=["PUT"]),
    Route("/system/namespace/{ns}", namespaces.delete_namespace, methods=["DELETE"]),
    *UI_ROUTES,  # the dashboard (/ui/) and the read-only helpers it reads
]
