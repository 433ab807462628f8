"""The gateway as a container (Containerfile, docker-compose.yml), run the way a user would.

The image is built by scripts/gateway-image.sh (skipped when its source-hash label matches)
and brought up by scripts/compose.sh, which prepares the host (docker-compose itself, the
socket's group, SECRETS_DIR, a generated password file) and runs Debian's docker-compose.
Each test stack is a compose project of its own (`dfaas-t-<pid>-<hex>`) on free ports with
its own instance label; it is taken down with its volumes, and every function container of
its instance removed, also when the test fails. Projects left by an interrupted run (their
pytest process is gone) are removed first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    FIXTURE,
    ROOT,
    TEST_PREFIX,
    _stale,
    docker,
    free_port,
    remove_instance,
)

PROJECT_PREFIX = "dfaas-"
PROJECT_LABEL = "com.docker.compose.project"
IMAGE = "docker-faas/gateway:latest"
UID = "10001"


def remove_project(project: str) -> None:
    """Everything a compose project made (containers, volumes), without needing its env."""
    ids = docker("ps", "-aq", "--filter", f"label={PROJECT_LABEL}={project}").split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
    for volume in docker("volume", "ls", "-q", "--filter",
                         f"label={PROJECT_LABEL}={project}").split():
        docker("volume", "rm", "-f", volume, check=False)


def remove_stale_projects() -> None:
    labels = docker("ps", "-a", "--filter", f"label={PROJECT_LABEL}",
                    "--format", f'{{{{.Label "{PROJECT_LABEL}"}}}}').split()
    labels += docker("volume", "ls", "--filter", f"label={PROJECT_LABEL}",
                     "--format", f'{{{{.Label "{PROJECT_LABEL}"}}}}').split()
    for project in set(labels):
        if project.startswith(PROJECT_PREFIX + TEST_PREFIX) and _stale(
                project.removeprefix(PROJECT_PREFIX)):
            remove_project(project)
    remove_instance()  # their function containers, now that no stale gateway recreates them


class Stack:
    """One compose project: the gateway container, its state volume, its functions."""

    def __init__(self, tmp: Path) -> None:
        self.instance = f"{TEST_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.project = PROJECT_PREFIX + self.instance
        self.port = free_port()
        self.metrics_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password_file = tmp / "compose" / "basic-auth-password"
        self.env = {
            **os.environ,
            "GATEWAY_PORT": str(self.port), "METRICS_PORT": str(self.metrics_port),
            "BIND_ADDRESS": "127.0.0.1", "DOCKER_FAAS_INSTANCE": self.instance,
            "FUNCTIONS_NETWORK": "dfaas-" + self.instance,
            "SECRETS_DIR": str(tmp / "secrets"), "GATEWAY_PASSWORD_FILE": str(self.password_file),
            "RESYNC_INTERVAL": "2s", "HEALTH_INTERVAL": "0.25s", "EXEC_TIMEOUT": "10s",
            "AUTOSCALE_ENABLED": "false", "LOG_LEVEL": "info",
        }
        self.client = httpx.Client(base_url=self.url, timeout=15)

    def compose(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "compose.sh"), "-p", self.project, *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def gateway_id(self) -> str:
        cid = self.compose("ps", "-q", "gateway").strip()
        assert cid, "no gateway container"
        return cid

    def state(self) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(docker("inspect", self.gateway_id()))
        state: dict[str, Any] = data[0]["State"]
        return state

    def wait_healthy(self, started_after: str = "", timeout: float = 60) -> float:
        """Seconds until the engine's health check says healthy (of a start after
        `started_after`, when given)."""
        began = time.monotonic()
        state: dict[str, Any] = {}
        while time.monotonic() - began < timeout:
            state = self.state()
            if state["StartedAt"] > started_after and state["Health"]["Status"] == "healthy":
                return time.monotonic() - began
            time.sleep(0.2)
        raise AssertionError(f"gateway not healthy: {state.get('Health')}\n{self.logs()}")

    def logs(self) -> str:
        try:
            return self.compose("logs", "--no-color", "--tail", "40", "gateway", timeout=30)
        except Exception as err:  # the diagnosis must not hide the failure
            return f"(no logs: {err})"

    def functions(self) -> list[str]:
        return sorted(docker("ps", "-q", "--no-trunc", "--filter",
                             f"label=com.docker-faas.instance={self.instance}").split())

    def invoke_until(self, name: str, body: bytes, timeout: float = 30) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: object = "no answer"
        while time.monotonic() < deadline:
            try:
                last = r = self.client.post(f"/function/{name}", content=body)
                if r.status_code == 200 and r.content == body:
                    return r
            except httpx.HTTPError as err:
                last = repr(err)
            time.sleep(0.2)
        raise AssertionError(f"{name} never echoed: {last}\n{self.logs()}")

    def down(self) -> None:
        try:
            self.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=120)
        finally:
            remove_project(self.project)
            remove_instance(self.instance)
            self.client.close()


@pytest.fixture(scope="module")
def image() -> str:
    """The gateway image, built as `just image` builds it (cached by its source hash)."""
    result = subprocess.run(
        ["bash", "scripts/gateway-image.sh"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHON": sys.executable}, timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout.strip())
    return IMAGE


@pytest.fixture
def stack(image: str, tmp_path: Path) -> Iterator[Stack]:
    remove_stale_projects()
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.down()


def test_compose_runs_restarts_and_keeps_state(stack: Stack) -> None:
    # Prometheus is there under the `metrics` profile (its image cannot be pulled here)
    assert "prometheus" in stack.compose("--profile", "metrics", "config", "--services").split()

    began = time.monotonic()
    stack.compose("up", "-d")
    up = time.monotonic() - began
    services = docker("ps", "-a", "--filter", f"label={PROJECT_LABEL}={stack.project}",
                      "--format", '{{.Label "com.docker.compose.service"}}').split()
    assert services == ["gateway"]  # not Prometheus without its profile
    healthy = stack.wait_healthy()
    print(f"compose up {up:.1f} s, then healthy after {healthy:.1f} s")
    cid = stack.gateway_id()

    # not root: the image's user, with the Docker socket's group added by compose
    info = stack.state()
    assert info["Running"] and info["Health"]["Status"] == "healthy"
    assert docker("inspect", "-f", "{{.Config.User}}", cid) == f"{UID}:{UID}"
    status = docker("exec", cid, "cat", "/proc/1/status")
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == [UID] * 4, uid_line
    socket_gid = str(os.stat("/var/run/docker.sock").st_gid)
    assert socket_gid in docker("exec", cid, "id", "-G").split()
    # the image carries the C relay built on the host (same Python minor version)
    assert "invocation parser api._relay (C)" in stack.logs()

    # the credentials come from the compose secret (the generated password file)
    password = stack.password_file.read_text().strip()
    assert stack.password_file.stat().st_mode & 0o777 == 0o640
    auth = ("admin", password)
    assert stack.client.get("/system/functions", auth=("admin", "wrong")).status_code == 401
    r = stack.client.post("/system/secrets", auth=auth,
                          json={"name": "api-key", "value": "s3cret"})
    assert r.status_code in (200, 201, 202), r.text
    r = stack.client.post("/system/functions", auth=auth, json={
        "service": "echo", "image": FIXTURE.format("echo"), "secrets": ["api-key"]})
    assert r.status_code == 202, r.text
    stack.invoke_until("echo", b"hello from compose")
    replicas = stack.functions()
    assert len(replicas) == 1
    # SECRETS_DIR is the same path for the engine and the gateway container
    assert docker("exec", replicas[0], "cat", "/var/openfaas/secrets/api-key") == "s3cret"

    events = stack.client.get("/system/events", auth=auth, params={"limit": 1000})
    assert events.status_code == 200 and len(events.json()) >= 2

    # a restart of the container keeps the log (volume) and adopts the running replica
    before = info["StartedAt"]
    stack.compose("restart", "-t", "5")
    healthy = stack.wait_healthy(started_after=before)
    print(f"restart: healthy after {healthy:.1f} s")
    assert stack.gateway_id() == cid
    stack.invoke_until("echo", b"still here")
    assert stack.functions() == replicas
    after = stack.client.get("/system/events", auth=auth, params={"limit": 1000})
    assert after.status_code == 200
    assert after.json() == events.json()

    # torn down: no container, volume or function of this stack is left
    stack.down()
    assert not docker("ps", "-aq", "--filter", f"label={PROJECT_LABEL}={stack.project}")
    assert not docker("volume", "ls", "-q", "--filter", f"label={PROJECT_LABEL}={stack.project}")
    assert not stack.functions()
