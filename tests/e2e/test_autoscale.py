"""The built-in autoscaler against the real engine: load scales a function up and its end
scales it back down after the window; min == max is left alone; an idle function sleeps at
zero and wakes on its next call; every decision is an audited event with actor autoscaler."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from events.sqlite import SQLiteEventStore
from events.types import FunctionScaled
from tests.e2e.conftest import Gateway

pytestmark = pytest.mark.engine
P = "com.openfaas.scale."


def _load(gw: Gateway, name: str, stop: threading.Event, codes: list[int]) -> None:
    with httpx.Client(base_url=gw.url, timeout=20) as client:
        while not stop.is_set():
            try:
                codes.append(client.get(f"/function/{name}?ms=200").status_code)
            except httpx.HTTPError:
                codes.append(0)


def _status(gw: Gateway, name: str) -> dict[str, int]:
    body = gw.client.get(f"/system/function/{name}").json()
    return {"replicas": body["replicas"], "available": body["availableReplicas"]}


def _scaled(gw: Gateway, name: str) -> list[tuple[int, int, str]]:
    store = SQLiteEventStore(gw.state)
    try:
        records = store.read_all()
    finally:
        store.close()
    return [(r.event.previous, r.event.replicas, r.actor) for r in records
            if isinstance(r.event, FunctionScaled) and r.event.name == name
            and r.request_id and r.time.tzinfo is not None]


def test_load_scales_up_and_back_down_while_min_equal_max_stays(
        gateway_factory: Callable[..., Gateway]) -> None:
    gw = gateway_factory(AUTOSCALE_ENABLED="true", AUTOSCALE_INTERVAL="0.5s")
    gw.deploy("sleep", "sleep", labels={P + "min": "1", P + "max": "3", P + "type": "capacity",
                                        P + "target": "2", P + "down.window": "5s"})
    gw.deploy("fixed", "sleep", labels={P + "min": "2", P + "max": "2", P + "type": "capacity",
                                        P + "target": "1"})
    gw.invoke_until("sleep", lambda r: r.status_code == 200, method="GET", path="?ms=1")
    gw.wait_for("two fixed replicas", lambda: _status(gw, "fixed")["available"] == 2)

    stop, codes, fixed_codes = threading.Event(), [], []
    threads = [threading.Thread(target=_load, args=(gw, "sleep", stop, codes)) for _ in range(4)]
    threads += [threading.Thread(target=_load, args=(gw, "fixed", stop, fixed_codes))
                for _ in range(3)]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        # 4 callers in flight against a target of 2 x 0.9 per replica: 3 replicas wanted
        gw.wait_for("sleep scaled up", lambda: _status(gw, "sleep")["replicas"] >= 2, 30)
        decided = time.monotonic() - started
        gw.wait_for("a second healthy replica",
                    lambda: _status(gw, "sleep")["available"] >= 2, 30)
        serving = time.monotonic() - started
        listed = {f["name"]: f for f in gw.client.get("/system/functions").json()}
        assert listed["sleep"]["replicas"] >= 2 and listed["fixed"]["replicas"] == 2
        time.sleep(2)  # more load: the fixed function must still be left alone
        assert _status(gw, "fixed")["replicas"] == 2
        peak = _status(gw, "sleep")["replicas"]
    finally:
        stop.set()
        for t in threads:
            t.join()
    stopped = time.monotonic()
    assert len(codes) > 20 and set(codes) == {200}, sorted(set(codes))
    assert set(fixed_codes) == {200}, sorted(set(fixed_codes))

    # the mean in flight decays over 5 s, then the 5 s down window must pass
    gw.wait_for("back to one replica", lambda: _status(gw, "sleep")["replicas"] == 1, 40)
    down = time.monotonic() - stopped
    gw.wait_for("one container left", lambda: len(gw.containers("sleep")) == 1, 30)
    assert down >= 4, f"scaled down {down:.1f}s after the load ended: no stabilisation"
    assert len(gw.containers("fixed")) == 2

    events = _scaled(gw, "sleep")
    assert events[0][:1] == (1,) and events[0][1] >= 2 and events[-1][1] == 1
    assert {actor for *_, actor in events} == {"autoscaler"}
    assert _scaled(gw, "fixed") == []
    print(f"\nscale-up decided after {decided:.1f}s, a second replica serving after "
          f"{serving:.1f}s, peak {peak}; back to 1 {down:.1f}s after the load ended")


def test_an_idle_function_sleeps_at_zero_and_wakes_on_its_next_call(
        gateway_factory: Callable[..., Gateway]) -> None:
    gw = gateway_factory(AUTOSCALE_ENABLED="true", AUTOSCALE_INTERVAL="0.5s")
    gw.deploy("echo", "echo", labels={P + "zero": "true", P + "zero-duration": "3s"})
    gw.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
    last_call = time.monotonic()
    gw.wait_for("no containers", lambda: gw.containers("echo", running_only=False) == [], 40)
    asleep = time.monotonic() - last_call
    assert _status(gw, "echo")["replicas"] == 0
    assert asleep >= 3, f"asleep {asleep:.1f}s after the last call, before zero-duration"

    r = gw.client.post("/function/echo", content=b"wake up")
    assert r.status_code == 200 and r.text == "wake up"
    assert _status(gw, "echo")["replicas"] == 1
    assert _scaled(gw, "echo") == [(1, 0, "autoscaler"), (0, 1, "gateway")]
    print(f"\nscaled to zero and removed {asleep:.1f}s after the last call")
