"""Durable async invocations end to end: real gateway process, real engine, real callbacks.

The callback receiver is a threaded http.server inside the test; the gateway itself POSTs
the callbacks (no function container is involved), so 127.0.0.1 reaches it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.e2e.conftest import Gateway

pytestmark = pytest.mark.engine


class Receiver:
    """Records every callback: (path, lower-cased headers, body)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.received.append(
                        (self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cb"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def by_call_id(self) -> dict[str, list[tuple[str, dict[str, str], bytes]]]:
        out: dict[str, list[tuple[str, dict[str, str], bytes]]] = {}
        with self.lock:
            for item in self.received:
                out.setdefault(item[1].get("x-call-id", ""), []).append(item)
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


_http = httpx.Client(timeout=15)  # one client: a new one per call costs ~40 ms (TLS setup)


def submit(gw: Gateway, name: str, body: bytes = b"", *, callback: str | None = None,
           path: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    extra = dict(headers or {})
    if callback:
        extra["X-Callback-Url"] = callback
    return _http.post(f"{gw.url}/async-function/{name}{path}", content=body, headers=extra)


def status(gw: Gateway, call_id: str) -> dict[str, object]:
    r = gw.client.get(f"/system/async/{call_id}")
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


def metrics(gw: Gateway) -> str:
    return _http.get(f"http://127.0.0.1:{gw.metrics_port}/metrics").text


def test_async_call_reaches_the_function_and_calls_back(gateway: Gateway,
                                                        receiver: Receiver) -> None:
    gateway.deploy("echo", "echo")
    gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"warm")
    gateway.deploy("env", "env")
    gateway.invoke_until("env", lambda r: r.status_code == 200)

    r = submit(gateway, "echo", b"hello async", callback=receiver.url + "?tag=1")
    assert r.status_code == 202 and r.content == b""
    call_id = r.headers["x-call-id"]
    assert r.headers["x-start-time"] and r.headers["x-served-by"]
    gateway.wait_for("the callback", lambda: call_id in receiver.by_call_id(), timeout=20)
    [(path, headers, body)] = receiver.by_call_id()[call_id]
    assert path == "/cb?tag=1" and body == b"hello async"
    assert headers["x-function-status"] == "200" and headers["x-function-name"] == "echo"
    assert float(headers["x-duration-seconds"]) > 0
    assert "x-start-time" in headers  # the function's own answer headers come along
    gateway.wait_for("done", lambda: status(gateway, call_id)["status"] == "done")
    view = status(gateway, call_id)
    assert (view["function"], view["namespace"], view["attempts"]) == ("echo", "openfaas-fn", 1)
    assert (view["functionStatus"], view["callbackStatus"]) == (200, 200)

    # the client's call id, path and query reach the function as on a synchronous call
    r = submit(gateway, "env", callback=receiver.url, path="/sub/path?q=1",
               headers={"X-Call-Id": "client-chosen-id"})
    assert r.status_code == 202 and r.headers["x-call-id"] == "client-chosen-id"
    gateway.wait_for("the env callback", lambda: "client-chosen-id" in receiver.by_call_id())
    [(_, _, env)] = receiver.by_call_id()["client-chosen-id"]
    assert b"Http_X_Call_Id=client-chosen-id" in env
    assert b"Http_Path=/sub/path" in env and b"Http_Query=q=1" in env

    text = metrics(gateway)
    assert 'docker_faas_async_queue_depth{function_name="echo.openfaas-fn"} 0.0' in text
    assert 'gateway_function_invocation_total{code="200",function_name="env.openfaas-fn"}' in text


def test_hundred_requests_survive_a_gateway_kill(gateway_factory: Callable[..., Gateway],
                                                 receiver: Receiver) -> None:
    """The acceptance test: SIGKILL the gateway while 100 queued requests run; after a restart
    every one runs and calls back (duplicates, if any, carry the same call id)."""
    gw = gateway_factory(ASYNC_LEASE="2s")
    gw.deploy("sleep", "sleep")
    gw.invoke_until("sleep", lambda r: r.status_code == 200, path="?ms=1")

    started = time.monotonic()
    ids = []
    for i in range(100):
        r = submit(gw, "sleep", callback=receiver.url, path="?ms=100",
                   headers={"X-Call-Id": f"crash-{i:03d}"})
        assert r.status_code == 202, r.text
        ids.append(r.headers["x-call-id"])
    submitted = time.monotonic() - started
    gw.wait_for("some callbacks", lambda: len(receiver.by_call_id()) >= 10, timeout=30)
    before_kill = len(receiver.by_call_id())
    gw.kill(signal.SIGKILL)
    killed_at = time.monotonic()
    assert before_kill < 100, "everything finished before the kill; make the requests slower"

    gw.start()
    gw.wait_for("every callback", lambda: set(receiver.by_call_id()) >= set(ids),
                timeout=60 - (time.monotonic() - started))
    total = time.monotonic() - started
    received = receiver.by_call_id()
    assert set(received) == set(ids)  # nothing but ours, nothing missing
    for call_id, calls in received.items():
        for _, headers, body in calls:
            assert headers["x-call-id"] == call_id
            assert headers["x-function-status"] == "200" and body == b"slept 100 ms"
    duplicates = sum(len(calls) - 1 for calls in received.values())
    gw.wait_for("all done", lambda: all(status(gw, i)["status"] == "done" for i in ids))
    print(f"\n100 async requests: submitted in {submitted:.2f}s, {before_kill} called back "
          f"before SIGKILL, all called back {total:.2f}s after the first submit "
          f"({time.monotonic() - killed_at:.2f}s after the kill), {duplicates} duplicates")
    assert total < 60


def test_502_is_retried_with_back_off_then_failed(gateway_factory: Callable[..., Gateway],
                                                  receiver: Receiver) -> None:
    gw = gateway_factory(ASYNC_MAX_ATTEMPTS="3")
    r = gw.client.post("/system/functions", json={
        "service": "broken", "image": "docker-faas-fixtures/no-such-image:latest"})
    assert r.status_code == 202
    started = time.monotonic()
    r = submit(gw, "broken", b"x", callback=receiver.url)
    assert r.status_code == 202
    call_id = r.headers["x-call-id"]
    gw.wait_for("failed", lambda: status(gw, call_id)["status"] == "failed", timeout=20)
    assert time.monotonic() - started >= 1.5  # 0.5 s, then 1 s between the three attempts
    view = status(gw, call_id)
    assert view["attempts"] == 3 and view["functionStatus"] == 502
    assert "gave up after 3 attempts" in str(view["lastError"])
    assert "502" in str(view["lastError"])
    gw.wait_for("the failure callback", lambda: call_id in receiver.by_call_id())
    [(_, headers, _)] = receiver.by_call_id()[call_id]
    assert headers["x-function-status"] == "502"
    assert 'docker_faas_async_retries_total{function_name="broken.openfaas-fn"} 2.0' in metrics(gw)


def test_async_input_errors_over_http(gateway_factory: Callable[..., Gateway]) -> None:
    gw = gateway_factory(ASYNC_BODY_LIMIT="1024")
    gw.deploy("echo", "echo")
    r = submit(gw, "echo", b"x", callback="ftp://example.com/cb")
    assert r.status_code == 400 and "X-Callback-Url" in r.text
    r = submit(gw, "nope", b"x")
    assert r.status_code == 404 and "nope.openfaas-fn" in r.text
    r = submit(gw, "echo", b"x" * 1025)
    assert r.status_code == 413
    r = httpx.get(f"{gw.url}/async-function/echo")
    assert r.status_code == 405 and r.text == "Only POST is allowed\n"
    assert gw.client.get("/system/async/unknown-id").status_code == 404
    assert httpx.get(f"{gw.url}/system/async/unknown-id").status_code == 401
