"""Snapshots through both stores: state as of any position is the fold of the log's prefix,
whether snapshots exist, are dropped, or are unreadable; LiveDesired starts from the newest
one and leaves new ones behind."""

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from controller.state import LiveDesired
from events import snapshot
from events.memory import MemoryEventStore
from events.model import FunctionSpec
from events.project import EMPTY, project
from events.sqlite import SQLiteEventStore
from events.store import EventQuery, EventStore, Recorded
from events.types import FunctionScaled, stream_of
from tests.contract.test_store_contract import T0, audit_log
from tests.unit.test_events_project import run

SCRIPT = [
    ("ns-create", "dev"),
    ("deploy", FunctionSpec("a", "openfaas-fn", "img:1"), 1),
    ("deploy", FunctionSpec("b", "dev", "img:1"), 2),
    ("secret-create", "dev", "s", "d1"),
    ("scale", "openfaas-fn", "a", 3),
    ("update", FunctionSpec("b", "dev", "img:2", secrets=("s",))),
    ("remove", "openfaas-fn", "a"),
    ("scale", "dev", "b", 0),
    ("deploy", FunctionSpec("a", "openfaas-fn", "img:3"), 1),
    ("secret-update", "dev", "s", "d2"),
    ("update", FunctionSpec("a", "openfaas-fn", "img:4")),
]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    opened: EventStore = (MemoryEventStore() if request.param == "memory"
                          else SQLiteEventStore(tmp_path / "events.db", block=4))
    records, _ = run(SCRIPT)
    for r in records:
        opened.append(r.stream, [r.event], r.version - 1, time=r.time, actor=r.actor)
    yield opened
    opened.close()


def prefix(store: EventStore, position: int) -> object:
    return project(store.read_all(limit=position))


def test_state_at_every_position_is_the_fold_of_the_prefix(store: EventStore) -> None:
    head = store.head()
    assert head == 11
    for label in ("no snapshots", "snapshots every 3", "snapshots dropped"):
        if label == "snapshots every 3":
            assert snapshot.catch_up(store, every=3) == prefix(store, head)
            assert [store.latest_snapshot(p, snapshot.FORMAT, snapshot.schema()).position
                    for p in (3, 5, 6, 11)] == [3, 3, 6, 9]
        if label == "snapshots dropped":
            store.drop_snapshots()
        for position in range(head + 3):
            assert snapshot.state_at(store, position) == prefix(store, position), (label,
                                                                                  position)


def test_an_unreadable_snapshot_falls_back_to_an_older_one(store: EventStore) -> None:
    snapshot.catch_up(store, every=3)
    newest = store.latest_snapshot(11, snapshot.FORMAT, snapshot.schema())
    assert newest is not None and newest.position == 9
    store.save_snapshot(attrs.evolve(newest, data=b"garbage"))
    assert snapshot.latest(store, 11).position == 6
    assert snapshot.state_at(store, 10) == prefix(store, 10)


def test_a_snapshot_of_another_schema_is_never_used(store: EventStore) -> None:
    # as if written before function.scaled became version 2: a different fold, ignored
    wrong = attrs.evolve(snapshot.encode(EMPTY), position=8, schema="function.scaled@1")
    store.save_snapshot(wrong)
    assert snapshot.latest(store, 11) == EMPTY
    assert snapshot.state_at(store, 8) == prefix(store, 8)


class Counting:
    """A store wrapper that counts the records read through query()."""

    def __init__(self, inner: EventStore) -> None:
        self.inner, self.read = inner, 0

    def query(self, query: EventQuery) -> list[Recorded]:
        found = self.inner.query(query)
        self.read += len(found)
        return found

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_live_desired_starts_from_the_newest_snapshot_and_leaves_new_ones(
    store: EventStore
) -> None:
    first = Counting(store)
    live = LiveDesired(first, snapshot_every=4)  # type: ignore[arg-type]
    assert live.current == prefix(store, 11) and first.read == 11  # cold: the whole log
    assert [s.position for s in _snapshots(store)] == [4, 8]
    live.close()

    second = Counting(store)
    warm = LiveDesired(second, snapshot_every=4)  # type: ignore[arg-type]
    assert warm.current == prefix(store, 11) and second.read == 3  # 9..11 after the snapshot
    # appends through the live view leave a snapshot each time a multiple of 4 is passed
    records, _ = run(SCRIPT + [("scale", "openfaas-fn", "a", 2), ("scale", "dev", "b", 1)])
    for r in records[11:]:
        store.append(stream_of(r.event), [r.event], r.version - 1, time=T0, actor="x")
    assert warm.current == prefix(store, 13)
    assert [s.position for s in _snapshots(store)] == [4, 8, 12]
    warm.close()


def _snapshots(store: EventStore) -> list[object]:
    found, upto = [], store.head()
    while (s := store.latest_snapshot(upto, snapshot.FORMAT, snapshot.schema())) is not None:
        found.append(s)
        upto = s.position - 1
    return sorted(found, key=lambda s: s.position)  # type: ignore[attr-defined]


def test_a_failing_snapshot_never_fails_the_append(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    live = LiveDesired(store, snapshot_every=2)

    def broken(_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "save_snapshot", broken)
    stream = "function/openfaas-fn/a"
    records = store.append(stream, [FunctionScaled("openfaas-fn", "a", 5, 1, "manual")],
                           store.stream_version(stream), time=T0, actor="x")
    assert len(records) == 1 and live.current.position == 12
    assert live.current.get("openfaas-fn", "a").replicas == 5  # type: ignore[union-attr]
    assert "disk full" in caplog.text
    live.close()


def test_the_audit_log_fixture_projects_like_its_snapshots(tmp_path: Path) -> None:
    # outcomes, secrets and namespaces interleaved, and a clock that steps back
    store = SQLiteEventStore(tmp_path / "events.db", block=2)
    audit_log(store)
    snapshot.catch_up(store, every=2)
    for position in range(11):
        assert snapshot.state_at(store, position) == prefix(store, position)
    store.close()
