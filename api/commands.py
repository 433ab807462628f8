"""The client commands of `docker-faas`: apply, diff, events, history, rollback, status, logs.

Each command takes the parsed arguments and a `Context` (environment, output, how to reach
the gateway) and returns the exit code; failures are raised as `CliError` and printed by
`api.cli` as one line each. The pure parts (plan rendering, readiness, FunctionStatus →
FunctionDeployment) are functions of their own, tested without a gateway. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from api.client import CliError, GatewayClient, choose_gateway, find_credentials

DEFAULT_NAMESPACE = "openfaas-fn"
DEFAULT_TIMEOUT = 120.0
POLL_INTERVAL = 0.25
FOLLOW_INTERVAL = 1.0
# An update whose rollout was never seen counts as done only after this long: the gateway
# shows `rollout` once the controller has started the new replicas, not at the append.
UPDATE_SETTLE = 2.0
EXIT_CHANGES = 2  # diff --detailed-exitcode: the plan has changes

_ARROW = "→"
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


@dataclass
class Context:
    """What a command needs from outside: environment, output, time, and the transport."""

    env: Mapping[str, str]
    out: Console
    json: bool = False
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    stdin: Callable[[], str] = lambda: sys.stdin.read()

    def client(self, args: argparse.Namespace, stack_gateway: str | None = None) -> GatewayClient:
        url, _ = choose_gateway(args.gateway, self.env, stack_gateway)
        password = None
        if args.password_stdin:
            password = self.stdin().strip()
            if not password:
                raise CliError("--password-stdin: nothing was read from standard input")
        credentials = find_credentials(url, self.env, username=args.username,
                                       password=password)
        return GatewayClient(url, credentials, verify=not args.tls_no_verify,
                             transport=self.transport)

    def print_json(self, value: Any) -> None:
        self.out.file.write(json.dumps(value, indent=2) + "\n")
        self.out.file.flush()

    def line(self, text: str) -> None:
        """One plain line, as it is (no markup, no wrapping), flushed."""
        self.out.file.write(text + "\n")
        self.out.file.flush()


def warn(text: str) -> None:
    sys.stderr.write(f"docker-faas: warning: {text}\n")


def qualified(name: str, namespace: str | None) -> str:
    return f"{name}.{namespace or DEFAULT_NAMESPACE}"


def new_correlation_id() -> str:
    return f"cli-{uuid.uuid4().hex}"


# --- plans -----------------------------------------------------------------------------


def show_value(value: Any) -> str:
    """A plan or history value: JSON, so a string is quoted and a missing value reads null."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def plan_counts(plan: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = {"create": 0, "update": 0, "remove": 0, "unchanged": 0}
    for step in plan:
        action = str(step.get("action"))
        counts[action] = counts.get(action, 0) + 1
    return counts


def has_changes(plan: Sequence[Mapping[str, Any]]) -> bool:
    return any(step.get("action") in ("create", "update", "remove") for step in plan)


def render_plan(plan: Sequence[Mapping[str, Any]]) -> list[str]:
    """The plan as lines: `+` create, `~` update with each field's change, `-` remove, then
    a summary. Unchanged functions are only counted."""
    lines: list[str] = []
    for step in plan:
        action = step.get("action")
        target = qualified(str(step.get("name")), step.get("namespace"))
        if action == "create":
            extra = []
            if step.get("image"):
                extra.append(f"image {step['image']}")
            if step.get("replicas") is not None:
                count = step["replicas"]
                extra.append(f"{count} replica{'' if count == 1 else 's'}")
            lines.append(f"+ create  {target}" + (f"  ({', '.join(extra)})" if extra else ""))
        elif action == "update":
            lines.append(f"~ update  {target}")
            for change in step.get("changes") or []:
                lines.append(f"      {change.get('field')}: {show_value(change.get('before'))} "
                             f"{_ARROW} {show_value(change.get('after'))}")
        elif action == "remove":
            lines.append(f"- remove  {target}")
    counts = plan_counts(plan)
    if not has_changes(plan):
        total = counts["unchanged"]
        lines.append(f"Nothing to change: {total} function{'' if total == 1 else 's'} "
                     "up to date.")
    else:
        lines.append(f"Plan: {counts['create']} to create, {counts['update']} to update, "
                     f"{counts['remove']} to remove, {counts['unchanged']} unchanged.")
    return lines


_PLAN_STYLES = {"+": "green", "~": "yellow", "-": "red", " ": "dim"}


