"""The CLI commands' pure parts (plan rendering, readiness, FunctionStatus → FunctionDeployment)
and their flows against a scripted gateway (httpx.MockTransport): what is sent, what is
printed, the exit code."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from api import wire
from api.cli import build_parser, run_client
from api.client import CliError
from api.commands import (
    Context,
    Watch,
    deployment_changes,
    judge,
    moment,
    parse_duration,
    render_plan,
    status_to_deployment,
)
from events.model import FunctionState

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

# --- plans --------------------------------------------------------------------------------


def test_plan_shows_creates_updates_with_fields_removes_and_counts():
    plan = [
        {"action": "unchanged", "namespace": "openfaas-fn", "name": "same"},
        {"action": "update", "namespace": "openfaas-fn", "name": "api",
         "changes": [{"field": "image", "before": "a:1", "after": "a:2"},
                     {"field": "envVars.MODE", "before": None, "after": "fast"}]},
        {"action": "create", "namespace": "team", "name": "new", "replicas": 2,
         "image": "b:1"},
        {"action": "remove", "namespace": "openfaas-fn", "name": "old"},
    ]
    assert render_plan(plan) == [
        "~ update  api.openfaas-fn",
        '      image: "a:1" → "a:2"',
        '      envVars.MODE: null → "fast"',
        "+ create  new.team  (image b:1, 2 replicas)",
        "- remove  old.openfaas-fn",
        "Plan: 1 to create, 1 to update, 1 to remove, 1 unchanged.",
    ]


def test_plan_without_changes_says_so():
    plan = [{"action": "unchanged", "namespace": "openfaas-fn", "name": n} for n in "ab"]
    assert render_plan(plan) == ["Nothing to change: 2 functions up to date."]
    assert render_plan([{"action": "create", "namespace": "x", "name": "one",
                         "replicas": 1}]) == [
        "+ create  one.x  (1 replica)",
        "Plan: 1 to create, 0 to update, 0 to remove, 0 unchanged."]


# --- readiness ----------------------------------------------------------------------------


def status(replicas: int, available: int, **extra: Any) -> dict[str, Any]:
    return {"name": "f", "namespace": "openfaas-fn", "image": "i", "replicas": replicas,
            "availableReplicas": available, **extra}


def test_created_function_is_ready_when_every_replica_is_available():
    w = Watch("f", "openfaas-fn", "create")
    judge(w, None, 0.1)
    assert not w.ready and "not found" in w.note
    judge(w, status(2, 1), 0.2)
    assert not w.ready and w.note == "1/2 available"
    judge(w, status(2, 2), 0.3)
    assert w.ready
    judge(w, status(0, 0), 0.3)  # deployed asleep (com.openfaas.scale.min: 0)
    assert w.ready


def test_update_waits_for_its_rollout_and_errors_block():
    w = Watch("f", "openfaas-fn", "update")
    judge(w, status(1, 1), 0.1)  # the old replica, before the controller started
    assert not w.ready and "update to start" in w.note
    judge(w, status(1, 1, rollout="update in progress since …"), 0.4)
    assert not w.ready and w.seen_rollout and w.note == "rolling out"
    judge(w, status(1, 1), 0.8)
    assert w.ready
    late = Watch("f", "openfaas-fn", "update")  # its rollout came and went between polls
    judge(late, status(1, 1), 5.0)
    assert late.ready
    broken = Watch("f", "openfaas-fn", "update")
    judge(broken, status(1, 1, lastError="pull access denied"), 9.0)
    assert not broken.ready and broken.note == "error: pull access denied"


# --- FunctionStatus → FunctionDeployment -----------------------------------------------------


SPECS = [
    {"service": "plain", "image": "fn:1", "labels": {}, "annotations": {}},
    {"service": "full", "image": "fn:2", "namespace": "team", "envProcess": "cat",
     "envVars": {"A": "1", "B": ""}, "labels": {"com.openfaas.scale.min": "2", "x": "y"},
     "annotations": {"topic": "t"}, "secrets": ["db-pass"], "constraints": ["node=a"],
     "limits": {"memory": "128Mi", "cpu": "0.5"}, "requests": {"memory": "64Mi"},
     "readOnlyRootFilesystem": True},
]


@pytest.mark.parametrize("body", SPECS, ids=lambda b: b["service"])
def test_status_turns_back_into_the_deployment_that_made_it(body):
    spec = wire.deployment(body, None)
    shown = wire.status(FunctionState(spec=spec, replicas=3, version=4, updated_at=NOW,
                                      created_at=NOW), 2)
    shown.update(invocationCount=7.0, rollout="…", lastError="…", restarts=1)
    assert shown["labels"]["faas_function"] == body["service"]
    back = status_to_deployment(shown)
    assert "faas_function" not in back["labels"]
    for dropped in ("name", "replicas", "availableReplicas", "createdAt", "invocationCount",
                    "rollout", "lastError", "restarts"):
        assert dropped not in back
    assert wire.deployment(back, None) == spec  # deploying it again asks for the same spec


def test_deployment_changes_go_one_level_into_maps():
    before = {"service": "f", "image": "a", "envVars": {"A": "1", "B": "2"}, "labels": {}}
    after = {"service": "f", "image": "b", "envVars": {"A": "1", "C": "3"}, "labels": {},
             "secrets": ["s"]}
    assert deployment_changes(before, after) == [
        {"field": "image", "before": "a", "after": "b"},
        {"field": "envVars.B", "before": "2", "after": None},
        {"field": "envVars.C", "before": None, "after": "3"},
        {"field": "secrets", "before": None, "after": ["s"]},
    ]
    assert deployment_changes(after, after) == []


def test_durations_become_rfc3339_times_ago():
    assert parse_duration("1h30m") == 5400 and parse_duration("500ms") == 0.5
    assert parse_duration("2026-01-01T00:00:00Z") is None and parse_duration("10") is None
    assert moment("10m", NOW) == "2026-03-04T04:56:07.000000Z"
    assert moment("2026-01-01T00:00:00Z", NOW) == "2026-01-01T00:00:00Z"


# --- commands against a scripted gateway -------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


class FakeGateway:
    """Routes (method, path) to canned answers and keeps every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.seen: list[httpx.Request] = []

    def on(self, method: str, path: str, answer: Handler | list[Any] | dict[str, Any],
           status: int = 200) -> None:
        if callable(answer):
            self.routes[(method, path)] = answer
        else:
            self.routes[(method, path)] = lambda _r: httpx.Response(status, json=answer)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return httpx.Response(404, text="404 page not found")
        return handler(request)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.seen if r.method == method and r.url.path == path]


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


