"""One suite, every store: the in-memory fake and SQLite must keep the same contract, so a
test that passes against the fake means the same against the real log."""

import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec import decode, encode
from events.memory import MemoryEventStore
from events.model import FunctionSpec
from events.sqlite import SQLiteEventStore
from events.store import (
    Batch,
    ConcurrencyError,
    EventQuery,
    EventStore,
    Recorded,
    StoredSnapshot,
)
from events.types import Event, FunctionDeployed, FunctionRemoved, FunctionScaled, FunctionUpdated

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
A = "function/openfaas-fn/a"
B = "function/openfaas-fn/b"
SPEC = FunctionSpec("a", "openfaas-fn", "img:1", env_vars={"K": "v"}, secrets=("s",))


def deployed(name: str = "a") -> FunctionDeployed:
    return FunctionDeployed(FunctionSpec(name, "openfaas-fn", "img:1"), 1)


def scaled(replicas: int, previous: int, name: str = "a") -> FunctionScaled:
    return FunctionScaled("openfaas-fn", name, replicas, previous)


@pytest.fixture(params=["memory", "sqlite", "sqlite-small-blocks"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    opened: EventStore
    if request.param == "memory":
        opened = MemoryEventStore()
    elif request.param == "sqlite":
        opened = SQLiteEventStore(tmp_path / "state" / "events.db")
    else:  # time blocks of 3 positions: the block logic is exercised by ten records
        opened = SQLiteEventStore(tmp_path / "state" / "events.db", block=3)
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


# --- queries, position_at and snapshots (both stores) ------------------------------------

NS = "openfaas-fn"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def audit_log(store: EventStore) -> None:
    """Ten records: two functions named `env` in two namespaces, a secret also named `env`,
    an outcome, a namespace's own stream, and a clock that steps back at position 8."""
    from events.types import NamespaceCreated, ReplicaFailed, SecretCreated

    def put(stream: str, event: Event, seconds: float, actor: str = "admin",
            correlation: str = "") -> None:
        store.append(stream, [event], store.stream_version(stream), time=at(seconds),
                     actor=actor, request_id=f"r{store.head() + 1}", correlation_id=correlation)

    put("namespace/team-b", NamespaceCreated("team-b", {"openfaas": "1"}), 0)  # 1
    put(f"function/{NS}/env", FunctionDeployed(FunctionSpec("env", NS, "i"), 1), 1,
        correlation="c1")  # 2
    put("function/team-b/env", FunctionDeployed(FunctionSpec("env", "team-b", "i"), 1), 2,
        actor="alice")  # 3
    put(f"function/{NS}/other", FunctionDeployed(FunctionSpec("other", NS, "i"), 1), 3)  # 4
    put(f"secret/{NS}/env", SecretCreated(NS, "env", "d1"), 4)  # 5
    put(f"function/{NS}/env", FunctionScaled(NS, "env", 3, 1, "busy"), 5.5,
        actor="autoscaler", correlation="alert-7")  # 6
    put(f"outcome/{NS}/env", ReplicaFailed(NS, "env", 0, "abc", "exited with code 1"), 6,
        actor="controller")  # 7
    put("function/team-b/env", FunctionScaled("team-b", "env", 2, 1, "manual"), 4.25,
        actor="alice")  # 8: stamped before 6 and 7
    put(f"function/{NS}/env", FunctionRemoved(NS, "env"), 7, correlation="c1")  # 9
    put("secret/team-b/db", SecretCreated("team-b", "db", "d2"), 8, actor="bob")  # 10


QUERIES: list[tuple[str, EventQuery, list[int]]] = [
    ("everything", EventQuery(), list(range(1, 11))),
    ("function in any namespace, with its outcomes, not the secret",
     EventQuery(function="env"), [2, 3, 6, 7, 8, 9]),
    ("function in one namespace", EventQuery(function="env", namespace=NS), [2, 6, 7, 9]),
    ("namespace, its own stream included", EventQuery(namespace="team-b"), [1, 3, 8, 10]),
    ("no such function", EventQuery(function="nope"), []),
    ("one type", EventQuery(types={"function.scaled"}), [6, 8]),
    ("two types", EventQuery(types=["function.deployed", "secret.created"]), [2, 3, 4, 5, 10]),
    ("actor", EventQuery(actor="alice"), [3, 8]),
    ("correlation", EventQuery(correlation_id="c1"), [2, 9]),
    ("since, inclusive, by time not position", EventQuery(since=at(5.5)), [6, 7, 9, 10]),
    ("since a microsecond later", EventQuery(since=at(5.500001)), [7, 9, 10]),
    ("until, inclusive", EventQuery(until=at(4.25)), [1, 2, 3, 4, 5, 8]),
    ("until a microsecond earlier", EventQuery(until=at(4.249999)), [1, 2, 3, 4, 5]),
    ("a time window", EventQuery(since=at(4), until=at(5.5)), [5, 6, 8]),
    ("a window in another zone",
     EventQuery(since=datetime(2025, 1, 1, 14, 0, 4, tzinfo=timezone(timedelta(hours=2)))),
     [5, 6, 7, 8, 9, 10]),
    ("an empty window", EventQuery(since=at(9)), []),
    ("after is exclusive", EventQuery(after=6), [7, 8, 9, 10]),
    ("upto is inclusive", EventQuery(upto=3), [1, 2, 3]),
    ("limit keeps the oldest", EventQuery(limit=2), [1, 2]),
    ("limit 0", EventQuery(limit=0), []),
    ("newest first keeps the newest", EventQuery(newest_first=True, limit=2), [10, 9]),
    ("newest first, filtered", EventQuery(function="env", newest_first=True, limit=3),
     [9, 8, 7]),
    ("newest first after a position", EventQuery(after=8, newest_first=True), [10, 9]),
    ("everything at once",
     EventQuery(function="env", namespace=NS, types={"function.scaled", "function.removed"},
                since=at(5), until=at(7), after=1, upto=9), [6, 9]),
    ("filters AND together", EventQuery(function="env", actor="bob"), []),
]


@pytest.mark.parametrize(("why", "query", "positions"), QUERIES, ids=[q[0] for q in QUERIES])
def test_query(store: EventStore, why: str, query: EventQuery, positions: list[int]) -> None:
    audit_log(store)
    found = store.query(query)
    assert [r.position for r in found] == positions, why
    everything = store.read_all()
    assert found == [everything[p - 1] for p in positions]  # whole records, envelope and all
    assert all(query.matches(r) for r in found)


def test_query_refuses_what_cannot_be_meant() -> None:
    with pytest.raises(ValueError, match="timezone"):
        EventQuery(since=datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        EventQuery(limit=-1)
    with pytest.raises(ValueError):
        EventQuery(function="")
    with pytest.raises(TypeError):
        EventQuery(types="function.scaled")


@pytest.mark.parametrize(("seconds", "position"), [
    (-1, 0), (0, 1), (0.5, 1), (4, 5),
    (4.5, 5),  # 6 is stamped 5.5: the prefix ends there, although 8 (4.25) is earlier
    (5.5, 6), (6, 8), (6.9, 8), (7, 9), (8, 10), (1e6, 10),
])
def test_position_at_is_the_end_of_the_prefix_accepted_by_then(
    store: EventStore, seconds: float, position: int
) -> None:
    assert store.position_at(at(seconds)) == 0
    audit_log(store)
    assert store.position_at(at(seconds)) == position
    with pytest.raises(ValueError):
        store.position_at(datetime(2025, 1, 1))


def snap(position: int, format: int = 1, schema: str = "s1", data: bytes = b"x"
         ) -> StoredSnapshot:
    return StoredSnapshot(position=position, format=format, schema=schema, data=data)


def test_snapshots_are_found_by_position_format_and_schema(store: EventStore) -> None:
    assert store.latest_snapshot(10, 1, "s1") is None
    audit_log(store)
    for stored in (snap(3), snap(6, data=b"six"), snap(8, format=2), snap(9, schema="s2")):
        store.save_snapshot(stored)
    assert store.latest_snapshot(10, 1, "s1") == snap(6, data=b"six")
    assert store.latest_snapshot(5, 1, "s1") == snap(3)
    assert store.latest_snapshot(2, 1, "s1") is None
    assert store.latest_snapshot(10, 2, "s1") == snap(8, format=2)
    assert store.latest_snapshot(8, 1, "s2") is None
    store.save_snapshot(snap(6, data=b"again"))  # replaces
    assert store.latest_snapshot(6, 1, "s1") == snap(6, data=b"again")
    store.save_snapshot(snap(11))  # beyond the log's head: never served
    assert store.latest_snapshot(100, 1, "s1") == snap(6, data=b"again")
    store.drop_snapshots()
    assert store.latest_snapshot(100, 1, "s1") is None
    assert store.head() == 10  # the log itself is untouched


# --- SQLite's query plan against the reference meaning, on a random log ----------------

KINDS = ["function", "outcome", "secret", "namespace"]
NAMES = ["a", "b", "env"]
SPACES = ["openfaas-fn", "dev", "b"]


def random_log(seed: int, size: int) -> list[tuple[str, Event, datetime, str, str]]:
    """Records in many streams, actors and correlations, with a clock that mostly runs
    forward, sometimes stands still, sometimes steps back, at microsecond resolution."""
    import random

    from events.types import NamespaceCreated, ReplicaFailed, SecretCreated

    rng = random.Random(seed)
    out: list[tuple[str, Event, datetime, str, str]] = []
    clock = T0
    for _ in range(size):
        kind, ns, name = rng.choice(KINDS), rng.choice(SPACES), rng.choice(NAMES)
        event: Event
        if kind == "function":
            event = rng.choice([deployed(name), scaled(2, 1, name),
                                FunctionRemoved(NS, name)])
        elif kind == "outcome":
            event = ReplicaFailed(ns, name, 0, "c", "exited")
        elif kind == "secret":
            event = SecretCreated(ns, name, "d")
        else:
            event = NamespaceCreated(ns)
        stream = f"namespace/{ns}" if kind == "namespace" else f"{kind}/{ns}/{name}"
        step = rng.choice([0, 1, 1, 1, 2.5, 0.000001, -3])
        clock += timedelta(seconds=step)
        out.append((stream, event, clock, rng.choice(["admin", "alice", "autoscaler"]),
                    rng.choice(["", "", "c1", "c2"])))
    return out


def filled(store: EventStore, log_: list[tuple[str, Event, datetime, str, str]]) -> EventStore:
    for stream, event, time, actor, correlation in log_:
        store.append(stream, [event], store.stream_version(stream), time=time, actor=actor,
                     correlation_id=correlation)
    return store


@pytest.fixture(scope="module")
def twin_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EventStore, ...]]:
    log_ = random_log(7, 300)
    path = tmp_path_factory.mktemp("twins")
    stores = (filled(MemoryEventStore(), log_),
              filled(SQLiteEventStore(path / "a.db", block=16), log_),
              filled(SQLiteEventStore(path / "b.db"), log_))  # one block, not yet complete
    yield stores
    for s in stores:
        s.close()


@st.composite
def queries(draw: st.DrawFn) -> EventQuery:
    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        # each filter in one query of three, so that most queries find something
        return draw(strategy) if draw(st.integers(0, 2)) == 0 else None

    seconds = st.floats(min_value=-5, max_value=400).map(lambda s: round(s, 6))
    return EventQuery(
        function=maybe(st.sampled_from(NAMES)),
        namespace=maybe(st.sampled_from(SPACES)),
        types=maybe(st.frozensets(st.sampled_from(
            ["function.deployed", "function.scaled", "replica.failed", "secret.created",
             "namespace.created"]), max_size=2)) or (),
        actor=maybe(st.sampled_from(["admin", "alice", "nobody"])),
        correlation_id=maybe(st.sampled_from(["c1", "c2", ""])),
        since=maybe(seconds.map(at)),
        until=maybe(seconds.map(at)),
        after=maybe(st.integers(min_value=0, max_value=310)) or 0,
        upto=maybe(st.integers(min_value=0, max_value=310)),
        limit=maybe(st.integers(min_value=0, max_value=40)),
        newest_first=draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None)
@given(queries())
def test_sqlite_answers_every_query_as_the_reference_meaning_does(
    twin_stores: tuple[EventStore, ...], query: EventQuery
) -> None:
    everything = twin_stores[0].read_all()
    expected = [r for r in everything if query.matches(r)]
    if query.newest_first:
        expected.reverse()
    expected = expected[:query.limit]
    for s in twin_stores:
        assert s.query(query) == expected


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-10, max_value=400))
def test_position_at_agrees_with_a_fold_that_stops_at_the_first_later_record(
    twin_stores: tuple[EventStore, ...], seconds: float
) -> None:
    moment = at(round(seconds, 6))
    everything = twin_stores[0].read_all()
    expected = next((r.position - 1 for r in everything if r.time > moment), len(everything))
    assert [s.position_at(moment) for s in twin_stores] == [expected] * len(twin_stores)


