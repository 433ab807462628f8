"""Crash-loop back-off: doubling, capped, never giving up, forgiven after stable health."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from controller.backoff import BackoffPolicy, SlotHistory

POLICY = BackoffPolicy(initial=0.1, cap=30.0, stable=10.0)


def test_doubles_and_caps():
    h, delays = SlotHistory(), []
    for n in range(12):
        h = h.failed(float(n), "exit 1")
        delays.append(h.delay(POLICY))
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == 30.0 and h.restarts == 12
    assert h.ready_at(POLICY) == 11 + 30.0


def test_stable_health_forgives_but_keeps_the_restart_count():
    h = SlotHistory().failed(0, "oom").failed(1, "oom")
    h = h.healthy(2, POLICY)
    assert h.failures == 2
    h = h.healthy(12, POLICY)
    assert h.failures == 0 and h.restarts == 2 and h.delay(POLICY) == 0
    assert h.last_exit == "oom"


def test_flapping_health_is_not_forgiven():
    h = SlotHistory().failed(0, "exit 2").healthy(1, POLICY).unhealthy().healthy(9, POLICY)
    assert h.healthy(15, POLICY).failures == 1  # healthy only since 9


@given(st.lists(st.floats(0, 1000), min_size=1, max_size=40))
def test_delay_is_bounded_and_monotone_in_failures(times):
    h, previous = SlotHistory(), 0.0
    for t in sorted(times):
        h = h.failed(t, "x")
        assert previous <= h.delay(POLICY) <= POLICY.cap
        previous = h.delay(POLICY)
