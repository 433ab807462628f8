"""One suite, every store: the in-memory fake and SQLite must keep the same contract, so a
test that passes against the fake means the same against the real log."""

import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from events.codec import decode, encode
from events.memory import MemoryEventStore
from events.model import FunctionSpec
from events.sqlite import SQLiteEventStore
from events.store import Batch, ConcurrencyError, EventStore, Recorded
from events.types import Event, FunctionDeployed, FunctionRemoved, FunctionScaled, FunctionUpdated

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
A = "function/openfaas-fn/a"
B = "function/openfaas-fn/b"
SPEC = FunctionSpec("a", "openfaas-fn", "img:1", env_vars={"K": "v"}, secrets=("s",))


def deployed(name: str = "a") -> FunctionDeployed:
    return FunctionDeployed(FunctionSpec(name, "openfaas-fn", "img:1"), 1)


def scaled(replicas: int, previous: int, name: str = "a") -> FunctionScaled:
    return FunctionScaled("openfaas-fn", name, replicas, previous)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    opened: EventStore
    if request.param == "memory":
        opened = MemoryEventStore()
    else:
        opened = SQLiteEventStore(tmp_path / "state" / "events.db")
    yield opened
    opened.close()


def append(store: EventStore, stream: str, events: list[Event], expected: int) -> list[Recorded]:
    return store.append(stream, events, expected, time=T0, actor="alice", request_id="r1")


# --- both stores ------------------------------------------------------------------------


def test_an_empty_store(store: EventStore) -> None:
    assert store.head() == 0
    assert store.read_all() == []
    assert store.read_stream(A) == []
    assert store.stream_version(A) == 0


def test_append_returns_the_records_with_their_envelope(store: EventStore) -> None:
    local = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    [record] = store.append(
        A,
        [FunctionDeployed(SPEC, 2)],
        0,
        time=local,
        actor="alice",
        request_id="req-1",
        source="10.0.0.1",
        user_agent="faas-cli/0.17",
        correlation_id="corr-9",
    )
    assert record == Recorded(
        position=1,
        stream=A,
        version=1,
        time=T0,
        actor="alice",
        request_id="req-1",
        event=FunctionDeployed(SPEC, 2),
        source="10.0.0.1",
        user_agent="faas-cli/0.17",
        correlation_id="corr-9",
    )
    assert record.time.utcoffset() == timedelta(0)
    assert store.read_all() == [record]


def test_naive_times_are_refused(store: EventStore) -> None:
    with pytest.raises(ValueError, match="timezone"):
        store.append(A, [deployed()], 0, time=datetime(2025, 1, 1), actor="alice")
    assert store.head() == 0


def test_versions_count_per_stream_and_positions_globally(store: EventStore) -> None:
    append(store, A, [deployed("a")], 0)
    append(store, B, [deployed("b")], 0)
    append(store, A, [scaled(2, 1), scaled(3, 2)], 1)
    append(store, B, [FunctionRemoved("openfaas-fn", "b")], 1)

    everything = store.read_all()
    assert [(r.position, r.stream, r.version) for r in everything] == [
        (1, A, 1),
        (2, B, 1),
        (3, A, 2),
        (4, A, 3),
        (5, B, 2),
    ]
    assert [r.version for r in store.read_stream(A)] == [1, 2, 3]
    assert [r.event for r in store.read_stream(B)] == [
        deployed("b"),
        FunctionRemoved("openfaas-fn", "b"),
    ]
    assert (store.stream_version(A), store.stream_version(B), store.head()) == (3, 2, 5)


def test_read_all_after_and_limit(store: EventStore) -> None:
    append(store, A, [deployed(), scaled(2, 1), scaled(3, 2), scaled(4, 3)], 0)
    assert [r.position for r in store.read_all(after=2)] == [3, 4]
    assert [r.position for r in store.read_all(after=1, limit=2)] == [2, 3]
    assert [r.position for r in store.read_all(limit=1)] == [1]
    assert store.read_all(limit=0) == []
    assert store.read_all(after=4) == []
    assert [r.position for r in store.read_all(after=-5)] == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        store.read_all(limit=-1)


@pytest.mark.parametrize("stale", [0, 2, 7, -1])
def test_a_stale_expected_version_is_a_conflict(store: EventStore, stale: int) -> None:
    append(store, A, [deployed()], 0)
    with pytest.raises(ConcurrencyError) as conflict:
        append(store, A, [scaled(2, 1), scaled(3, 2)], stale)
    assert (conflict.value.stream, conflict.value.expected, conflict.value.actual) == (A, stale, 1)
    assert store.head() == 1
    # The failed append leaves no trace: the next one continues where the log was.
    [record] = append(store, A, [scaled(2, 1)], 1)
    assert (record.position, record.version) == (2, 2)


