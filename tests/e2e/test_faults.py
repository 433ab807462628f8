"""Issue 4's fault acceptance against the real engine: a gateway SIGKILLed while it converges,
replicas that crash (once per call, or at every start), and the Docker engine itself restarted
under a running gateway.

The engine-restart test stops dockerd, so every other test using the same engine at that moment
fails: it runs last, and `DOCKER_FAAS_ENGINE_RESTART_TEST=0` leaves it out.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests.e2e.conftest import FIXTURE, ROOT, Gateway, docker

pytestmark = pytest.mark.engine

FUNCTIONS = 50
INSTANCE_LABEL = "com.docker-faas.instance"


class Container(NamedTuple):
    id: str
    state: str
    function: str
    replica: str


def containers_of(gw: Gateway) -> list[Container]:
    """Every container carrying the gateway's instance label, in any state."""
    out = docker(
        "ps", "-a", "--no-trunc", "--filter", f"label={INSTANCE_LABEL}={gw.instance}",
        "--format", '{{.ID}} {{.State}} {{.Label "com.docker-faas.function"}} '
                    '{{.Label "com.docker-faas.replica"}}',
    )
    return [Container(*line.split()) for line in out.splitlines() if line.strip()]


def available(gw: Gateway) -> dict[str, int]:
    """availableReplicas of every function, from the gateway's own list."""
    r = gw.client.get("/system/functions")
    assert r.status_code == 200, r.text
    return {f["name"]: f["availableReplicas"] for f in r.json()}


def wait_available(gw: Gateway, name: str, replicas: int, timeout: float = 30) -> None:
    gw.wait_for(f"{name}: {replicas} available replica(s)",
                lambda: available(gw).get(name) == replicas, timeout=timeout)


_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"


def create_times(gw: Gateway, name: str) -> list[float]:
    """When the controller logged a create for function `name` (epoch seconds, in order)."""
    pattern = re.compile(
        rf"^{_STAMP} \w+ docker_faas\.controller: create "
        rf"dfaas_{re.escape(gw.instance)}_openfaas-fn_{re.escape(name)}_\d+_", re.M)
    text = gw.log_path.read_text(errors="replace")
    return [datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for stamp in pattern.findall(text)]


def busiest_second(times: list[float]) -> int:
    """The most creates that fall into any one-second window."""
    return max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)


def wait_until(gw: Gateway, what: str, check: Callable[[], bool], timeout: float) -> float:
    """Poll `check` until true; the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n"
                                 f"{gw.log()}")
        time.sleep(0.2)
    return time.monotonic() - started


# ---- 1. the gateway SIGKILLed mid-convergence ----

@pytest.fixture
def fresh_gateway(tmp_path: Path) -> Iterator[Callable[[], Gateway]]:
    """Gateways with a state of their own each (the harness's factory shares one)."""
    made: list[Gateway] = []

    def make() -> Gateway:
        home = tmp_path / f"gateway-{len(made)}"
        home.mkdir()
        made.append(Gateway(home))
        return made[-1].start()

    yield make
    for gw in made:
        gw.close()


def kill_after_first_create(gw: Gateway) -> list[Container]:
    """SIGKILL the gateway as soon as the controller's first container shows (it is far
    from done then); the containers right after the kill."""
    gw.wait_for("a first container", lambda: bool(containers_of(gw)), timeout=30)
    gw.kill(signal.SIGKILL)
    return containers_of(gw)


def test_gateway_sigkilled_mid_convergence_restarts_into_the_desired_state(
    fresh_gateway: Callable[[], Gateway],
) -> None:
    names = [f"fn-{i:02d}" for i in range(FUNCTIONS)]
    for attempt in range(3):
        gw = fresh_gateway()
        posting = time.monotonic()
        for name in names:
            gw.deploy(name, "echo")
        posted = time.monotonic() - posting
        at_kill = kill_after_first_create(gw)
        running = sum(c.state == "running" for c in at_kill)
        print(f"\nattempt {attempt + 1}: {FUNCTIONS} POSTs in {posted:.2f}s; at the SIGKILL "
              f"{dict(collections.Counter(c.state for c in at_kill))}")
        if at_kill and running < FUNCTIONS:
            break
        gw.close()  # converged before the kill: try again with a fresh gateway
    else:
        pytest.fail("could not SIGKILL the gateway while it was still converging")

    # an orphan appears while the gateway is down: ours by label, of no desired function
    ghost = docker(
        "run", "-d", "--network", "dfaas-" + gw.instance,
        "--label", f"{INSTANCE_LABEL}={gw.instance}",
        "--label", "com.docker-faas.function=ghost",
        "--label", "com.docker-faas.namespace=openfaas-fn",
        "--label", "com.docker-faas.replica=0", FIXTURE.format("echo"),
    )

    states = collections.Counter(c.state for c in containers_of(gw))
    log_offset = gw.log_path.stat().st_size
    restarting = time.monotonic()
    gw.start()
    started = time.monotonic() - restarting
    converged = started + wait_until(
        gw, f"{FUNCTIONS} functions available",
        lambda: available(gw) == dict.fromkeys(names, 1), timeout=120,
    )
    restarted_log = gw.log_path.read_bytes()[log_offset:].decode(errors="replace")
    print(f"restart over {dict(states)} (with the orphan): gateway up in {started:.2f}s, "
          f"{FUNCTIONS} functions available {converged:.2f}s after the restart; it logged "
          f"{restarted_log.count(': create ')} creates, {restarted_log.count(': remove ')} "
          f"removes")

    for name in names:
        r = gw.client.post(f"/function/{name}", content=name.encode())
        assert (r.status_code, r.text) == (200, name), f"{name}: {r.status_code} {r.text}"

    after = containers_of(gw)
    assert ghost not in {c.id for c in after}, "the orphan was not removed"
    assert all(c.state == "running" for c in after), after
    per_function = collections.Counter(c.function for c in after)
    assert per_function == dict.fromkeys(names, 1), per_function  # no duplicate, no orphan
    assert {c.replica for c in after} == {"0"}

    time.sleep(2.5)  # a full resync later nothing has been added, replaced or removed
    assert containers_of(gw) == after


# ---- 2. replicas that crash ----

def test_a_crashing_replica_is_replaced_each_time_without_spinning(gateway: Gateway) -> None:
    crashes = 3
    gateway.deploy("crash", "crash")
    wait_available(gateway, "crash", 1)
    seen: list[str] = []
    for _ in range(crashes):
        [old] = gateway.containers("crash")
        seen.append(old)
        try:
            r = gateway.client.post("/function/crash", content=b"boom")
            assert r.status_code == 502, r.text
        except httpx.RemoteProtocolError:
            pass  # the watchdog exits with its function, sometimes before its 502 is out

        def replaced() -> bool:
            current = gateway.containers("crash")
            return (len(current) == 1 and current[0] not in seen
                    and available(gateway).get("crash") == 1)

        gateway.wait_for("a healthy replacement", replaced, timeout=30)
    [last] = gateway.containers("crash")
    assert last not in seen

    # the crashed containers are gone, and every crash cost exactly one create
    gateway.wait_for("crashed containers removed",
                     lambda: gateway.containers("crash", running_only=False) == [last])
    times = create_times(gateway, "crash")
    gaps = [f"{b - a:.1f}" for a, b in zip(times, times[1:], strict=False)]
    print(f"\ncrash: {len(times)} creates for {crashes} crashes, gaps {gaps}s")
    assert len(times) == crashes + 1
    assert busiest_second(times) <= 3


def test_a_replica_dying_at_every_start_is_retried_with_back_off(gateway: Gateway) -> None:
    # the crash fixture in http mode with a function process that exits at once: the
    # watchdog exits with it, so every replica dies a moment after it has started
    gateway.deploy("doomed", "crash", envProcess="python3 -c 'raise SystemExit(3)'")
    gateway.deploy("echo", "echo")
    window = 10.0
    gateway.wait_for("a first create", lambda: bool(create_times(gateway, "doomed")))
    first = create_times(gateway, "doomed")[0]
    time.sleep(max(0.0, first + window - time.time()))
    times = [t for t in create_times(gateway, "doomed") if t < first + window]
    gaps = [f"{b - a:.1f}" for a, b in zip(times, times[1:], strict=False)]
    print(f"\ndoomed: {len(times)} creates in {window:.0f}s, gaps {gaps}s")
    assert len(times) >= 3, "the controller gave up on a crash-looping slot"
    assert busiest_second(times) <= 3, "a crash loop spins"
    # a replica lives about 0.7 s here: without back-off that would be some 14 creates
    assert len(times) <= window, "more than one create a second on average"
    assert available(gateway).get("doomed") == 0
    # the loop next door does not disturb a healthy function
    r = gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"fine", timeout=10)
    assert r.text == "fine"


