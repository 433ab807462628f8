"""plan(): the reconcile decision, checked against a simulated Docker world."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.model import CreateReplica, ObservedReplica, RemoveReplica, Target
from controller.plan import plan

KEYS = [("openfaas-fn", "a"), ("openfaas-fn", "b"), ("other", "a")]
HASHES = ["h1", "h2"]
STATES = ["running", "running", "running", "exited", "created", "dead", "paused", "removing"]

targets = st.dictionaries(
    st.sampled_from(KEYS),
    st.builds(Target, replicas=st.integers(0, 4), spec_hash=st.sampled_from(HASHES)),
)


@st.composite
def worlds(draw: st.DrawFn) -> list[ObservedReplica]:
    replicas = []
    for n in range(draw(st.integers(0, 12))):
        ns, name = draw(st.sampled_from(KEYS))
        replicas.append(ObservedReplica(
            id=f"c{n}", namespace=ns, function=name,
            replica=draw(st.integers(-1, 5)), spec_hash=draw(st.sampled_from(HASHES)),
            state=draw(st.sampled_from(STATES)), ip=f"10.0.0.{n}", created=draw(st.integers(0, 9)),
        ))
    return replicas


def apply(world: list[ObservedReplica], actions: list, ids: itertools.count
          ) -> list[ObservedReplica]:
    """What the engine does with the actions: creates run, removes vanish."""
    world = list(world)
    for action in actions:
        if isinstance(action, RemoveReplica):
            world = [r for r in world if r.id != action.id]
        else:
            n = next(ids)
            world.append(ObservedReplica(
                id=f"new{n}", namespace=action.namespace, function=action.function,
                replica=action.replica, spec_hash=action.spec_hash, state="running",
                ip=f"10.1.0.{n}", created=100 + n,
            ))
    return world


@settings(max_examples=300)
@given(targets, worlds())
def test_planning_again_after_applying_yields_nothing(desired, world):
    ids = itertools.count()
    after = apply(world, plan(desired, world), ids)
    # "removing" containers are the engine's business; they vanish by themselves
    after = [r for r in after if r.state != "removing"]
    assert plan(desired, after) == []


@settings(max_examples=300)
@given(targets, worlds())
def test_converged_world_matches_desired(desired, world):
    after = apply(world, plan(desired, world), itertools.count())
    live = [r for r in after if r.state == "running"]
    for key, target in desired.items():
        mine = [r for r in live if r.key == key]
        assert sorted(r.replica for r in mine) == list(range(target.replicas))
        assert {r.spec_hash for r in mine} <= {target.spec_hash}
    assert all(r.key in desired for r in live)


@given(targets, worlds())
def test_only_handed_in_containers_are_touched(desired, world):
    ids = {r.id for r in world}
    for action in plan(desired, world):
        if isinstance(action, RemoveReplica):
            assert action.id in ids


@given(targets, worlds())
def test_removing_containers_are_left_alone(desired, world):
    removing = {r.id for r in world if r.state == "removing"}
    assert not any(isinstance(a, RemoveReplica) and a.id in removing for a in plan(desired, world))


def test_plan_is_deterministic_and_ordered():
    desired = {("openfaas-fn", "a"): Target(2, "h2")}
    world = [
        ObservedReplica("old", "openfaas-fn", "a", 0, "h1", "running"),
        ObservedReplica("dead", "openfaas-fn", "a", 1, "h2", "exited"),
    ]
    assert plan(desired, world) == [
        RemoveReplica("dead", "openfaas-fn", "a", "not running: exited"),
        CreateReplica("openfaas-fn", "a", 0, "h2"),
        CreateReplica("openfaas-fn", "a", 1, "h2"),
        RemoveReplica("old", "openfaas-fn", "a", "spec changed"),
    ]


def test_scale_down_and_removed_function():
    desired = {("openfaas-fn", "a"): Target(1, "h1")}
    world = [
        ObservedReplica("r0", "openfaas-fn", "a", 0, "h1", "running"),
        ObservedReplica("r1", "openfaas-fn", "a", 1, "h1", "running"),
        ObservedReplica("x", "openfaas-fn", "gone", 0, "h1", "running"),
    ]
    assert plan(desired, world) == [
        RemoveReplica("r1", "openfaas-fn", "a", "scaled down"),
        RemoveReplica("x", "openfaas-fn", "gone", "function removed"),
    ]


def test_duplicate_keeps_the_oldest():
    desired = {("ns", "a"): Target(1, "h1")}
    world = [
        ObservedReplica("young", "ns", "a", 0, "h1", "running", created=5),
        ObservedReplica("old", "ns", "a", 0, "h1", "running", created=1),
    ]
    assert plan(desired, world) == [RemoveReplica("young", "ns", "a", "duplicate")]


def test_from_container_reads_docker_list_json():
    data = {
        "Id": "abc", "State": "running", "Created": 7,
        "Labels": {"com.docker-faas.namespace": "ns", "com.docker-faas.function": "f",
                   "com.docker-faas.replica": "2", "com.docker-faas.spec-hash": "h"},
        "NetworkSettings": {"Networks": {"net": {"IPAddress": "172.18.0.5"}}},
    }
    replica = ObservedReplica.from_container(data)
    assert replica == ObservedReplica("abc", "ns", "f", 2, "h", "running", "172.18.0.5", 7)
    bad = ObservedReplica.from_container({**data, "Labels": {"com.docker-faas.replica": "x"},
                                          "NetworkSettings": {}})
    assert bad.replica == -1 and bad.ip == ""
