"""Snapshots are a faithful cache of the projection: restoring one and folding the rest
gives exactly the state of folding everything, and anything this code did not write in
its own format and event schema is refused rather than trusted."""

import json
import zlib

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import codec, snapshot
from events.model import Desired, FunctionSpec
from events.project import EMPTY, project
from events.store import StoredSnapshot
from events.types import FunctionScaled
from tests.unit.test_events_project import Command, commands, run


@settings(max_examples=300)
@given(commands, st.data())
def test_a_snapshot_at_any_position_plus_the_rest_is_the_whole_fold(
    cmds: list[Command], data: st.DataObject
) -> None:
    records, everything = run(cmds)
    k = data.draw(st.integers(min_value=0, max_value=len(records)), label="snapshot at")
    stored = snapshot.encode(project(records[:k]))
    restored = snapshot.decode(stored)
    assert restored is not None
    assert restored == project(records[:k])
    assert project(records[k:], restored) == everything == project(records)


def test_what_a_snapshot_holds_round_trips_exactly() -> None:
    records, desired = run([
        ("ns-create", "dev"), ("secret-create", "dev", "a", "d1"),
        ("deploy", FunctionSpec("a", "dev", "img:1", env_vars={"K": "v"}, secrets=("a",)), 2),
        ("deploy", FunctionSpec("b", "openfaas-fn", "img:2"), 1),
        ("scale", "openfaas-fn", "b", 0),
    ])
    assert len(desired.functions) == 2 and desired.namespaces and desired.secrets
    stored = snapshot.encode(desired)
    assert (stored.position, stored.format, stored.schema) == (5, 1, snapshot.schema())
    back = snapshot.decode(stored)
    assert back == desired
    assert back is not None and back.get("dev", "a") == desired.get("dev", "a")
    state = back.get("dev", "a")
    assert state is not None and state.created_at.tzinfo is not None


def test_the_schema_names_every_event_type_and_version() -> None:
    assert "function.scaled@2" in snapshot.schema()
    assert snapshot.schema().count("@") == len(codec.EVENT_TYPES)


def _desired() -> Desired:
    return run([("deploy", FunctionSpec("a", "openfaas-fn", "img:1"), 1)])[1]


def _rewrite(stored: StoredSnapshot, **changes: object) -> StoredSnapshot:
    document = json.loads(zlib.decompress(stored.data))
    document.update(changes)
    return attrs.evolve(stored, data=zlib.compress(json.dumps(document).encode()))


@pytest.mark.parametrize("damage", [
    lambda s: attrs.evolve(s, format=snapshot.FORMAT + 1),
    lambda s: attrs.evolve(s, schema="function.scaled@1"),
    lambda s: attrs.evolve(s, position=s.position + 1),
    lambda s: _rewrite(s, format=snapshot.FORMAT + 1),  # the row says 1, the data not
    lambda s: _rewrite(s, schema="function.scaled@1"),
    lambda s: _rewrite(s, functions=[{"spec": "not a spec"}]),
    lambda s: _rewrite(s, functions=None),
    lambda s: attrs.evolve(s, data=b"not zlib"),
    lambda s: attrs.evolve(s, data=zlib.compress(b"[1, 2")),
], ids=["format", "schema", "position", "inner-format", "inner-schema", "bad-function",
        "no-functions", "not-zlib", "not-json"])
def test_a_snapshot_this_code_did_not_write_is_refused(damage) -> None:
    stored = snapshot.encode(_desired())
    assert snapshot.decode(stored) == _desired()
    assert snapshot.decode(damage(stored)) is None


def test_a_schema_change_retires_every_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = snapshot.encode(_desired())
    monkeypatch.setitem(codec.EVENT_TYPES, "function.scaled", (FunctionScaled, 3))
    assert snapshot.schema() != stored.schema
    assert snapshot.decode(stored) is None


def test_due_when_a_multiple_is_crossed() -> None:
    assert [snapshot.due(b, a, 4) for b, a in [(0, 3), (3, 4), (4, 4), (4, 7), (2, 9)]] == [
        False, True, False, False, True]


def test_empty_state_snapshots_too() -> None:
    assert snapshot.decode(snapshot.encode(EMPTY)) == EMPTY
