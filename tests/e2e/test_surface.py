"""The rest of the OpenFaaS surface against the real engine: scaling, methods, redirects,
metrics with name.namespace labels."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Gateway

pytestmark = pytest.mark.engine


def scale(gw: Gateway, name: str, n: int, **where: str) -> None:
    r = gw.client.post(f"/system/scale-function/{name}", params=where,
                       json={"serviceName": name, "replicas": n})
    assert r.status_code == 202, r.text
    assert gw.client.get(f"/system/function/{name}").json()["replicas"] == n  # at once


def test_scale_to_three_then_zero_then_two(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
    scale(gateway, "echo", 3)
    gateway.wait_for("3 containers", lambda: len(gateway.containers("echo")) == 3)
    gateway.wait_for("3 available", lambda: gateway.client.get(
        "/system/function/echo").json()["availableReplicas"] == 3)
    scale(gateway, "echo", 0, namespace="openfaas-fn")
    gateway.wait_for("no containers", lambda: gateway.containers(
        "echo", running_only=False) == [])
    assert gateway.client.get("/system/function/echo").json()["availableReplicas"] == 0
    scale(gateway, "echo", 2)
    gateway.wait_for("2 containers", lambda: len(gateway.containers("echo")) == 2)
    r = gateway.client.post("/system/scale-function/echo", json={"replicas": 10_000})
    assert r.status_code == 400 and "MAX_REPLICAS" in r.text


def test_methods_redirects_and_headers(gateway: Gateway) -> None:
    gateway.deploy("http-echo", "http-echo")
    gateway.invoke_until("http-echo", lambda r: r.status_code == 200)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        r = gateway.client.request(method, "/function/http-echo/p", content=b"b")
        assert r.status_code == 200 and r.json()["method"] == method
        assert r.headers["x-call-id"] and int(r.headers["x-start-time"]) > 0
        assert r.headers["x-served-by"].startswith("docker-faas")
    r = gateway.client.head("/function/http-echo")
    assert r.status_code == 200 and r.content == b""
    r = gateway.client.request("TRACE", "/function/http-echo")
    assert r.status_code == 405
    r = gateway.client.get("/function/http-echo.openfaas-fn/x")
    assert r.json()["path"] == "/x"
    # a redirect reaches the caller, not followed
    r = gateway.client.get("/function/http-echo?status=302&location=/elsewhere")
    assert r.status_code == 302 and r.headers["location"] == "/elsewhere"
    # the caller's call id is passed on and not replaced
    r = gateway.client.get("/function/http-echo", headers={"X-Call-Id": "my-id"})
    seen = {k.lower(): v for k, v in r.json()["headers"].items()}
    assert seen["x-call-id"] == "my-id" and "x-call-id" not in r.headers
    assert seen["x-forwarded-for"].startswith("127.0.0.1")
    assert seen["x-forwarded-host"] == f"127.0.0.1:{gateway.port}"
    assert int(seen["x-start-time"]) > 0


def test_metrics_after_invocations(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
    for _ in range(3):
        assert gateway.client.post("/function/echo", content=b"y").status_code == 200
    text = httpx.get(f"http://127.0.0.1:{gateway.metrics_port}/metrics").text
    main = gateway.client.get("/metrics").text
    fn = 'function_name="echo.openfaas-fn"'
    for series in (f'gateway_function_invocation_total{{code="200",{fn}}}',
                   f'gateway_functions_seconds_count{{code="200",{fn}}}',
                   f"gateway_function_invocation_started{{{fn}}}",
                   f"gateway_service_count{{{fn}}} 1.0",
                   f"docker_faas_replicas_healthy{{{fn}}} 1.0",
                   'docker_faas_reconcile_actions_total{action="create",reason=""}',
                   'docker_faas_events_appended_total{type="FunctionDeployed"} 1.0'):
        assert series in text, series
        assert series in main, series
    listed = gateway.client.get("/system/functions").json()
    assert listed[0]["invocationCount"] >= 4
