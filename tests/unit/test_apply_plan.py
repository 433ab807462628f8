"""Properties of `decide.apply`, the planner behind POST /system/apply."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from events import decide
from events.model import Desired, FunctionSpec, stream_name
from events.project import EMPTY, project
from events.store import Recorded
from events.types import NamespaceCreated

T = datetime(2026, 1, 1, tzinfo=UTC)
NAMESPACES = ("openfaas-fn", "team")
names = st.sampled_from(["a", "b", "c", "d"])
specs = st.builds(FunctionSpec, name=names, namespace=st.sampled_from(NAMESPACES),
                  image=st.sampled_from(["img:1", "img:2"]),
                  env_vars=st.dictionaries(st.sampled_from("XY"), st.sampled_from("12"),
                                           max_size=2))
stacks = st.lists(st.tuples(specs, st.integers(0, 3)), max_size=6,
                  unique_by=lambda item: item[0].key)


def fold(desired: Desired, steps: list[decide.Step]) -> Desired:
    records, position = [], desired.position
    for step in steps:
        state = desired.get(step.namespace, step.name)
        version = state.version if state else 0
        for event in step.events:
            position, version = position + 1, version + 1
            records.append(Recorded(position, stream_name(step.namespace, step.name), version,
                                    T, "t", "r", event))
    return project(records, desired)


def start(existing: list[tuple[FunctionSpec, int]]) -> Desired:
    desired = project([Recorded(1, "namespace/team", 1, T, "t", "r", NamespaceCreated("team"))],
                      EMPTY)
    return fold(desired, decide.apply(desired, existing, [], prune=False))


@given(stacks, stacks, st.sets(st.sampled_from(NAMESPACES)))
def test_after_a_pruning_apply_the_covered_namespaces_hold_exactly_the_stack(
    existing, wanted, extra
) -> None:
    desired = start(existing)
    covered = {spec.namespace for spec, _ in wanted} | extra
    after = fold(desired, decide.apply(desired, wanted, covered, prune=True))
    in_covered = {key: state.spec for key, state in after.functions.items()
                  if key[0] in covered}
    assert in_covered == {spec.key: spec for spec, _ in wanted}
    # outside the covered namespaces nothing moved
    assert {k: s for k, s in after.functions.items() if k[0] not in covered} == {
        k: s for k, s in desired.functions.items() if k[0] not in covered}
    # existing functions keep their replica count; new ones start with what was asked
    for spec, replicas in wanted:
        before = desired.get(*spec.key)
        assert after.functions[spec.key].replicas == (before.replicas if before else replicas)
    # and applying the same stack again plans nothing
    again = decide.apply(after, wanted, covered, prune=True)
    assert {step.action for step in again} <= {"unchanged"}
    assert all(not step.events for step in again)


@given(stacks, stacks)
def test_without_prune_nothing_is_ever_removed(existing, wanted) -> None:
    desired = start(existing)
    steps = decide.apply(desired, wanted, NAMESPACES, prune=False)
    assert "remove" not in {step.action for step in steps}
    assert set(desired.functions) <= set(fold(desired, steps).functions)
