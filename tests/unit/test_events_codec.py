"""The log codec: every event survives encode -> JSON -> decode, old versions are upcast,
and unreadable records fail loudly instead of being misread."""

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import codec
from events.codec import UPCASTERS, UnknownEvent, decode, encode
from events.model import FunctionSpec, Resources, pairs
from events.types import Event, FunctionDeployed, FunctionRemoved, FunctionScaled, FunctionUpdated

texts = st.text(max_size=20)
string_maps = st.dictionaries(texts, texts, max_size=4).map(pairs)
resources = st.none() | st.builds(Resources, memory=texts, cpu=texts)

specs = st.builds(
    FunctionSpec,
    name=texts,
    namespace=texts,
    image=texts,
    env_process=texts,
    env_vars=string_maps,
    labels=string_maps,
    annotations=string_maps,
    secrets=st.lists(texts, max_size=3).map(tuple),
    constraints=st.lists(texts, max_size=3).map(tuple),
    limits=resources,
    requests=resources,
    read_only_root_filesystem=st.booleans(),
)
replicas = st.integers(min_value=0, max_value=1000)

events: st.SearchStrategy[Event] = st.one_of(
    st.builds(FunctionDeployed, spec=specs, replicas=replicas),
    st.builds(FunctionUpdated, spec=specs),
    st.builds(FunctionScaled, namespace=texts, name=texts, replicas=replicas, previous=replicas,
              reason=texts),
    st.builds(FunctionRemoved, namespace=texts, name=texts),
)


@given(events)
def test_every_event_round_trips_through_json(event: Event) -> None:
    type_name, version, payload = encode(event)
    stored = json.loads(json.dumps(payload))
    assert decode(type_name, version, stored) == event


@pytest.mark.parametrize(
    ("event", "type_name", "version"),
    [
        (FunctionDeployed(FunctionSpec("f", "ns", "img"), 1), "function.deployed", 1),
        (FunctionUpdated(FunctionSpec("f", "ns", "img")), "function.updated", 1),
        (FunctionScaled("ns", "f", 2, 1, "manual"), "function.scaled", 2),
        (FunctionRemoved("ns", "f"), "function.removed", 1),
    ],
)
def test_type_names_and_versions_are_stable(event: Event, type_name: str, version: int) -> None:
    assert encode(event)[:2] == (type_name, version)


def test_function_scaled_v1_is_upcast_with_an_unknown_reason() -> None:
    old = {"namespace": "ns", "name": "f", "replicas": 3, "previous": 1}
    assert decode("function.scaled", 1, old) == FunctionScaled("ns", "f", 3, 1, reason="")
    assert old == {"namespace": "ns", "name": "f", "replicas": 3, "previous": 1}
    assert encode(FunctionScaled("ns", "f", 3, 1, "scale-from-zero")) == (
        "function.scaled", 2,
        {"namespace": "ns", "name": "f", "replicas": 3, "previous": 1,
         "reason": "scale-from-zero"})


def test_maps_are_json_objects_sorted_by_key() -> None:
    spec = FunctionSpec("f", "ns", "img", env_vars={"b": "2", "a": "1"}, labels={})
    _, _, payload = encode(FunctionUpdated(spec))
    assert payload["spec"]["env_vars"] == {"a": "1", "b": "2"}
    assert list(payload["spec"]["env_vars"]) == ["a", "b"]
    assert payload["spec"]["labels"] == {}


def test_unknown_type_is_refused() -> None:
    with pytest.raises(UnknownEvent, match="function.exploded"):
        decode("function.exploded", 1, {})


def test_a_version_newer_than_the_code_is_refused() -> None:
    with pytest.raises(UnknownEvent, match="newer"):
        decode("function.removed", 2, {"namespace": "ns", "name": "f"})


def test_a_version_without_an_upcaster_path_is_refused() -> None:
    with pytest.raises(UnknownEvent, match="no upcaster"):
        decode("function.removed", 0, {"namespace": "ns", "name": "f"})


def test_upcasters_lift_old_payloads_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend function.scaled is at version 3 and two older shapes exist in old logs:
    #   v1 {"function", "count"} -> v2 renames function -> name
    #   v2 {"name", "count"}     -> v3 renames count -> replicas and adds previous
    steps: list[int] = []

    def v1_to_v2(p: dict[str, Any]) -> dict[str, Any]:
        steps.append(1)
        rest = {k: v for k, v in p.items() if k != "function"}
        return {**rest, "name": p["function"]}

    def v2_to_v3(p: dict[str, Any]) -> dict[str, Any]:
        steps.append(2)
        rest = {k: v for k, v in p.items() if k != "count"}
        return {**rest, "replicas": p["count"], "previous": 0}

    monkeypatch.setitem(codec.EVENT_TYPES, "function.scaled", (FunctionScaled, 3))
    monkeypatch.setitem(UPCASTERS, ("function.scaled", 1), v1_to_v2)
    monkeypatch.setitem(UPCASTERS, ("function.scaled", 2), v2_to_v3)

    old = {"namespace": "ns", "function": "f", "count": 4}
    assert decode("function.scaled", 1, old) == FunctionScaled("ns", "f", 4, 0)
    assert steps == [1, 2]
    assert old == {"namespace": "ns", "function": "f", "count": 4}  # input left untouched

    steps.clear()
    assert decode("function.scaled", 2, {"namespace": "ns", "name": "f", "count": 4}) == (
        FunctionScaled("ns", "f", 4, 0)
    )
    assert steps == [2]

    # What is written now is the current version, and reads back with no upcasting.
    assert encode(FunctionScaled("ns", "f", 4, 0))[1] == 3
    steps.clear()
    assert decode(*encode(FunctionScaled("ns", "f", 4, 0))) == FunctionScaled("ns", "f", 4, 0)
    assert steps == []


def test_every_old_version_has_a_path_to_the_current_one() -> None:
    # Holds for the shipped registry (function.scaled 1 -> 2 so far) and keeps
    # holding as versions are added: each step v -> v+1 is registered, and nothing else.
    expected = {
        (name, v) for name, (_, current) in codec.EVENT_TYPES.items() for v in range(1, current)
    }
    assert set(UPCASTERS) == expected


def test_spec_maps_are_normalised_whatever_the_caller_passes() -> None:
    a = FunctionSpec("f", "ns", "img", env_vars=(("b", "2"), ("a", "1")), secrets=["s"])
    b = FunctionSpec("f", "ns", "img", env_vars={"a": "1", "b": "2"}, secrets=("s",))
    assert a == b
    assert a.env_vars == (("a", "1"), ("b", "2"))
    with pytest.raises(TypeError):
        FunctionSpec("f", "ns", "img", secrets="s")  # a str is an Iterable[str]
