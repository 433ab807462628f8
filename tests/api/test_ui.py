"""In-process tests of the dashboard's routes: the page and its files behind basic auth, the
traffic samples, the replicas view without an engine, and the stack reader endpoint."""

from __future__ import annotations

import math
import re
from pathlib import Path

import httpx
import jsonschema
import pytest

from api.metrics import BUCKETS
from api.openapi import document
from api.samples import Samples, Totals, quantile, read_totals
from api.ui_routes import UI_DIR

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def ui(client):
    return client


def check(response: httpx.Response, method: str, template: str) -> None:
    """The answer is one the OpenAPI document lists for this operation, with its schema."""
    op = document()["paths"][template][method.lower()]
    code = str(response.status_code)
    assert code in op["responses"], f"{method} {template} answered {code}"
    content = op["responses"][code].get("content", {})
    if "application/json" in content:
        schema = {**content["application/json"]["schema"],
                  "components": document()["components"]}
        jsonschema.validate(response.json(), schema, cls=jsonschema.Draft202012Validator)


# --- the page and its files ---------------------------------------------------------


async def test_root_redirects_to_the_dashboard_without_asking_for_credentials(ui):
    r = await ui.get("/", auth=None, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/ui/"
    check(r, "GET", "/")


async def test_the_dashboard_needs_the_same_credentials_as_the_api(ui):
    for path in ("/ui/", "/ui/app.js", "/ui/style.css", "/ui/nothing.js"):
        r = await ui.get(path, auth=None)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == 'Basic realm="Restricted"'
    r = await ui.get("/ui/", auth=("admin", "wrong"))
    assert r.status_code == 401


async def test_the_page_is_served_with_a_strict_content_security_policy(ui):
    r = await ui.get("/ui/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="app.js">' in r.text
    check(r, "GET", "/ui/")


async def test_every_file_the_page_names_is_served_from_the_package(ui):
    """Nothing comes from elsewhere: every src/href/import is a file of api/ui/."""
    page = (await ui.get("/ui/")).text
    wanted = set(re.findall(r'(?:src|href)="([^"#:]+)"', page))
    for js in UI_DIR.glob("*.js"):
        wanted |= set(re.findall(r"(?:from |import\()'\./([^']+)'", js.read_text()))
    assert {"app.js", "style.css", "function.js", "charts.js", "stack.js"} <= wanted
    for name in sorted(wanted):
        r = await ui.get(f"/ui/{name}")
        assert r.status_code == 200, name
        assert r.content == (UI_DIR / name).read_bytes()
    assert (await ui.get("/ui/app.js")).headers["content-type"].startswith("text/javascript")


async def test_no_file_refers_to_another_origin():
    for path in UI_DIR.iterdir():
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")  # a name, not a URL
        hosts = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text)
        assert hosts == [], f"{path.name} refers to {hosts}"


async def test_assets_revalidate_with_their_etag(ui):
    first = await ui.get("/ui/app.js", headers={"Accept-Encoding": "identity"})
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache" and "content-encoding" not in first.headers
    again = await ui.get("/ui/app.js", headers={"If-None-Match": etag,
                                                "Accept-Encoding": "identity"})
    assert again.status_code == 304 and again.content == b""
    check(again, "GET", "/ui/{file}")
    other = await ui.get("/ui/app.js", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


async def test_assets_are_sent_compressed_when_the_client_accepts_gzip(ui):
    plain = (UI_DIR / "function.js").read_bytes()
    r = await ui.get("/ui/function.js", headers={"Accept-Encoding": "gzip, br"})
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
    assert r.content == plain  # httpx decodes it
    assert int(r.headers["content-length"]) < len(plain) / 2
    zipped_etag = r.headers["etag"]
    again = await ui.get("/ui/function.js", headers={"Accept-Encoding": "gzip",
                                                     "If-None-Match": zipped_etag})
    assert again.status_code == 304
    refused = await ui.get("/ui/function.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers and refused.headers["etag"] != zipped_etag


async def test_only_the_files_of_the_folder_are_served(ui):
    for path in ("/ui/nothing.js", "/ui/.hidden", "/ui/..%2Fapp.py", "/ui/%2e%2e%2fauth.py"):
        r = await ui.get(path)
        assert r.status_code == 404, path
    r = await ui.get("/ui/nothing.js")
    check(r, "GET", "/ui/{file}")


# --- traffic samples --------------------------------------------------------------


def test_quantile_interpolates_within_a_bucket():
    cumulative = [0] * (len(BUCKETS) + 1)
    # 10 calls: 5 in (0.01, 0.025], 5 in (0.05, 0.1]
    for i, bound in enumerate((*BUCKETS, math.inf)):
        cumulative[i] = (5 if bound >= 0.025 else 0) + (5 if bound >= 0.1 else 0)
    assert quantile(0.5, cumulative) == pytest.approx(0.025)
    assert quantile(0.99, cumulative) == pytest.approx(0.05 + 0.05 * (9.9 - 5) / 5)
    assert quantile(0.5, [0] * len(cumulative)) is None
    slow = [0] * len(BUCKETS) + [3]  # all above the last bound
    assert quantile(0.5, slow) == BUCKETS[-1]


async def test_totals_are_read_from_the_gateway_counters(app):
    metrics = app.gateway.metrics
    metrics.record("f.openfaas-fn", 200, 0.02)
    metrics.record("f.openfaas-fn", 200, 0.2)
    metrics.record("f.openfaas-fn", 502, 0.001)
    totals = read_totals(metrics)["f.openfaas-fn"]
    assert (totals.count, totals.errors) == (3, 1)
    assert totals.seconds == pytest.approx(0.221)
    assert totals.buckets[-1] == 3 and totals.buckets[0] == 1  # 0.001 <= 0.005


def test_the_ring_keeps_an_hour_of_samples():
    now = [1000.0]
    state: dict[str, Totals] = {}
    samples = Samples(lambda: dict(state), interval=10, keep=3, clock=lambda: now[0])
    for step in range(6):
        state["f.ns"] = Totals(count=step * 10, errors=step,
                               buckets=(0, step * 10, *([step * 10] * len(BUCKETS))))
        samples.take()
        now[0] += 10
    series = samples.series("f.ns")
    assert len(series) == 3  # keep + 1 copies give `keep` intervals
    assert [s["requests"] for s in series] == [10, 10, 10]
    assert series[-1]["rps"] == 1.0 and series[-1]["errors"] == 1
    assert series[-1]["p50"] == pytest.approx(0.0075)
    assert samples.series("other.ns")[0] == {
        "time": series[0]["time"], "seconds": 10.0, "requests": 0, "rps": 0.0, "errors": 0,
        "p50": None, "p99": None}


async def test_function_metrics_endpoint(ui, app):
    r = await ui.post("/system/functions", json={"service": "f", "image": "img:1"})
    assert r.status_code == 202
    inner = app.api  # through the middleware to the Starlette app
    while not hasattr(inner, "state"):
        inner = inner.app
    ring = inner.state.samples
    metrics = app.gateway.metrics
    ring.take()
    metrics.record("f.openfaas-fn", 200, 0.03)
    metrics.record("f.openfaas-fn", 500, 0.03)
    ring.take()
    r = await ui.get("/system/function/f/metrics")
    assert r.status_code == 200
    check(r, "GET", "/system/function/{name}/metrics")
    body = r.json()
    assert body["invocations"] == 2 and body["errors"] == 1 and body["interval"] == 10.0
    assert [(s["requests"], s["errors"]) for s in body["samples"]] == [(2, 1)]
    r = await ui.get("/system/functions/summary")
    check(r, "GET", "/system/functions/summary")
    [summary] = r.json()
    assert (summary["name"], summary["invocations"], summary["errors"]) == ("f", 2, 1)
    assert summary["recent"]["requests"] == 2
    for path in ("/system/function/nope/metrics", "/system/function/nope/replicas"):
        r = await ui.get(path)
        assert r.status_code == 404
        check(r, "GET", path.replace("nope", "{name}"))
    r = await ui.get("/system/functions/summary", params={"namespace": "nope"})
    assert r.status_code == 400 and r.text.startswith("namespace:")
    r = await ui.get("/system/function/f/metrics", auth=None)
    assert r.status_code == 401


async def test_the_summary_names_each_functions_last_change(ui, app):
    await ui.post("/system/functions", json={"service": "a", "image": "img:1"})
    await ui.post("/system/functions", json={"service": "b", "image": "img:1"})
    await ui.post("/system/scale-function/a", json={"replicas": 3})
    r = await ui.get("/system/functions/summary")
    check(r, "GET", "/system/functions/summary")
    changes = {s["name"]: s["lastChange"] for s in r.json()}
    assert changes["a"]["type"] == "function.scaled" and changes["a"]["version"] == 2
    assert changes["a"]["actor"] == "admin" and changes["a"]["time"].endswith("Z")
    assert changes["b"]["type"] == "function.deployed"
    # later records are read incrementally, a page at a time
    inner = app.api
    while not hasattr(inner, "state"):
        inner = inner.app
    index = inner.state.last_changes
    index.page = 1
    await ui.put("/system/functions", json={"service": "b", "image": "img:2"})
    await ui.post("/system/functions", json={"service": "c", "image": "img:1"})
    r = await ui.get("/system/functions/summary")
    changes = {s["name"]: s["lastChange"] for s in r.json()}
    assert changes["b"]["type"] == "function.updated" and changes["c"]["version"] == 1
    await ui.request("DELETE", "/system/functions", json={"functionName": "c"})
    assert [s["name"] for s in (await ui.get("/system/functions/summary")).json()] == ["a", "b"]


async def test_replicas_without_an_engine_are_none(ui):
    await ui.post("/system/functions", json={"service": "f", "image": "img:1"})
    r = await ui.get("/system/function/f/replicas")
    assert r.status_code == 200 and r.json() == []
    check(r, "GET", "/system/function/{name}/replicas")


# --- the stack reader --------------------------------------------------------------

STACK = """\
version: 1.0
provider:
  name: openfaas
functions:
  echo:
    image: docker-faas-fixtures/echo:${TAG:-latest}
    environment:
      A: "1"
    labels:
      team: ${TEAM}
  env:
    lang: python3
    image: docker-faas-fixtures/env:latest
    namespace: dev
    replicas: 3
"""


async def test_a_stack_becomes_the_body_of_apply(ui, store):
    head = store.head()
    r = await ui.post("/system/stack/parse", content=STACK,
                      headers={"Content-Type": "application/x-yaml"})
    assert r.status_code == 200, r.text
    check(r, "POST", "/system/stack/parse")
    body = r.json()
    assert body["functions"] == [
        {"service": "echo", "image": "docker-faas-fixtures/echo:latest", "envVars": {"A": "1"},
         "labels": {"team": ""}, "annotations": {}},
        {"service": "env", "image": "docker-faas-fixtures/env:latest", "labels": {},
         "annotations": {}, "namespace": "dev"},
    ]
    assert body["warnings"] == ["stack.yml: function \"env\": unknown key 'replicas' ignored"]
    assert store.head() == head  # reading appends nothing
    # the plan from it, as the page asks next
    plan = await ui.post("/system/apply", json={"functions": body["functions"][:1],
                                                "dryRun": True})
    assert plan.status_code == 200 and plan.json()["plan"][0]["action"] == "create"


async def test_variables_come_from_the_request_never_from_the_gateway(ui, monkeypatch):
    monkeypatch.setenv("TEAM", "leaked")
    r = await ui.post("/system/stack/parse", content=STACK)
    assert r.json()["functions"][0]["labels"] == {"team": ""}
    r = await ui.post("/system/stack/parse",
                      json={"stack": STACK, "env": {"TEAM": "a", "TAG": "1.2"}})
    fn = r.json()["functions"][0]
    assert fn["labels"] == {"team": "a"} and fn["image"].endswith(":1.2")
    r = await ui.post("/system/stack/parse", json={"stack": STACK, "env": {"TEAM": 1}})
    assert r.status_code == 400 and r.text.startswith("env:")


async def test_stack_errors_name_the_file_function_and_field(ui):
    bad = "provider:\n  name: openfaas\nfunctions:\n  f:\n    image: 'a b'\n  g: {}\n"
    r = await ui.post("/system/stack/parse", content=bad)
    assert r.status_code == 400
    check(r, "POST", "/system/stack/parse")
    lines = r.text.strip().split("\n")
    assert lines[0] == "stack.yml: function \"f\": image: 'a b' must not contain white space"
    assert lines[1].startswith('stack.yml: function "g": image: no image is set')
    assert "/tmp" not in r.text
    r = await ui.post("/system/stack/parse", content="functions: [")
    assert r.status_code == 400 and r.text.startswith("stack.yml: not valid YAML")
    r = await ui.post("/system/stack/parse", content="   ")
    assert r.status_code == 400 and r.text.startswith("stack:")


@pytest.mark.parametrize("stack", [
    "provider: {name: openfaas}\nfunctions:\n  f:\n    image: x\n"
    "    environment_file: [/etc/passwd]\n",
    "provider: {name: openfaas}\nbase: &b\n  environment_file: ['../../secrets.yml']\n"
    "functions:\n  f:\n    <<: *b\n    image: x\n",
    "provider: {name: openfaas}\nfunctions:\n  f:\n    image: x\n"
    "    ${K:-environment_file}: [a.yml]\n",
])
async def test_environment_files_are_refused(ui, stack):
    r = await ui.post("/system/stack/parse", content=stack)
    assert r.status_code == 400
    assert r.text.startswith("stack.yml: environment_file: not available")


async def test_a_stack_over_a_mebibyte_is_refused(ui):
    r = await ui.post("/system/stack/parse", content=b"#" * (1024 * 1024 + 1))
    assert r.status_code == 413
    check(r, "POST", "/system/stack/parse")


def test_the_ui_folder_ships_as_package_data():
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"ui/*"' in text and "package-data" in text