def print_plan(ctx: Context, plan: Sequence[Mapping[str, Any]]) -> None:
    for line in render_plan(plan):
        style = _PLAN_STYLES.get(line[:1], "bold")
        ctx.out.print(Text(line, style=style), soft_wrap=True)


# --- readiness -------------------------------------------------------------------------


@dataclass
class Watch:
    """One created or updated function being waited for."""

    name: str
    namespace: str
    action: str
    replicas: int | None = None
    available: int = 0
    note: str = "waiting"
    ready: bool = False
    seen_rollout: bool = False

    @property
    def label(self) -> str:
        return qualified(self.name, self.namespace)


def judge(watch: Watch, status: Mapping[str, Any] | None, elapsed: float,
          settle: float = UPDATE_SETTLE) -> None:
    """Update `watch` from one GET /system/function answer (None: 404).

    Ready means: every desired replica available, no rollout under way, no error from the
    controller, and, for an update, its rollout seen or `settle` seconds gone by."""
    watch.ready = False
    if status is None:
        watch.note = "not found (yet)"
        return
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    watch.replicas, watch.available = replicas, available
    if status.get("rollout"):
        watch.seen_rollout = True
        watch.note = "rolling out"
    elif status.get("lastError"):
        watch.note = f"error: {status['lastError']}"
    elif available < replicas:
        watch.note = f"{available}/{replicas} available"
    elif watch.action == "update" and not watch.seen_rollout and elapsed < settle:
        watch.note = "waiting for the update to start"
    else:
        watch.ready = True
        watch.note = "ready"


def watches_for(plan: Sequence[Mapping[str, Any]]) -> list[Watch]:
    return [
        Watch(str(step["name"]), str(step.get("namespace") or DEFAULT_NAMESPACE),
              str(step["action"]), replicas=step.get("replicas"))
        for step in plan if step.get("action") in ("create", "update")
    ]


def _poll(client: GatewayClient, watch: Watch, elapsed: float) -> None:
    response = client.request("GET", f"/system/function/{watch.name}",
                              params={"namespace": watch.namespace}, allow=(404,))
    judge(watch, None if response.status_code == 404 else response.json(), elapsed)


def wait_ready(ctx: Context, client: GatewayClient, watches: list[Watch],
               timeout: float) -> list[Watch]:
    """Poll until every watch is ready or `timeout` passes; the ones not ready."""
    if not watches or timeout <= 0:  # --timeout 0: do not wait
        return []
    start = ctx.clock()
    progress: Progress | None = None
    tasks: dict[str, Any] = {}
    if ctx.out.is_terminal and not ctx.json:
        progress = Progress(
            SpinnerColumn(), TextColumn("{task.fields[label]}"), BarColumn(),
            TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(), console=ctx.out,
        )
        progress.start()
        for w in watches:
            tasks[w.label] = progress.add_task(w.label, total=w.replicas or 1, label=w.label,
                                               note=w.note)
    try:
        while True:
            elapsed = ctx.clock() - start
            for w in watches:
                if w.ready:
                    continue
                _poll(client, w, elapsed)
                if progress is not None:
                    total = max(w.replicas or 0, 1)
                    done = total if w.ready else min(w.available, total)
                    progress.update(tasks[w.label], total=total, completed=done, note=w.note)
                elif w.ready and not ctx.json:
                    ctx.line(f"✓ {w.label} ready ({w.available}/{w.replicas})")
            pending = [w for w in watches if not w.ready]
            if not pending or ctx.clock() - start >= timeout:
                return pending
            ctx.sleep(POLL_INTERVAL)
    finally:
        if progress is not None:
            progress.stop()


def not_ready_error(pending: Sequence[Watch], timeout: float) -> CliError:
    parts = [f"{w.label} ({w.available}/{w.replicas if w.replicas is not None else '?'} "
             f"available; {w.note})" for w in pending]
    return CliError(f"not ready within {timeout:g}s: {', '.join(parts)}")


# --- apply and diff --------------------------------------------------------------------


def _load_stack(files: Sequence[str], env: Mapping[str, str]) -> Any:
    from api.stack import StackError, load_stack  # the stack reader pulls in the API checks

    try:
        stack = load_stack([Path(f) for f in files], env, strict=True)
    except StackError as err:
        raise CliError("\n".join(err.errors)) from None
    for text in stack.warnings:
        warn(text)
    return stack