def run(gateway: FakeGateway, argv: list[str], env: dict[str, str] | None = None, *,
        terminal: bool = False, sleep: Callable[[float], None] = lambda _s: None
        ) -> tuple[int, str]:
    ticks = iter(range(10_000))
    out = io.StringIO()
    ctx = Context(env={"OPENFAAS_PASSWORD": "pw", **(env or {})},
                  out=Console(file=out, width=200, highlight=False, force_terminal=terminal),
                  json="json" in argv, transport=httpx.MockTransport(gateway),
                  sleep=sleep, clock=lambda: float(next(ticks)), now=lambda: NOW)
    code = run_client(build_parser().parse_args(argv), ctx)
    return code, out.getvalue()


STACK = """\
version: 1.0
provider:
  name: openfaas
  gateway: http://stack-gw:8080
functions:
  api:
    image: fn:2
    environment:
      MODE: fast
  new:
    image: fn:1
"""


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    path = tmp_path / "stack.yml"
    path.write_text(STACK)
    return path


def apply_answer(plan: list[dict[str, Any]], *, dry_run: bool = False) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "correlationId": request.headers.get("x-correlation-id", "req-1"),
            "dryRun": dry_run, "applied": not dry_run and any(
                s["action"] != "unchanged" for s in plan),
            "position": 12, "namespaces": ["openfaas-fn"], "plan": plan})
    return answer


