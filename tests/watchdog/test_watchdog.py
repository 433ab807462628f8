"""The function watchdog (fixtures/watchdog/watchdog.py) run as a host process.

Each test starts a real watchdog on a free port with TMPDIR pointing at its own temporary
folder (so lock files never collide) and talks HTTP to it: the container contract from
openfaas-contract.md section 4, without a container.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
WATCHDOG = ROOT / "fixtures" / "watchdog" / "watchdog.py"
HTTP_ECHO = ROOT / "fixtures" / "functions" / "http-echo" / "handler.py"
CRASH = ROOT / "fixtures" / "functions" / "crash" / "handler.py"
SLEEP = ROOT / "fixtures" / "functions" / "sleep" / "handler.py"
PY = sys.executable


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that are free right now (on every address, as the watchdog binds).

    They are released before they are used, so something else may take one meanwhile: the
    fixture below starts again on fresh ports when that happens.
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:  # all held at once, so no two come back equal
            sock.bind(("", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# What a process that lost the race for its port says; then we try again on another one.
ADDRESS_IN_USE = "Address already in use"
START_ATTEMPTS = 3


class RunningWatchdog:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path, tmp: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log
        self.lock = tmp / ".lock"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self) -> int:
        return httpx.get(self.url + "/_/health", timeout=2).status_code

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 5) -> int:
        return self.proc.wait(timeout)


StartWatchdog = Callable[..., RunningWatchdog]


@pytest.fixture
def start_watchdog(tmp_path: Path) -> Iterator[StartWatchdog]:
    started: list[RunningWatchdog] = []
    lost_races: list[RunningWatchdog] = []

    def launch(port: int, env: dict[str, str]) -> RunningWatchdog:
        log = tmp_path / f"watchdog-{port}.log"
        full_env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path), "port": str(port)}
        full_env.update(env)
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [PY, str(WATCHDOG)], env=full_env, stdout=sink, stderr=subprocess.STDOUT
            )
        watchdog = RunningWatchdog(proc, port, log, tmp_path)
        started.append(watchdog)
        return watchdog

    def become_healthy(watchdog: RunningWatchdog) -> bool:
        """True once healthy; False if it exited first; fails the test on a time-out."""
        deadline = time.monotonic() + 5
        while True:
            try:
                if watchdog.health() == 200:
                    return True
            except httpx.TransportError:
                pass
            if watchdog.proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                pytest.fail(f"watchdog did not become healthy; its log:\n{watchdog.log()}")
            time.sleep(0.01)

    def start(
        wait_healthy: bool = True, fresh_upstream: bool = False, **env: str
    ) -> RunningWatchdog:
        """A watchdog on a free port; `fresh_upstream` also picks a free port for upstream_url."""
        for attempt in range(1, START_ATTEMPTS + 1):
            port, upstream_port = free_ports(2)
            if fresh_upstream:
                env["upstream_url"] = f"http://127.0.0.1:{upstream_port}"
            watchdog = launch(port, env)
            if not wait_healthy or become_healthy(watchdog):
                return watchdog
            # It exited before it was healthy. Losing the race for a port (the watchdog's, or
            # the function's in http mode) is the test's doing: start again on fresh ports.
            if ADDRESS_IN_USE in watchdog.log() and attempt < START_ATTEMPTS:
                started.remove(watchdog)  # its log may hold the function's traceback
                lost_races.append(watchdog)
                continue
            pytest.fail(f"watchdog did not become healthy; its log:\n{watchdog.log()}")
        raise AssertionError("unreachable")

    yield start
    for watchdog in started + lost_races:
        if watchdog.proc.poll() is None:
            watchdog.proc.kill()
        watchdog.proc.wait()
    for watchdog in started:  # an exception in a handler thread is a bug even if HTTP looked fine
        assert "Traceback" not in watchdog.log(), watchdog.log()


def load_watchdog_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fwatchdog", WATCHDOG)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


# ------------------------------------------------------------------ configuration


def test_durations_parse_like_go() -> None:
    parse = load_watchdog_module().parse_duration
    assert parse("5s") == 5
    assert parse("500ms") == 0.5
    assert parse("1m30s") == 90
    assert parse("1.5h") == 5400
    assert parse("10") == 10
    assert parse("0") == 0
    for bad in ("", "5x", "s", "-1s", "1s2", "-3"):
        with pytest.raises(ValueError):
            parse(bad)


def test_bad_configuration_exits_2_with_a_message(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(wait_healthy=False, mode="bogus", fprocess="cat")
    assert watchdog.wait() == 2
    assert "mode: unsupported 'bogus'" in watchdog.log()
    missing = start_watchdog(wait_healthy=False)
    assert missing.wait() == 2
    assert "fprocess" in missing.log()


# ------------------------------------------------------------------ health and lock file


def test_health_is_200_with_the_lock_then_503_after_sigterm(
    start_watchdog: StartWatchdog,
) -> None:
    watchdog = start_watchdog(fprocess="cat", healthcheck_interval="300ms")
    response = httpx.get(watchdog.url + "/_/health")
    assert (response.status_code, response.text) == (200, "OK")
    assert "X-Duration-Seconds" in response.headers
    assert httpx.post(watchdog.url + "/_/health").status_code == 405
    assert watchdog.lock.exists()

    watchdog.terminate()
    deadline = time.monotonic() + 1
    while watchdog.health() != 503:
        assert time.monotonic() < deadline, "health did not turn 503 after SIGTERM"
        time.sleep(0.01)
    assert not watchdog.lock.exists()
    # still serving function calls during healthcheck_interval
    assert httpx.post(watchdog.url + "/", content=b"late").text == "late"
    assert watchdog.wait() == 0


def test_suppress_lock_writes_no_lock_file(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess="cat", suppress_lock="true")
    assert watchdog.health() == 200
    assert not watchdog.lock.exists()


# ------------------------------------------------------------------ classic mode


def test_classic_cat_echoes_the_body_and_logs_each_call(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess="cat")
    response = httpx.post(
        watchdog.url + "/any/path", content=b"hello", headers={"Content-Type": "text/x-demo"}
    )
    assert response.status_code == 200
    assert response.text == "hello"
    assert response.headers["Content-Type"] == "text/x-demo"
    assert float(response.headers["X-Duration-Seconds"]) >= 0
    assert re.fullmatch(r"\d+\.\d{6}", response.headers["X-Duration-Seconds"])

    log = watchdog.log()
    date = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
    assert re.search(date + r"Forking fprocess\.\n", log)
    assert re.search(date + r"Wrote 5 Bytes - Duration: \d+\.\d{6}s\n", log)


def test_classic_streams_large_and_chunked_bodies(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess="cat")
    big = os.urandom(3 * 1024 * 1024)  # beyond the watchdog's buffer: answered chunked
    response = httpx.post(watchdog.url + "/", content=big)
    assert response.status_code == 200
    assert response.content == big
    assert response.headers.get("Transfer-Encoding") == "chunked"

    def parts() -> Iterator[bytes]:  # no length known up front: sent chunked
        yield b"one,"
        yield b"two"

    assert httpx.post(watchdog.url + "/", content=parts()).text == "one,two"


def test_forked_process_sees_request_metadata_as_env(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess="env", custom_var="hello")
    response = httpx.get(
        watchdog.url + "/some/path?testing=1", headers={"X-Custom": "yes", "x-call-id": "abc"}
    )
    assert response.status_code == 200
    env = dict(line.split("=", 1) for line in response.text.splitlines() if "=" in line)
    assert env["Http_Method"] == "GET"
    assert env["Http_Query"] == "testing=1"
    assert env["Http_Path"] == "/some/path"
    assert env["Http_X_Custom"] == "yes"
    assert env["Http_X_Call_Id"] == "abc"
    assert env["custom_var"] == "hello"

    posted = httpx.post(watchdog.url + "/", content=b"12345", headers={"Content-Type": "a/b"})
    env = dict(line.split("=", 1) for line in posted.text.splitlines() if "=" in line)
    assert env["Http_Method"] == "POST"
    assert env["Http_Content_Length"] == "5"
    assert env["Http_Content_Type"] == "a/b"
    assert "Http_Query" not in env


def test_content_type_env_forces_the_response_type(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess="cat", content_type="application/json")
    response = httpx.post(watchdog.url + "/", content=b"{}", headers={"Content-Type": "x/y"})
    assert response.headers["Content-Type"] == "application/json"


def test_exec_timeout_kills_the_process_with_408(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess="sleep 5", exec_timeout="200ms")
    started = time.monotonic()
    response = httpx.post(watchdog.url + "/", content=b"")
    assert response.status_code == 408
    assert response.text == "Killed process."
    assert time.monotonic() - started < 2


def test_non_zero_exit_answers_500_with_error_and_output(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess="sh -c 'echo partial; echo oops >&2; exit 3'")
    response = httpx.get(watchdog.url + "/")
    assert response.status_code == 500
    assert "exit status 3" in response.text
    assert "partial" in response.text
    assert "oops" in response.text
    assert "stderr: oops" in watchdog.log()


def test_max_inflight_answers_429_when_exceeded(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess="sleep 0.6", max_inflight="1")
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.get, watchdog.url + "/", timeout=5)
        time.sleep(0.2)
        assert httpx.get(watchdog.url + "/").status_code == 429
        assert httpx.get(watchdog.url + "/_/ready").status_code == 429
        assert slow.result().status_code == 200
    assert httpx.get(watchdog.url + "/_/ready").status_code == 200


def test_sleep_fixture_handler(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess=f"{PY} {SLEEP}")
    assert httpx.get(watchdog.url + "/?ms=20").text == "slept 20 ms"
    assert httpx.get(watchdog.url + "/?ms=abc").status_code == 500


def test_expect_100_continue_and_head(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess="cat")
    with socket.create_connection(("127.0.0.1", watchdog.port), timeout=2) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"ping")
        answer = b""
        while not answer.endswith(b"ping"):
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    head = httpx.head(watchdog.url + "/")
    assert head.status_code == 200
    assert head.content == b""


def test_sigterm_drains_an_in_flight_request(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(fprocess="sh -c 'sleep 0.5; echo done'")
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(httpx.get, watchdog.url + "/", timeout=5)
        time.sleep(0.15)
        watchdog.terminate()
        response = call.result()
    assert (response.status_code, response.text) == (200, "done\n")
    assert watchdog.wait() == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(watchdog.url + "/_/health")


# ------------------------------------------------------------------ http mode


def test_http_mode_forwards_requests_to_the_upstream(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(mode="http", fresh_upstream=True, fprocess=f"{PY} {HTTP_ECHO}")
    with httpx.Client(base_url=watchdog.url) as client:
        response = client.put("/a/b?x=1&y=two", content=b"payload", headers={"X-Custom": "yes"})
        assert response.status_code == 200
        assert "X-Duration-Seconds" in response.headers
        echoed = json.loads(response.content)
        assert echoed["method"] == "PUT"
        assert echoed["path"] == "/a/b"
        assert echoed["query"] == "x=1&y=two"
        assert echoed["body"] == "payload"
        assert echoed["headers"]["X-Custom"] == "yes"
        for n in range(3):  # kept-alive connections both sides
            assert client.get(f"/n{n}").json()["path"] == f"/n{n}"
        assert client.head("/").content == b""
    watchdog.terminate()
    assert watchdog.wait() == 0


def test_http_mode_exits_non_zero_when_the_function_dies(start_watchdog: StartWatchdog) -> None:
    watchdog = start_watchdog(mode="http", fresh_upstream=True, fprocess=f"{PY} {CRASH}")
    try:
        response = httpx.post(watchdog.url + "/", content=b"boom")
        assert response.status_code == 502
    except httpx.TransportError:
        pass  # the watchdog may be gone before it can answer
    assert watchdog.wait() == 3
    assert "crash: POST / called" in watchdog.log()


def test_http_mode_answers_502_when_the_upstream_is_unreachable(
    start_watchdog: StartWatchdog,
) -> None:
    with socket.socket() as holder:  # accepts once so the watchdog gets ready, then goes away
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        upstream = f"http://127.0.0.1:{holder.getsockname()[1]}"
        watchdog = start_watchdog(mode="http", upstream_url=upstream)
    response = httpx.get(watchdog.url + "/")
    assert response.status_code == 502
    assert "Can't reach service" in response.text
