"""Async invocations in process: the submit route's checks, the status read, and the workers
against a fake gateway (a small asyncio HTTP server standing in for /function/ and for the
callback receiver), so retries, callbacks and limits run without an engine."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import httpx
import pytest
from prometheus_client import generate_latest

from api.app import create_app
from api.asyncmodel import Submission
from api.asyncworker import AsyncWorkers, QueueThread
from api.metrics import GatewayMetrics
from api.queue import QueueStore
from api.settings import Settings
from events.memory import MemoryEventStore
from events.model import Desired

pytestmark = pytest.mark.anyio
AUTH = ("admin", "secret")


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def gw(tmp_path):
    settings = Settings(auth_password="secret",
                        state_db_path=str(tmp_path / "state" / "docker-faas.db"),
                        async_body_limit=64)
    app = create_app(settings, store=MemoryEventStore(), docker=None)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4567))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", auth=AUTH) as c:
        r = await c.post("/system/functions", json={"service": "echo", "image": "img"})
        assert r.status_code == 202
        c.app = app  # type: ignore[attr-defined]
        yield c
    assert app.submit is not None
    app.submit.queue.close()


async def stored(c: httpx.AsyncClient, call_id: str) -> Submission:
    job = await c.app.submit.queue.call(  # type: ignore[attr-defined]
        QueueStore.claim, 1e12, token="peek", lease=1.0)
    assert job is not None and job.request.call_id == call_id
    return job.request


# ---- submitting ----

async def test_submit_answers_202_after_queuing(gw):
    r = await gw.post("/async-function/echo/a/b?x=1&y=2", content=b"hello",
                      headers={"X-Callback-Url": "http://127.0.0.1:9/cb", "X-Custom": "yes"},
                      auth=None)
    assert r.status_code == 202 and r.content == b""
    call_id = r.headers["x-call-id"]
    assert r.headers["x-start-time"].isdigit() and r.headers["x-served-by"]
    status = (await gw.get(f"/system/async/{call_id}")).json()
    assert status["status"] == "queued" and status["attempts"] == 0
    assert (status["function"], status["namespace"]) == ("echo", "openfaas-fn")
    assert status["lastError"] is None and status["functionStatus"] is None
    sub = await stored(gw, call_id)
    assert (sub.path, sub.query, sub.body) == ("/a/b", "x=1&y=2", b"hello")
    assert sub.callback_url == "http://127.0.0.1:9/cb" and sub.target == "echo"
    headers = dict((k.lower(), v) for k, v in sub.headers)
    assert headers["x-call-id"] == call_id
    assert headers["x-start-time"] == r.headers["x-start-time"]
    assert headers["x-custom"] == "yes" and headers["x-forwarded-for"] == "10.1.2.3:4567"
    assert headers["x-forwarded-host"] == "gw" and "content-length" not in headers
    metrics = generate_latest(gw.app.gateway.metrics.registry).decode()
    assert 'docker_faas_async_queue_depth{function_name="echo.openfaas-fn"} 1.0' in metrics


async def test_the_clients_call_id_is_kept_and_not_queued_twice(gw):
    for _ in range(2):
        r = await gw.post("/async-function/echo.openfaas-fn", content=b"x",
                          headers={"X-Call-Id": "my-call-1"})
        assert r.status_code == 202 and r.headers["x-call-id"] == "my-call-1"
    sub = await stored(gw, "my-call-1")
    assert sub.target == "echo.openfaas-fn" and sub.path == "/"
    assert [v for k, v in sub.headers if k.lower() == "x-call-id"] == ["my-call-1"]
    assert gw.app.gateway.metrics.async_depth() == {"echo.openfaas-fn": 1}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_only_post_is_allowed(gw, method):
    r = await gw.request(method, "/async-function/echo")
    assert r.status_code == 405 and r.text == "Only POST is allowed\n"


async def test_unknown_function_or_bad_name_is_404(gw):
    r = await gw.post("/async-function/nope", content=b"x")
    assert r.status_code == 404 and r.text == "error finding function nope.openfaas-fn: not found\n"
    assert (await gw.post("/async-function/bad$name", content=b"x")).status_code == 404
    assert (await gw.post("/async-function/", content=b"x")).status_code == 404


@pytest.mark.parametrize("url", ["ftp://host/cb", "/relative/cb", "http://", "not a url",
                                 "http://exa mple.com/", "https://host:99999/", "mailto:a@b"])
async def test_a_bad_callback_url_is_400_naming_the_header(gw, url):
    r = await gw.post("/async-function/echo", content=b"x", headers={"X-Callback-Url": url})
    assert r.status_code == 400 and "X-Callback-Url" in r.text


async def test_a_good_https_callback_url_is_accepted(gw):
    r = await gw.post("/async-function/echo", headers={"X-Callback-Url": "https://h.example/cb?a=1"})
    assert r.status_code == 202


async def test_a_body_over_the_limit_is_413_with_or_without_a_length(gw):
    r = await gw.post("/async-function/echo", content=b"x" * 65)
    assert r.status_code == 413 and "ASYNC_BODY_LIMIT" in r.text

    async def chunks():
        for _ in range(5):
            yield b"x" * 20

    r = await gw.post("/async-function/echo", content=chunks())
    assert r.status_code == 413
    assert (await gw.post("/async-function/echo", content=b"x" * 64)).status_code == 202
    assert gw.app.gateway.metrics.async_depth() == {"echo.openfaas-fn": 1}


async def test_status_is_protected_and_404_when_unknown(gw):
    assert (await gw.get("/system/async/nope")).status_code == 404
    assert (await gw.get("/system/async/nope", auth=None)).status_code == 401


# ---- the workers, against a fake gateway ----

Reply = tuple[int, dict[str, str], bytes, float]
Submit = Callable[..., Awaitable[str]]


@attrs.define
class FakeGateway:
    """Answers `/function/...` by `script(n, path)` (n counts calls) and records callbacks."""

    script: Callable[[int, str], Reply]
    callback_status: Callable[[int], int] = lambda n: 200
    calls: list[tuple[str, dict[str, str], bytes]] = attrs.Factory(list)
    callbacks: list[tuple[str, dict[str, str], bytes]] = attrs.Factory(list)
    inflight: dict[str, int] = attrs.Factory(dict)
    peak: dict[str, int] = attrs.Factory(dict)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        path = head[0].split(" ")[1]
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if path.startswith("/cb"):
            self.callbacks.append((path, headers, body))
            status, extra, out, delay = self.callback_status(len(self.callbacks)), {}, b"", 0.0
        else:
            self.calls.append((path, headers, body))
            fn = path.split("/")[2]
            self.inflight[fn] = self.inflight.get(fn, 0) + 1
            self.peak[fn] = max(self.peak.get(fn, 0), self.inflight[fn])
            status, extra, out, delay = self.script(len(self.calls), path)
        try:
            await asyncio.sleep(delay)
            lines = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: {len(out)}\r\n{lines}"
                         "connection: close\r\n\r\n".encode() + out)
            await writer.drain()
        except asyncio.CancelledError:
            pass  # the test is over; a stream handler that raises only makes asyncio log noise
        finally:
            if not path.startswith("/cb"):
                self.inflight[fn] -= 1
            writer.close()


@pytest.fixture
async def fake():
    servers: list[asyncio.Server] = []

    async def make(script: Callable[[int, str], Reply],
                   callback_status: Callable[[int], int] = lambda n: 200) -> FakeGateway:
        gateway = FakeGateway(script, callback_status)
        server = await asyncio.start_server(gateway.handle, "127.0.0.1", 0)
        gateway.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return gateway

    yield make
    for server in servers:
        server.close()


@pytest.fixture
async def workers(tmp_path: Path):
    made: list[AsyncWorkers] = []
    queue = QueueThread(tmp_path / "queue.db")
    ids = itertools.count()

    async def make(port: int, **options: object) -> tuple[AsyncWorkers, Submit]:
        metrics = GatewayMetrics(lambda: Desired(functions={}))
        w = AsyncWorkers(queue, metrics, ("127.0.0.1", port), **options)  # type: ignore[arg-type]
        metrics.async_depth = lambda: w.depth
        made.append(w)

        async def submit(name: str = "echo", callback: bool = True, query: str = "") -> str:
            call_id = f"call-{next(ids)}"
            sub = Submission(call_id=call_id, name=name, namespace="openfaas-fn", target=name,
                             path="/p", query=query, headers=(("X-Call-Id", call_id),),
                             body=b"payload",
                             callback_url=f"http://127.0.0.1:{port}/cb" if callback else None)
            assert await queue.call(QueueStore.enqueue, sub, w.clock())
            w.enqueued(sub.function_name)
            return call_id

        return w, submit

    yield make
    for w in made:
        await w.stop()
    queue.close()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def status_of(w: AsyncWorkers, call_id: str) -> dict[str, object]:
    found = await w.queue.call(QueueStore.status, call_id)
    assert found is not None
    return found


async def test_retries_then_delivers_the_answer_and_headers_to_the_callback(fake, workers):
    def script(n: int, path: str) -> Reply:
        return (502, {}, b"no replica", 0.0) if n <= 2 else (
            201, {"X-Custom": "yes", "Content-Type": "text/plain"}, b"answer", 0.0)

    gateway = await fake(script)
    w, submit = await workers(gateway.port, max_attempts=5)
    await w.start()
    call_id = await submit(query="x=1")

    async def done() -> bool:
        return (await status_of(w, call_id))["status"] == "done"

    await until(done)
    paths = [p for p, _, _ in gateway.calls]
    assert paths == ["/function/echo.openfaas-fn/p?x=1"] * 3
    assert all(h["x-call-id"] == call_id and b == b"payload" for _, h, b in gateway.calls)
    [(path, headers, body)] = gateway.callbacks
    assert path == "/cb" and body == b"answer"
    assert headers["x-function-status"] == "201" and headers["x-function-name"] == "echo"
    assert headers["x-call-id"] == call_id and headers["x-custom"] == "yes"
    assert float(headers["x-duration-seconds"]) >= 0
    view = await status_of(w, call_id)
    assert (view["attempts"], view["functionStatus"], view["callbackStatus"]) == (3, 201, 200)
    assert view["lastError"] == "function answered 502"
    metrics = generate_latest(w.metrics.registry).decode()
    assert 'docker_faas_async_retries_total{function_name="echo.openfaas-fn"} 2.0' in metrics
    assert 'docker_faas_async_queue_depth{function_name="echo.openfaas-fn"} 0.0' in metrics


async def test_gives_up_after_the_attempt_limit_and_says_so_to_the_callback(fake, workers):
    gateway = await fake(lambda n, path: (503, {}, b"busy", 0.0))
    w, submit = await workers(gateway.port, max_attempts=2)
    await w.start()
    call_id = await submit()

    async def failed() -> bool:
        return (await status_of(w, call_id))["status"] == "failed"

    await until(failed)
    view = await status_of(w, call_id)
    assert view["attempts"] == 2 and view["functionStatus"] == 503
    assert view["lastError"] == "gave up after 2 attempts: function answered 503"
    [(_, headers, body)] = gateway.callbacks
    assert headers["x-function-status"] == "503" and body == b"busy"


async def test_a_failing_callback_is_retried_but_a_refusing_one_is_not(fake, workers):
    gateway = await fake(lambda n, path: (200, {}, b"ok", 0.0),
                         callback_status=lambda n: {1: 503, 2: 200}.get(n, 404))
    w, submit = await workers(gateway.port)
    await w.start()
    first = await submit()

    def finished(call_id: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return (await status_of(w, call_id))["status"] in ("done", "failed")
        return check

    await until(finished(first))
    view = await status_of(w, first)
    assert (view["status"], view["attempts"], view["callbackAttempts"]) == ("done", 1, 2)
    assert view["callbackStatus"] == 200
    assert view["lastError"] == "callback: the receiver answered 503"
    second = await submit()
    await until(finished(second))
    view = await status_of(w, second)
    assert (view["status"], view["callbackAttempts"], view["callbackStatus"]) == (
        "failed", 1, 404)
    assert view["lastError"] == "callback: the receiver answered 404"
    assert len(gateway.calls) == 2  # a callback retry never runs the function again


async def test_an_unreachable_gateway_counts_as_a_failed_attempt(workers, unused_port):
    w, submit = await workers(unused_port, max_attempts=2)
    await w.start()
    call_id = await submit(callback=False)

    async def failed() -> bool:
        return (await status_of(w, call_id))["status"] == "failed"

    await until(failed)
    assert "cannot reach the gateway" in str((await status_of(w, call_id))["lastError"])
    assert w.depth == {"echo.openfaas-fn": 0}


async def test_at_most_concurrency_invocations_of_one_function_at_a_time(fake, workers):
    gateway = await fake(lambda n, path: (200, {}, b"ok", 0.15))
    w, submit = await workers(gateway.port, workers=8, concurrency=2)
    await w.start()
    ids = [await submit("slow", callback=False) for _ in range(6)]
    ids += [await submit("other", callback=False) for _ in range(2)]

    async def all_done() -> bool:
        return all([(await status_of(w, i))["status"] == "done" for i in ids])

    await until(all_done)
    assert gateway.peak == {"slow.openfaas-fn": 2, "other.openfaas-fn": 2}


async def test_stopping_hands_running_requests_back(fake, workers):
    gateway = await fake(lambda n, path: (200, {}, b"ok", 30.0))
    w, submit = await workers(gateway.port)
    await w.start()
    call_id = await submit(callback=False)

    async def running() -> bool:
        return bool(gateway.calls)

    await until(running)
    await w.stop()
    view = await status_of(w, call_id)
    assert (view["status"], view["attempts"]) == ("queued", 0)


@pytest.fixture
def unused_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
