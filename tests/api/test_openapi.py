"""Our OpenAPI document covers every route, and real responses match what it says."""

from __future__ import annotations

import base64
import re

import httpx
import jsonschema
import pytest
from starlette.routing import Route

from api.openapi import document
from api.routes import ROUTES

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def test_every_route_is_documented():
    paths = document()["paths"]
    for route in ROUTES:
        assert isinstance(route, Route)
        assert route.path in paths, f"{route.path} is not in the OpenAPI document"
        for method in route.methods or ():
            if method == "HEAD" and "get" in paths[route.path]:
                continue
            assert method.lower() in paths[route.path], f"{method} {route.path} undocumented"


def test_schemas_are_valid_json_schema():
    for name, schema in document()["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema), name


def _operation(method: str, path: str) -> dict:
    doc = document()
    for template, ops in doc["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if template == "/function/{name}":
            pattern = r"^/function/[^/]+(/.*)?$"
        if re.match(pattern, path) and method.lower() in ops:
            return ops[method.lower()]
    raise AssertionError(f"{method} {path} matches no documented operation")


def _check(response: httpx.Response) -> None:
    request = response.request
    op = _operation(request.method, request.url.path)
    documented = op["responses"]
    code = str(response.status_code)
    assert code in documented, f"{request.method} {request.url.path} answered {code}"
    content = documented[code].get("content", {})
    if "application/json" in content:
        schema = {**content["application/json"]["schema"],
                  "components": document()["components"]}
        jsonschema.validate(response.json(), schema,
                            cls=jsonschema.Draft202012Validator)
    elif "text/plain" in content:  # documented text: the header says so, empty or not
        assert response.headers.get("content-type", "").startswith("text/plain"), \
            f"{request.method} {request.url.path} {code}: {response.headers}"


async def test_responses_match_the_document(client):
    fn = {"service": "f", "image": "img:1", "labels": {}, "annotations": {},
          "envVars": {"A": "1"}, "limits": {"memory": "64Mi"}, "secrets": ["s"]}
    calls = [
        ("GET", "/healthz", None), ("GET", "/system/info", None),
        ("GET", "/system/openapi.json", None),
        ("GET", "/system/functions", None), ("POST", "/system/functions", fn),
        ("POST", "/system/secrets", {"name": "s", "value": "v"}),
        ("POST", "/system/secrets", {"name": "s", "value": "v"}),
        ("POST", "/system/functions", fn), ("POST", "/system/functions", fn),
        ("PUT", "/system/functions", {**fn, "image": "img:2"}),
        ("PUT", "/system/functions", {**fn, "service": "nope"}),
        ("POST", "/system/functions", {"service": "Bad"}),
        ("GET", "/system/functions", None), ("GET", "/system/function/f", None),
        ("GET", "/system/function/nope", None),
        ("POST", "/system/scale-function/f", {"replicas": 2}),
        ("POST", "/system/scale-function/nope", {"replicas": 2}),
        ("GET", "/system/secrets", None),
        ("PUT", "/system/secrets", {"name": "s",
                                    "rawValue": base64.b64encode(b"x").decode()}),
        ("PUT", "/system/secrets", {"name": "zz", "value": "x"}),
        ("DELETE", "/system/secrets", {"name": "s"}),
        ("GET", "/system/namespaces", None),
        ("POST", "/system/namespace/", {"name": "dev", "labels": {"openfaas": "1"}}),
        ("POST", "/system/namespace/dev", {"name": "dev", "labels": {"openfaas": "1"}}),
        ("GET", "/system/namespace/dev", None), ("GET", "/system/namespace/zz", None),
        ("PUT", "/system/namespace/dev", {"name": "dev", "labels": {"openfaas": "1"}}),
        ("DELETE", "/system/namespace/dev", None),
        ("POST", "/function/f", None), ("POST", "/function/nope/x", None),
        ("DELETE", "/system/functions", {"functionName": "f"}),
        ("DELETE", "/system/functions", {"functionName": "f"}),
        ("GET", "/metrics", None),
    ]
    for method, path, body in calls:
        _check(await client.request(method, path, json=body))
    _check(await client.get("/system/functions", auth=None))
