"""GET /system/logs in process: the query as faas-provider reads it, NDJSON, follow, endings."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import GatewayApp, create_app
from api.settings import Settings
from controller.logparse import STDERR, STDOUT, Cursor, Line, parse_rfc3339
from controller.logstore import LogStore
from events.memory import MemoryEventStore

pytestmark = pytest.mark.anyio
AUTH = ("admin", "secret")
KEY = ("openfaas-fn", "echo")
A, B = "a1" * 32, "b2" * 32
T0 = parse_rfc3339("2026-11-30T12:00:00Z")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app(tmp_path: Path, write_timeout: float) -> GatewayApp:
    settings = Settings(auth_password="secret", write_timeout=write_timeout,
                        state_db_path=str(tmp_path / "state" / "docker-faas.db"))
    return create_app(settings, store=MemoryEventStore(), docker=None)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[GatewayApp]:
    app = make_app(tmp_path, write_timeout=0.5)
    yield app
    logs(app).close()


@pytest.fixture
async def client(app: GatewayApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", auth=AUTH) as c:
        yield c


def logs(app: GatewayApp) -> LogStore:
    assert app.gateway.logs is not None
    return app.gateway.logs


def two_replicas(store: LogStore) -> None:
    store.start(KEY, A, "/dfaas_echo_0")
    store.start(KEY, B, "/dfaas_echo_1")
    store.append(A, [Line(T0 + 1, STDERR, "2026/11/30 12:00:00 Forking fprocess."),
                     Line(T0 + 500_000_000, STDOUT, "from a")], Cursor(T0 + 500_000_000, 1))
    store.append(B, [Line(T0 + 2, STDOUT, "from b")], Cursor(T0 + 2, 1))


async def get_lines(client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
    r = await client.get("/system/logs?" + query)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    assert r.text == "" or r.text.endswith("\n")
    return [json.loads(line) for line in r.text.splitlines()]


async def test_backlog_is_ndjson_with_replicas_merged_in_time_order(
    app: GatewayApp, client: httpx.AsyncClient
) -> None:
    two_replicas(logs(app))
    lines = await get_lines(client, "name=echo&follow=false")
    assert lines == [
        {"name": "echo", "namespace": "openfaas-fn", "instance": A[:12],
         "timestamp": "2026-11-30T12:00:00.000000001Z",
         "text": "2026/11/30 12:00:00 Forking fprocess."},
        {"name": "echo", "namespace": "openfaas-fn", "instance": B[:12],
         "timestamp": "2026-11-30T12:00:00.000000002Z", "text": "from b"},
        {"name": "echo", "namespace": "openfaas-fn", "instance": A[:12],
         "timestamp": "2026-11-30T12:00:00.5Z", "text": "from a"},
    ]


async def test_query_is_read_like_faas_provider(app: GatewayApp, client: httpx.AsyncClient) -> None:
    two_replicas(logs(app))
    texts = [line["text"] for line in await get_lines(client, "name=echo")]
    assert texts[1:] == ["from b", "from a"]
    tail = await get_lines(client, "name=echo&tail=5&tail=1")  # the last value wins
    assert [line["text"] for line in tail] == ["from a"]
    for everything in ("tail=0", "tail=-1", "tail=%2B3", "tail="):
        assert len(await get_lines(client, f"name=echo&{everything}")) == 3, everything
    since = await get_lines(client, "name=echo&since=2026-11-30T13:00:00.000000002%2B01:00")
    assert [line["text"] for line in since] == ["from b", "from a"]
    assert await get_lines(client, "name=echo&since=9999-12-31T23:59:59Z") == []
    assert [line["text"] for line in await get_lines(client, f"name=echo&instance={B[:5]}")] \
        == ["from b"]
    assert len(await get_lines(client, "name=echo&instance=dfaas_echo_0")) == 2
    r = await client.get("/system/logs?name=echo&namespace=other")
    assert r.status_code == 400 and "does not exist" in r.text
    for not_true in ("false", "0", "f", "yes", "TRUE1"):  # ParseBool: unparsable means false
        started = asyncio.get_running_loop().time()
        await get_lines(client, f"name=echo&follow={not_true}")
        assert asyncio.get_running_loop().time() - started < 0.3


@pytest.mark.parametrize("query", [
    "since=yesterday", "since=2026-11-30", "since=2026-11-30T12:00:00",
    "tail=ten", "tail=1.5", "tail=%201", "tail=99999999999999999999",
])
async def test_unparsable_since_or_tail_is_422(client: httpx.AsyncClient, query: str) -> None:
    r = await client.get(f"/system/logs?name=echo&{query}")
    assert r.status_code == 422
    assert r.text == "could not parse the log request\n"


async def test_which_functions_have_logs(app: GatewayApp, client: httpx.AsyncClient) -> None:
    r = await client.get("/system/logs?name=echo")
    assert r.status_code == 404 and "echo.openfaas-fn" in r.text
    assert (await client.get("/system/logs")).status_code == 400
    assert (await client.get("/system/logs?name=echo&namespace=No_Good")).status_code == 400
    # deployed but silent so far: an empty stream
    r = await client.post("/system/functions", json={"service": "echo", "image": "x/echo:1"})
    assert r.status_code == 202
    assert await get_lines(client, "name=echo") == []
    # lines of a function that is gone are still served
    logs(app).start(("openfaas-fn", "gone"), A, "/a")
    logs(app).append(A, [Line(T0, STDOUT, "last words")], Cursor(T0, 1))
    assert [line["text"] for line in await get_lines(client, "name=gone")] == ["last words"]
    r = await client.get("/system/logs?name=echo", auth=None)
    assert r.status_code == 401


async def test_follow_carries_new_lines_until_write_timeout(
    app: GatewayApp, client: httpx.AsyncClient
) -> None:
    store = logs(app)
    two_replicas(store)
    store.start(("openfaas-fn", "other"), "c3" * 32, "/c")
    loop = asyncio.get_running_loop()

    def later(container: str, text: str) -> None:
        store.append(container, [Line(T0 + 1, STDOUT, text)], Cursor(T0 + 500_000_000, 2))

    loop.call_later(0.1, later, B, "late, early stamp")
    loop.call_later(0.15, later, "c3" * 32, "another function")
    loop.call_later(0.2, later, A, "later still")
    started = loop.time()
    lines = await get_lines(client, "name=echo&follow=true&tail=1")
    elapsed = loop.time() - started
    assert 0.45 < elapsed < 1.5  # WRITE_TIMEOUT is 0.5 s here
    assert [line["text"] for line in lines] == ["from a", "late, early stamp", "later still"]


async def test_a_read_failing_mid_stream_ends_it_as_faas_provider_does(
    app: GatewayApp, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_replicas(logs(app))

    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(logs(app), "after", broken)
    lines = await get_lines(client, "name=echo&follow=true")
    assert len(lines) == 4 and set(lines[-1]) == {"name", "namespace", "instance",
                                                  "timestamp", "text"}
    assert lines[-1]["text"] == "failed to serialize log message"


async def test_a_departing_follower_ends_its_stream(tmp_path: Path) -> None:
    app = make_app(tmp_path, write_timeout=30)
    store = logs(app)
    two_replicas(store)
    token = base64.b64encode(b"admin:secret")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/system/logs", "raw_path": b"/system/logs",
        "query_string": b"name=echo&follow=1", "root_path": "",
        "headers": [(b"host", b"gw"), (b"authorization", b"Basic " + token)],
        "client": ("127.0.0.1", 1234), "server": ("gw", 80), "state": {},
    }
    sent: list[dict[str, Any]] = []
    received = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        if received == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0.2)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        async with asyncio.timeout(3):
            await app(scope, receive, send)
    finally:
        store.close()
    assert sent[0]["status"] == 200
    bodies = [m["body"] for m in sent[1:] if m.get("body")]
    assert len(bodies) == 3  # the backlog, one line per message
    assert store._waiters == {}
