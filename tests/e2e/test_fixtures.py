"""The fixture function images on the real Docker engine.

scripts/images.sh builds them (a no-op when they are up to date); each then runs as a container
on a network of its own and is reached on its bridge IP, port 8080, the way the platform
reaches replicas. Every container and the network carry the label
com.docker-faas.test=fixtures plus a per-run label, and are removed even when a test fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
LABEL = "com.docker-faas.test=fixtures"
FIXTURES = ("echo", "env", "sleep", "crash", "http-echo")


def docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class Replica:
    name: str
    container: str
    url: str

    def state(self) -> dict[str, object]:
        out = docker("inspect", "--format", "{{json .State}}", self.container).stdout
        state: dict[str, object] = json.loads(out)
        return state


@pytest.fixture(scope="module")
def run_label() -> Iterator[str]:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI: run `just engine`")
    info = docker("info", check=False)
    if info.returncode != 0:
        pytest.skip(f"`docker info` failed, no engine to test on: {info.stderr.strip()[:200]}")
    build = subprocess.run(
        ["bash", "scripts/images.sh"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert build.returncode == 0, f"scripts/images.sh failed:\n{build.stdout}\n{build.stderr}"

    run = f"com.docker-faas.test.run={uuid.uuid4().hex[:12]}"
    network = f"docker-faas-fixtures-{run[-12:]}"
    docker("network", "create", "--label", LABEL, "--label", run, network)
    try:
        yield run
    finally:
        # Only this run's containers: another session may be testing on the same engine.
        ids = docker("ps", "-aq", "--filter", f"label={run}").stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)
        docker("network", "rm", network, check=False)


def start(run: str, image: str, *extra: str) -> Replica:
    network = f"docker-faas-fixtures-{run[-12:]}"
    container = docker(
        "run", "-d", "--network", network, "--label", LABEL, "--label", run, *extra, image
    ).stdout.strip()
    address = docker(
        "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container
    ).stdout.strip()
    assert address, f"{image}: no IP address on {network}"
    return Replica(image, container, f"http://{address}:8080")


def wait_healthy(replica: Replica, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(replica.url + "/_/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            logs = docker("logs", replica.container, check=False)
            pytest.fail(f"{replica.name} not healthy in {timeout} s:\n{logs.stdout}{logs.stderr}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def replicas(run_label: str) -> dict[str, Replica]:
    started = {name: start(run_label, f"docker-faas-fixtures/{name}:latest") for name in FIXTURES}
    for replica in started.values():
        wait_healthy(replica)
    return started


def test_echo_answers_with_the_body(replicas: dict[str, Replica]) -> None:
    response = httpx.post(replicas["echo"].url + "/", content=b"hello fixtures")
    assert (response.status_code, response.text) == (200, "hello fixtures")
    assert "X-Duration-Seconds" in response.headers


def test_env_shows_request_metadata(replicas: dict[str, Replica]) -> None:
    response = httpx.get(replicas["env"].url + "/p?testing=1", headers={"X-Custom": "yes"})
    assert response.status_code == 200
    lines = set(response.text.splitlines())
    assert {"Http_Method=GET", "Http_Query=testing=1", "Http_Path=/p", "Http_X_Custom=yes"} <= lines
    assert "fprocess=env" in lines


def test_sleep_waits_the_requested_time(replicas: dict[str, Replica]) -> None:
    started = time.monotonic()
    response = httpx.get(replicas["sleep"].url + "/?ms=300")
    assert (response.status_code, response.text) == (200, "slept 300 ms")
    assert time.monotonic() - started >= 0.3
    assert httpx.get(replicas["sleep"].url + "/").text == "slept 100 ms"


def test_http_echo_answers_json_over_kept_alive_connections(
    replicas: dict[str, Replica],
) -> None:
    with httpx.Client(base_url=replicas["http-echo"].url) as client:
        for n in range(3):
            response = client.post(f"/a/{n}?q={n}", content=f"body {n}", headers={"X-N": str(n)})
            assert response.status_code == 200
            echoed = response.json()
            assert echoed["method"] == "POST"
            assert echoed["path"] == f"/a/{n}"
            assert echoed["query"] == f"q={n}"
            assert echoed["body"] == f"body {n}"
            assert echoed["headers"]["X-N"] == str(n)


def test_crash_takes_the_container_down_non_zero(replicas: dict[str, Replica]) -> None:
    crash = replicas["crash"]
    try:
        assert httpx.post(crash.url + "/", content=b"x", timeout=5).status_code == 502
    except httpx.TransportError:
        pass  # the container may be gone before the watchdog answers
    status = docker("wait", crash.container, timeout=15).stdout.strip()
    assert status == "3"
    state = crash.state()
    assert state["Running"] is False
    assert state["ExitCode"] == 3
    logs = docker("logs", crash.container)
    assert "crash: POST / called" in logs.stdout + logs.stderr


def test_sigterm_stops_a_replica_cleanly(run_label: str) -> None:
    replica = start(run_label, "docker-faas-fixtures/sleep:latest")
    wait_healthy(replica)
    started = time.monotonic()
    docker("stop", "--time", "10", replica.container)
    assert time.monotonic() - started < 5
    assert replica.state()["ExitCode"] == 0


def test_read_only_root_with_tmpfs_tmp_still_works(run_label: str) -> None:
    replica = start(run_label, "docker-faas-fixtures/echo:latest", "--read-only", "--tmpfs", "/tmp")
    wait_healthy(replica)
    assert httpx.post(replica.url + "/", content=b"ro").text == "ro"
