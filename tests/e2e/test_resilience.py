"""Requests are held or re-routed instead of failed: waking from zero, replicas dying."""

from __future__ import annotations

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
    assert woke < 15, f"waking took {woke:.1f}s"


def test_deploy_then_invoke_at_once_waits_instead_of_failing(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    r = gateway.client.post("/function/echo", content=b"first")  # no polling
    assert r.status_code == 200 and r.text == "first"


def _steady_load(gw: Gateway, name: str, stop: threading.Event, codes: list[int]) -> None:
    with httpx.Client(base_url=gw.url, timeout=20) as client:
        while not stop.is_set():
            try:
                codes.append(client.post(f"/function/{name}", content=b"ping").status_code)
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
