"""The audit queries in process: /system/events, ?at= on the function reads, and history.

The test clock ticks one second per append from 2026-01-02T03:04:05Z, so the n-th record
(position n) was accepted at 03:04:05 + (n - 1) s.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events.codec import encode
from events.types import FunctionScaled
from tests.api.test_openapi import _check

pytestmark = pytest.mark.anyio

ENV = {"service": "env", "image": "img:1", "envProcess": "env", "labels": {},
       "annotations": {}}
FN = "function/openfaas-fn/env"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def at(second: int) -> str:
    return f"2026-01-02T03:04:{second:02d}Z"


async def lifecycle(client) -> None:
    """Positions 1..5 at 03:04:05..09: deploy, update, scale, update, delete."""
    assert (await client.post("/system/functions", json=ENV)).status_code == 202
    assert (await client.put("/system/functions",
                             json={**ENV, "envVars": {"A": "1"}})).status_code == 202
    r = await client.post("/system/scale-function/env", json={"replicas": 3})
    assert r.status_code == 202
    changed = {**ENV, "image": "img:2", "envVars": {"A": "2", "B": "x"},
               "labels": {"team": "a"}}
    assert (await client.put("/system/functions", json=changed)).status_code == 202
    r = await client.request("DELETE", "/system/functions", json={"functionName": "env"})
    assert r.status_code == 202


async def events(client, query: str = "") -> list[dict]:
    r = await client.get(f"/system/events{query}")
    assert r.status_code == 200, r.text
    _check(r)
    return r.json()


async def test_events_carry_the_envelope_type_and_payload(client, store):
    await client.post("/system/functions", json=ENV, headers={"X-Correlation-Id": "ci-42"})
    await client.put("/system/functions", json={**ENV, "image": "img:9"},
                     headers={"X-Request-Id": "r-7"})
    [record, updated] = store.read_all()
    # no X-Correlation-Id: a write is its own correlation, named by its request id
    assert (updated.request_id, updated.correlation_id) == ("r-7", "r-7")
    [out, _] = await events(client)
    name, _, payload = encode(record.event)
    assert out == {
        "position": 1, "stream": FN, "version": 1, "time": "2026-01-02T03:04:05Z",
        "actor": "admin", "requestId": record.request_id, "source": record.source,
        "userAgent": record.user_agent, "correlationId": "ci-42",
        "type": "function.deployed", "data": payload,
    }
    assert name == "function.deployed" and out["data"]["replicas"] == 1
    assert out["data"]["spec"]["image"] == "img:1"
    assert out["userAgent"].startswith("python-httpx")


async def test_order_limit_and_after(client):
    await lifecycle(client)
    assert [e["position"] for e in await events(client)] == [1, 2, 3, 4, 5]
    assert [e["position"] for e in await events(client, "?order=desc")] == [5, 4, 3, 2, 1]
    assert [e["position"] for e in await events(client, "?limit=2")] == [1, 2]
    assert [e["position"] for e in await events(client, "?order=desc&limit=2")] == [5, 4]
    assert [e["position"] for e in await events(client, "?after=3")] == [4, 5]
    assert [e["position"] for e in await events(client, "?after=3&order=desc")] == [5, 4]
    assert await events(client, "?after=5") == []
    assert [e["version"] for e in await events(client)] == [1, 2, 3, 4, 5]


async def test_filter_by_type_repeated_or_comma_separated(client):
    await lifecycle(client)
    types = [e["type"] for e in await events(client)]
    assert types == ["function.deployed", "function.updated", "function.scaled",
                     "function.updated", "function.removed"]
    updated = await events(client, "?type=function.updated")
    assert [e["position"] for e in updated] == [2, 4]
    both = await events(client, "?type=function.scaled&type=function.removed")
    assert [e["position"] for e in both] == [3, 5]
    comma = await events(client, "?type=function.deployed,function.scaled")
    assert [e["position"] for e in comma] == [1, 3]
    [scaled] = await events(client, "?type=function.scaled")
    assert scaled["data"] == {"namespace": "openfaas-fn", "name": "env", "replicas": 3,
                              "previous": 1, "reason": "manual"}


async def test_filter_by_time(client):
    await lifecycle(client)
    assert [e["position"] for e in await events(client, f"?since={at(7)}")] == [3, 4, 5]
    assert [e["position"] for e in await events(client, f"?until={at(6)}")] == [1, 2]
    both = await events(client, f"?since={at(6)}&until={at(8)}")
    assert [e["position"] for e in both] == [2, 3, 4]
    # an offset other than Z means the same instant
    offset = await events(client, "?since=2026-01-02T04:04:08%2B01:00")
    assert [e["position"] for e in offset] == [4, 5]


async def test_filter_by_function_namespace_actor_and_correlation(client, store):
    r = await client.post("/system/namespace/", json={"name": "team-b",
                                                        "labels": {"openfaas": "1"}})
    assert r.status_code == 201  # position 1, stream namespace/team-b
    await client.post("/system/functions", json=ENV)  # 2
    await client.post("/system/functions", json={**ENV, "namespace": "team-b"})  # 3
    await client.post("/system/functions", json={**ENV, "service": "other"})  # 4
    store.append(FN, [FunctionScaled("openfaas-fn", "env", 2, 1)], store.stream_version(FN),
                 time=datetime(2026, 1, 2, 3, 5, tzinfo=UTC), actor="autoscaler",
                 request_id="auto-1", correlation_id="alert-7")  # 5

    assert [e["position"] for e in await events(client, "?function=env")] == [2, 3, 5]
    assert [e["position"] for e in await events(client, "?namespace=team-b")] == [1, 3]
    both = await events(client, "?function=env&namespace=openfaas-fn")
    assert [e["position"] for e in both] == [2, 5]
    [auto] = await events(client, "?actor=autoscaler")
    assert auto["position"] == 5 and auto["requestId"] == "auto-1"
    assert [e["position"] for e in await events(client, "?actor=admin")] == [1, 2, 3, 4]
    [tied] = await events(client, "?correlationId=alert-7")
    assert tied["position"] == 5 and tied["correlationId"] == "alert-7"
    assert await events(client, "?correlationId=nope") == []
    assert await events(client, "?function=env&type=function.removed") == []


@pytest.mark.parametrize("query,param", [
    ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"),
    ("limit=-1", "limit"), ("after=-1", "after"), ("after=x", "after"),
    ("order=newest", "order"), ("type=function.exploded", "type"),
    ("type=function.deployed,nope", "type"), ("since=yesterday", "since"),
    ("until=2026-01-02T03:04:05", "until"), ("function=Bad_Name", "function"),
    ("namespace=NS!", "namespace"),
])
async def test_bad_event_queries_are_400_naming_the_parameter(client, store, query, param):
    await client.post("/system/functions", json=ENV)
    r = await client.get(f"/system/events?{query}")
    assert r.status_code == 400
    assert r.text.startswith(f"{param}:")
    _check(r)
    assert len(store.read_all()) == 1


async def test_limit_is_at_most_1000_and_defaults_to_100(client, store):
    for i in range(105):
        store.append(FN, [FunctionScaled("openfaas-fn", "env", i + 1, i)], i,
                     time=datetime(2026, 1, 2, tzinfo=UTC), actor="t")
    assert len(await events(client)) == 100
    assert len(await events(client, "?limit=1000")) == 105


async def test_audit_reads_need_credentials(client):
    await client.post("/system/functions", json=ENV)
    for path in ("/system/events", "/system/function/env/history",
                 "/system/functions?at=1", "/system/function/env?at=1"):
        assert (await client.get(path, auth=None)).status_code == 401


# --- ?at= ---------------------------------------------------------------------------


async def test_function_at_a_position_or_a_time(client):
    await lifecycle(client)
    assert (await client.get("/system/function/env")).status_code == 404
    r = await client.get("/system/function/env?at=3")
    assert r.status_code == 200
    _check(r)
    then = r.json()
    assert then["replicas"] == 3 and then["envVars"] == {"A": "1"}
    assert then["availableReplicas"] == 0 and then["createdAt"] == at(5)
    by_time = (await client.get(f"/system/function/env?at={at(7)}")).json()
    assert by_time == then
    first = (await client.get("/system/function/env?at=1")).json()
    assert first["image"] == "img:1" and "envVars" not in first and first["replicas"] == 1
    later = (await client.get(f"/system/function/env?at={at(8)}")).json()
    assert later["image"] == "img:2" and later["labels"] == {"team": "a", "faas_function": "env"}
    # between two records: the earlier one holds
    assert (await client.get("/system/function/env?at=2026-01-02T03:04:07.5Z")).json() == then


async def test_function_at_is_404_before_it_existed_and_after_it_was_removed(client):
    await lifecycle(client)
    for when in ("0", "5", at(4), at(9), "2030-01-01T00:00:00Z"):
        r = await client.get(f"/system/function/env?at={when}")
        assert r.status_code == 404, when
        _check(r)


async def test_list_functions_at(client):
    await client.post("/system/functions", json=ENV)  # 1
    await client.post("/system/functions", json={**ENV, "service": "other"})  # 2
    await client.request("DELETE", "/system/functions", json={"functionName": "env"})  # 3
    now = (await client.get("/system/functions")).json()
    assert [f["name"] for f in now] == ["other"]
    r = await client.get("/system/functions?at=2")
    assert r.status_code == 200
    _check(r)
    assert [f["name"] for f in r.json()] == ["env", "other"]
    assert all(f["availableReplicas"] == 0 for f in r.json())
    assert [f["name"] for f in (await client.get(f"/system/functions?at={at(5)}")).json()] == [
        "env"]
    assert (await client.get("/system/functions?at=0")).json() == []
    assert (await client.get("/system/functions?at=2&namespace=elsewhere")).json() == []


@pytest.mark.parametrize("value", ["", "-1", "soon", "2026-01-02T03:04:05", "1.5"])
async def test_bad_at_is_400(client, store, value):
    await client.post("/system/functions", json=ENV)
    for path in ("/system/functions", "/system/function/env"):
        r = await client.get(path, params={"at": value})
        assert r.status_code == 400, (path, value)
        assert r.text.startswith("at:")
        _check(r)
    assert len(store.read_all()) == 1


# --- history --------------------------------------------------------------------------


async def test_history_diffs_each_version_against_the_one_before(client):
    await lifecycle(client)
    await client.post("/system/functions", json=ENV)  # redeploy: version 6
    r = await client.get("/system/function/env/history")
    assert r.status_code == 200
    _check(r)
    versions = r.json()
    assert [(v["version"], v["position"], v["type"]) for v in versions] == [
        (1, 1, "function.deployed"), (2, 2, "function.updated"), (3, 3, "function.scaled"),
        (4, 4, "function.updated"), (5, 5, "function.removed"), (6, 6, "function.deployed"),
    ]
    assert versions[0]["time"] == at(5) and versions[0]["actor"] == "admin"
    assert versions[0]["changes"] == [
        {"field": "name", "before": None, "after": "env"},
        {"field": "image", "before": None, "after": "img:1"},
        {"field": "namespace", "before": None, "after": "openfaas-fn"},
        {"field": "envProcess", "before": None, "after": "env"},
        {"field": "labels.faas_function", "before": None, "after": "env"},
        {"field": "replicas", "before": None, "after": 1},
    ]
    assert versions[1]["changes"] == [{"field": "envVars.A", "before": None, "after": "1"}]
    assert versions[2]["changes"] == [{"field": "replicas", "before": 1, "after": 3}]
    assert versions[3]["changes"] == [
        {"field": "image", "before": "img:1", "after": "img:2"},
        {"field": "envVars.A", "before": "1", "after": "2"},
        {"field": "envVars.B", "before": None, "after": "x"},
        {"field": "labels.team", "before": None, "after": "a"},
    ]
    removed = {c["field"]: (c["before"], c["after"]) for c in versions[4]["changes"]}
    assert removed["replicas"] == (3, None) and removed["envVars.B"] == ("x", None)
    assert all(after is None for _, after in removed.values())
    assert versions[5]["changes"] == versions[0]["changes"]


async def test_history_of_a_namespaced_function_and_404s(client):
    r = await client.get("/system/function/env/history")
    assert r.status_code == 404 and "env" in r.text
    _check(r)
    await client.post("/system/namespace/", json={"name": "team-b",
                                                    "labels": {"openfaas": "1"}})
    await client.post("/system/functions", json={**ENV, "namespace": "team-b"})
    assert (await client.get("/system/function/env/history")).status_code == 404
    r = await client.get("/system/function/env/history?namespace=team-b")
    assert [v["type"] for v in r.json()] == ["function.deployed"]
    r = await client.get("/system/function/env/history?namespace=Bad!")
    assert r.status_code == 400 and r.text.startswith("namespace:")


class TestOnSQLite:
    """The same queries over the durable store, whose times come back from text."""

    @pytest.fixture
    def store(self, tmp_path):
        from events.sqlite import SQLiteEventStore
        opened = SQLiteEventStore(tmp_path / "events.db")
        yield opened
        opened.close()

    async def test_events_at_and_history(self, client):
        await lifecycle(client)
        assert [e["position"] for e in await events(client, f"?since={at(8)}")] == [4, 5]
        assert [e["time"] for e in await events(client, "?order=desc&limit=1")] == [at(9)]
        then = (await client.get(f"/system/function/env?at={at(7)}")).json()
        assert then["replicas"] == 3
        history = (await client.get("/system/function/env/history")).json()
        assert [len(v["changes"]) for v in history][1:4] == [1, 1, 4]
