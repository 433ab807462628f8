"""The log store: merged order, filters, tail, retention, cursors that survive a restart."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.settings import ConfigError, from_env
from controller.logparse import STDERR, STDOUT, Cursor, Line, Pending
from controller.logstore import LogStore, StoredLine

KEY = ("openfaas-fn", "echo")
OTHER = ("openfaas-fn", "other")
A = "a" * 64
B = "b" * 64


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    s = LogStore(tmp_path / "logs.db", keep=100)
    yield s
    s.close()


def texts(lines: list[Line] | list[StoredLine]) -> list[str]:
    return [line.text for line in lines]


def test_replicas_are_merged_in_time_order(store: LogStore) -> None:
    store.start(KEY, A, "/dfaas_echo_0")
    store.start(KEY, B, "/dfaas_echo_1")
    store.append(A, [Line(10, STDOUT, "a10"), Line(30, STDERR, "a30")], Cursor(30, 1))
    store.append(B, [Line(20, STDOUT, "b20"), Line(30, STDOUT, "b30")], Cursor(30, 1))
    assert texts(store.backlog(KEY)) == ["a10", "b20", "a30", "b30"]
    assert [line.container for line in store.backlog(KEY)] == [A, B, A, B]
    assert store.backlog(OTHER) == []


def test_tail_since_and_instance_filters(store: LogStore) -> None:
    store.start(KEY, A, "/dfaas_echo_0")
    store.start(KEY, B, "/dfaas_echo_1")
    store.append(A, [Line(t, STDOUT, f"a{t}") for t in (1, 3, 5)], Cursor(5, 1))
    store.append(B, [Line(t, STDOUT, f"b{t}") for t in (2, 4)], Cursor(4, 1))
    assert texts(store.backlog(KEY, tail=2)) == ["b4", "a5"]
    assert texts(store.backlog(KEY, tail=-1)) == ["a1", "b2", "a3", "b4", "a5"]
    assert texts(store.backlog(KEY, since=3)) == ["a3", "b4", "a5"]
    assert texts(store.backlog(KEY, since=3, tail=1)) == ["a5"]
    assert texts(store.backlog(KEY, since=2**70)) == []  # beyond 64 bits: nothing, no error
    assert texts(store.backlog(KEY, instance="bbbb")) == ["b2", "b4"]
    assert texts(store.backlog(KEY, instance=B)) == ["b2", "b4"]
    assert texts(store.backlog(KEY, instance="dfaas_echo_0")) == ["a1", "a3", "a5"]
    assert texts(store.backlog(KEY, instance="/dfaas_echo_0")) == ["a1", "a3", "a5"]
    assert texts(store.backlog(KEY, instance="%")) == []


def test_after_gives_new_lines_in_arrival_order(store: LogStore) -> None:
    store.start(KEY, A, "/a")
    store.start(OTHER, B, "/b")
    store.append(A, [Line(5, STDOUT, "first")], Cursor(5, 1))
    seen = store.last_seq()
    store.append(B, [Line(6, STDOUT, "elsewhere")], Cursor(6, 1))
    store.append(A, [Line(9, STDOUT, "second"), Line(1, STDOUT, "late but new")], Cursor(9, 1))
    fresh = store.after(KEY, seen)
    assert texts(fresh) == ["second", "late but new"]
    assert store.after(KEY, fresh[-1].seq) == []


def test_retention_keeps_the_newest_lines_of_each_function(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db", keep=5)
    try:
        store.start(KEY, A, "/a")
        store.start(OTHER, B, "/b")
        store.append(B, [Line(0, STDOUT, "kept elsewhere")], Cursor(0, 1))
        for t in range(8):
            store.append(A, [Line(100 - t, STDOUT, f"old{t}"), Line(200 + t, STDOUT, f"new{t}")],
                         Cursor(200 + t, 1))
        assert texts(store.backlog(KEY)) == [f"new{t}" for t in range(3, 8)]
        assert texts(store.backlog(OTHER)) == ["kept elsewhere"]
    finally:
        store.close()


def test_finished_containers_whose_lines_aged_out_are_forgotten(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db", keep=2)
    try:
        store.start(KEY, A, "/a")
        store.append(A, [Line(1, STDOUT, "a")], Cursor(1, 1), done=True)
        store.start(KEY, B, "/b")
        store.append(B, [Line(2, STDOUT, "b"), Line(3, STDOUT, "c")], Cursor(3, 1))
        assert store.start(KEY, A, "/a") == Cursor()  # A's row went with its last line
        assert store.known(KEY)
    finally:
        store.close()


def test_cursors_and_lines_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "logs.db"
    first = LogStore(path)
    assert first.start(KEY, A, "/a") == Cursor()
    cursor = Cursor(7, 2, (Pending(STDERR, 6, b"half a \xff line"),))
    first.append(A, [Line(6, STDOUT, "x")], cursor)
    first.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = LogStore(path)
    try:
        assert second.start(KEY, A, "/a") == cursor
        assert texts(second.backlog(KEY)) == ["x"]
        assert second.known(KEY) and not second.known(OTHER)
    finally:
        second.close()


def test_a_failed_write_stores_nothing(store: LogStore) -> None:
    with pytest.raises(KeyError):
        store.append(A, [Line(1, STDOUT, "x")], Cursor(1, 1))
    store.start(KEY, A, "/a")
    bad = Line(2, STDOUT, object())  # type: ignore[arg-type]
    with pytest.raises(sqlite3.Error):  # outside an event loop, appends are written at once
        store.append(A, [Line(1, STDOUT, "ok"), bad], Cursor(2, 1))
    assert store.backlog(KEY) == []
    assert store.start(KEY, A, "/a") == Cursor()


@pytest.mark.anyio
async def test_waiters_wake_on_their_function_only(store: LogStore) -> None:
    store.start(KEY, A, "/a")
    store.start(OTHER, B, "/b")
    loop = asyncio.get_running_loop()
    waiter = asyncio.ensure_future(store.wait(KEY, 5))
    await asyncio.sleep(0)
    store.append(B, [Line(1, STDOUT, "other")], Cursor(1, 1))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    store.append(A, [], Cursor(1, 1))  # a cursor-only write wakes nobody
    await asyncio.sleep(0.01)
    assert not waiter.done()
    store.append(A, [Line(1, STDOUT, "mine")], Cursor(1, 1))
    assert not waiter.done()  # written behind, a moment later
    await asyncio.wait_for(waiter, 1)
    started = loop.time()
    await store.wait(KEY, 0.05)
    assert 0.04 < loop.time() - started < 1
    assert store._waiters == {}


@pytest.mark.anyio
async def test_writes_are_batched_and_reads_see_them_at_once(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db", flush_delay=10, flush_lines=5)
    try:
        store.start(KEY, A, "/a")
        for t in range(3):
            store.append(A, [Line(t, STDOUT, f"l{t}")], Cursor(t, 1))
        assert store._lines  # held back...
        assert texts(store.backlog(KEY)) == ["l0", "l1", "l2"]  # ...but a read flushes first
        for t in range(3, 8):
            store.append(A, [Line(t, STDOUT, f"l{t}")], Cursor(t, 1))
        assert not store._lines  # five lines: written without waiting for the timer
        store.append(A, [Line(8, STDOUT, "l8")], Cursor(8, 1))
    finally:
        store.close()  # flushes what is left
    reopened = LogStore(tmp_path / "logs.db")
    try:
        assert len(reopened.backlog(KEY)) == 9
        assert reopened.start(KEY, A, "/a") == Cursor(8, 1)
    finally:
        reopened.close()


def test_retention_setting() -> None:
    assert from_env({}).log_lines_per_function == 10_000
    assert from_env({"LOG_LINES_PER_FUNCTION": "50"}).log_lines_per_function == 50
    with pytest.raises(ConfigError, match="LOG_LINES_PER_FUNCTION"):
        from_env({"LOG_LINES_PER_FUNCTION": "0"})
