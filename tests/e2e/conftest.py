"""End-to-end harness: real `docker-faas serve` processes against the real Docker engine.

Each gateway gets its own instance label, network, ports and state file, so tests never see
each other's containers (nor those of a `just up` running on the same engine). Everything
carrying a test instance label is removed afterwards, and leftovers of earlier interrupted
runs are removed at session start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_PREFIX = "t-"
PASSWORD = "e2e-secret"
FIXTURE = "docker-faas-fixtures/{}:latest"


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def _stale(value: str) -> bool:
    """A test instance whose pytest process is gone (`t-<pid>-<hex>`); others may be
    running in a parallel session on the same engine and are left alone."""
    if not value.startswith(TEST_PREFIX):
        return False
    try:
        pid = int(value.split("-")[1])
    except (IndexError, ValueError):
        return True
    return not Path(f"/proc/{pid}").exists()


def remove_instance(instance: str | None = None) -> None:
    """Remove containers and networks of one test instance, or of every stale one."""
    ids = docker("ps", "-aq", "--filter", "label=com.docker-faas.instance").split()
    doomed = []
    for cid in ids:
        value = docker("inspect", "-f", '{{index .Config.Labels "com.docker-faas.instance"}}',
                       cid, check=False)
        if (value == instance) if instance else _stale(value):
            doomed.append(cid)
    if doomed:
        docker("rm", "-f", *doomed, check=False)
    for net in docker("network", "ls", "-q", "--filter",
                      "label=com.docker-faas.instance").split():
        value = docker("network", "inspect", "-f",
                       '{{index .Labels "com.docker-faas.instance"}}', net, check=False)
        if (value == instance) if instance else _stale(value):
            docker("network", "rm", net, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session", autouse=True)
def engine() -> Iterator[None]:
    try:
        docker("info")
    except (RuntimeError, FileNotFoundError) as err:
        pytest.fail(f"no Docker engine answers ({err}); run `just engine` first", pytrace=False)
    missing = [n for n in ("echo", "env", "sleep", "crash", "http-echo")
               if not docker("images", "-q", FIXTURE.format(n))]
    if missing:
        pytest.fail(f"fixture images missing: {missing}; run `just images` first", pytrace=False)
    remove_instance()
    yield


class Gateway:
    """One `docker-faas serve` subprocess, restartable on the same state."""

    def __init__(self, tmp: Path, **env: str) -> None:
        self.instance = f"{TEST_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.metrics_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = tmp / "state" / "docker-faas.db"
        self.log_path = tmp / f"gateway-{self.instance}.log"
        self.env = {
            **os.environ,
            "GATEWAY_PORT": str(self.port), "METRICS_PORT": str(self.metrics_port),
            "BIND_ADDRESS": "127.0.0.1", "STATE_DB_PATH": str(self.state),
            "DOCKER_FAAS_INSTANCE": self.instance, "FUNCTIONS_NETWORK": "dfaas-" + self.instance,
            "AUTH_PASSWORD": PASSWORD, "RESYNC_INTERVAL": "2s", "HEALTH_INTERVAL": "0.25s",
            "EXEC_TIMEOUT": "10s", "LOG_LEVEL": "info",
            # off unless a test asks: it would rescale the functions other tests load
            "AUTOSCALE_ENABLED": "false",
            "SECRETS_DIR": str(tmp / f"secrets-{self.instance}"), **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, auth=("admin", PASSWORD), timeout=15)

    def start(self) -> Gateway:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve"], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not start: {self.log()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def containers(self, function: str | None = None, *, running_only: bool = True) -> list[str]:
        args = ["ps", "-q", "--no-trunc", "--filter",
                f"label=com.docker-faas.instance={self.instance}"]
        if not running_only:
            args.insert(1, "-a")
        if function:
            args += ["--filter", f"label=com.docker-faas.function={function}"]
        return sorted(docker(*args).split())

    def deploy(self, name: str, fixture: str, method: str = "POST", **extra: object) -> None:
        body = {"service": name, "image": FIXTURE.format(fixture), "labels": {},
                "annotations": {}, **extra}
        r = self.client.request(method, "/system/functions", json=body)
        assert r.status_code == 202, r.text

    def invoke_until(self, name: str, ok: Callable[[httpx.Response], bool], *,
                     data: bytes = b"", timeout: float = 30, method: str = "POST",
                     path: str = "") -> httpx.Response:
        """Invoke until `ok(response)`; fail with the last answer after `timeout`."""
        deadline = time.monotonic() + timeout
        last: httpx.Response | str = "no answer"
        while time.monotonic() < deadline:
            try:
                last = self.client.request(method, f"/function/{name}{path}", content=data)
                if ok(last):
                    return last
            except httpx.HTTPError as err:
                last = repr(err)
            time.sleep(0.1)
        detail = last if isinstance(last, str) else f"{last.status_code} {last.text[:300]}"
        raise AssertionError(f"{name} never answered as expected: {detail}\n{self.log()}")

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n{self.log()}")

    def close(self) -> None:
        self.kill(signal.SIGTERM)
        self.client.close()
        remove_instance(self.instance)


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(**env: str) -> Gateway:
        gw = Gateway(tmp_path, **env)
        made.append(gw)
        return gw.start()

    yield make
    for gw in made:
        gw.close()


@pytest.fixture
def gateway(gateway_factory: Callable[..., Gateway]) -> Gateway:
    return gateway_factory()


def inspect(cid: str) -> dict[str, object]:
    data: list[dict[str, object]] = json.loads(docker("inspect", cid))
    return data[0]