@given(st.text(alphabet="/abnmfuctioespr-", max_size=24)
       | st.builds(lambda k, ns, n: f"{k}/{ns}/{n}", st.sampled_from(KINDS),
                   st.sampled_from(["", "x", "a/b"]), st.sampled_from(["", "y", "y/z"])))
def test_sqlite_reads_stream_names_as_stream_parts_does(stream: str) -> None:
    from events.sqlite import _FUNCTION_SQL, _NAMESPACE_SQL
    from events.store import FUNCTION_KINDS, stream_parts

    kind, namespace, name = stream_parts(stream)
    conn = sqlite3.connect(":memory:")
    function_sql, namespace_sql = conn.execute(
        f"SELECT {_FUNCTION_SQL}, {_NAMESPACE_SQL} FROM (SELECT ? AS stream)", [stream]
    ).fetchone()
    conn.close()
    # NULL where Python says "": an empty name is never asked for (EventQuery refuses it)
    assert (function_sql or "") == (name if kind in FUNCTION_KINDS else "")
    assert (namespace_sql or "") == namespace


# --- SQLite: files written before queries, time blocks and snapshots existed ------------

# The schema exactly as the gateway wrote it before this change (commit 8dcab8b).
OLD_SCHEMA = """
CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload TEXT NOT NULL,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    request_id TEXT NOT NULL,
    source TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    correlation_id TEXT NOT NULL
);
CREATE UNIQUE INDEX events_stream_version ON events (stream, version);
"""
OLD_INSERT = """
INSERT INTO events (stream, version, type, schema_version, payload, time, actor,
                    request_id, source, user_agent, correlation_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def old_gateway_writes(conn: sqlite3.Connection, records: list[Recorded]) -> None:
    """Rows as the old store's append wrote them (the old code did exactly this INSERT)."""
    import json

    with conn:
        for r in records:
            name, version, payload = encode(r.event)
            conn.execute(OLD_INSERT, [r.stream, r.version, name, version,
                                      json.dumps(payload, sort_keys=True, separators=(",", ":")),
                                      r.time.isoformat(), r.actor, r.request_id, r.source,
                                      r.user_agent, r.correlation_id])


