"""GET /system/logs end to end: real replicas write, the collector copies, clients read."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, Gateway, docker

pytestmark = pytest.mark.engine

KEYS = {"name", "namespace", "instance", "timestamp", "text"}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
GO_LOG_PREFIX = re.compile(r"^[\d/: ]*")  # what the certifier strips: `2026/11/30 12:00:00 `
Lines = list[dict[str, Any]]


def read_logs(gateway: Gateway, name: str, **params: str) -> Lines:
    r = gateway.client.get("/system/logs", params={"name": name, "follow": "false", **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in r.text.splitlines()]


def texts(lines: Lines) -> list[str]:
    return [GO_LOG_PREFIX.sub("", line["text"]) for line in lines]


def logs_until(gateway: Gateway, name: str, ok: Callable[[Lines], bool], **params: str) -> Lines:
    found: Lines = []

    def check() -> bool:
        nonlocal found
        found = read_logs(gateway, name, **params)
        return ok(found)

    gateway.wait_for(f"log lines of {name}", check, timeout=20)
    return found


def wrote(size: int) -> Callable[[Lines], bool]:
    return lambda lines: any(t.startswith(f"Wrote {size} Bytes") for t in texts(lines))


def sort_key(line: dict[str, Any]) -> tuple[str, str]:
    # RFC 3339 with the fraction's trailing zeros dropped: pad it to compare as text
    stamp = line["timestamp"].rstrip("Z")
    whole, _, fraction = stamp.partition(".")
    return whole, fraction.ljust(9, "0")


def test_invocation_logs_as_the_certifier_reads_them(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"hello logs")
    lines = logs_until(gateway, "echo", wrote(10))

    assert all(set(line) == KEYS for line in lines)
    assert all(line["name"] == "echo" and line["namespace"] == "openfaas-fn" for line in lines)
    assert all(TIMESTAMP.fullmatch(line["timestamp"]) for line in lines)
    assert all(not line["text"].endswith("\n") for line in lines)
    assert any(t.startswith("Forking fprocess.") for t in texts(lines))
    assert any(re.match(r"Wrote \d+ Bytes", t) for t in texts(lines))
    assert lines == sorted(lines, key=sort_key)
    [instance] = {line["instance"] for line in lines}
    [cid] = gateway.containers("echo")
    assert cid.startswith(instance)

    assert read_logs(gateway, "echo", tail="1") == lines[-1:]
    assert read_logs(gateway, "echo", tail="2") == lines[-2:]
    assert read_logs(gateway, "echo", tail="-1") == lines
    assert read_logs(gateway, "echo", since=lines[-1]["timestamp"]) == lines[-1:]
    assert read_logs(gateway, "echo", since="2999-01-01T00:00:00Z") == []
    assert read_logs(gateway, "echo", instance=instance) == lines
    assert read_logs(gateway, "echo", instance=cid) == lines
    assert read_logs(gateway, "echo", instance="0000") == []

    for bad in ({"since": "yesterday"}, {"since": "2026-11-30"}, {"tail": "ten"},
                {"tail": "1.5"}):
        r = gateway.client.get("/system/logs", params={"name": "echo", **bad})
        assert r.status_code == 422 and r.text == "could not parse the log request\n", bad
    assert gateway.client.get("/system/logs", params={"name": "nope"}).status_code == 404
    r = gateway.client.get("/system/logs", params={"name": "echo"}, auth=None)
    assert r.status_code == 401


def test_lines_outlive_replaced_and_killed_replicas_and_restarts(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x" * 11)
    [first] = gateway.containers("echo")

    # an update replaces the replica (stopped with SIGTERM, then removed)
    gateway.deploy("echo", "echo", method="PUT", envVars={"GREETING": "hi"})
    gateway.wait_for("first replica removed",
                     lambda: first not in gateway.containers("echo", running_only=False))
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x" * 12)
    [second] = gateway.containers("echo")

    # a killed replica is replaced by the controller
    docker("kill", second)
    gateway.wait_for("killed replica removed",
                     lambda: second not in gateway.containers("echo", running_only=False))
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x" * 13)
    lines = logs_until(gateway, "echo", wrote(13))

    by_instance: dict[str, list[str]] = {}
    for line in lines:
        by_instance.setdefault(line["instance"], []).append(GO_LOG_PREFIX.sub("", line["text"]))
    assert len(by_instance) == 3, json.dumps(by_instance, indent=1)
    old = by_instance[first[:12]]
    assert any(t.startswith("Wrote 11 Bytes") for t in old)
    assert "Received SIGTERM: shutting down." in old
    assert old[-1] == "Exiting."  # its last words, copied before the container was deleted
    assert any(t.startswith("Wrote 12 Bytes") for t in by_instance[second[:12]])
    assert lines == sorted(lines, key=sort_key)

    # a gateway killed and restarted resumes every copy without losing or repeating a line
    gateway.kill(signal.SIGKILL)
    gateway.start()
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x" * 14)
    after = logs_until(gateway, "echo", wrote(14))
    assert after[: len(lines)] == lines
    identities = [(line["instance"], line["timestamp"], line["text"]) for line in after]
    assert len(identities) == len(set(identities))

    # the function is deleted: its lines can still be read
    r = gateway.client.request("DELETE", "/system/functions", json={"functionName": "echo"})
    assert r.status_code == 202
    gateway.wait_for("containers removed",
                     lambda: gateway.containers("echo", running_only=False) == [])
    assert read_logs(gateway, "echo")[: len(after)] == after


def test_follow_merges_replicas_and_ends_at_write_timeout(
    gateway_factory: Callable[..., Gateway],
) -> None:
    gateway = gateway_factory(WRITE_TIMEOUT="3s")
    gateway.deploy("echo", "echo", labels={"com.openfaas.scale.min": "2"})
    gateway.wait_for("two healthy replicas", lambda: gateway.client.get(
        "/system/function/echo").json().get("availableReplicas") == 2)
    for _ in range(4):  # round robin: both replicas serve
        gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"y" * 21)
    lines = logs_until(gateway, "echo", lambda lines: len(
        {ln["instance"] for ln, t in zip(lines, texts(lines), strict=True)
         if t.startswith("Wrote 21 Bytes")}) == 2)
    assert lines == sorted(lines, key=sort_key)

    def invoke_later() -> None:
        time.sleep(0.7)
        httpx.post(gateway.url + "/function/echo", content=b"z" * 4321, timeout=10)

    started = time.monotonic()
    received: list[tuple[float, dict[str, Any]]] = []
    with httpx.Client(base_url=gateway.url, auth=("admin", PASSWORD), timeout=15) as client:
        # faas-cli sends follow=true unless told --tail=false
        with client.stream("GET", "/system/logs", params={"name": "echo", "follow": "true"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/x-ndjson"
            helper = threading.Thread(target=invoke_later)
            helper.start()
            for raw in r.iter_lines():
                received.append((time.monotonic() - started, json.loads(raw)))
    elapsed = time.monotonic() - started
    helper.join()
    assert 2.5 < elapsed < 6, elapsed
    streamed = [line for _, line in received]
    assert streamed[: len(lines)] == lines
    [(when, _)] = [(t, line) for t, line in received
                   if GO_LOG_PREFIX.sub("", line["text"]).startswith("Wrote 4321 Bytes")]
    assert 0.5 < when < 3  # it came while the stream was open, not with the backlog


def test_follow_parses_like_go_and_a_departed_follower_is_let_go(gateway: Gateway) -> None:
    gateway.deploy("echo", "echo")
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
    logs_until(gateway, "echo", wrote(1))
    for value in ("0", "false", "F", "nonsense", ""):  # unparsable → false: ends at once
        started = time.monotonic()
        r = gateway.client.get("/system/logs", params={"name": "echo", "follow": value})
        assert r.status_code == 200 and time.monotonic() - started < 2
    # a follower that goes away is let go: the gateway keeps serving
    with gateway.client.stream("GET", "/system/logs",
                               params={"name": "echo", "follow": "1"}) as r:
        first = next(r.iter_lines())
        assert json.loads(first)["name"] == "echo"
    assert gateway.client.get("/system/function/echo").status_code == 200
