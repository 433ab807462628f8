"""The /system API in process: status codes, JSON shapes and the events it appends."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

ENV = {"service": "env", "image": "ghcr.io/openfaas/alpine:latest", "envProcess": "env",
       "labels": {}, "annotations": {}}


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_deploy_then_read_back(client, store):
    r = await client.post("/system/functions", json=ENV)
    assert r.status_code == 202
    r = await client.get("/system/function/env")
    assert r.status_code == 200
    body = r.json()
    assert body == {
        "name": "env", "image": "ghcr.io/openfaas/alpine:latest", "namespace": "openfaas-fn",
        "envProcess": "env", "labels": {"faas_function": "env"}, "annotations": {},
        "replicas": 1, "availableReplicas": 0, "createdAt": "2026-01-02T03:04:05Z",
    }
    listed = (await client.get("/system/functions")).json()
    assert [f["name"] for f in listed] == ["env"]
    assert listed[0]["invocationCount"] == 0
    [record] = store.read_all()
    assert record.actor == "admin" and record.stream == "function/openfaas-fn/env"


async def test_echoes_what_was_deployed_verbatim(client):
    r = await client.post("/system/secrets", json={"name": "s1", "value": "v"})
    assert r.status_code == 201
    body = {**ENV, "envVars": {"A": "1"}, "limits": {"memory": "5Mi", "cpu": "100m"},
            "requests": {"memory": "1Mi"}, "secrets": ["s1"], "constraints": ["x=y"],
            "readOnlyRootFilesystem": True, "labels": {"com.openfaas.scale.min": "2"},
            "annotations": {"topic": "a"}, "network": "func_functions", "registryAuth": ""}
    assert (await client.post("/system/functions", json=body)).status_code == 202
    out = (await client.get("/system/function/env")).json()
    assert out["envVars"] == {"A": "1"}
    assert out["limits"] == {"memory": "5Mi", "cpu": "100m"}
    assert out["requests"] == {"memory": "1Mi"}
    assert out["secrets"] == ["s1"] and out["constraints"] == ["x=y"]
    assert out["readOnlyRootFilesystem"] is True
    assert out["replicas"] == 2  # com.openfaas.scale.min
    assert out["annotations"] == {"topic": "a"}


async def test_put_unknown_is_404_and_post_existing_is_409(client, store):
    assert (await client.put("/system/functions", json=ENV)).status_code == 404
    assert (await client.post("/system/functions", json=ENV)).status_code == 202
    r = await client.post("/system/functions", json=ENV)
    assert r.status_code == 409 and "env" in r.text
    assert len(store.read_all()) == 1


async def test_update_appends_and_same_update_twice_appends_nothing(client, store):
    await client.post("/system/functions", json=ENV)
    changed = {**ENV, "envVars": {"NEW": "1"}}
    assert (await client.put("/system/functions", json=changed)).status_code == 202
    assert (await client.put("/system/functions", json=changed)).status_code == 202
    assert [r.event.__class__.__name__ for r in store.read_all()] == [
        "FunctionDeployed", "FunctionUpdated"]


async def test_delete_body_or_query_namespace(client):
    await client.post("/system/functions", json=ENV)
    r = await client.request("DELETE", "/system/functions?namespace=openfaas-fn",
                             json={"functionName": "env"})
    assert r.status_code == 202
    assert (await client.get("/system/function/env")).status_code == 404
    r = await client.request("DELETE", "/system/functions", json={"functionName": "env"})
    assert r.status_code == 404


async def test_redeploy_after_delete(client):
    await client.post("/system/functions", json=ENV)
    await client.request("DELETE", "/system/functions", json={"functionName": "env"})
    assert (await client.post("/system/functions", json=ENV)).status_code == 202


@pytest.mark.parametrize("body,field", [
    ({**ENV, "service": "Bad_Name"}, "service"),
    ({**ENV, "service": "a" * 64}, "service"),
    ({**ENV, "service": ""}, "service"),
    ({**ENV, "image": ""}, "image"),
    ({**ENV, "limits": {"memory": "lots"}}, "limits.memory"),
    ({**ENV, "envVars": {"A": 1}}, "envVars.A"),
    ({**ENV, "labels": ["x"]}, "labels"),
    ({**ENV, "readOnlyRootFilesystem": "yes"}, "readOnlyRootFilesystem"),
    ({**ENV, "namespace": "NS!"}, "namespace"),
    ({**ENV, "labels": {"com.openfaas.scale.min": "many"}}, "com.openfaas.scale.min"),
    ([1, 2], "request body"),
])
async def test_bad_input_is_400_naming_the_field(client, store, body, field):
    r = await client.post("/system/functions", json=body)
    assert r.status_code == 400
    assert field in r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert store.read_all() == []


async def test_malformed_json_is_400(client, store):
    r = await client.post("/system/functions", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert r.status_code == 400 and "invalid JSON" in r.text
    r = await client.post("/system/functions", content=b"")
    assert r.status_code == 400
    assert store.read_all() == []


async def test_auth_required_on_system_with_challenge(client):
    for path in ("/system/functions", "/system/info", "/system/function/x"):
        r = await client.get(path, auth=None)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Basic realm="Restricted"'
    r = await client.get("/system/functions", auth=("admin", "wrong"))
    assert r.status_code == 401
    r = await client.get("/system/functions", headers={"authorization": "Basic !!!"}, auth=None)
    assert r.status_code == 401
    health = await client.get("/healthz", auth=None)
    assert (health.status_code, health.text.strip()) == (200, "OK")
    assert health.headers["content-type"].startswith("text/plain")  # as documented


async def test_info_has_every_field_the_certifier_wants(client):
    info = (await client.get("/system/info")).json()
    assert info["provider"]["provider"] and info["provider"]["orchestration"]
    assert info["provider"]["version"]["release"] and info["provider"]["version"]["sha"]
    assert info["version"]["release"] and info["version"]["sha"] and info["arch"]


async def test_scale(client, store):
    await client.post("/system/functions", json=ENV)
    r = await client.post("/system/scale-function/env", json={"serviceName": "env", "replicas": 3})
    assert r.status_code == 202
    assert (await client.get("/system/function/env")).json()["replicas"] == 3
    r = await client.post("/system/scale-function/env", json={"replicas": 11})
    assert r.status_code == 400 and "MAX_REPLICAS" in r.text
    r = await client.post("/system/scale-function/nope", json={"replicas": 1})
    assert r.status_code == 404
    r = await client.post("/system/scale-function/env", json={"replicas": -1})
    assert r.status_code == 400


async def test_invoke_unknown_function_is_404_and_no_replica_is_502(client):
    r = await client.post("/function/nope", content=b"x")
    assert r.status_code == 404
    await client.post("/system/functions", json=ENV)
    r = await client.post("/function/env", content=b"x")
    assert r.status_code == 502
    assert r.headers["x-call-id"] and r.headers["x-start-time"]
    r = await client.get("/function/bad name")
    assert r.status_code == 404


async def test_namespaced_functions_are_independent(client):
    r = await client.post("/system/functions", json={**ENV, "namespace": "team-b"})
    assert r.status_code == 400 and "team-b" in r.text
    r = await client.post("/system/namespace/", json={"name": "team-b",
                                                        "labels": {"openfaas": "1"}})
    assert r.status_code == 201
    await client.post("/system/functions", json=ENV)
    await client.post("/system/functions", json={**ENV, "namespace": "team-b"})
    assert len((await client.get("/system/functions?namespace=team-b")).json()) == 1
    await client.request("DELETE", "/system/functions",
                         json={"functionName": "env", "namespace": "team-b"})
    assert (await client.get("/system/function/env")).status_code == 200
    assert (await client.get("/system/function/env?namespace=team-b")).status_code == 404


async def test_metrics_series_after_invocations(client):
    import httpx

    from api.app import create_metrics_app
    await client.post("/system/functions", json=ENV)
    await client.post("/function/env", content=b"x")  # 502: no replica
    gateway = client._transport.app.gateway  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=create_metrics_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as m:
        text = (await m.get("/metrics")).text
        assert (await m.get("/healthz")).text == "OK"
    fn = 'function_name="env.openfaas-fn"'
    assert f'gateway_function_invocation_total{{code="502",{fn}}} 1.0' in text
    assert f"gateway_function_invocation_started{{{fn}}} 1.0" in text
    assert f'gateway_functions_seconds_count{{code="502",{fn}}} 1.0' in text
    assert f"gateway_service_count{{{fn}}} 1.0" in text
    listed = (await client.get("/system/functions")).json()
    assert listed[0]["invocationCount"] == 1