def test_sqlite_opens_a_file_an_older_gateway_wrote_and_answers_the_same(
    tmp_path: Path
) -> None:
    reference = MemoryEventStore()
    audit_log(reference)
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("PRAGMA journal_mode = WAL;" + OLD_SCHEMA)
    old_gateway_writes(conn, reference.read_all())
    conn.close()

    store = SQLiteEventStore(path, block=3)
    indexes = {row[0] for row in store._db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()}
    assert {"events_function", "events_namespace", "events_actor"} <= indexes
    assert store.read_all() == reference.read_all()
    for why, query, positions in QUERIES:
        assert [r.position for r in store.query(query)] == positions, why
    for seconds in (-1, 4.5, 6, 100):
        assert store.position_at(at(seconds)) == reference.position_at(at(seconds))
    assert any("events_function" in step for step in store.explain(EventQuery(function="env")))
    store.close()


def test_sqlite_rows_an_older_gateway_appends_later_are_found_too(tmp_path: Path) -> None:
    # After an upgrade and a rollback, the old code appends without knowing about blocks;
    # the generated columns and indexes live in the file, so its rows are indexed anyway,
    # and the uncovered stretch is scanned until the next append computes its blocks.
    reference = MemoryEventStore()
    audit_log(reference)
    records = reference.read_all()
    store = SQLiteEventStore(tmp_path / "events.db", block=2)
    for r in records[:3]:
        store.append(r.stream, [r.event], r.version - 1, time=r.time, actor=r.actor,
                     request_id=r.request_id, correlation_id=r.correlation_id)
    other = sqlite3.connect(tmp_path / "events.db")
    old_gateway_writes(other, records[3:])
    other.close()
    for why, query, positions in QUERIES:
        assert [r.position for r in store.query(query)] == positions, why
    assert [store.position_at(at(s)) for s in (4.5, 6, 100)] == [5, 8, 10]
    assert store._covered() == 2  # one block so far, computed by the store's own appends
    store.append(f"function/{NS}/other", [scaled(2, 1, "other")], 1, time=at(9), actor="x")
    assert store._covered() == 10
    assert [store.position_at(at(s)) for s in (4.5, 6, 8.5)] == [5, 8, 10]
    store.close()


