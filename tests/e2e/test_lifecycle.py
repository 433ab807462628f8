"""The foundation's acceptance, end to end: real gateway process, real engine, real HTTP."""

from __future__ import annotations

import signal
import time

import pytest

from events.sqlite import SQLiteEventStore
from tests.e2e.conftest import FIXTURE, Gateway, docker, inspect

pytestmark = pytest.mark.engine


def test_deploy_invoke_update_delete(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    r = gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"hello docker-faas")
    assert r.text == "hello docker-faas"
    assert r.headers["x-call-id"] and r.headers["x-start-time"]
    assert "x-duration-seconds" in r.headers

    # PUT with a new env var (and another fixture): invocations see it
    gateway.deploy("echo", "env", method="PUT", envVars={"GREETING": "bonjour"})
    r = gateway.invoke_until("echo", lambda r: "GREETING=bonjour" in r.text)
    assert "Http_Method=POST" in r.text
    gateway.wait_for("old replica gone", lambda: len(gateway.containers("echo")) == 1)

    r = gateway.client.request("DELETE", "/system/functions", json={"functionName": "echo"})
    assert r.status_code == 202
    gateway.wait_for("containers removed",
                     lambda: gateway.containers("echo", running_only=False) == [])
    assert gateway.client.post("/function/echo", content=b"x").status_code == 404


def test_path_query_and_headers_reach_the_function(gateway: Gateway) -> None:
    gateway.deploy("env", "env")
    r = gateway.invoke_until("env", lambda r: r.status_code == 200, method="GET",
                             path="/a/b?x=1&y=two")
    assert "Http_Path=/a/b" in r.text
    assert "Http_Query=x=1&y=two" in r.text
    assert "Http_Method=GET" in r.text
    assert "Http_X_Call_Id=" in r.text and "Http_X_Start_Time=" in r.text


def test_http_mode_fixture_and_redirect_free_proxy(gateway: Gateway) -> None:
    gateway.deploy("http-echo", "http-echo")
    r = gateway.invoke_until("http-echo", lambda r: r.status_code == 200, data=b'{"a": 1}',
                             path="/sub/path?q=1")
    body = r.json()
    assert body["method"] == "POST" and body["path"] == "/sub/path"
    assert body["query"] == "q=1" and body["body"] == '{"a": 1}'


def test_client_errors_over_http(gateway: Gateway) -> None:
    body = {"service": "x1", "image": FIXTURE.format("echo")}
    assert gateway.client.put("/system/functions", json=body).status_code == 404
    assert gateway.client.post("/system/functions", json=body).status_code == 202
    assert gateway.client.post("/system/functions", json=body).status_code == 409
    r = gateway.client.post("/system/functions", content=b"{oops")
    assert r.status_code == 400 and "JSON" in r.text
    r = gateway.client.post("/system/functions", json={**body, "service": "No_Good"})
    assert r.status_code == 400 and "service" in r.text
    r = gateway.client.get("/system/functions", auth=None)
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]


def test_gateway_killed_and_restarted_keeps_containers(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo", labels={"com.openfaas.scale.min": "2"})
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
    gateway.wait_for("two replicas", lambda: len(gateway.containers("echo")) == 2)
    before = gateway.containers("echo")

    gateway.kill(signal.SIGKILL)
    gateway.start()
    r = gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"after restart")
    assert r.text == "after restart"
    time.sleep(3)  # a full resync interval: nothing may be recreated
    assert gateway.containers("echo", running_only=False) == before
    status = gateway.client.get("/system/function/echo").json()
    assert status["replicas"] == 2 and status["availableReplicas"] == 2