# ---- 3. the engine restarted under a running gateway (disruptive: keep it last) ----

PIDFILE = Path(os.environ.get("DOCKERD_PIDFILE", "/var/run/docker.pid"))


def _gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def engine_up() -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "engine.sh")], check=True, timeout=180)


@pytest.mark.skipif(os.environ.get("DOCKER_FAAS_ENGINE_RESTART_TEST") == "0",
                    reason="DOCKER_FAAS_ENGINE_RESTART_TEST=0: the engine is not restarted")
def test_engine_restart_under_a_running_gateway_is_healed_without_restarting_it(
    gateway: Gateway,
) -> None:
    try:
        dockerd = int(PIDFILE.read_text().strip())
    except (OSError, ValueError):
        pytest.skip(f"no dockerd pid in {PIDFILE}: the engine is not ours to restart")
    assert gateway.proc is not None
    pid = gateway.proc.pid
    gateway.deploy("echo", "echo", labels={"com.openfaas.scale.min": "2"})
    wait_available(gateway, "echo", 2)
    before = set(gateway.containers("echo"))

    try:
        os.kill(dockerd, signal.SIGTERM)
        stopping = time.monotonic()
        down = wait_until(gateway, "dockerd to exit", lambda: _gone(dockerd), timeout=90)
        restarting = time.monotonic()
        engine_up()
        up = time.monotonic() - restarting
        served = wait_until(
            gateway, "echo to answer again",
            lambda: _answers(gateway, "echo"), timeout=90,
        )
        full = served + wait_until(
            gateway, "both replicas available",
            lambda: available(gateway).get("echo") == 2, timeout=60,
        )
        print(f"\nengine restart: dockerd stopped in {down:.1f}s, back in {up:.1f}s; echo "
              f"served {served:.1f}s and 2/2 available {full:.1f}s after the engine was up "
              f"({time.monotonic() - stopping:.1f}s since SIGTERM)")
    finally:
        engine_up()

    assert gateway.proc.poll() is None and gateway.proc.pid == pid, "the gateway restarted"
    r = gateway.client.post("/function/echo", content=b"after the engine restart")
    assert (r.status_code, r.text) == (200, "after the engine restart")
    now = gateway.containers("echo", running_only=False)
    assert len(now) == 2 and not before & set(now), (before, now)
    status = gateway.client.get("/system/function/echo").json()
    assert status["replicas"] == 2 and status["availableReplicas"] == 2
    # replicas the engine stopped with itself are replaced, but they did not fail
    assert "restarts" not in status, status


def _answers(gw: Gateway, name: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return gw.client.post(f"/function/{name}", content=b"ping").status_code == 200
    return False