def _post_apply(ctx: Context, args: argparse.Namespace, *, dry_run: bool,
                correlation: str | None) -> tuple[GatewayClient, dict[str, Any]]:
    stack = _load_stack(args.file, ctx.env)
    client = ctx.client(args, stack.gateway)
    body: dict[str, Any] = {"functions": stack.deployments(), "prune": bool(args.prune),
                            "dryRun": dry_run}
    if args.namespace:
        body["namespace"] = args.namespace
    headers = {"X-Correlation-Id": correlation} if correlation else None
    try:
        response = client.request("POST", "/system/apply", json=body, headers=headers,
                                  allow=(404, 405))
        if response.status_code in (404, 405):
            raise CliError(f"the gateway at {client.url} has no POST /system/apply "
                           "(is it docker-faas, and recent enough?)")
        result = response.json()
    except BaseException:
        client.close()
        raise
    if not isinstance(result, dict) or not isinstance(result.get("plan"), list):
        client.close()
        raise CliError("POST /system/apply: the gateway's answer has no plan")
    return client, result


def cmd_diff(args: argparse.Namespace, ctx: Context) -> int:
    client, result = _post_apply(ctx, args, dry_run=True, correlation=None)
    client.close()
    if ctx.json:
        ctx.print_json(result)
    else:
        print_plan(ctx, result["plan"])
    if args.detailed_exitcode and has_changes(result["plan"]):
        return EXIT_CHANGES
    return 0


def cmd_apply(args: argparse.Namespace, ctx: Context) -> int:
    correlation = new_correlation_id()
    client, result = _post_apply(ctx, args, dry_run=bool(args.dry_run), correlation=correlation)
    with client:
        plan = result["plan"]
        if not ctx.json:
            print_plan(ctx, plan)
        if args.dry_run:
            if ctx.json:
                ctx.print_json(result)
            else:
                ctx.line("Dry run: nothing was applied.")
            return 0
        if not result.get("applied") and not has_changes(plan):
            if ctx.json:
                ctx.print_json(result)
            return 0
        if not ctx.json:
            ctx.line(f"Applied at log position {result.get('position')} "
                     f"(correlation id {result.get('correlationId')}).")
        watches = watches_for(plan)
        started = ctx.clock()
        pending = wait_ready(ctx, client, watches, args.timeout)
        if ctx.json:
            ctx.print_json({**result, "ready": [w.label for w in watches if w.ready],
                            "notReady": [{"name": w.name, "namespace": w.namespace,
                                          "replicas": w.replicas, "available": w.available,
                                          "note": w.note} for w in pending]})
        if pending:
            raise not_ready_error(pending, args.timeout)
        if watches and args.timeout > 0 and not ctx.json:
            count = len(watches)
            ctx.line(f"{count} of {count} created or updated function"
                     f"{'' if count == 1 else 's'} ready in {ctx.clock() - started:.1f}s.")
    return 0


# --- events ----------------------------------------------------------------------------


def parse_duration(text: str) -> float | None:
    """Go-style `1h30m`, `10m`, `45s`, `500ms` in seconds; None when it is not one."""
    if not _DURATION.match(text):
        return None
    return sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))


