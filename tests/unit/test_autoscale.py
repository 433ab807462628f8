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


def test_a_way_down_never_goes_up():
    # The load wanted 4; a user then scaled down to 2 while the wish was still recent.
    p = ScalePolicy(min=1, max=5, target=10, proportion=1.0, down_window=30)
    d = decide(p, 1, 35, now=0, idle_since=None)
    assert d.replicas == 4
    d = decide(p, 2, 0, now=5, idle_since=None, history=d.history)
    assert d.replicas is None  # not back up to 4, not down to 1 before the window ends
    assert decide(p, 2, 0, now=31, idle_since=None, history=d.history).replicas == 1


def test_min_zero_never_puts_an_awake_function_to_sleep():
    p = ScalePolicy(min=0, max=3, target=10, down_window=0)
    assert recommend(p, 0) == 0
    assert decide(p, 2, 0, now=100, idle_since=0).replicas == 1  # down to 1, not 0
    assert decide(p, 1, 0, now=200, idle_since=0).replicas is None
    asleep = ScalePolicy(min=0, max=3, zero=True, zero_duration=60)
    assert decide(asleep, 1, 0, now=200, idle_since=0).replicas == 0  # the zero policy does


@given(st.integers(0, 3), st.integers(1, 6), st.integers(0, 9),
       st.lists(st.tuples(st.floats(0, 500), st.integers(0, 9)), max_size=25))
def test_a_lower_recommendation_never_raises_the_count(low, span, start, steps):
    """Whatever the history, decide only raises the count when the load now asks for more."""
    p = ScalePolicy(min=low, max=low + span, target=10, proportion=1.0, down_window=7)
    history: tuple[tuple[float, int], ...] = ()
    for t, (load, current) in enumerate(steps):
        current = max(current, 1)
        d = decide(p, current, load, now=float(t), idle_since=None, history=history)
        history = d.history
        if d.replicas is not None and d.replicas > current:
            assert d.replicas == max(1, recommend(p, load))
