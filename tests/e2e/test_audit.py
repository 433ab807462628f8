"""Issue 5's audit acceptance against the real engine: two users change functions, and the log
answers who changed what and when, what a function looked like then, and the diff between
versions; and the log file alone, copied to another gateway, reproduces the desired state,
which that gateway then converges to."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.e2e.conftest import FIXTURE, Gateway


def _env_body(name: str, **env: str) -> dict[str, object]:
    return {"service": name, "image": FIXTURE.format("env"), "envVars": env}


def test_who_changed_what_when_and_what_it_was(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    users = tmp_path / "users"
    users.write_text("alice:alice-pass\n")
    gw = gateway_factory(AUTH_USERS_FILE=str(users))
    admin = gw.client
    alice = httpx.Client(base_url=gw.url, auth=("alice", "alice-pass"), timeout=15)
    marks: list[str] = []

    def moment() -> None:  # a time between two changes, as a client would note it
        time.sleep(0.05)
        marks.append(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        time.sleep(0.05)

    assert admin.post("/system/functions", json=_env_body("x", STAGE="one")).status_code == 202
    moment()
    assert alice.put("/system/functions", json=_env_body("x", STAGE="two")).status_code == 202
    moment()
    r = admin.post("/system/scale-function/x", json={"serviceName": "x", "replicas": 2})
    assert r.status_code == 202
    assert alice.post("/system/functions", json=_env_body("y")).status_code == 202
    r = admin.request("DELETE", "/system/functions", json={"functionName": "y"})
    assert r.status_code == 202

    # the engine really runs what the log says: two replicas of x with STAGE=two
    gw.invoke_until("x", lambda r: r.status_code == 200 and "STAGE=two" in r.text)
    gw.wait_for("two replicas of x", lambda: len(gw.containers("x")) == 2)
    gw.wait_for("y removed", lambda: not gw.containers("y"))

    # who changed x, and when
    events = admin.get("/system/events", params={"function": "x"}).json()
    assert [(e["type"], e["actor"]) for e in events] == [
        ("function.deployed", "admin"), ("function.updated", "alice"),
        ("function.scaled", "admin")]
    assert all(e["time"].endswith("Z") and e["source"].startswith("127.0.0.1:")
               and e["userAgent"].startswith("python-httpx") for e in events)
    by_alice = admin.get("/system/events", params={"actor": "alice"}).json()
    assert [(e["type"], e["stream"]) for e in by_alice] == [
        ("function.updated", "function/openfaas-fn/x"),
        ("function.deployed", "function/openfaas-fn/y")]

    # what x looked like at each noted time
    first = admin.get("/system/function/x", params={"at": marks[0]}).json()
    second = admin.get("/system/function/x", params={"at": marks[1]}).json()
    assert (first["envVars"], first["replicas"]) == ({"STAGE": "one"}, 1)
    assert (second["envVars"], second["replicas"]) == ({"STAGE": "two"}, 1)
    # y existed between its deploy and its delete only
    y_deployed = by_alice[1]["position"]
    assert admin.get("/system/function/y", params={"at": str(y_deployed)}).status_code == 200
    assert admin.get("/system/function/y").status_code == 404

    # the diff between versions
    history = admin.get("/system/function/x/history").json()
    assert [(v["version"], v["actor"]) for v in history] == [
        (1, "admin"), (2, "alice"), (3, "admin")]
    assert history[1]["changes"] == [
        {"field": "envVars.STAGE", "before": "one", "after": "two"}]
    assert history[2]["changes"] == [{"field": "replicas", "before": 1, "after": 2}]
    alice.close()


def test_the_log_copied_to_another_gateway_reproduces_the_state_and_converges(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    first = gateway_factory()
    first.deploy("a", "echo")
    first.deploy("b", "env", envVars={"K": "v"})
    r = first.client.post("/system/scale-function/a", json={"serviceName": "a", "replicas": 2})
    assert r.status_code == 202
    first.invoke_until("b", lambda r: r.status_code == 200 and "K=v" in r.text)

    # an online copy, as an operator would take it (`sqlite3 db ".backup copy.db"`)
    copy = tmp_path / "elsewhere" / "docker-faas.db"
    copy.parent.mkdir()
    with sqlite3.connect(first.state) as source, sqlite3.connect(copy) as target:
        source.backup(target)

    second = gateway_factory(STATE_DB_PATH=str(copy))
    assert second.instance != first.instance  # its own containers, as on another machine

    def listing(gw: Gateway) -> list[dict[str, object]]:
        out = gw.client.get("/system/functions").json()
        for f in out:
            f.pop("availableReplicas"), f.pop("invocationCount", None)
        return sorted(out, key=lambda f: str(f["name"]))

    assert listing(second) == listing(first)
    assert (second.client.get("/system/events").json()
            == first.client.get("/system/events").json())
    second.invoke_until("b", lambda r: r.status_code == 200 and "K=v" in r.text)
    second.invoke_until("a", lambda r: r.status_code == 200, data=b"hi")
    second.wait_for("a at 2 replicas", lambda: len(second.containers("a")) == 2)
    assert len(first.containers("a")) == 2  # the first gateway's replicas are its own