def moment(text: str, now: datetime) -> str:
    """An RFC 3339 time for the API: a duration means that long ago; anything else is sent
    as given (the gateway names the parameter when it cannot read it)."""
    seconds = parse_duration(text.strip())
    if seconds is None:
        return text
    return (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def events_params(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in (("function", args.function), ("namespace", args.namespace),
                       ("actor", args.actor), ("correlationId", args.correlation_id)):
        if value:
            params[key] = value
    if args.type:
        params["type"] = list(args.type)
    if args.since:
        params["since"] = moment(args.since, now)
    if args.until:
        params["until"] = moment(args.until, now)
    if args.after is not None:
        params["after"] = args.after
    if args.limit is not None:
        params["limit"] = args.limit
    return params


def event_target(stream: str) -> str:
    """`function/ns/name` → `name.ns`; other streams keep their kind in front."""
    kind, _, rest = stream.partition("/")
    namespace, _, name = rest.partition("/")
    if kind in ("function", "outcome") and name:
        return f"{name}.{namespace}"
    if kind == "secret" and name:
        return f"secret {name}.{namespace}"
    return stream


def event_detail(event: Mapping[str, Any]) -> str:
    data = event.get("data") or {}
    kind = event.get("type")
    raw_spec = data.get("spec")
    spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    if kind == "function.deployed":
        count = data.get("replicas")
        return f"image {spec.get('image')}, {count} replica{'' if count == 1 else 's'}"
    if kind == "function.updated":
        return f"image {spec.get('image')}"
    if kind == "function.scaled":
        return f"replicas {data.get('previous')} {_ARROW} {data.get('replicas')}"
    if kind == "replica.failed":
        return f"replica {data.get('replica')}: {data.get('reason')}"
    return ""


def event_row(event: Mapping[str, Any]) -> list[str]:
    return [str(event.get("position")), str(event.get("time")), str(event.get("type")),
            event_target(str(event.get("stream"))), str(event.get("version")),
            str(event.get("actor") or ""), str(event.get("correlationId") or ""),
            event_detail(event)]


_EVENT_COLUMNS = ("POS", "TIME", "TYPE", "TARGET", "VER", "ACTOR", "CORRELATION", "DETAIL")


def _table(columns: Iterable[str], rows: Iterable[Sequence[str]]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _print_event_lines(ctx: Context, events: Iterable[Mapping[str, Any]]) -> None:
    for event in events:
        if ctx.json:
            ctx.line(json.dumps(event, ensure_ascii=False))
        else:
            ctx.line("  ".join(cell for cell in event_row(event) if cell))


def cmd_events(args: argparse.Namespace, ctx: Context) -> int:
    if args.follow and args.desc:
        raise CliError("--follow and --desc cannot be combined (following reads oldest first)")
    params = events_params(args, ctx.now())
    with ctx.client(args) as client:
        if not args.follow:
            if args.desc:
                params["order"] = "desc"
            events = client.get_json("/system/events", params)
            if ctx.json:
                ctx.print_json(events)
            elif not events:
                ctx.line("No events.")
            else:
                ctx.out.print(_table(_EVENT_COLUMNS, (event_row(e) for e in events)))
            return 0
        # follow: without --after/--since the newest ones first (like tail -f), then new ones
        if args.after is None and not args.since:
            first = client.get_json("/system/events", {**params, "order": "desc"})
            first = list(reversed(first))
        else:
            first = client.get_json("/system/events", params)
        _print_event_lines(ctx, first)
        after = max((int(e["position"]) for e in first), default=args.after or 0)
        follow_params = {k: v for k, v in params.items() if k not in ("after", "limit")}
        try:
            while True:
                ctx.sleep(FOLLOW_INTERVAL)
                while True:
                    batch = client.get_json("/system/events",
                                            {**follow_params, "after": after, "limit": 1000})
                    _print_event_lines(ctx, batch)
                    if batch:
                        after = max(int(e["position"]) for e in batch)
                    if len(batch) < 1000:
                        break
        except KeyboardInterrupt:
            return 0


# --- history and rollback --------------------------------------------------------------


def _history(client: GatewayClient, name: str, namespace: str) -> list[dict[str, Any]]:
    response = client.request("GET", f"/system/function/{name}/history",
                              params={"namespace": namespace}, allow=(404,))
    if response.status_code == 404:
        raise CliError(f"function {qualified(name, namespace)} never existed")
    history: list[dict[str, Any]] = response.json()
    return history


def change_lines(changes: Iterable[Mapping[str, Any]]) -> list[str]:
    return [f"{c.get('field')}: {show_value(c.get('before'))} {_ARROW} "
            f"{show_value(c.get('after'))}" for c in changes]


def cmd_history(args: argparse.Namespace, ctx: Context) -> int:
    namespace = args.namespace or DEFAULT_NAMESPACE
    with ctx.client(args) as client:
        history = _history(client, args.function, namespace)
    if ctx.json:
        ctx.print_json(history)
        return 0
    rows = [[str(v.get("version")), str(v.get("position")), str(v.get("time")),
             str(v.get("actor") or ""), str(v.get("type")),
             "\n".join(change_lines(v.get("changes") or [])) or "-"] for v in history]
    ctx.out.print(_table(("VERSION", "POS", "TIME", "ACTOR", "TYPE", "CHANGES"), rows))
    return 0


_COPIED = ("namespace", "envProcess", "envVars", "constraints", "secrets", "limits",
           "requests", "readOnlyRootFilesystem")


def status_to_deployment(status: Mapping[str, Any]) -> dict[str, Any]:
    """The FunctionDeployment body that deploys what a FunctionStatus describes.

    `name` becomes `service`; the live and bookkeeping fields (replicas, availability,
    times, counts, our extensions) are dropped; the `faas_function` label the gateway adds
    to every status is taken out again (when it holds the function's own name)."""
    name = status.get("name")
    if not isinstance(name, str) or not name or not status.get("image"):
        raise CliError("the gateway's FunctionStatus has no name or image")
    body: dict[str, Any] = {"service": name, "image": status["image"]}
    for key in _COPIED:
        value = status.get(key)
        if value not in (None, "", [], {}, False):
            body[key] = json.loads(json.dumps(value))
    labels = dict(status.get("labels") or {})
    if labels.get("faas_function") == name:
        del labels["faas_function"]
    body["labels"] = labels
    body["annotations"] = dict(status.get("annotations") or {})
    return body


def deployment_changes(before: Mapping[str, Any], after: Mapping[str, Any]
                       ) -> list[dict[str, Any]]:
    """Field changes between two FunctionDeployment bodies, one level into maps."""
    out: list[dict[str, Any]] = []
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) or isinstance(new, dict):
            old_map = old if isinstance(old, dict) else {}
            new_map = new if isinstance(new, dict) else {}
            for sub in sorted(set(old_map) | set(new_map)):
                if old_map.get(sub) != new_map.get(sub):
                    out.append({"field": f"{key}.{sub}", "before": old_map.get(sub),
                                "after": new_map.get(sub)})
        else:
            out.append({"field": key, "before": old, "after": new})
    return out


def cmd_rollback(args: argparse.Namespace, ctx: Context) -> int:
    name, namespace = args.function, args.namespace or DEFAULT_NAMESPACE
    label = qualified(name, namespace)
    with ctx.client(args) as client:
        history = _history(client, name, namespace)
        entry = next((v for v in history if v.get("version") == args.to_version), None)
        if entry is None:
            versions = [v.get("version") for v in history]
            raise CliError(f"{label} has no version {args.to_version}; its versions are "
                           f"{versions[0]}..{versions[-1]}" if versions else
                           f"{label} has no versions")
        if entry.get("type") == "function.removed":
            raise CliError(f"version {args.to_version} of {label} is its removal; "
                           "pick a version before it")
        position = entry.get("position")
        past = client.request("GET", f"/system/function/{name}",
                              params={"namespace": namespace, "at": position}, allow=(404,))
        if past.status_code == 404:
            raise CliError(f"{label} did not exist at log position {position}")
        target = status_to_deployment(past.json())
        now = client.request("GET", f"/system/function/{name}",
                             params={"namespace": namespace}, allow=(404,))
        current = None if now.status_code == 404 else status_to_deployment(now.json())
        changes = deployment_changes(current or {}, target)
        if current is not None and not changes:
            if ctx.json:
                ctx.print_json({"function": name, "namespace": namespace,
                                "version": args.to_version, "applied": False, "changes": []})
            else:
                ctx.line(f"{label} already has the spec of version {args.to_version}: "
                         "nothing to do.")
            return 0
        correlation = new_correlation_id()
        method = "PUT" if current is not None else "POST"
        client.request(method, "/system/functions", json=target,
                       headers={"X-Correlation-Id": correlation})
        if ctx.json:
            ctx.print_json({"function": name, "namespace": namespace,
                            "version": args.to_version, "applied": True,
                            "method": method, "correlationId": correlation,
                            "changes": changes})
        else:
            verb = "Updated" if current is not None else "Deployed again"
            ctx.line(f"{verb} {label} to the spec of version {args.to_version} "
                     f"(log position {position}; correlation id {correlation}):")
            for text in change_lines(changes if current is not None else []):
                ctx.line(f"  ~ {text}")
        watch = Watch(name, namespace, "update" if current is not None else "create")
        pending = wait_ready(ctx, client, [watch], args.timeout)
        if pending:
            raise not_ready_error(pending, args.timeout)
    return 0


# --- status ----------------------------------------------------------------------------


def status_note(status: Mapping[str, Any]) -> str:
    notes = []
    if status.get("rollout"):
        notes.append(f"rollout: {status['rollout']}")
    if status.get("lastError"):
        notes.append(f"error: {status['lastError']}")
    if status.get("restarts"):
        notes.append(f"{status['restarts']} restarts ({status.get('lastExitReason') or '?'})")
    return "; ".join(notes)


def _count(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "-" if value is None else str(value)


def _namespaces(client: GatewayClient, namespace: str | None) -> list[str]:
    if namespace:
        return [namespace]
    found = client.get_json("/system/namespaces")
    return [str(n) for n in found] if isinstance(found, list) and found else [DEFAULT_NAMESPACE]


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client(args) as client:
        if args.function:
            return _status_one(ctx, client, args.function, args.namespace or DEFAULT_NAMESPACE)
        rows: list[dict[str, Any]] = []
        for namespace in _namespaces(client, args.namespace):
            listed = client.get_json("/system/functions", {"namespace": namespace})
            for item in sorted(listed, key=lambda s: str(s.get("name"))):
                detail = client.request("GET", f"/system/function/{item['name']}",
                                        params={"namespace": namespace}, allow=(404,))
                if detail.status_code == 200:
                    item = {**item, **detail.json(),
                            "invocationCount": item.get("invocationCount")}
                rows.append(item)
    if ctx.json:
        ctx.print_json(rows)
        return 0
    if not rows:
        ctx.line("No functions.")
        return 0
    ctx.out.print(_table(
        ("NAME", "NAMESPACE", "IMAGE", "READY", "INVOCATIONS", "NOTE"),
        ([str(s.get("name")), str(s.get("namespace")), str(s.get("image")),
          f"{s.get('availableReplicas') or 0}/{s.get('replicas') or 0}",
          _count(s.get("invocationCount")), status_note(s)] for s in rows)))
    return 0


def _status_one(ctx: Context, client: GatewayClient, name: str, namespace: str) -> int:
    response = client.request("GET", f"/system/function/{name}",
                              params={"namespace": namespace}, allow=(404,))
    if response.status_code == 404:
        raise CliError(f"function {qualified(name, namespace)} not found")
    status = response.json()
    listed = client.get_json("/system/functions", {"namespace": namespace})
    count = next((s.get("invocationCount") for s in listed if s.get("name") == name), None)
    if count is not None:
        status["invocationCount"] = count
    if ctx.json:
        ctx.print_json(status)
        return 0
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("name", status.get("name")), ("namespace", status.get("namespace")),
        ("image", status.get("image")),
        ("replicas", f"{status.get('availableReplicas') or 0}/{status.get('replicas') or 0} "
                     "available"),
        ("invocations", _count(status.get("invocationCount"))),
        ("created", status.get("createdAt")), ("fprocess", status.get("envProcess")),
        ("environment", status.get("envVars")), ("labels", status.get("labels")),
        ("annotations", status.get("annotations")), ("secrets", status.get("secrets")),
        ("constraints", status.get("constraints")), ("limits", status.get("limits")),
        ("requests", status.get("requests")),
        ("read-only root", status.get("readOnlyRootFilesystem")),
        ("restarts", status.get("restarts")), ("last exit", status.get("lastExitReason")),
        ("last error", status.get("lastError")), ("rollout", status.get("rollout")),
    ]
    for key, value in rows:
        if value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            value = "\n".join(f"{k}={v}" for k, v in sorted(value.items()))
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        grid.add_row(key, Text(str(value)))
    ctx.out.print(grid)
    return 0


# --- logs ------------------------------------------------------------------------------


def log_line(message: Mapping[str, Any]) -> str:
    return f"{message.get('timestamp', '')} {message.get('instance', '')} " \
           f"{str(message.get('text', '')).rstrip(chr(10))}"


def cmd_logs(args: argparse.Namespace, ctx: Context) -> int:
    params: dict[str, Any] = {"name": args.function,
                              "namespace": args.namespace or DEFAULT_NAMESPACE,
                              "follow": "true" if args.follow else "false"}
    if args.since:
        params["since"] = moment(args.since, ctx.now())
    if args.tail is not None:
        params["tail"] = args.tail
    with ctx.client(args) as client:
        try:
            with client.stream("/system/logs", params) as response:
                for raw in response.iter_lines():
                    if not raw.strip():
                        continue
                    if ctx.json:
                        ctx.line(raw)
                        continue
                    try:
                        message = json.loads(raw)
                    except ValueError:
                        ctx.line(raw)
                        continue
                    ctx.line(log_line(message))
        except KeyboardInterrupt:
            return 0
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Context], int]] = {
    "apply": cmd_apply, "diff": cmd_diff, "events": cmd_events, "history": cmd_history,
    "rollback": cmd_rollback, "status": cmd_status, "logs": cmd_logs,
}
