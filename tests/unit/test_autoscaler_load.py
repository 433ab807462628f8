"""The autoscaler's load bookkeeping: in flight, requests per second and idleness, derived
from the proxy's cumulative counters sampled at known times."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from api.autoscaler import Load, LoadTracker

W = 5.0


def test_rate_in_flight_and_idle_from_counters():
    t = LoadTracker(window=W)
    assert t.observe("f", 0, 0, now=100.0) == Load(0.0, 0.0, 100.0)  # first sight: not busy
    load = t.observe("f", 12, 10, now=101.0)
    assert load == Load(rps=10.0, in_flight=1.0, idle_since=None)  # mean of 0 and 2
    load = t.observe("f", 30, 30, now=102.0)
    assert load.rps == 15.0 and load.idle_since == 102.0  # all done: idle from now on
    for now in (103.0, 104.0, 106.0):
        load = t.observe("f", 30, 30, now=now)
        assert load.idle_since == 102.0
    assert load.rps == (30 - 10) / 5  # baseline: the sample at 101, the last within 5 s
    assert t.observe("f", 30, 30, now=108.0) == Load(0.0, 0.0, 102.0)  # the window is quiet


def test_touch_restarts_the_idle_clock_and_forget_drops_a_function():
    t = LoadTracker(window=W)
    t.observe("f", 3, 3, now=0.0)
    t.touch("f", now=50.0)
    assert t.observe("f", 3, 3, now=51.0).idle_since == 50.0
    t.forget({"g"})
    # forgotten: counts seen again are a new baseline, not a burst of traffic
    assert t.observe("f", 500, 500, now=52.0) == Load(0.0, 0.0, 52.0)


def test_a_long_request_keeps_a_function_busy():
    t = LoadTracker(window=W)
    t.observe("f", 0, 0, now=0.0)
    for now in range(1, 30):
        load = t.observe("f", 1, 0, now=float(now))
        assert load.idle_since is None and load.rps == 0
    assert load.in_flight == 1.0
    assert t.observe("f", 1, 1, now=30.0).idle_since == 30.0


steps = st.lists(
    st.tuples(st.floats(0.05, 4.0), st.integers(0, 6), st.floats(0.0, 1.0)), max_size=40)


@given(steps)
def test_matches_a_brute_force_model(plan):
    """Every answer agrees with a recomputation over the full sample list."""
    t = LoadTracker(window=W)
    now, started, completed = 0.0, 0, 0
    samples: list[tuple[float, int, int]] = []  # (time, started, completed), all of them
    for dt, new, share in plan:
        now += dt
        started += new
        completed += math.floor((started - completed) * share)
        samples.append((now, started, completed))
        load = t.observe("f", started, completed, now)

        horizon = now - W
        older = [s for s in samples if s[0] <= horizon]
        base = older[-1] if older else samples[0]
        want_rps = (completed - base[2]) / (now - base[0]) if now > base[0] else 0.0
        inside = [s[1] - s[2] for s in samples if s[0] > horizon]
        active = [samples[0][0]] + [
            b[0] for a, b in zip(samples, samples[1:], strict=False)
            if (a[1], a[2]) != (b[1], b[2]) or b[1] > b[2]
        ]
        assert math.isclose(load.rps, want_rps, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(load.in_flight, sum(inside) / len(inside))
        assert load.rps >= 0 and load.in_flight >= 0
        if started > completed:
            assert load.idle_since is None
        else:
            assert load.idle_since == max(active)


@given(st.integers(1, 50), st.sampled_from([0.25, 0.5, 1.0, 2.0]))
def test_a_steady_rate_is_measured_exactly(per_tick, interval):
    t = LoadTracker(window=W)
    count = 0
    for i in range(40):
        load = t.observe("f", count, count, now=i * interval)
        count += per_tick
    assert math.isclose(load.rps, per_tick / interval)
