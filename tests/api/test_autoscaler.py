"""The autoscaler in process: the real app on a memory log and the real metrics counters,
ticked with explicit times (no engine: the autoscaler only appends events). Also the 400s
for scale labels it could not use."""

from __future__ import annotations

import httpx
import pytest

from api.autoscaler import ACTOR, Autoscaler
from api.context import Gateway
from api.wake import wake
from events.model import FunctionSpec, stream_name
from events.types import FunctionDeployed, FunctionScaled

pytestmark = pytest.mark.anyio
P = "com.openfaas.scale."
KEY = ("openfaas-fn", "fn")
FN = "fn.openfaas-fn"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def gw(app) -> Gateway:
    return app.gateway


async def deploy(client: httpx.AsyncClient, **labels: str) -> None:
    body = {"service": "fn", "image": "img", "labels": {P + k: v for k, v in labels.items()}}
    r = await client.post("/system/functions", json=body)
    assert r.status_code == 202, r.text


def scaled(store) -> list[tuple[int, int, str]]:
    return [(r.event.previous, r.event.replicas, r.actor) for r in store.read_all()
            if isinstance(r.event, FunctionScaled)]


def replicas(gw: Gateway) -> int:
    return gw.desired.functions[KEY].replicas


@pytest.mark.parametrize("labels,named", [
    ({P + "type": "cpu"}, "com.openfaas.scale.type"),
    ({P + "max": "11"}, "com.openfaas.scale.max"),  # MAX_REPLICAS is 10 here
    ({P + "target": "0"}, "com.openfaas.scale.target"),
    ({P + "zero-duration": "soon"}, "com.openfaas.scale.zero-duration"),
    ({P + "down.window": "5 s"}, "com.openfaas.scale.down.window"),
    ({P + "min": "3", P + "max": "2"}, "com.openfaas.scale.max"),
])
async def test_unusable_scale_labels_are_400_naming_the_label(client, store, labels, named):
    body = {"service": "fn", "image": "img", "labels": labels}
    r = await client.post("/system/functions", json=body)
    assert r.status_code == 400 and named in r.text
    assert store.read_all() == []
    assert (await client.post("/system/functions", json={**body, "labels": {}})).status_code == 202
    r = await client.put("/system/functions", json=body)
    assert r.status_code == 400 and named in r.text
    assert len(store.read_all()) == 1


async def test_up_at_once_under_load_and_down_after_the_window(client, gw, store):
    await deploy(client, min="1", max="3", type="capacity", target="2", **{"down.window": "10s"})
    scaler = Autoscaler(gw, interval=1)
    for _ in range(4):
        gw.metrics.start(FN)  # four requests in flight
    [record] = scaler.tick(0.0)
    assert (record.actor, record.request_id.startswith("req-")) == (ACTOR, True)
    assert record.stream == stream_name(*KEY) and replicas(gw) == 3  # 4 / (2 * 0.9) -> 3
    for _ in range(4):
        gw.metrics.record(FN, 200, 0.2)
    timeline = []
    for t in range(1, 13):
        scaler.tick(float(t))
        timeline.append(replicas(gw))
    # mean in flight over the 5 s window: 2 at t = 1 (wish 2), 1.33 at t = 2 (wish 1); each
    # wish stands for the 10 s down window, so the wish for 3 (t = 0) holds until t = 10
    assert timeline == [3] * 9 + [2, 1, 1]
    assert scaled(store) == [(1, 3, ACTOR), (3, 2, ACTOR), (2, 1, ACTOR)]


async def test_rps_load_and_a_user_count_stands_for_a_window(client, gw, store):
    await deploy(client, min="1", max="5", target="10", **{"target-proportion": "1",
                                                           "down.window": "4s"})
    scaler = Autoscaler(gw, interval=1)
    scaler.tick(0.0)
    for t in range(1, 4):  # 25 requests a second -> 3 replicas
        for _ in range(25):
            gw.metrics.start(FN)
            gw.metrics.record(FN, 200, 0.01)
        scaler.tick(float(t))
    assert replicas(gw) == 3
    r = await client.post("/system/scale-function/fn", json={"replicas": 5})
    assert r.status_code == 202
    for t in range(4, 8):  # the user's 5 stands: the load fell, but within their window
        scaler.tick(float(t))
        assert replicas(gw) == 5, t
    scaler.tick(8.0)
    assert replicas(gw) == 2  # the 5 s rate still wanted 2 at t = 5
    scaler.tick(9.0)
    assert replicas(gw) == 1
    assert scaled(store) == [(1, 3, ACTOR), (3, 5, "admin"), (5, 2, ACTOR), (2, 1, ACTOR)]


async def test_idle_function_sleeps_and_a_woken_one_gets_its_own_zero_duration(client, gw, store):
    await deploy(client, min="1", max="1", zero="true", **{"zero-duration": "3s"})
    scaler = Autoscaler(gw, interval=1)
    gw.metrics.start(FN)
    scaler.tick(0.0)
    scaler.tick(1.0)
    gw.metrics.record(FN, 200, 1.0)  # done between 1 and 2: idle since 2
    for t in range(2, 7):  # idle for 3 s at t = 5, but the 5 s rate still counts that call
        scaler.tick(float(t))
        assert replicas(gw) == 1, t
    scaler.tick(7.0)
    assert replicas(gw) == 0
    scaler.tick(100.0)  # asleep: nothing to do
    wake(gw, KEY)  # the proxy's wake, as an invocation would
    assert replicas(gw) == 1
    scaler.tick(101.0)
    scaler.tick(103.5)  # woken at 101 by someone else: zero-duration counts from then
    assert replicas(gw) == 1
    scaler.tick(104.0)
    assert replicas(gw) == 0
    assert scaled(store) == [(1, 0, ACTOR), (0, 1, "gateway"), (1, 0, ACTOR)]


async def test_min_equal_max_and_unusable_old_labels_are_left_alone(client, gw, store):
    await deploy(client, min="2", max="2", type="capacity", target="1")
    bad = FunctionSpec(name="old", namespace="openfaas-fn", image="img",
                       labels=((P + "type", "cpu"),))
    gw.append(stream_name("openfaas-fn", "old"), [FunctionDeployed(spec=bad, replicas=1)], 0,
              actor="admin", request_id="r", source="", user_agent="")
    scaler = Autoscaler(gw, interval=1)
    for _ in range(50):
        gw.metrics.start(FN)
        gw.metrics.start("old.openfaas-fn")
    for t in range(10):
        assert scaler.tick(float(t)) == []
    assert replicas(gw) == 2 and scaled(store) == []


async def test_removed_functions_are_forgotten(client, gw):
    await deploy(client, min="1", max="3")
    scaler = Autoscaler(gw, interval=1)
    scaler.tick(0.0)
    r = await client.request("DELETE", "/system/functions", json={"functionName": "fn"})
    assert r.status_code == 202
    assert scaler.tick(1.0) == []
    assert scaler.loads.observe(FN, 0, 0, 2.0).idle_since == 2.0  # seen as new


async def test_functions_without_scale_labels_keep_their_count(client, gw, store):
    await deploy(client)
    r = await client.post("/system/scale-function/fn", json={"replicas": 4})
    assert r.status_code == 202
    scaler = Autoscaler(gw, interval=1)
    for t in range(0, 120, 5):  # idle for two minutes, then a burst of load
        scaler.tick(float(t))
    for _ in range(500):
        gw.metrics.start(FN)
        gw.metrics.record(FN, 200, 0.01)
    scaler.tick(121.0)
    assert replicas(gw) == 4
    assert [actor for *_, actor in scaled(store)] == ["admin"]
