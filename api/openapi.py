"""GET /system/openapi.json: our own OpenAPI 3.1 description of what this gateway serves.

Written from our handlers, not derived from the OpenFaaS spec (whose licence is unclear,
see the contract). tests/api/test_openapi.py checks that every route is described and that
real responses match the documented status codes and schemas, so the document cannot
drift from the code.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
RESOURCES = {"type": "object", "properties": {"memory": {"type": "string"},
                                              "cpu": {"type": "string"}}}
TEXT = {"text/plain": {"schema": {"type": "string"}}}
# Function, namespace and secret names: DNS labels (api/wire.py check_name; 400 otherwise).
NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
NAMESPACE = {"type": "string", "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$",
             "maxLength": 63, "description": "a name; empty or absent: openfaas-fn"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": TEXT}


ERRORS = {
    "400": _text("Bad input; the body names the field and the problem"),
    "401": _text("Missing or wrong credentials"),
}
NAMESPACE_QUERY = {"name": "namespace", "in": "query", "required": False,
                   "schema": NAMESPACE, "description": "default openfaas-fn"}


def _op(summary: str, responses: dict[str, Any], *, body: str | None = None,
        params: list[dict[str, Any]] | None = None, auth: bool = True) -> dict[str, Any]:
    errors = ERRORS if auth else {}
    op: dict[str, Any] = {"summary": summary, "responses": {**responses, **errors}}
    if body:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
    if not auth:
        op["security"] = []
    return op


SCHEMAS: dict[str, Any] = {
    "FunctionDeployment": {
        "type": "object", "required": ["service", "image"],
        "properties": {
            "service": NAME, "image": {"type": "string"},
            "namespace": NAMESPACE, "envProcess": {"type": "string"},
            "envVars": STR_MAP, "labels": {"type": ["object", "null"]},
            "annotations": {"type": ["object", "null"]},
            "secrets": {"type": "array", "items": {"type": "string"}},
            "constraints": {"type": "array", "items": {"type": "string"}},
            "limits": RESOURCES, "requests": RESOURCES,
            "readOnlyRootFilesystem": {"type": "boolean"},
        },
    },
    "FunctionStatus": {
        "type": "object",
        "required": ["name", "image", "namespace", "labels", "annotations", "replicas",
                     "availableReplicas", "createdAt"],
        "properties": {
            "name": {"type": "string"}, "image": {"type": "string"},
            "namespace": {"type": "string"}, "envProcess": {"type": "string"},
            "envVars": STR_MAP, "labels": STR_MAP, "annotations": STR_MAP,
            "secrets": {"type": "array", "items": {"type": "string"}},
            "constraints": {"type": "array", "items": {"type": "string"}},
            "limits": RESOURCES, "requests": RESOURCES,
            "readOnlyRootFilesystem": {"type": "boolean"},
            "invocationCount": {"type": "number"},
            "replicas": {"type": "integer", "minimum": 0},
            "availableReplicas": {"type": "integer", "minimum": 0},
            "createdAt": {"type": "string", "format": "date-time"},
            "restarts": {"type": "integer", "description": "docker-faas: replacements after "
                         "failures"},
            "lastExitReason": {"type": "string", "description": "docker-faas"},
            "lastError": {"type": "string", "description": "docker-faas: why the controller "
                          "cannot converge this function"},
            "rollout": {"type": "string", "description": "docker-faas: an update waiting "
                        "for its new replicas to pass their health check"},
        },
    },
    "DeleteFunctionRequest": {"type": "object", "required": ["functionName"],
                              "properties": {"functionName": NAME,
                                             "namespace": NAMESPACE}},
    "ScaleServiceRequest": {"type": "object", "required": ["replicas"],
                            "properties": {"serviceName": NAME,
                                           "namespace": NAMESPACE,
                                           "replicas": {"type": "integer", "minimum": 0}}},
    "Secret": {"type": "object", "required": ["name"],
               "properties": {"name": NAME, "namespace": NAMESPACE,
                              "value": {"type": "string"},
                              "rawValue": {"type": "string", "contentEncoding": "base64"}}},
    "SecretDescription": {"type": "object", "required": ["name", "namespace"],
                          "properties": {"name": NAME, "namespace": NAMESPACE}},
    "FunctionNamespace": {"type": "object", "required": ["name"],
                          "properties": {"name": NAME, "labels": STR_MAP,
                                         "annotations": STR_MAP}},
    "LogMessage": {"type": "object",
                   "required": ["name", "namespace", "instance", "timestamp", "text"],
                   "properties": {k: {"type": "string"} for k in
                                  ("name", "namespace", "instance", "timestamp", "text")}},
    "AsyncStatus": {"type": "object", "required": ["callId", "status"],
                    "properties": {"callId": {"type": "string"},
                                   "function": {"type": "string"},
                                   "namespace": {"type": "string"},
                                   "status": {"enum": ["queued", "running", "done", "failed"]},
                                   "attempts": {"type": "integer"},
                                   "callbackAttempts": {"type": "integer"},
                                   "lastError": {"type": ["string", "null"]},
                                   "functionStatus": {"type": ["integer", "null"]},
                                   "callbackStatus": {"type": ["integer", "null"]},
                                   "createdAt": {"type": "string"},
                                   "updatedAt": {"type": "string"}}},
    "AuditRecord": {
        "type": "object", "description": "docker-faas: one record of the event log",
        "required": ["position", "stream", "version", "time", "actor", "requestId", "source",
                     "userAgent", "correlationId", "type", "data"],
        "properties": {
            "position": {"type": "integer", "minimum": 1},
            "stream": {"type": "string"}, "version": {"type": "integer", "minimum": 1},
            "time": {"type": "string", "format": "date-time"},
            **{k: {"type": "string"} for k in ("actor", "requestId", "source", "userAgent",
                                               "correlationId")},
            "type": {"type": "string", "description": "stable event type name"},
            "data": {"type": "object", "description": "the payload as the log stores it"},
        },
    },
    "FunctionVersion": {
        "type": "object", "description": "docker-faas: one version of a function",
        "required": ["version", "position", "time", "actor", "type", "changes"],
        "properties": {
            "version": {"type": "integer", "minimum": 1},
            "position": {"type": "integer", "minimum": 1},
            "time": {"type": "string", "format": "date-time"},
            "actor": {"type": "string"}, "type": {"type": "string"},
            "changes": {"type": "array", "items": {
                "type": "object", "required": ["field", "before", "after"],
                "properties": {"field": {"type": "string"}, "before": {}, "after": {}}}},
        },
    },
    "ApplyRequest": {
        "type": "object", "description": "docker-faas: a whole stack's desired functions",
        "required": ["functions"],
        "properties": {
            "functions": {"type": "array", "items": _ref("FunctionDeployment")},
            "namespace": {"type": "string", "description": "for functions without one; "
                          "also pruned when given"},
            "prune": {"type": "boolean", "description": "remove the functions of the "
                      "covered namespaces that the stack does not name"},
            "dryRun": {"type": "boolean", "description": "plan only, append nothing"},
        },
    },
    "ApplyResult": {
        "type": "object", "description": "docker-faas: the plan, and whether it was appended",
        "required": ["correlationId", "dryRun", "applied", "position", "namespaces", "plan"],
        "properties": {
            "correlationId": {"type": "string"}, "dryRun": {"type": "boolean"},
            "applied": {"type": "boolean"}, "position": {"type": "integer", "minimum": 0},
            "namespaces": {"type": "array", "items": {"type": "string"}},
            "plan": {"type": "array", "items": {
                "type": "object", "required": ["action", "namespace", "name"],
                "properties": {
                    "action": {"enum": ["create", "update", "unchanged", "remove"]},
                    "namespace": {"type": "string"}, "name": {"type": "string"},
                    "image": {"type": "string"},
                    "replicas": {"type": "integer", "minimum": 0},
                    "changes": {"type": "array", "items": {
                        "type": "object", "required": ["field", "before", "after"],
                        "properties": {"field": {"type": "string"}, "before": {},
                                       "after": {}}}},
                }}},
        },
    },
    **{  # the dashboard's read-only helpers (api/ui_routes.py, api/stack_routes.py)
        "FunctionSamples": {
            "type": "object", "description": "docker-faas: the last hour of one function's "
            "traffic in 10 s samples, oldest first (kept in the gateway's memory)",
            "required": ["name", "namespace", "invocations", "errors", "interval", "samples"],
            "properties": {
                "name": {"type": "string"}, "namespace": {"type": "string"},
                "invocations": {"type": "integer", "minimum": 0,
                                "description": "completed since the gateway started"},
                "errors": {"type": "integer", "minimum": 0,
                           "description": "5xx answers since the gateway started"},
                "interval": {"type": "number"},
                "samples": {"type": "array", "items": {
                    "type": "object",
                    "required": ["time", "seconds", "requests", "rps", "errors", "p50", "p99"],
                    "properties": {
                        "time": {"type": "string", "format": "date-time",
                                 "description": "end of the interval"},
                        "seconds": {"type": "number"},
                        "requests": {"type": "integer", "minimum": 0},
                        "rps": {"type": "number", "minimum": 0},
                        "errors": {"type": "integer", "minimum": 0,
                                   "description": "answers with a 5xx status"},
                        "p50": {"type": ["number", "null"], "description": "seconds"},
                        "p99": {"type": ["number", "null"], "description": "seconds"}}}},
            },
        },
        "FunctionSummary": {
            "type": "object", "description": "docker-faas: invocations and 5xx errors since "
            "the gateway started and over the last hour (`recent`), and the last change",
            "required": ["name", "namespace", "invocations", "errors", "recent", "lastChange"],
            "properties": {
                "name": {"type": "string"}, "namespace": {"type": "string"},
                "invocations": {"type": "integer", "minimum": 0},
                "errors": {"type": "integer", "minimum": 0},
                "recent": {"type": "object", "required": ["seconds", "requests", "errors"],
                           "properties": {"seconds": {"type": "number"},
                                          "requests": {"type": "integer", "minimum": 0},
                                          "errors": {"type": "integer", "minimum": 0}}},
                "lastChange": {"oneOf": [{"type": "null"}, {
                    "type": "object", "description": "the newest record of the function's "
                    "stream", "required": ["actor", "time", "type", "version", "position"],
                    "properties": {"actor": {"type": "string"},
                                   "time": {"type": "string", "format": "date-time"},
                                   "type": {"type": "string"},
                                   "version": {"type": "integer", "minimum": 1},
                                   "position": {"type": "integer", "minimum": 1}}}]},
            },
        },
        "Replica": {
            "type": "object", "description": "docker-faas: one container of a function",
            "required": ["instance", "replica", "state", "healthy", "current", "created"],
            "properties": {
                "instance": {"type": "string", "description": "12-character container id "
                             "(the `instance` of /system/logs)"},
                "replica": {"type": "integer", "description": "slot; -1 when unknown"},
                "state": {"type": "string", "description": "the engine's: running, exited…"},
                "healthy": {"type": "boolean", "description": "its last probe passed"},
                "current": {"type": "boolean", "description": "runs the current spec"},
                "created": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "StackParseResult": {
            "type": "object", "description": "docker-faas: a stack.yml as the body of "
            "POST /system/apply",
            "required": ["functions", "warnings"],
            "properties": {
                "functions": {"type": "array", "items": _ref("FunctionDeployment")},
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
    "Version": {"type": "object", "required": ["sha", "release"],
                "properties": {"sha": {"type": "string", "minLength": 1},
                               "release": {"type": "string", "minLength": 1},
                               "commit_message": {"type": "string"}}},
    "GatewayInfo": {
        "type": "object", "required": ["provider", "version", "arch"],
        "properties": {
            "provider": {"type": "object",
                         "required": ["provider", "orchestration", "version"],
                         "properties": {"provider": {"type": "string", "minLength": 1},
                                        "orchestration": {"type": "string", "minLength": 1},
                                        "version": _ref("Version")}},
            "version": _ref("Version"), "arch": {"type": "string"},
        },
    },
}


def _paths() -> dict[str, Any]:
    name_param = [{"name": "name", "in": "path", "required": True, "schema": NAME},
                  NAMESPACE_QUERY]
    ns_param = [{"name": "ns", "in": "path", "required": True, "schema": NAME}]
    accepted = {"202": _text("Accepted; the controller converges in the background")}
    at_query = {"name": "at", "in": "query", "required": False,
                "schema": {"type": "string"}, "description": "docker-faas: the desired state "
                "as of an RFC 3339 time or a log position (availableReplicas then 0)"}
    events_query = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                    for n in ("function", "namespace", "type", "actor", "since", "until",
                              "after", "correlationId", "limit", "order", "follow")]
    return {
        "/healthz": {"get": _op("Liveness", {"200": _text("Serving")}, auth=False)},
        "/metrics": {"get": _op("Prometheus metrics (also on METRICS_PORT)",
                                {"200": _text("Prometheus text format")}, auth=False)},
        "/system/info": {"get": _op("Gateway and provider versions",
                                    {"200": _json(_ref("GatewayInfo"), "Versions")})},
        "/system/openapi.json": {"get": _op("This document", {"200": _json({"type": "object"},
                                                                            "OpenAPI 3.1")})},
        "/system/functions": {
            "get": _op("List functions", {"200": _json(
                {"type": "array", "items": _ref("FunctionStatus")}, "Functions")},
                params=[NAMESPACE_QUERY, at_query]),
            "post": _op("Deploy", {**accepted, "409": _text("Exists")},
                        body="FunctionDeployment", params=[NAMESPACE_QUERY]),
            "put": _op("Update (faas-cli deploy sends PUT first)",
                       {**accepted, "404": _text("Not deployed")}, body="FunctionDeployment",
                       params=[NAMESPACE_QUERY]),
            "delete": _op("Remove", {**accepted, "404": _text("Not deployed")},
                          body="DeleteFunctionRequest", params=[NAMESPACE_QUERY]),
        },
        "/system/function/{name}": {"get": _op(
            "One function", {"200": _json(_ref("FunctionStatus"), "Status"),
                             "404": {"description": "Not deployed (empty body)"}},
            params=[*name_param, at_query])},
        "/system/function/{name}/history": {"get": _op(
            "Every version of a function with a field-level diff (our extension)",
            {"200": _json({"type": "array", "items": _ref("FunctionVersion")}, "Versions"),
             "404": _text("Never existed")}, params=name_param)},
        "/system/events": {"get": _op(
            "The event log, filtered (our extension); follow=true streams it live",
            {"200": {"description": "Records: a JSON array; with follow=true, NDJSON (one "
                     "AuditRecord per line: the matches so far, then each new one as it is "
                     "appended, until the client hangs up)",
                     "content": {"application/json": {"schema": {
                         "type": "array", "items": _ref("AuditRecord")}},
                         "application/x-ndjson": {"schema": _ref("AuditRecord")}}}},
            params=events_query)},
        "/system/apply": {"post": _op(
            "Apply a whole stack: plan, then append every change at once (our extension)",
            {"200": _json(_ref("ApplyResult"), "The plan; applied unless dryRun"),
             "409": _text("The log moved meanwhile; nothing appended")},
            body="ApplyRequest")},
        "/system/scale-function/{name}": {"post": _op(
            "Set the desired replica count (0..MAX_REPLICAS)",
            {**accepted, "404": _text("Not deployed")}, body="ScaleServiceRequest",
            params=name_param)},
        "/system/secrets": {
            "get": _op("List secrets (names only)", {"200": _json(
                {"type": "array", "items": _ref("SecretDescription")}, "Secrets")},
                params=[NAMESPACE_QUERY]),
            "post": _op("Create", {"201": _text("Created"), "409": _text("Exists")},
                        body="Secret"),
            "put": _op("Replace the value", {**accepted, "404": _text("Missing")},
                       body="Secret"),
            "delete": _op("Remove", {**accepted, "404": _text("Missing"),
                                     "409": _text("Mounted by functions (named)")},
                          body="SecretDescription", params=[NAMESPACE_QUERY]),
        },
        "/system/namespaces": {"get": _op("Namespaces, the default first", {"200": _json(
            {"type": "array", "items": {"type": "string"}}, "Names")})},
        "/system/namespace/": {"post": _op("Create (name in the body)",
                                           {"201": _text("Created"), "409": _text("Exists")},
                                           body="FunctionNamespace")},
        "/system/namespace/{ns}": {
            "get": _op("One namespace", {"200": _json(_ref("FunctionNamespace"), "Namespace"),
                                         "404": _text("Missing")}, params=ns_param),
            "post": _op("Create", {"201": _text("Created"), "409": _text("Exists")},
                        body="FunctionNamespace", params=ns_param),
            "put": _op("Replace labels and annotations", {**accepted, "404": _text("Missing")},
                       body="FunctionNamespace", params=ns_param),
            "delete": _op("Remove an empty namespace", {
                **accepted, "404": _text("Missing"), "409": _text("Holds functions")},
                params=ns_param),
        },
        "/system/logs": {"get": _op(
            "Function logs as NDJSON, every replica merged in time order",
            {"200": {"description": "One LogMessage per line",
                     "content": {"application/x-ndjson": {"schema": _ref("LogMessage")}}},
             "404": _text("No such function"), "422": _text("Unparsable since or tail")},
            params=[{"name": n, "in": "query", "required": n == "name",
                     "schema": {"type": "string"}}
                    for n in ("name", "namespace", "instance", "since", "tail", "follow")])},
        "/system/async/{call_id}": {"get": _op(
            "State of an async invocation (our extension)",
            {"200": _json(_ref("AsyncStatus"), "State"), "404": _text("Unknown call id")},
            params=[{"name": "call_id", "in": "path", "required": True,
                     "schema": {"type": "string"}}])},
        "/async-function/{name}": {"post": _op(
            "Queue an invocation durably; X-Callback-Url gets the result",
            {"202": {"description": "Queued; X-Call-Id names it"},
             "400": _text("Bad X-Callback-Url"), "404": _text("No such function"),
             "405": _text("Only POST is allowed"), "413": _text("Body too large")},
            params=[{"name": "name", "in": "path", "required": True,
                     "schema": {"type": "string"}}], auth=False)},
        **_ui_paths(name_param),
        "/function/{name}": {method: _op(
            "Invoke a function (`name` or `name.namespace`, any path after it)",
            {"200": {"description": "The function's own answer (any status)"},
             "404": _text("No such function"), "405": _text("Method not allowed"),
             "502": _text("No healthy replica, or the replica failed"),
             "504": _text("No answer within EXEC_TIMEOUT")},
            params=[{"name": "name", "in": "path", "required": True,
                     "schema": {"type": "string"}}], auth=False)
            for method in ("get", "post", "put", "patch", "delete", "options", "head")},
    }


def _ui_paths(name_param: list[dict[str, Any]]) -> dict[str, Any]:
    """The dashboard and its read-only helpers (api/ui_routes.py, api/stack_routes.py)."""
    html = {"description": "The dashboard", "content": {"text/html": {
        "schema": {"type": "string"}}}}
    return {
        "/": {"get": _op("Redirect to the dashboard", {"302": {"description": "To /ui/"}},
                         auth=False)},
        "/ui/": {"get": _op("The dashboard (docker-faas)", {"200": html})},
        "/ui/{file}": {"get": _op(
            "A file of the dashboard (JavaScript, CSS); ETag, 304 when unchanged",
            {"200": {"description": "The file"}, "304": {"description": "Unchanged"},
             "404": _text("No such file")},
            params=[{"name": "file", "in": "path", "required": True,
                     "schema": {"type": "string"}}])},
        "/system/functions/summary": {"get": _op(
            "Per function of a namespace: invocations, 5xx errors, last change (our "
            "extension)",
            {"200": _json({"type": "array", "items": _ref("FunctionSummary")}, "Summaries")},
            params=[NAMESPACE_QUERY])},
        "/system/function/{name}/metrics": {"get": _op(
            "The last hour of a function's traffic, 10 s samples (our extension)",
            {"200": _json(_ref("FunctionSamples"), "Samples"),
             "404": _text("Not deployed")}, params=name_param)},
        "/system/function/{name}/replicas": {"get": _op(
            "A function's containers and their health (our extension)",
            {"200": _json({"type": "array", "items": _ref("Replica")}, "Replicas"),
             "404": _text("Not deployed"), "503": _text("The engine did not answer")},
            params=name_param)},
        "/system/stack/parse": {"post": {
            **_op("Read a faas-cli stack.yml into the body of /system/apply; changes "
                  "nothing (our extension)",
                  {"200": _json(_ref("StackParseResult"), "Functions and warnings"),
                   "413": _text("Larger than 1 MiB")}),
            "requestBody": {"required": True, "content": {
                "application/x-yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {
                    "type": "object", "required": ["stack"],
                    "properties": {"stack": {"type": "string"}, "env": STR_MAP}}}}}}},
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "docker-faas gateway", "version": "0.1.0",
                 "description": "The OpenFaaS gateway API as docker-faas serves it, plus our "
                                "extensions. Error bodies are plain text.",
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(document())
