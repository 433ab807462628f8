"""plan(): the reconcile decision, checked against a simulated Docker world."""

from __future__ import annotations

import itertools

import attrs
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
            healthy=draw(st.booleans()), failing_for=draw(st.sampled_from([0.0, 0.0, 30.0])),
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


def probe(world: list[ObservedReplica]) -> list[ObservedReplica]:
    """Health probes run: every running container passes."""
    return [attrs.evolve(r, healthy=r.state == "running", failing_for=0.0) for r in world]


def converge(desired, world, rounds=3):
    ids = itertools.count()
    world = [r for r in world if r.state != "removing"]  # the engine's business
    for _ in range(rounds):
        world = probe(apply(world, plan(desired, world), ids))
    return world


@settings(max_examples=300)
@given(targets, worlds())
def test_planning_again_after_converging_yields_nothing(desired, world):
    assert plan(desired, converge(desired, world)) == []


@settings(max_examples=300)
@given(targets, worlds())
def test_a_healthy_outdated_replica_stays_until_its_replacement_is_healthy(desired, world):
    after = apply(world, plan(desired, world), itertools.count())  # new ones not healthy yet
    for key, target in desired.items():
        serving_before = {r.replica for r in world if r.key == key and r.live and r.healthy
                          and r.failing_for == 0 and 0 <= r.replica < target.replicas}
        serving_after = {r.replica for r in after if r.key == key and r.live and r.healthy
                         and r.failing_for == 0 and 0 <= r.replica < target.replicas}
        assert serving_before <= serving_after


@settings(max_examples=300)
@given(targets, worlds())
def test_converged_world_matches_desired(desired, world):
    after = converge(desired, world)
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


def test_rolling_update_in_two_steps():
    desired = {("ns", "a"): Target(1, "new")}
    old = ObservedReplica("old", "ns", "a", 0, "old", "running", healthy=True)
    starting = ObservedReplica("n", "ns", "a", 0, "new", "running", healthy=False)
    assert plan(desired, [old]) == [CreateReplica("ns", "a", 0, "new")]
    assert plan(desired, [old, starting]) == []  # old keeps serving meanwhile
    ready = attrs.evolve(starting, healthy=True)
    assert plan(desired, [old, ready]) == [RemoveReplica("old", "ns", "a", "spec changed")]


def test_a_replica_failing_its_probes_is_replaced():
    desired = {("ns", "a"): Target(1, "h")}
    sick = ObservedReplica("s", "ns", "a", 0, "h", "running", healthy=False, failing_for=11)
    assert plan(desired, [sick]) == [RemoveReplica("s", "ns", "a", "unhealthy"),
                                     CreateReplica("ns", "a", 0, "h")]


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