def test_sqlite_block_size_belongs_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    first = SQLiteEventStore(path, block=4)
    filled(first, random_log(3, 30))
    second = SQLiteEventStore(path, block=100)
    assert second.block == 4 and second._covered() == 28
    first.close()
    second.close()


@pytest.mark.parametrize(("query", "index"), [
    (EventQuery(function="env", since=at(1), until=at(2), limit=10),
     "events_function (function_name=? AND rowid>? AND rowid<?)"),
    (EventQuery(function="env", namespace="dev", newest_first=True, limit=10),
     "events_function (function_name=? AND rowid>?)"),
    (EventQuery(namespace="dev", actor="alice", limit=10),
     "events_namespace (stream_namespace=? AND rowid>?)"),
    (EventQuery(function="env", correlation_id="c1"), "events_correlation"),
    (EventQuery(types={"function.scaled", "function.removed"}, limit=10), "events_type"),
    (EventQuery(since=at(1), until=at(2), limit=10),
     "SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
])
def test_sqlite_queries_use_the_index_meant_for_them(
    tmp_path: Path, query: EventQuery, index: str
) -> None:
    store = SQLiteEventStore(tmp_path / "events.db", block=2)
    filled(store, random_log(5, 40))
    plan = store.explain(query)
    assert any(index in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan) or query.types, plan  # no sort
    store.close()


@pytest.mark.parametrize("name", ["golden-v1.jsonl", "golden-v2.jsonl"])
def test_sqlite_reads_golden_logs_stored_by_older_gateways(tmp_path: Path, name: str) -> None:
    import json

    from tests.unit.test_events_golden import FIXTURES, _lines, _recorded

    lines = _lines(FIXTURES / name)
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.executescript(OLD_SCHEMA)
    with conn:
        for line in lines:  # the rows exactly as stored, schema versions and all
            conn.execute(OLD_INSERT, [
                line["stream"], line["version"], line["type"], line["schema_version"],
                json.dumps(line["payload"], sort_keys=True, separators=(",", ":")),
                line["time"], line["actor"], line["request_id"], line["source"],
                line["user_agent"], line["correlation_id"]])
    conn.close()
    store = SQLiteEventStore(tmp_path / "old.db")
    assert store.read_all() == [_recorded(line) for line in lines]
    scaled = store.query(EventQuery(types={"function.scaled"}, newest_first=True, limit=1))
    assert [r.position for r in scaled] == [max(
        line["position"] for line in lines if line["type"] == "function.scaled")]
    store.close()