def test_event_log_records_every_change_with_actor_and_time(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    gateway.deploy("echo", "echo", method="PUT", envVars={"A": "1"})
    gateway.client.post("/system/scale-function/echo", json={"replicas": 2})
    gateway.client.request("DELETE", "/system/functions", json={"functionName": "echo"})
    store = SQLiteEventStore(gateway.state)
    try:
        records = store.read_all()
    finally:
        store.close()
    assert [r.event.__class__.__name__ for r in records] == [
        "FunctionDeployed", "FunctionUpdated", "FunctionScaled", "FunctionRemoved"]
    assert all(r.actor == "admin" and r.time.tzinfo is not None for r in records)
    assert [r.version for r in records] == [1, 2, 3, 4]
    assert all(r.user_agent.startswith("python-httpx") for r in records)


def test_replicas_are_labelled_limited_and_on_the_network(gateway: Gateway) -> None:
    gateway.deploy("env", "env", limits={"memory": "64Mi", "cpu": "100m"},
                   readOnlyRootFilesystem=True, envProcess="env")
    gateway.invoke_until("env", lambda r: r.status_code == 200)
    [cid] = gateway.containers("env")
    data = inspect(cid)
    labels = data["Config"]["Labels"]  # type: ignore[index]
    assert labels["faas_function"] == "env"
    assert labels["com.docker-faas.instance"] == gateway.instance
    host = data["HostConfig"]  # type: ignore[index]
    assert host["Memory"] == 64 * 2**20 and host["NanoCpus"] == 10**8
    assert host["ReadonlyRootfs"] is True and "/tmp" in host["Tmpfs"]
    assert "dfaas-" + gateway.instance in data["NetworkSettings"]["Networks"]  # type: ignore[index]
    status = gateway.client.get("/system/function/env").json()
    assert status["limits"] == {"memory": "64Mi", "cpu": "100m"}


def test_dead_replica_is_replaced_and_foreign_containers_untouched(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
    net = "--network=dfaas-" + gateway.instance
    foreign = docker("run", "-d", net, "--label", "com.docker-faas.test=foreign",
                     FIXTURE.format("echo"))
    other = docker("run", "-d", net, "--label", "com.docker-faas.instance=someone-else",
                   "--label", "com.docker-faas.function=echo",
                   "--label", "com.docker-faas.namespace=openfaas-fn", FIXTURE.format("echo"))
    try:
        [first] = gateway.containers("echo")
        docker("kill", first)
        gateway.wait_for("a replacement replica",
                         lambda: gateway.containers("echo") not in ([], [first]))
        gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
        time.sleep(2.5)  # at least one full resync
        assert inspect(foreign)["State"]["Running"]  # type: ignore[index]
        assert inspect(other)["State"]["Running"]  # type: ignore[index]
    finally:
        docker("rm", "-f", foreign, other, check=False)


def test_scale_up_round_robins_and_scale_down(gateway: Gateway) -> None:
    gateway.deploy("env", "env")
    gateway.invoke_until("env", lambda r: r.status_code == 200)
    assert gateway.client.post("/system/scale-function/env",
                               json={"serviceName": "env", "replicas": 3}).status_code == 202
    gateway.wait_for("three healthy replicas", lambda: gateway.client.get(
        "/system/function/env").json()["availableReplicas"] == 3)
    hosts = set()
    for _ in range(9):
        r = gateway.client.get("/function/env")
        hosts.update(line for line in r.text.splitlines() if line.startswith("HOSTNAME="))
    assert len(hosts) == 3
    gateway.client.post("/system/scale-function/env", json={"replicas": 1})
    gateway.wait_for("one replica", lambda: len(gateway.containers("env")) == 1)


def test_a_broken_function_does_not_stall_the_others(gateway: Gateway) -> None:
    r = gateway.client.post("/system/functions", json={
        "service": "broken", "image": "docker-faas-fixtures/no-such-image:latest"})
    assert r.status_code == 202
    gateway.deploy("echo", "echo")
    r = gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"still fine")
    assert r.text == "still fine"
    r = gateway.client.post("/function/broken", content=b"x")
    assert r.status_code == 502 and "No such image" in r.text
    assert gateway.containers("broken", running_only=False) == []
