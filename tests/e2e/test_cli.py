"""`docker-faas` the client, run as a subprocess against a real gateway on the real engine.

The CLI finds its credentials where `faas-cli login` leaves them (a config.yml under
OPENFAAS_CONFIG), so these runs also cover the discovery of docs/cli.md. The stack tests use
a namespace of their own, so `--prune` never touches what other tests deploy.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import FIXTURE, PASSWORD, Gateway, free_port, inspect

pytestmark = pytest.mark.engine

CLI = Path(sys.executable).with_name("docker-faas")
NS = "cli-stack"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway(Path(tmp_path_factory.mktemp("cli")))
    try:
        yield gateway.start()
    finally:
        gateway.close()


@pytest.fixture(scope="module")
def login(gw: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A faas-cli config.yml as `faas-cli login -g <gw> -u admin` writes it."""
    directory = Path(tmp_path_factory.mktemp("openfaas-config"))
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    (directory / "config.yml").write_text(
        f"auths:\n  - gateway: {gw.url}\n    auth: basic\n    token: {token}\n")
    return directory


def cli(gw: Gateway, config: Path | None, *args: str, timeout: float = 180
        ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENFAAS_")}
    env["HOME"] = str(config or "/nonexistent")
    if config is not None:
        env["OPENFAAS_CONFIG"] = str(config)
    return subprocess.run([str(CLI), "--gateway", gw.url, *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def head(gw: Gateway) -> int:
    r = gw.client.get("/system/events", params={"order": "desc", "limit": 1})
    assert r.status_code == 200, r.text
    return int(r.json()[0]["position"]) if r.json() else 0


def events_after(gw: Gateway, position: int) -> list[dict[str, Any]]:
    r = gw.client.get("/system/events", params={"after": position, "limit": 1000})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()
    return events


def stack_yaml(functions: dict[str, dict[str, Any]]) -> str:
    lines = ["version: 1.0", "provider:", "  name: openfaas", "functions:"]
    for name, fields in functions.items():
        lines.append(f"  {name}:")
        lines.append(f"    image: {fields.get('image', FIXTURE.format('echo'))}")
        lines.append("    fprocess: cat")
        if fields.get("env"):
            lines.append("    environment:")
            lines += [f'      {k}: "{v}"' for k, v in fields["env"].items()]
        if fields.get("limits"):
            lines.append("    limits:")
            lines += [f"      {k}: {v}" for k, v in fields["limits"].items()]
    return "\n".join(lines) + "\n"


def check(result: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_apply_a_stack_then_edit_prune_reapply_and_refuse_a_bad_one(
        gw: Gateway, login: Path, tmp_path: Path) -> None:
    created = gw.client.post("/system/namespace/", json={"name": NS,
                                                         "labels": {"openfaas": "1"}})
    assert created.status_code == 201, created.text
    functions = {f"fn-{i}": {"env": {"VERSION": "1"}} for i in range(10)}
    stack = tmp_path / "stack.yml"
    stack.write_text(stack_yaml(functions))

    # 1. ten functions, applied and running
    out = check(cli(gw, login, "apply", "-f", str(stack), "-n", NS))
    assert out.count("+ create  fn-") == 10, out
    assert "Plan: 10 to create, 0 to update, 0 to remove, 0 unchanged." in out
    assert "10 of 10 created or updated functions ready in" in out
    for name in functions:
        status = gw.client.get(f"/system/function/{name}", params={"namespace": NS}).json()
        assert status["availableReplicas"] == status["replicas"] == 1, status
        r = gw.client.post(f"/function/{name}.{NS}", content=name.encode())
        assert (r.status_code, r.text) == (200, name)

    # 2. one changed, one removed, one added: exactly those three events, one correlation id
    before = head(gw)
    functions["fn-3"]["env"] = {"VERSION": "2"}
    del functions["fn-9"]
    functions["fn-10"] = {"env": {"VERSION": "1"}}
    stack.write_text(stack_yaml(functions))
    diff = check(cli(gw, login, "diff", "-f", str(stack), "-n", NS, "--prune",
                     "--detailed-exitcode"), code=2)
    assert head(gw) == before  # a diff appends nothing
    out = check(cli(gw, login, "apply", "-f", str(stack), "-n", NS, "--prune"))
    for expected in (f'~ update  fn-3.{NS}\n      envVars.VERSION: "1" → "2"',
                     f"+ create  fn-10.{NS}", f"- remove  fn-9.{NS}",
                     "Plan: 1 to create, 1 to update, 1 to remove, 8 unchanged."):
        assert expected in out and expected in diff, out
    appended = events_after(gw, before)
    assert sorted((e["type"], e["stream"]) for e in appended) == [
        ("function.deployed", f"function/{NS}/fn-10"),
        ("function.removed", f"function/{NS}/fn-9"),
        ("function.updated", f"function/{NS}/fn-3"),
    ], appended
    assert len({e["correlationId"] for e in appended}) == 1
    correlation = appended[0]["correlationId"]
    assert correlation.startswith("cli-") and f"correlation id {correlation}" in out
    assert all(e["userAgent"].startswith("docker-faas-cli/") for e in appended)
    assert gw.client.get("/system/function/fn-9", params={"namespace": NS}).status_code == 404
    fn3 = gw.client.get("/system/function/fn-3", params={"namespace": NS}).json()
    assert fn3["envVars"] == {"VERSION": "2"} and fn3["availableReplicas"] == 1
    r = gw.client.post(f"/function/fn-10.{NS}", content=b"new")
    assert (r.status_code, r.text) == (200, "new")

    # 3. the same stack again: nothing to change, nothing appended
    position = head(gw)
    out = check(cli(gw, login, "apply", "-f", str(stack), "-n", NS, "--prune"))
    assert out.strip() == "Nothing to change: 10 functions up to date."
    assert head(gw) == position

    # 4. one invalid function: refused before anything is sent, naming file, function, field
    functions["fn-5"]["limits"] = {"memory": "lots"}
    bad = tmp_path / "bad.yml"
    bad.write_text(stack_yaml(functions))
    result = cli(gw, login, "apply", "-f", str(bad), "-n", NS, "--prune")
    check(result, code=1)
    assert result.stderr.startswith(f'docker-faas: {bad}: function "fn-5": limits.memory: ')
    assert head(gw) == position


def test_events_history_rollback_status_and_logs(gw: Gateway, login: Path) -> None:
    name = f"roll-{uuid.uuid4().hex[:6]}"
    gw.deploy(name, "echo", envProcess="cat", envVars={"A": "1"})
    gw.deploy(name, "echo", method="PUT", envProcess="cat", envVars={"A": "2"},
              labels={"tier": "web"})

    def updated() -> bool:  # the one replica left runs the second version
        running = gw.containers(name)
        status = gw.client.get(f"/system/function/{name}").json()
        config = inspect(running[0])["Config"] if len(running) == 1 else None
        return (isinstance(config, dict) and "A=2" in config["Env"]
                and status.get("availableReplicas") == 1 and "rollout" not in status)

    gw.wait_for(f"{name}'s update", updated)

    out = check(cli(gw, login, "history", name))
    assert 'envVars.A: "1" → "2"' in out and 'labels.tier: null → "web"' in out
    history = json.loads(check(cli(gw, login, "history", name, "-o", "json")))
    assert [v["type"] for v in history] == ["function.deployed", "function.updated"]

    before = head(gw)
    out = check(cli(gw, login, "rollback", name, "--to-version", "1"))
    assert 'envVars.A: "2" → "1"' in out and f"✓ {name}.openfaas-fn ready" in out
    [event] = events_after(gw, before)
    first = gw.client.get("/system/events", params={"function": name}).json()[0]
    assert event["type"] == "function.updated" and event["stream"].endswith(f"/{name}")
    assert event["data"]["spec"] == first["data"]["spec"]
    assert event["correlationId"].startswith("cli-")

    out = check(cli(gw, login, "events", "--function", name))
    assert out.count("function.updated") == 2 and out.count("function.deployed") == 1
    listed = json.loads(check(cli(gw, login, "events", "--function", name, "--type",
                                  "function.updated", "--desc", "--limit", "1", "-o", "json")))
    assert [e["position"] for e in listed] == [event["position"]]

    row = next(line for line in check(cli(gw, login, "status")).splitlines()
               if line.startswith(name))
    assert row.split()[:4] == [name, "openfaas-fn", FIXTURE.format("echo"), "1/1"]
    detail = json.loads(check(cli(gw, login, "status", name, "-o", "json")))
    assert detail["envVars"] == {"A": "1"} and detail["availableReplicas"] == 1

    assert gw.client.post(f"/function/{name}", content=b"x").status_code == 200

    def logged() -> bool:
        return "Forking fprocess" in check(cli(gw, login, "logs", name, "--tail", "20"))

    gw.wait_for(f"{name}'s log lines", logged, timeout=20)


def test_errors_are_one_line_without_traceback(gw: Gateway, tmp_path: Path) -> None:
    result = cli(gw, None, "status")  # no login anywhere
    check(result, code=1)
    assert len(result.stderr.splitlines()) == 1
    assert "unauthorized (401)" in result.stderr
    assert f"faas-cli login -g {gw.url}" in result.stderr

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    token = base64.b64encode(b"admin:not-it").decode()
    (wrong / "config.yml").write_text(
        f"auths:\n  - gateway: {gw.url}\n    auth: basic\n    token: {token}\n")
    result = cli(gw, wrong, "events")
    check(result, code=1)
    assert f"refused the credentials from {wrong / 'config.yml'}" in result.stderr

    nowhere = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([str(CLI), "--gateway", nowhere, "status"], capture_output=True,
                            text=True, timeout=60)
    check(result, code=1)
    assert result.stderr.startswith(f"docker-faas: cannot reach the gateway at {nowhere}: ")