def test_a_new_stream_must_not_exist(store: EventStore) -> None:
    append(store, A, [deployed()], 0)
    with pytest.raises(ConcurrencyError) as conflict:
        append(store, A, [deployed()], 0)
    assert (conflict.value.expected, conflict.value.actual) == (0, 1)
    with pytest.raises(ConcurrencyError):
        append(store, B, [deployed("b")], 1)
    assert store.head() == 1


def test_a_multi_event_append_is_atomic(store: EventStore) -> None:
    append(store, A, [deployed()], 0)
    # The second writer read version 0; none of its three events may be stored.
    with pytest.raises(ConcurrencyError):
        append(store, A, [deployed(), scaled(2, 1), scaled(3, 2)], 0)
    assert [r.event for r in store.read_all()] == [deployed()]
    assert store.stream_version(A) == 1


def test_append_many_writes_every_stream_in_one_transaction(store: EventStore) -> None:
    seen: list[list[Recorded]] = []
    store.subscribe(seen.append)
    append(store, A, [deployed()], 0)
    records = store.append_many(
        [Batch(A, [scaled(2, 1)], 1), Batch(B, [deployed("b"), scaled(2, 1, "b")], 0)],
        time=T0, actor="alice", request_id="r2", correlation_id="c1",
    )
    assert [(r.position, r.stream, r.version) for r in records] == [
        (2, A, 2), (3, B, 1), (4, B, 2)]
    assert {r.correlation_id for r in records} == {"c1"}
    assert store.read_all(after=1) == records
    assert seen[-1] == records  # one notification for the whole append


def test_append_many_is_all_or_nothing(store: EventStore) -> None:
    append(store, A, [deployed()], 0)
    # B is fine, A is stale: neither may be written, whatever the order.
    for batches in ([Batch(B, [deployed("b")], 0), Batch(A, [scaled(2, 1)], 0)],
                    [Batch(A, [scaled(2, 1)], 0), Batch(B, [deployed("b")], 0)]):
        with pytest.raises(ConcurrencyError) as conflict:
            store.append_many(batches, time=T0, actor="alice")
        assert conflict.value.stream == A
    with pytest.raises(ValueError, match="twice"):
        store.append_many([Batch(B, [deployed("b")], 0), Batch(B, [scaled(2, 1, "b")], 1)],
                          time=T0, actor="alice")
    assert store.head() == 1 and store.stream_version(B) == 0


def test_an_empty_append_writes_nothing_but_still_checks_the_version(store: EventStore) -> None:
    assert append(store, A, [], 0) == []
    with pytest.raises(ConcurrencyError):
        append(store, A, [], 1)
    assert store.head() == 0


def test_subscribers_get_exactly_the_new_records(store: EventStore) -> None:
    seen: list[list[Recorded]] = []
    unsubscribe = store.subscribe(seen.append)

    first = append(store, A, [deployed(), scaled(2, 1)], 0)
    with pytest.raises(ConcurrencyError):
        append(store, A, [scaled(3, 2)], 0)
    append(store, B, [], 0)
    assert seen == [first]

    unsubscribe()
    unsubscribe()  # idempotent
    append(store, A, [scaled(3, 2)], 2)
    assert seen == [first]


