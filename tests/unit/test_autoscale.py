"""The autoscaler's decision, from labels and load."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.autoscale import PolicyError, ScalePolicy, decide, policy_from_labels, recommend

P = "com.openfaas.scale."


def test_labels():
    p = policy_from_labels({P + "min": "1", P + "max": "3", P + "type": "capacity",
                            P + "target": "5", P + "zero": "true",
                            P + "zero-duration": "2m30s", P + "down.window": "10s"},
                           max_replicas=20)
    assert p == ScalePolicy(1, 3, "capacity", 5.0, 0.9, True, 150.0, 10.0)
    assert policy_from_labels({}, max_replicas=7).max == 7
    assert not policy_from_labels({P + "min": "2", P + "max": "2"}, max_replicas=9).enabled


@pytest.mark.parametrize("labels,named", [
    ({P + "min": "x"}, "scale.min"), ({P + "max": "99"}, "scale.max"),
    ({P + "min": "3", P + "max": "2"}, "scale.max"), ({P + "type": "cpu"}, "scale.type"),
    ({P + "target": "-1"}, "scale.target"), ({P + "zero-duration": "soon"}, "zero-duration"),
    ({P + "target-proportion": "2"}, "target-proportion"), ({P + "zero": "maybe"}, "zero"),
])
def test_bad_labels_are_named(labels, named):
    with pytest.raises(PolicyError, match=named.replace(".", r"\.")):
        policy_from_labels(labels, max_replicas=20)


def test_recommend():
    p = ScalePolicy(min=1, max=5, target=10, proportion=1.0)
    assert [recommend(p, load) for load in (0, 5, 10, 11, 30, 500)] == [1, 1, 1, 2, 3, 5]


def test_up_at_once_down_after_the_window():
    p = ScalePolicy(min=1, max=5, target=10, proportion=1.0, down_window=30)
    d = decide(p, 1, 35, now=0, idle_since=None)
    assert d.replicas == 4
    d = decide(p, 4, 0, now=10, idle_since=None, history=d.history)
    assert d.replicas is None  # the recent wish for 4 still stands
    d = decide(p, 4, 0, now=41, idle_since=None, history=d.history)
    assert d.replicas == 1


def test_scale_to_zero_after_idle_and_stay_asleep():
    p = ScalePolicy(min=1, max=1, zero=True, zero_duration=60)
    assert decide(p, 1, 0, now=30, idle_since=0).replicas is None
    assert decide(p, 1, 0, now=61, idle_since=0).replicas == 0
    assert decide(p, 0, 0, now=100, idle_since=0).replicas is None
    assert decide(p, 1, 0, now=1000, idle_since=None).replicas is None  # busy: not idle


def test_static_function_is_left_alone():
    assert decide(ScalePolicy(min=2, max=2), 2, 1e6, now=0, idle_since=None).replicas is None


@given(st.integers(0, 5), st.integers(0, 10), st.lists(st.floats(0, 1000), max_size=20))
def test_result_always_within_bounds(low, extra, loads):
    p = ScalePolicy(min=low, max=low + extra + 1, target=10, down_window=5)
    current, history = max(low, 1), ()
    for t, load in enumerate(loads):
        d = decide(p, current, load, now=float(t), idle_since=None, history=history)
        history = d.history
        if d.replicas is not None:
            current = d.replicas
        assert p.min <= current <= p.max or current == max(low, 1)
