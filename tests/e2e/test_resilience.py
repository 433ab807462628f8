"""Requests are held or re-routed instead of failed: waking from zero, replicas dying."""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx
import pytest

from tests.e2e.conftest import Gateway, docker

pytestmark = pytest.mark.engine


def test_a_function_at_zero_answers_its_next_invocation(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
    r = gateway.client.post("/system/scale-function/echo", json={"replicas": 0})
    assert r.status_code == 202
    gateway.wait_for("no replicas", lambda: gateway.containers("echo", running_only=False) == [])
    started = time.monotonic()
    r = gateway.client.post("/function/echo", content=b"wake up")
    assert r.status_code == 200 and r.text == "wake up"
    woke = time.monotonic() - started
    status = gateway.client.get("/system/function/echo").json()
    assert status["replicas"] == 1
    print(f"woke from zero in {woke * 1000:.0f} ms")
    assert woke < 15, f"waking took {woke:.1f}s"


def test_deploy_then_invoke_at_once_waits_instead_of_failing(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    r = gateway.client.post("/function/echo", content=b"first")  # no polling
    assert r.status_code == 200 and r.text == "first"


def _steady_load(gw: Gateway, name: str, stop: threading.Event, codes: list[int]) -> None:
    # GET: a request caught in flight on a dying replica may be re-sent (it is idempotent)
    with httpx.Client(base_url=gw.url, timeout=20) as client:
        while not stop.is_set():
            try:
                codes.append(client.get(f"/function/{name}").status_code)
            except httpx.HTTPError:
                codes.append(0)
            time.sleep(0.005)


def test_killing_one_of_two_replicas_under_load_loses_no_request(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo", labels={"com.openfaas.scale.min": "2"})
    gateway.wait_for("two healthy replicas", lambda: gateway.client.get(
        "/system/function/echo").json()["availableReplicas"] == 2)
    stop, codes = threading.Event(), []
    workers = [threading.Thread(target=_steady_load, args=(gateway, "echo", stop, codes))
               for _ in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)
        victim = gateway.containers("echo")[0]
        docker("kill", victim)
        time.sleep(3.0)
    finally:
        stop.set()
        for w in workers:
            w.join()
    failed = [c for c in codes if c != 200]
    assert len(codes) > 100
    assert failed == [], f"{len(failed)} of {len(codes)} failed: {sorted(set(failed))}"


def _load(gw: Gateway, name: str, seconds: float, action) -> list[int]:
    stop, codes = threading.Event(), []
    workers = [threading.Thread(target=_steady_load, args=(gw, name, stop, codes))
               for _ in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(0.5)
        action()
        time.sleep(seconds)
    finally:
        stop.set()
        for w in workers:
            w.join()
    return codes


def test_rolling_update_under_load_loses_nothing(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo", labels={"com.openfaas.scale.min": "2"})
    gateway.wait_for("two healthy", lambda: gateway.client.get(
        "/system/function/echo").json()["availableReplicas"] == 2)
    before = set(gateway.containers("echo"))

    def update() -> None:
        gateway.deploy("echo", "echo", method="PUT", envVars={"VERSION": "2"},
                       labels={"com.openfaas.scale.min": "2"})
        gateway.wait_for("the new replicas to replace the old", lambda: (
            len(gateway.containers("echo")) == 2 and not before & set(gateway.containers("echo"))))

    codes = _load(gateway, "echo", 1.0, update)
    failed = [c for c in codes if c != 200]
    assert len(codes) > 100 and failed == [], f"{len(failed)} of {len(codes)} failed"


def test_the_status_says_rollout_from_the_moment_an_update_is_accepted(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    gateway.invoke_until("echo", lambda r: r.status_code == 200)
    assert "rollout" not in gateway.client.get("/system/function/echo").json()
    gateway.deploy("echo", "echo", method="PUT", envVars={"V": "2"})
    # asked at once: the old replica is still the only one, yet it must not pass for new
    status = gateway.client.get("/system/function/echo").json()
    assert "rollout" in status, status
    gateway.wait_for("the rollout to finish", lambda: "rollout" not in gateway.client.get(
        "/system/function/echo").json())
    r = gateway.client.post("/function/echo", content=b"x")
    assert r.status_code == 200


def test_an_update_that_never_becomes_healthy_keeps_the_old_replicas(gateway: Gateway) -> None:
    gateway.deploy("web", "http-echo")
    gateway.invoke_until("web", lambda r: r.status_code == 200, data=b"x")
    [old] = gateway.containers("web")
    # the new spec's health path answers 503: the update must stall, the old one serve
    gateway.deploy("web", "http-echo", method="PUT",
                   annotations={"com.openfaas.health.http.path": "/health?status=503"})
    gateway.wait_for("the new replica to start", lambda: len(gateway.containers("web")) == 2)
    time.sleep(3)
    assert old in gateway.containers("web")
    status = gateway.client.get("/system/function/web").json()
    assert "old replicas serve" in status["rollout"]
    for _ in range(20):
        r = gateway.client.post("/function/web", content=b"still here")
        assert r.status_code == 200 and r.json()["body"] == "still here"
    # going back to the previous spec resumes: the stalled replica goes, the old one stays
    gateway.deploy("web", "http-echo", method="PUT")
    gateway.wait_for("the stalled replica to go", lambda: gateway.containers("web") == [old])
    gateway.wait_for("the rollout note to clear", lambda: "rollout" not in gateway.client.get(
        "/system/function/web").json())


def test_an_update_to_a_missing_image_keeps_the_old_replica_serving(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
    [old] = gateway.containers("echo")
    r = gateway.client.put("/system/functions", json={
        "service": "echo", "image": "docker-faas-fixtures/no-such-image:latest"})
    assert r.status_code == 202
    time.sleep(2)
    assert gateway.containers("echo") == [old]
    r = gateway.client.post("/function/echo", content=b"old one")
    assert (r.status_code, r.text) == (200, "old one")
    status = gateway.client.get("/system/function/echo").json()
    assert "No such image" in status["lastError"]


def test_a_crashing_replica_is_replaced_and_reported(gateway: Gateway) -> None:
    gateway.deploy("crash", "crash")
    gateway.wait_for("a healthy crash replica", lambda: gateway.client.get(
        "/system/function/crash").json()["availableReplicas"] == 1)
    first = gateway.containers("crash")
    # a kept-alive connection to the replica, so the POST below travels on a reused one:
    # when the replica dies under it, the POST must not be sent to a second replica
    assert gateway.client.get("/function/crash/_/health").status_code == 200
    try:  # the replica dies while answering: a 502 or a cut-off answer is fine
        gateway.client.post("/function/crash", content=b"boom")
    except httpx.HTTPError:
        pass
    gateway.wait_for("a replacement", lambda: gateway.containers("crash") not in ([], first))
    gateway.wait_for("healthy again", lambda: gateway.client.get(
        "/system/function/crash").json()["availableReplicas"] == 1)
    time.sleep(2)  # a POST sent twice would have crashed the replacement by now
    status = gateway.client.get("/system/function/crash").json()
    assert status["restarts"] == 1 and "exited with code" in status["lastExitReason"]
    with sqlite3.connect(gateway.state) as db:
        rows = db.execute("SELECT stream, actor, payload FROM events WHERE type = ?",
                          ("replica.failed",)).fetchall()
    assert [(s, a) for s, a, _ in rows] == [("outcome/openfaas-fn/crash", "controller")]
    # outcomes never change the desired state
    assert status["replicas"] == 1


def test_scaling_down_drains_in_flight_requests(gateway: Gateway) -> None:
    gateway.deploy("sleep", "sleep", labels={"com.openfaas.scale.min": "2"})
    gateway.wait_for("two healthy", lambda: gateway.client.get(
        "/system/function/sleep").json()["availableReplicas"] == 2)
    results: list[int] = []

    def slow_call() -> None:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            results.append(client.get("/function/sleep?ms=2500").status_code)

    calls = [threading.Thread(target=slow_call) for _ in range(6)]
    for call in calls:
        call.start()
    time.sleep(0.5)  # all six are in flight, on both replicas
    r = gateway.client.post("/system/scale-function/sleep", json={"replicas": 1})
    assert r.status_code == 202
    for call in calls:
        call.join()
    assert results == [200] * 6
    gateway.wait_for("one replica", lambda: len(gateway.containers("sleep")) == 1)