PLAN = [
    {"action": "update", "namespace": "openfaas-fn", "name": "api",
     "changes": [{"field": "image", "before": "fn:1", "after": "fn:2"}]},
    {"action": "create", "namespace": "openfaas-fn", "name": "new", "replicas": 1,
     "image": "fn:1"},
    {"action": "remove", "namespace": "openfaas-fn", "name": "gone"},
]


def sequence(*statuses: dict[str, Any] | None) -> Handler:
    """Answer each GET with the next status (None: 404); the last one repeats."""
    queue = list(statuses)

    def answer(_request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx.Response(404) if item is None else httpx.Response(200, json=item)
    return answer


def test_apply_sends_the_stack_prints_the_plan_and_waits(gateway, stack, capsys):
    gateway.on("POST", "/system/apply", apply_answer(PLAN))
    gateway.on("GET", "/system/function/api",
               sequence(status(1, 1), status(1, 1, rollout="…"), status(1, 1)))
    gateway.on("GET", "/system/function/new", sequence(None, status(1, 0), status(1, 1)))
    code, out = run(gateway, ["apply", "-f", str(stack), "--prune",
                              "--gateway", "http://flag:8080"])
    assert code == 0, capsys.readouterr().err
    [sent] = gateway.sent("POST", "/system/apply")
    assert str(sent.url).startswith("http://flag:8080/")
    assert sent.headers["user-agent"].startswith("docker-faas-cli/")
    assert sent.headers["x-correlation-id"].startswith("cli-")
    body = json.loads(sent.content)
    assert body["prune"] is True and body["dryRun"] is False
    assert [f["service"] for f in body["functions"]] == ["api", "new"]
    assert body["functions"][0]["envVars"] == {"MODE": "fast"}
    assert '~ update  api.openfaas-fn\n      image: "fn:1" → "fn:2"' in out
    assert "+ create  new.openfaas-fn" in out and "- remove  gone.openfaas-fn" in out
    assert "✓ api.openfaas-fn ready" in out and "✓ new.openfaas-fn ready" in out
    assert "2 of 2 created or updated functions ready in" in out
    assert not gateway.sent("GET", "/system/function/gone")


def test_apply_on_a_terminal_shows_progress_bars(gateway, stack):
    gateway.on("POST", "/system/apply", apply_answer(PLAN[1:2]))
    gateway.on("GET", "/system/function/new", sequence(status(2, 0), status(2, 1),
                                                       status(2, 2)))
    code, out = run(gateway, ["apply", "-f", str(stack)], terminal=True)
    assert code == 0
    assert "new.openfaas-fn" in out and "2/2" in out and "━" in out  # the bar, filled
    assert "✓" not in out  # the bars replace the per-function lines
    assert len(gateway.sent("GET", "/system/function/new")) == 3


def test_apply_uses_the_stack_gateway_before_the_environment_as_faas_cli(gateway, stack):
    gateway.on("POST", "/system/apply", apply_answer([]))
    run(gateway, ["apply", "-f", str(stack)])
    assert gateway.seen[0].url.host == "stack-gw"
    run(gateway, ["apply", "-f", str(stack)], env={"OPENFAAS_URL": "http://env-gw:1"})
    assert gateway.seen[1].url.host == "stack-gw"
    run(gateway, ["apply", "-f", str(stack), "--gateway", "http://flag-gw:2"],
        env={"OPENFAAS_URL": "http://env-gw:1"})
    assert gateway.seen[2].url.host == "flag-gw"


def test_apply_with_nothing_to_change_says_so_and_does_not_wait(gateway, stack):
    plan = [{"action": "unchanged", "namespace": "openfaas-fn", "name": n}
            for n in ("api", "new")]
    gateway.on("POST", "/system/apply", apply_answer(plan))
    code, out = run(gateway, ["apply", "-f", str(stack)])
    assert code == 0 and out == "Nothing to change: 2 functions up to date.\n"
    assert len(gateway.seen) == 1


def test_apply_fails_naming_the_functions_not_ready(gateway, stack, capsys):
    gateway.on("POST", "/system/apply", apply_answer(PLAN))
    gateway.on("GET", "/system/function/api", sequence(status(1, 1, rollout="…")))
    gateway.on("GET", "/system/function/new", sequence(status(2, 1)))
    code, _ = run(gateway, ["apply", "-f", str(stack), "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("docker-faas: not ready within 5s: api.openfaas-fn (1/1 available; "
                          "rolling out), new.openfaas-fn (1/2 available; 1/2 available)")
    assert "Traceback" not in err


def test_apply_json_output_is_one_document(gateway, stack):
    gateway.on("POST", "/system/apply", apply_answer(PLAN[1:2]))
    gateway.on("GET", "/system/function/new", sequence(status(1, 1)))
    code, out = run(gateway, ["apply", "-f", str(stack), "-o", "json"])
    doc = json.loads(out)
    assert code == 0 and doc["plan"] == PLAN[1:2]
    assert doc["ready"] == ["new.openfaas-fn"] and doc["notReady"] == []


def test_diff_is_a_dry_run_and_exit_code_2_only_when_asked(gateway, stack):
    gateway.on("POST", "/system/apply", apply_answer(PLAN, dry_run=True))
    code, out = run(gateway, ["diff", "-f", str(stack)])
    assert code == 0 and "Plan: 1 to create, 1 to update, 1 to remove" in out
    assert json.loads(gateway.seen[0].content)["dryRun"] is True
    assert "x-correlation-id" not in gateway.seen[0].headers
    assert run(gateway, ["diff", "-f", str(stack), "--detailed-exitcode"])[0] == 2
    gateway.on("POST", "/system/apply", apply_answer([], dry_run=True))
    assert run(gateway, ["diff", "-f", str(stack), "--detailed-exitcode"])[0] == 0


def test_invalid_stack_is_reported_by_file_function_and_field(gateway, tmp_path, capsys):
    path = tmp_path / "bad.yml"
    path.write_text(STACK + "  broken:\n    image: fn:1\n    limits:\n      memory: lots\n")
    code, out = run(gateway, ["apply", "-f", str(path)])
    err = capsys.readouterr().err
    assert code == 1 and out == "" and not gateway.seen
    assert err.startswith(f'docker-faas: {path}: function "broken": limits.memory: ')
    assert len(err.splitlines()) == 1


def test_gateway_400_and_401_are_one_line_each(gateway, stack, capsys):
    gateway.on("POST", "/system/apply",
               lambda _r: httpx.Response(400, text="functions[0] (api): image: bad\n"))
    assert run(gateway, ["apply", "-f", str(stack)])[0] == 1
    assert capsys.readouterr().err == (
        "docker-faas: POST /system/apply: 400 Bad Request: functions[0] (api): image: bad\n")
    gateway.on("POST", "/system/apply", lambda _r: httpx.Response(401, text="invalid"))
    assert run(gateway, ["apply", "-f", str(stack)])[0] == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "faas-cli login -g http://stack-gw:8080" in err


def test_events_passes_every_filter(gateway):
    gateway.on("GET", "/system/events", [{
        "position": 3, "stream": "function/openfaas-fn/api", "version": 2,
        "time": "2026-03-04T05:00:00Z", "actor": "admin", "correlationId": "c-1",
        "type": "function.updated", "data": {"spec": {"image": "fn:2"}}}])
    code, out = run(gateway, [
        "events", "--function", "api", "-n", "openfaas-fn", "--type", "function.updated",
        "--type", "function.removed", "--actor", "admin", "--since", "1h",
        "--until", "2026-03-05T00:00:00Z", "--after", "2", "--correlation-id", "c-1",
        "--limit", "5", "--desc"])
    assert code == 0
    params = gateway.seen[0].url.params
    assert params.get_list("type") == ["function.updated", "function.removed"]
    assert dict(params) | {"type": None} == {
        "function": "api", "namespace": "openfaas-fn", "type": None, "actor": "admin",
        "since": "2026-03-04T04:06:07.000000Z", "until": "2026-03-05T00:00:00Z",
        "after": "2", "correlationId": "c-1", "limit": "5", "order": "desc"}
    assert "function.updated" in out and "api.openfaas-fn" in out and "image fn:2" in out


def test_rollback_puts_the_old_spec_back(gateway):
    old = wire.status(FunctionState(spec=wire.deployment(SPECS[1], None), replicas=1,
                                    version=1, created_at=NOW, updated_at=NOW), 0)
    now = {**old, "image": "fn:3", "availableReplicas": 1}
    gateway.on("GET", "/system/function/full/history", [
        {"version": 1, "position": 4, "type": "function.deployed", "changes": []},
        {"version": 2, "position": 9, "type": "function.updated", "changes": []}])

    def function(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=old if request.url.params.get("at") == "4" else now)
    gateway.on("GET", "/system/function/full", function)
    gateway.on("PUT", "/system/functions", lambda _r: httpx.Response(202))
    code, out = run(gateway, ["rollback", "full", "-n", "team", "--to-version", "1",
                              "--timeout", "0"])
    assert code == 0
    [put] = gateway.sent("PUT", "/system/functions")
    assert json.loads(put.content) == status_to_deployment(old)
    assert put.headers["x-correlation-id"].startswith("cli-")
    assert 'image: "fn:3" → "fn:2"' in out
    assert gateway.sent("GET", "/system/function/full/history")[0].url.params["namespace"] \
        == "team"


def test_rollback_of_a_removed_function_posts_it(gateway):
    old = wire.status(FunctionState(spec=wire.deployment(SPECS[0], None), replicas=1,
                                    version=1, created_at=NOW, updated_at=NOW), 0)
    gateway.on("GET", "/system/function/plain/history", [
        {"version": 1, "position": 2, "type": "function.deployed", "changes": []},
        {"version": 2, "position": 5, "type": "function.removed", "changes": []}])
    gateway.on("GET", "/system/function/plain", lambda r: httpx.Response(200, json=old)
               if r.url.params.get("at") == "2" else httpx.Response(404))
    gateway.on("POST", "/system/functions", lambda _r: httpx.Response(202))
    assert run(gateway, ["rollback", "plain", "--to-version", "1", "--timeout", "0"])[0] == 0
    assert json.loads(gateway.sent("POST", "/system/functions")[0].content) == SPECS[0] | {
        "namespace": "openfaas-fn"}


def test_rollback_refuses_unknown_versions_and_removals(gateway, capsys):
    gateway.on("GET", "/system/function/f/history", [
        {"version": 1, "position": 2, "type": "function.deployed", "changes": []},
        {"version": 2, "position": 5, "type": "function.removed", "changes": []}])
    assert run(gateway, ["rollback", "f", "--to-version", "7"])[0] == 1
    assert "f.openfaas-fn has no version 7; its versions are 1..2" in capsys.readouterr().err
    assert run(gateway, ["rollback", "f", "--to-version", "2"])[0] == 1
    assert "is its removal" in capsys.readouterr().err
    assert run(gateway, ["rollback", "nope", "--to-version", "1"])[0] == 1
    assert "nope.openfaas-fn never existed" in capsys.readouterr().err
    assert not gateway.sent("PUT", "/system/functions")


def test_status_lists_every_namespace_with_notes(gateway):
    gateway.on("GET", "/system/namespaces", ["openfaas-fn", "team"])
    listed = {"openfaas-fn": [status(2, 1) | {"invocationCount": 5.0}], "team": []}
    gateway.on("GET", "/system/functions",
               lambda r: httpx.Response(200, json=listed[r.url.params["namespace"]]))
    gateway.on("GET", "/system/function/f",
               lambda _r: httpx.Response(200, json=status(2, 1, lastError="no such image")))
    code, out = run(gateway, ["status"])
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "NAMESPACE", "IMAGE", "READY", "INVOCATIONS", "NOTE"]
    assert row.split()[:5] == ["f", "openfaas-fn", "i", "1/2", "5"]
    assert "error: no such image" in row


def test_logs_prints_lines_and_passes_the_query(gateway):
    lines = [{"name": "f", "namespace": "openfaas-fn", "instance": "abc123",
              "timestamp": "2026-03-04T05:00:00.1Z", "text": "hello"}]
    gateway.on("GET", "/system/logs", lambda _r: httpx.Response(
        200, text="".join(json.dumps(m) + "\n" for m in lines)))
    code, out = run(gateway, ["logs", "f", "--tail", "3", "--since", "2026-03-04T00:00:00Z"])
    assert code == 0 and out == "2026-03-04T05:00:00.1Z abc123 hello\n"
    assert dict(gateway.seen[0].url.params) == {
        "name": "f", "namespace": "openfaas-fn", "follow": "false", "tail": "3",
        "since": "2026-03-04T00:00:00Z"}
    gateway.on("GET", "/system/logs", lambda _r: httpx.Response(404, text="not found: f\n"))
    assert run(gateway, ["logs", "f"])[0] == 1


def test_global_options_work_before_and_after_the_command():
    parser = build_parser()
    args = parser.parse_args(["--gateway", "http://a", "-o", "json", "status"])
    assert (args.gateway, args.output) == ("http://a", "json")
    args = parser.parse_args(["status", "--gateway", "http://b", "--tls-no-verify"])
    assert (args.gateway, args.output, args.tls_no_verify) == ("http://b", "table", True)


def test_events_follow_prints_new_events_until_interrupted(gateway):
    log = [{"position": p, "stream": "function/openfaas-fn/f", "version": p,
            "time": "2026-03-04T05:00:00Z", "actor": "admin", "correlationId": "",
            "type": "function.scaled", "data": {"previous": p - 1, "replicas": p}}
           for p in range(1, 6)]
    visible = [3]  # how much of the log exists

    def events(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        found = [e for e in log[:visible[0]] if e["position"] > int(params.get("after", 0))]
        if params.get("order") == "desc":
            found.reverse()
        return httpx.Response(200, json=found[:int(params.get("limit", 100))])
    gateway.on("GET", "/system/events", events)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        visible[0] = 5  # two more events arrive while it sleeps
        if len(naps) == 2:
            raise KeyboardInterrupt

    code, out = run(gateway, ["events", "--follow", "--limit", "2"], sleep=sleep)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["2", "3", "4", "5"]
    assert "replicas 3 → 4" in out
    first, second = gateway.seen[0].url.params, gateway.seen[1].url.params
    assert (first["order"], first["limit"]) == ("desc", "2")
    assert second["after"] == "3" and "order" not in second


def test_password_from_stdin_and_tls_option(gateway, monkeypatch):
    gateway.on("GET", "/system/namespaces", ["openfaas-fn"])
    gateway.on("GET", "/system/functions", [])
    args = build_parser().parse_args(["--password-stdin", "-u", "ci", "status"])
    ctx = Context(env={}, out=Console(file=io.StringIO()), transport=httpx.MockTransport(
        gateway), stdin=lambda: "s3cret\n")
    assert run_client(args, ctx) == 0
    assert gateway.seen[0].headers["authorization"] == "Basic " + base64.b64encode(
        b"ci:s3cret").decode()
    empty = Context(env={}, out=Console(file=io.StringIO()), stdin=lambda: "\n")
    with pytest.raises(CliError, match="--password-stdin: nothing was read"):
        empty.client(args)
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(httpx, "Client", lambda **kw: made.append(kw))
    for argv in (["status"], ["status", "--tls-no-verify"]):
        Context(env={}, out=Console(file=io.StringIO())).client(build_parser().parse_args(argv))
    assert [kw["verify"] for kw in made] == [True, False]
