"""The whole route table of the API, in one list (the invocation path is in proxy.py)."""

from __future__ import annotations

from starlette.routing import Route

from api import system

ROUTES = [
    Route("/healthz", system.healthz, methods=["GET", "HEAD"]),
    Route("/system/info", system.info, methods=["GET"]),
    Route("/system/functions", system.list_functions, methods=["GET"]),
    Route("/system/functions", system.deploy, methods=["POST"]),
    Route("/system/functions", system.update, methods=["PUT"]),
    Route("/system/functions", system.delete, methods=["DELETE"]),
    Route("/system/function/{name}", system.get_function, methods=["GET"]),
    Route("/system/scale-function/{name}", system.scale, methods=["POST"]),
]