def test_a_raising_subscriber_does_not_break_append(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(records: list[Recorded]) -> None:
        raise RuntimeError("subscriber bug")

    seen: list[list[Recorded]] = []
    store.subscribe(broken)
    store.subscribe(seen.append)

    records = append(store, A, [deployed()], 0)
    assert len(records) == 1
    assert seen == [records]  # later subscribers still run
    assert store.read_all() == records
    assert "subscriber bug" in caplog.text


def test_a_subscriber_may_read_the_store(store: EventStore) -> None:
    heads: list[int] = []
    store.subscribe(lambda records: heads.append(store.head()))
    append(store, A, [deployed()], 0)
    assert heads == [1]


def test_events_are_stored_as_the_codec_reads_them(store: EventStore) -> None:
    events: list[Event] = [FunctionDeployed(SPEC, 1), FunctionUpdated(SPEC), scaled(0, 1)]
    append(store, A, events, 0)
    assert [r.event for r in store.read_all()] == [decode(*encode(e)) for e in events]


# --- SQLite only ------------------------------------------------------------------------


def test_sqlite_creates_its_directory_and_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "events.db"
    store = SQLiteEventStore(str(path))
    append(store, A, [deployed()], 0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        assert stat.S_IMODE(wal.stat().st_mode) & 0o077 == 0
    store.close()


def test_sqlite_tightens_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    SQLiteEventStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sqlite_is_durable_and_in_wal_mode(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    db = store._db  # white-box: these pragmas are the durability promise
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_sqlite_events_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SQLiteEventStore(path)
    append(store, A, [FunctionDeployed(SPEC, 2), scaled(3, 2)], 0)
    append(store, B, [deployed("b")], 0)
    before = store.read_all()
    store.close()

    reopened = SQLiteEventStore(path)
    assert reopened.read_all() == before
    assert (reopened.head(), reopened.stream_version(A)) == (3, 2)
    [next_record] = append(reopened, A, [FunctionRemoved("openfaas-fn", "a")], 2)
    assert (next_record.position, next_record.version) == (4, 3)
    reopened.close()


def test_sqlite_stale_writer_on_another_connection_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    first, second = SQLiteEventStore(path), SQLiteEventStore(path)
    # Both read version 0, both try to deploy: the later one must be told.
    append(first, A, [deployed()], 0)
    with pytest.raises(ConcurrencyError) as conflict:
        append(second, A, [FunctionDeployed(SPEC, 5)], 0)
    assert conflict.value.actual == 1
    assert [r.event for r in second.read_all()] == [deployed()]
    first.close()
    second.close()


def test_sqlite_two_racing_writers_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    stores = [SQLiteEventStore(path) for _ in range(4)]
    start = threading.Barrier(len(stores))
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(store: SQLiteEventStore, n: int) -> Callable[[], None]:
        def run() -> None:
            start.wait()
            try:
                append(store, A, [deployed(), scaled(n + 2, 1)], 0)
                result = "won"
            except ConcurrencyError:
                result = "conflict"
            with lock:
                outcomes.append(result)

        return run

    threads = [threading.Thread(target=race(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["conflict"] * 3 + ["won"]
    records = stores[0].read_all()
    assert [(r.position, r.version) for r in records] == [(1, 1), (2, 2)]
    assert len({r.request_id for r in records}) == 1
    for s in stores:
        s.close()


def test_sqlite_a_failure_midway_through_an_append_stores_nothing(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    append(store, A, [deployed()], 0)

    def fail_on_version_3(version: int) -> int:
        if version == 3:
            raise RuntimeError("disk on fire")
        return 0

    # White-box: make the third row's INSERT fail after the second row went in.
    conn = store._db.conn
    conn.create_function("fail_on_version_3", 1, fail_on_version_3)
    conn.execute(
        "CREATE TEMP TRIGGER boom BEFORE INSERT ON events"
        " BEGIN SELECT fail_on_version_3(NEW.version); END"
    )
    with pytest.raises(sqlite3.OperationalError):
        append(store, A, [scaled(2, 1), scaled(3, 2), scaled(4, 3)], 1)
    assert (store.head(), store.stream_version(A)) == (1, 1)
    conn.execute("DROP TRIGGER boom")
    [record] = append(store, A, [scaled(2, 1)], 1)
    assert (record.position, record.version) == (2, 2)
    store.close()


def test_sqlite_a_writer_that_slips_past_the_version_check_still_conflicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulates a stale read inside append(): the unique (stream, version) index must
    # turn the would-be lost update into a ConcurrencyError.
    store = SQLiteEventStore(tmp_path / "events.db")
    append(store, A, [deployed()], 0)
    real = store._stream_version
    stale = [0]
    monkeypatch.setattr(store, "_stream_version", lambda s: stale.pop() if stale else real(s))
    with pytest.raises(ConcurrencyError) as conflict:
        append(store, A, [FunctionDeployed(SPEC, 9)], 0)
    assert (conflict.value.expected, conflict.value.actual) == (0, 1)
    assert [r.event for r in store.read_all()] == [deployed()]
    store.close()


def test_sqlite_unique_index_rejects_a_duplicate_stream_version(tmp_path: Path) -> None:
    # The last line of defence, independent of the version check in append().
    path = tmp_path / "events.db"
    store = SQLiteEventStore(path)
    append(store, A, [deployed()], 0)
    store.close()
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError), conn:
        conn.execute(
            "INSERT INTO events (stream, version, type, schema_version, payload, time, actor,"
            " request_id, source, user_agent, correlation_id)"
            " SELECT stream, version, type, schema_version, payload, time, actor,"
            " request_id, source, user_agent, correlation_id FROM events WHERE position = 1"
        )
    conn.close()
