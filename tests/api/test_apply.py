"""POST /system/apply in process: the plan, prune scope, dry run, all-or-nothing, idempotence."""

from __future__ import annotations

import pytest

from events.types import FunctionDeployed, FunctionRemoved, FunctionUpdated
from tests.api.test_openapi import _check

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def fn(name: str, image: str = "img:1", **more) -> dict:
    return {"service": name, "image": image, **more}


async def apply(client, functions, expect: int = 200, **options) -> dict:
    r = await client.post("/system/apply", json={"functions": functions, **options})
    assert r.status_code == expect, r.text
    if expect == 200:
        _check(r)
        return r.json()
    return {"text": r.text}


def actions(result: dict) -> list[tuple[str, str]]:
    return [(s["action"], s["name"]) for s in result["plan"]]


async def test_a_stack_is_created_in_one_transaction_under_one_correlation_id(client, store):
    result = await apply(client, [fn("a"), fn("b", labels={"com.openfaas.scale.min": "2"})])
    assert actions(result) == [("create", "a"), ("create", "b")]
    assert [s["replicas"] for s in result["plan"]] == [1, 2]
    assert result["applied"] is True and result["namespaces"] == ["openfaas-fn"]
    records = store.read_all()
    assert [type(r.event) for r in records] == [FunctionDeployed, FunctionDeployed]
    assert {r.correlation_id for r in records} == {result["correlationId"]}
    assert result["position"] == records[-1].position
    assert {r.time for r in records} == {records[0].time}  # one append, one moment


async def test_applying_the_same_stack_again_appends_nothing(client, store):
    stack = [fn("a", envVars={"A": "1"}), fn("b")]
    await apply(client, stack)
    head = store.head()
    again = await apply(client, list(reversed(stack)), prune=True)
    assert actions(again) == [("unchanged", "b"), ("unchanged", "a")]
    assert again["applied"] is False and store.head() == head == again["position"]


async def test_an_edit_with_prune_changes_exactly_what_changed(client, store):
    await apply(client, [fn("a"), fn("b"), fn("c")])
    await client.post("/system/scale-function/a", json={"serviceName": "a", "replicas": 3})
    head = store.head()
    result = await apply(
        client, [fn("a", "img:2", envVars={"K": "v"}), fn("c"), fn("d")], prune=True)
    assert actions(result) == [("update", "a"), ("unchanged", "c"), ("create", "d"),
                               ("remove", "b")]
    update = result["plan"][0]
    assert update["changes"] == [
        {"field": "image", "before": "img:1", "after": "img:2"},
        {"field": "envVars.K", "before": None, "after": "v"},
    ]
    new = store.read_all(after=head)
    assert [(type(r.event), r.event.key[1]) for r in new] == [
        (FunctionUpdated, "a"), (FunctionDeployed, "d"), (FunctionRemoved, "b")]
    listed = (await client.get("/system/functions")).json()
    assert {f["name"]: (f["image"], f["replicas"]) for f in listed} == {
        "a": ("img:2", 3), "c": ("img:1", 1), "d": ("img:1", 1)}  # the scale is kept


async def test_without_prune_nothing_is_removed(client, store):
    await apply(client, [fn("a"), fn("b")])
    result = await apply(client, [fn("a")])
    assert actions(result) == [("unchanged", "a")]
    assert len((await client.get("/system/functions")).json()) == 2


async def test_prune_stays_inside_the_namespaces_the_stack_covers(client, store):
    r = await client.post("/system/namespace/", json={"name": "team", "labels": {"openfaas": "1"}})
    assert r.status_code == 201, r.text
    await apply(client, [fn("a"), fn("t1", namespace="team"), fn("t2", namespace="team")])
    # only `team` is covered: openfaas-fn/a survives the prune
    result = await apply(client, [fn("t1")], namespace="team", prune=True)
    assert actions(result) == [("unchanged", "t1"), ("remove", "t2")]
    assert result["namespaces"] == ["team"]
    assert [f["name"] for f in (await client.get("/system/functions")).json()] == ["a"]
    # an empty stack prunes nothing unless its namespace is named
    assert actions(await apply(client, [], prune=True, dryRun=True)) == []
    emptied = await apply(client, [], namespace="team", prune=True, dryRun=True)
    assert actions(emptied) == [("remove", "t1")]


async def test_dry_run_plans_and_appends_nothing(client, store):
    result = await apply(client, [fn("a")], dryRun=True)
    assert actions(result) == [("create", "a")]
    assert result["dryRun"] is True and result["applied"] is False
    assert store.head() == 0


@pytest.mark.parametrize(("functions", "message"), [
    ([fn("ok"), fn("Bad_Name")],
     "functions[1] (Bad_Name): service: 'Bad_Name' is not a valid name"),
    ([fn("ok"), {"service": "noimage"}],
     "functions[1] (noimage): image: an image reference is required"),
    ([fn("ok"), fn("lim", limits={"memory": "10m"})], "functions[1] (lim): limits.memory"),
    ([fn("ok"), fn("sc", labels={"com.openfaas.scale.min": "x"})], "functions[1] (sc): "),
    ([fn("ok"), fn("sec", secrets=["missing"])],
     "function 'sec' in namespace 'openfaas-fn': secrets: 'missing' not found"),
    ([fn("ok"), fn("ok")], "function 'ok' in namespace 'openfaas-fn': named twice"),
    ([fn("ok"), fn("elsewhere", namespace="nope")], "namespace 'nope' does not exist"),
])
async def test_one_invalid_function_and_nothing_is_applied(client, store, functions, message):
    await apply(client, [fn("before")])
    head = store.head()
    out = await apply(client, functions, expect=400, prune=True)
    assert message in out["text"]
    assert store.head() == head
    assert [f["name"] for f in (await client.get("/system/functions")).json()] == ["before"]


async def test_every_invalid_function_is_named_at_once(client, store):
    out = await apply(client, [{"service": "x"}, fn("ok"), fn("y", envProcess=3)], expect=400)
    lines = out["text"].strip().splitlines()
    assert lines == ["functions[0] (x): image: an image reference is required",
                     "functions[2] (y): envProcess: expected a string"]


@pytest.mark.parametrize(("body", "message"), [
    ({}, "functions: expected a list"),
    ({"functions": {}}, "functions: expected a list"),
    ({"functions": [], "prune": "yes"}, "prune: expected true or false"),
    ({"functions": [], "dryRun": 1}, "dryRun: expected true or false"),
    ({"functions": [], "extra": 1}, "extra: unknown field"),
    ({"functions": [], "namespace": "Bad!"}, "namespace: 'Bad!' is not a valid name"),
    ([], "request body: expected"),
])
async def test_malformed_requests_name_the_field(client, store, body, message):
    r = await client.post("/system/apply", json=body)
    assert r.status_code == 400 and message in r.text, r.text
    assert store.head() == 0


async def test_a_correlation_id_from_the_client_is_kept(client, store):
    r = await client.post("/system/apply", json={"functions": [fn("a")]},
                          headers={"X-Correlation-Id": "ci-run-9", "User-Agent": "cli/1"})
    assert r.json()["correlationId"] == "ci-run-9"
    [record] = store.read_all()
    assert (record.correlation_id, record.user_agent, record.actor) == ("ci-run-9", "cli/1",
                                                                        "admin")


async def test_apply_needs_credentials(client):
    r = await client.post("/system/apply", json={"functions": []}, auth=None)
    assert r.status_code == 401
