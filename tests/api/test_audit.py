"""The audit queries in process: /system/events, ?at= on the function reads, and history.

The test clock ticks one second per append from 2026-01-02T03:04:05Z, so the n-th record
(position n) was accepted at 03:04:05 + (n - 1) s.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime

import jsonschema
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
    ("follow=maybe", "follow"), ("follow=true&order=desc", "order"),
    ("follow=true&limit=5", "limit"), ("follow=true&since=now", "since"),
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

    async def test_at_answers_the_same_with_or_without_snapshots(self, client, store):
        from events import snapshot
        await lifecycle(client)  # 1..5
        await client.post("/system/functions", json=ENV)  # 6
        await client.post("/system/scale-function/env", json={"replicas": 2})  # 7

        async def answers() -> list:
            out = []
            for when in [*map(str, range(9)), *(at(s) for s in range(4, 13))]:
                out.append((await client.get(f"/system/functions?at={when}")).json())
                r = await client.get(f"/system/function/env?at={when}")
                out.append((r.status_code, r.content))
            return out

        without = await answers()
        snapshot.catch_up(store, every=2)
        assert store.latest_snapshot(7, snapshot.FORMAT, snapshot.schema()).position == 6
        assert await answers() == without
        store.drop_snapshots()
        assert await answers() == without

    async def test_follow_hears_appends_made_through_another_connection(
        self, store, app, monkeypatch
    ):
        from api import audit
        from events.sqlite import SQLiteEventStore
        monkeypatch.setattr(audit, "FOLLOW_POLL", 0.05)
        follower = Follower(app, "follow=true")
        await follower.start()
        other = SQLiteEventStore(store.path)  # another process, say: no notification
        try:
            other.append(FN, [FunctionScaled("openfaas-fn", "env", 1, 0)], 0,
                         time=datetime(2026, 1, 2, tzinfo=UTC), actor="elsewhere")
            [line] = await follower.lines(1, within=1)
            assert (line["position"], line["actor"]) == (1, "elsewhere")
        finally:
            other.close()
            await follower.hang_up()


# --- follow -------------------------------------------------------------------------


class Follower:
    """Drives the ASGI app by hand, as a server would, so that the test can read the
    streamed lines while it appends, and hang up when it likes."""

    def __init__(self, app, query: str) -> None:
        token = base64.b64encode(b"admin:secret")
        self.scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/system/events", "raw_path": b"/system/events", "root_path": "",
            "query_string": query.encode(), "client": ("127.0.0.1", 50000),
            "server": ("gw", 80), "headers": [(b"host", b"gw"),
                                              (b"authorization", b"Basic " + token)],
        }
        self.sent: asyncio.Queue[dict] = asyncio.Queue()
        self.gone = asyncio.Event()
        self.requested = False
        self.buffer = b""
        self.task = asyncio.create_task(app(self.scope, self.receive, self.sent.put))

    async def receive(self) -> dict:
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def start(self) -> dict:
        message = await asyncio.wait_for(self.sent.get(), 2)
        assert message["type"] == "http.response.start"
        return {k.decode(): v.decode() for k, v in message["headers"]} | {
            "status": message["status"]}

    async def lines(self, n: int, within: float = 2.0) -> list[dict]:
        """The next `n` NDJSON lines; fails if they do not all come within `within` s."""
        out: list[dict] = []
        deadline = asyncio.get_running_loop().time() + within
        while len(out) < n:
            while b"\n" in self.buffer and len(out) < n:
                line, self.buffer = self.buffer.split(b"\n", 1)
                out.append(json.loads(line))
            if len(out) == n:
                break
            remaining = deadline - asyncio.get_running_loop().time()
            message = await asyncio.wait_for(self.sent.get(), max(remaining, 0.001))
            assert message["type"] == "http.response.body" and message["more_body"]
            self.buffer += message["body"]
        return out

    async def nothing_more(self, wait: float = 0.2) -> None:
        await asyncio.sleep(wait)
        assert self.sent.empty() and not self.buffer

    async def hang_up(self) -> None:
        self.gone.set()
        await asyncio.wait_for(self.task, 2)


def _audit_record_schema() -> dict:
    from api.openapi import document
    doc = document()
    return {**doc["components"]["schemas"]["AuditRecord"], "components": doc["components"]}


@pytest.fixture
def own(client):
    """The conftest's client, named apart from the tests' own `client` variables."""
    return client


def subscribers(store) -> int:
    return len(store._subscribers._callbacks)  # white-box: nothing may stay subscribed


async def test_follow_streams_the_matches_then_each_new_one_until_the_client_hangs_up(
    own, store, app
):
    client = own
    await lifecycle(client)  # 1..5
    listening = subscribers(store)
    follower = Follower(app, "follow=true&function=env&after=1")
    headers = await follower.start()
    assert headers["status"] == 200
    assert headers["content-type"] == "application/x-ndjson"
    backlog = await follower.lines(4)
    assert backlog == await events(client, "?function=env&after=1")  # same shape as the array
    for line in backlog:
        jsonschema.validate(line, _audit_record_schema(), cls=jsonschema.Draft202012Validator)
    assert subscribers(store) == listening + 1

    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await client.post("/system/functions", json=ENV)).status_code == 202  # 6
    [redeployed] = await follower.lines(1)
    assert redeployed["position"] == 6 and redeployed["type"] == "function.deployed"
    assert loop.time() - started < FOLLOW_POLL_LIMIT  # woken by the append, not a poll
    await client.post("/system/functions", json={**ENV, "service": "other"})  # 7: not env
    store.append(FN, [FunctionScaled("openfaas-fn", "env", 4, 1, "busy")], 6,
                 time=datetime(2026, 1, 3, tzinfo=UTC), actor="autoscaler")  # 8
    [scaled] = await follower.lines(1)
    assert (scaled["position"], scaled["data"]["reason"]) == (8, "busy")
    await follower.nothing_more()

    await follower.hang_up()
    assert subscribers(store) == listening
    store.append(FN, [FunctionScaled("openfaas-fn", "env", 1, 4, "calm")], 7,
                 time=datetime(2026, 1, 3, tzinfo=UTC), actor="autoscaler")  # nobody hears


FOLLOW_POLL_LIMIT = 0.5


async def test_follow_reads_a_long_backlog_in_pages_and_skips_nothing(store, app, monkeypatch):
    from api.audit import FollowResponse
    monkeypatch.setattr(FollowResponse, "page", 7)
    for i in range(30):
        store.append(FN, [FunctionScaled("openfaas-fn", "env", i + 1, i)], i,
                     time=datetime(2026, 1, 2, tzinfo=UTC), actor=f"a{i % 3}")
    follower = Follower(app, "follow=true&actor=a1")
    await follower.start()
    backlog = await follower.lines(10)
    assert [e["position"] for e in backlog] == list(range(2, 31, 3))
    for i in range(30, 45):  # appended in one burst, while the follower waits
        store.append(FN, [FunctionScaled("openfaas-fn", "env", i + 1, i)], i,
                     time=datetime(2026, 1, 2, tzinfo=UTC), actor=f"a{i % 3}")
    assert [e["position"] for e in await follower.lines(5)] == list(range(32, 46, 3))
    await follower.nothing_more()
    await follower.hang_up()


async def test_follow_with_nothing_to_say_yet_still_notices_the_hang_up(store, app):
    follower = Follower(app, "follow=1&type=function.removed")
    await follower.start()
    await follower.nothing_more(0.1)
    await follower.hang_up()
    assert subscribers(store) == 1  # the app's live view


async def test_follow_needs_credentials(client):
    r = await client.get("/system/events?follow=true", auth=None)
    assert r.status_code == 401


# --- why a count changed ------------------------------------------------------------


async def test_scale_events_say_why(own, app):
    from api.autoscaler import Autoscaler
    from api.wake import wake
    client, gw = own, app.gateway
    body = {**ENV, "labels": {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "3",
                              "com.openfaas.scale.type": "capacity",
                              "com.openfaas.scale.target": "2"}}
    assert (await client.post("/system/functions", json=body)).status_code == 202
    for _ in range(4):
        gw.metrics.start("env.openfaas-fn")
    [auto] = Autoscaler(gw, interval=1).tick(0.0)
    assert auto.event.reason == "up: capacity load 4.00, target 2 per replica"
    await client.post("/system/scale-function/env", json={"replicas": 0})
    wake(gw, ("openfaas-fn", "env"))
    reasons = [(e["actor"], e["data"]["reason"])
               for e in await events(client, "?type=function.scaled")]
    assert reasons == [("autoscaler", "up: capacity load 4.00, target 2 per replica"),
                       ("admin", "manual"), ("gateway", "scale-from-zero")]
