"""The log collector against a fake engine: follow, drain, reconnect, give up in time."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncGenerator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller.docker import EngineError, EngineUnavailable
from controller.logparse import STDERR, STDOUT
from controller.logs import LogCollector
from controller.logstore import LogStore
from controller.model import ObservedReplica

pytestmark = pytest.mark.anyio
KEY = ("openfaas-fn", "echo")
NS = 1_000_000_000
T0 = 1_796_000_000 * NS


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def stamped(ts: int, text: bytes) -> bytes:
    seconds, fraction = divmod(ts, NS)
    when = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{when}.{fraction:09d}Z ".encode() + text


class FakeEngine:
    """The two calls the collector makes, over an in-memory log per container. Like the
    engine, `since` resends every message stamped at or after it, and a follow ends when
    the container stops. Connection k breaks after `cuts[k]` messages (while there are)."""

    def __init__(self) -> None:
        self.log: dict[str, list[tuple[int, int, bytes]]] = {}
        self.running: dict[str, bool] = {}
        self.cuts: list[int] = []
        self.opened = 0
        self._changed = asyncio.Condition()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def write(self, cid: str, ts: int, stream: int, text: bytes) -> None:
        self.log.setdefault(cid, []).append((ts, stream, text))
        self.running.setdefault(cid, True)
        await self._notify()

    async def stop(self, cid: str) -> None:
        self.running[cid] = False
        await self._notify()

    async def delete(self, cid: str) -> None:
        del self.log[cid], self.running[cid]
        await self._notify()

    async def inspect(self, cid: str) -> dict[str, Any] | None:
        if cid not in self.log:
            return None
        return {"Name": f"/replica-{cid}", "State": {"Running": self.running[cid]}}

    async def logs(self, cid: str, *, follow: bool, since: str) -> AsyncGenerator[bytes, None]:
        self.opened += 1
        if cid not in self.log:
            raise EngineError(404, f"No such container: {cid}")
        seconds, _, fraction = since.partition(".")
        since_ns = int(seconds) * NS + int(fraction.ljust(9, "0"))
        cut = self.cuts[self.opened - 1] if self.opened <= len(self.cuts) else None
        index = sent = 0
        while True:
            while index < len(self.log.get(cid, [])):
                ts, stream, text = self.log[cid][index]
                index += 1
                if ts < since_ns:
                    continue
                if cut is not None and sent >= cut:
                    raise EngineUnavailable("connection reset")
                payload = stamped(ts, text)
                data = struct.pack(">BxxxL", stream, len(payload)) + payload
                yield data[:5]  # frames arrive cut anywhere
                yield data[5:]
                sent += 1
            if not follow or not self.running.get(cid):
                return
            async with self._changed:
                await self._changed.wait()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    s = LogStore(tmp_path / "logs.db")
    yield s
    s.close()


def collector_for(engine: FakeEngine, store: LogStore, **options: float) -> LogCollector:
    return LogCollector(engine, store, retry_initial=0.01, retry_max=0.02,  # type: ignore[arg-type]
                        **options)


def replica(cid: str, state: str = "running") -> ObservedReplica:
    return ObservedReplica(id=cid, namespace=KEY[0], function=KEY[1], replica=0,
                           spec_hash="h", state=state)


def texts(store: LogStore) -> list[str]:
    return [line.text for line in store.backlog(KEY)]


async def until(check: Any, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


async def test_follows_a_replica_until_it_stops_and_keeps_its_last_words(
    store: LogStore,
) -> None:
    engine, cid = FakeEngine(), "c1" * 32
    await engine.write(cid, T0, STDOUT, b"Listening\n")
    collector = collector_for(engine, store)
    collector.observe(KEY, [replica(cid), replica("x" * 64, "exited")])
    await until(lambda: texts(store) == ["Listening"])
    await engine.write(cid, T0 + 1, STDERR, b"Forking fprocess.\n")
    await until(lambda: texts(store) == ["Listening", "Forking fprocess."])
    await engine.write(cid, T0 + 2, STDOUT, b"bye, no newline")
    await engine.stop(cid)
    await collector.finish(KEY, cid)
    assert texts(store) == ["Listening", "Forking fprocess.", "bye, no newline"]
    assert collector._tasks == {}
    assert [line.container for line in store.backlog(KEY)] == [cid] * 3
    assert store.backlog(KEY, instance="replica-" + cid)  # registered under its name
    await collector.close()


async def test_broken_streams_resume_without_losing_or_repeating(store: LogStore) -> None:
    engine, cid = FakeEngine(), "c2" * 32
    # connections die after a few messages, resuming among equal stamps and mid-line
    engine.cuts = [1, 2, 3, 4, 3, 4, 2, 2]
    expected = []
    for i in range(7):
        ts = T0 + i // 3  # three messages share each stamp
        await engine.write(cid, ts, STDOUT, f"line {i}\n".encode())
        expected.append(f"line {i}")
    # one long line in three pieces with one stamp, the way the engine splits 16 KiB lines
    for piece in (b"long-", b"long-", b"line\n"):
        await engine.write(cid, T0 + 10, STDERR, piece)
    expected.append("long-long-line")
    collector = collector_for(engine, store)
    collector.observe(KEY, [replica(cid)])
    await until(lambda: texts(store) == expected)
    assert engine.opened == 9
    await engine.stop(cid)
    await collector.finish(KEY, cid)
    assert texts(store) == expected
    await collector.close()


async def test_finish_reads_a_replica_never_seen_running(store: LogStore) -> None:
    engine, cid = FakeEngine(), "c3" * 32
    await engine.write(cid, T0, STDOUT, b"crashed at once\n")
    await engine.stop(cid)
    collector = collector_for(engine, store)
    await collector.finish(KEY, cid)
    assert texts(store) == ["crashed at once"]
    await collector.close()


async def test_finish_gives_up_on_a_stream_that_does_not_end(store: LogStore) -> None:
    engine, cid = FakeEngine(), "c4" * 32
    await engine.write(cid, T0, STDOUT, b"still running\n")
    collector = collector_for(engine, store, drain_timeout=0.05)
    collector.observe(KEY, [replica(cid)])
    await until(lambda: texts(store) == ["still running"])
    async with asyncio.timeout(1):
        await collector.finish(KEY, cid)
    await until(lambda: collector._tasks == {})
    await collector.close()


async def test_a_vanished_replica_keeps_its_unfinished_line(store: LogStore) -> None:
    engine, cid = FakeEngine(), "c5" * 32
    await engine.write(cid, T0, STDOUT, b"half a line")
    collector = collector_for(engine, store)
    collector.observe(KEY, [replica(cid)])
    await until(lambda: engine.opened == 1)
    await asyncio.sleep(0.02)
    await engine.delete(cid)  # removed behind our back: its stream just ends
    await until(lambda: collector._tasks == {})
    assert texts(store) == ["half a line"]
    await collector.close()


async def test_close_cancels_followers_and_a_restart_resumes(store: LogStore) -> None:
    engine, cid = FakeEngine(), "c6" * 32
    await engine.write(cid, T0, STDOUT, b"one\n")
    first = collector_for(engine, store)
    first.observe(KEY, [replica(cid)])
    await until(lambda: texts(store) == ["one"])
    await first.close()
    await engine.write(cid, T0, STDOUT, b"two, same stamp\n")
    second = collector_for(engine, store)
    second.observe(KEY, [replica(cid)])
    await until(lambda: texts(store) == ["one", "two, same stamp"])
    await engine.stop(cid)
    await second.finish(KEY, cid)
    assert texts(store) == ["one", "two, same stamp"]
    await second.close()
