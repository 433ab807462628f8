"""Resilience benchmark: how fast the gateway heals, measured against Docker doing it alone.

Four measurements, each with a baseline taken in the same run on the same engine:

1. crash → serving again: a `crash` function is invoked (its process exits, the container
   stops), then we time until `GET /function/<name>/_/health` answers 200 through the
   gateway (the crash fixture dies on any request that reaches its handler; the watchdog
   answers /_/health itself, so a 200 there is the replacement serving through our routing).
   Baseline: the same image under `--restart=always`, crashed the same way on its bridge
   address and polled on the same address. On both sides only a 200 after the engine has
   recorded the exit counts (the dying watchdog answers its health check for a moment).
   Each repetition uses a fresh function and a fresh container, so neither our crash-loop
   back-off (0.1 s doubling) nor Docker's (the same rule) is carried from one to the next.
2. requests lost under constant load: 4 keep-alive client threads at a fixed rate against
   `echo` while one replica is `docker kill`ed (1 and 3 replicas), and during a rolling
   update (PUT with a new env var, 2 replicas). Baseline: the same load with no fault.
3. scale from zero: the time of one invocation of `echo` scaled to 0 (no container left).
   Baselines: create + start of the same image and polling its address until the first 200
   (the physical limit), and unpause of a paused container until the first 200.
4. cold start of 50 functions: deploy 50, stop the gateway (SIGTERM), remove their
   containers, start it again and time until all 50 answer 200. Baseline: 50 containers of
   the same image created and started 8 at a time, each polled on its address until 200.

Baseline containers are created with the Engine API over its socket (create + start +
inspect: what `docker run -d` does, without the CLI's own start-up), on a network of their
own, labelled com.docker-faas.test=bench-resilience and removed by that label at the end.
The gateway runs with the product's HEALTH_INTERVAL and RESYNC_INTERVAL unless
--health-interval is given. Every function pins com.openfaas.scale.min = max so the built-in
autoscaler leaves the replica counts alone. Bounded: loopback and the Docker bridge only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import FIXTURE, Gateway, docker  # noqa: E402

TEST_LABEL = "com.docker-faas.test"
TEST_VALUE = "bench-resilience"
PID_LABEL = "com.docker-faas.bench-pid"


def pinned(replicas: int) -> dict[str, str]:
    """Labels that switch the autoscaler off for a function (min == max)."""
    return {"com.openfaas.scale.min": str(replicas), "com.openfaas.scale.max": str(replicas)}


# ---------------------------------------------------------------- baselines: the engine alone

def docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"


class Engine:
    """The few Engine API calls the baselines need, one HTTP client per thread."""

    def __init__(self) -> None:
        self.network = f"dfaas-bench-res-{os.getpid()}"
        self.labels = {TEST_LABEL: TEST_VALUE, PID_LABEL: str(os.getpid())}
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(transport=httpx.HTTPTransport(uds=docker_socket()),
                                  base_url="http://docker", timeout=60)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self._client().request(method, path, **kwargs)
        if r.status_code >= 400:
            raise RuntimeError(f"engine {method} {path}: {r.status_code} {r.text.strip()}")
        return r.json() if r.content else None

    def create_network(self) -> None:
        self.call("POST", "/networks/create",
                  json={"Name": self.network, "Labels": self.labels, "CheckDuplicate": True})

    def run(self, image: str, *, restart: bool = False) -> tuple[str, str]:
        """Create and start a container on our network; (id, bridge IP)."""
        config = {
            "Image": image, "Labels": self.labels,
            "HostConfig": {"NetworkMode": self.network,
                           "RestartPolicy": {"Name": "always" if restart else "no"}},
        }
        cid = self.call("POST", "/containers/create", json=config)["Id"]
        self.call("POST", f"/containers/{cid}/start")
        data = self.call("GET", f"/containers/{cid}/json")
        return cid, data["NetworkSettings"]["Networks"][self.network]["IPAddress"]

    def inspect(self, cid: str) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", f"/containers/{cid}/json")
        return data

    def running(self, cid: str) -> bool:
        """Running by the engine's word; False once its exit is recorded (or it is gone)."""
        r = self._client().get(f"/containers/{cid}/json")
        if r.status_code == 404:
            return False
        state = r.json()["State"]
        return bool(state["Running"]) and not state["Restarting"]

    def pause(self, cid: str) -> None:
        self.call("POST", f"/containers/{cid}/pause")

    def unpause(self, cid: str) -> None:
        self.call("POST", f"/containers/{cid}/unpause")

    def remove(self, cid: str) -> None:
        self.call("DELETE", f"/containers/{cid}", params={"force": "1"})

    def close(self) -> None:
        for client in self._clients:
            client.close()


def remove_labelled(pid: int | None) -> None:
    """Remove the baseline containers and networks of run `pid`, or of every dead run."""
    def doomed(value: str) -> bool:
        if pid is not None:
            return value == str(pid)
        return not value.isdigit() or not Path(f"/proc/{value}").exists()

    fmt = "{{index .Config.Labels \"" + PID_LABEL + "\"}}"
    ids = docker("ps", "-aq", "--filter", f"label={TEST_LABEL}={TEST_VALUE}").split()
    mine = [c for c in ids if doomed(docker("inspect", "-f", fmt, c, check=False))]
    if mine:
        docker("rm", "-f", *mine, check=False)
    fmt = "{{index .Labels \"" + PID_LABEL + "\"}}"
    for net in docker("network", "ls", "-q", "--filter",
                      f"label={TEST_LABEL}={TEST_VALUE}").split():
        if doomed(docker("network", "inspect", "-f", fmt, net, check=False)):
            docker("network", "rm", net, check=False)


# ---------------------------------------------------------------- helpers

def direct_client() -> httpx.Client:
    # a short connect timeout: a SYN sent while the address has no container is dropped, and
    # the kernel would retry it only after a second
    return httpx.Client(timeout=httpx.Timeout(5.0, connect=0.1),
                        headers={"Connection": "close"})


def until_200(client: httpx.Client, method: str, url: str, *, body: bytes = b"",
              expect: bytes | None = None, timeout: float = 30.0) -> float:
    """Ask until a 200 (with body `expect`, when given); the monotonic time it arrived."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = client.request(method, url, content=body)
            if r.status_code == 200 and (expect is None or r.content == expect):
                return time.monotonic()
            last = f"{r.status_code} {r.text[:200]!r}"
        except httpx.HTTPError as err:
            last = repr(err)
        time.sleep(0.01)
    raise RuntimeError(f"{url} never answered 200 within {timeout:.0f} s: {last}")


def poll_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {check}")
        time.sleep(0.005)


def available(gw: Gateway, name: str) -> int:
    r = gw.client.get(f"/system/function/{name}")
    return int(r.json().get("availableReplicas", 0)) if r.status_code == 200 else 0


def summary(samples: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(samples), "max": max(samples), "samples": samples}


def print_pair(title: str, rows: dict[str, dict[str, Any]], ours: str) -> None:
    print(f"\n{title}")
    print(f"  {'':34} {'median s':>9} {'max s':>8}   samples")
    for label, s in rows.items():
        print(f"  {label:34} {s['median']:>9.3f} {s['max']:>8.3f}   "
              + " ".join(f"{v:.2f}" for v in s["samples"]))
    for label, s in rows.items():
        if label != ours:
            print(f"  ratio {ours} / {label}: median {rows[ours]['median'] / s['median']:.2f}"
                  f"   max {rows[ours]['max'] / s['max']:.2f}")


# ---------------------------------------------------------------- 1. crash → serving again

def crash_recovery(gw: Gateway, engine: Engine, reps: int) -> dict[str, Any]:
    names = [f"crash-{i}" for i in range(reps)]
    for name in names:  # a fresh function per repetition: no back-off carried over
        gw.deploy(name, "crash", labels=pinned(1))
    boxes = [engine.run(FIXTURE.format("crash"), restart=True) for _ in range(reps)]
    direct = direct_client()
    for name in names:
        gw.wait_for(f"{name} healthy", lambda n=name: available(gw, n) == 1)
    for _, ip in boxes:
        until_200(direct, "GET", f"http://{ip}:8080/_/health")
    ours: list[float] = []
    base: list[float] = []
    restarts: list[int] = []
    answers: list[str] = []  # what the crashing call got through the gateway
    for name, (cid, ip) in zip(names, boxes, strict=True):
        [old] = gw.containers(name)
        try:  # the replica dies while answering: a 502 or a cut-off answer
            r = gw.client.post(f"/function/{name}", content=b"boom")
            answers.append(f"{r.status_code} {r.text.strip()[:100]}")
        except httpx.HTTPError as err:
            answers.append(type(err).__name__)
        crashed = time.monotonic()
        # the dying watchdog may still answer its health check for a moment: the 200 that
        # counts comes after the engine has seen the container exit
        poll_until(lambda c=old: not engine.running(c))
        ours.append(until_200(gw.client, "GET", f"/function/{name}/_/health") - crashed)
        restarts.append(gw.client.get(f"/system/function/{name}").json().get("restarts", 0))

        before = engine.inspect(cid)["RestartCount"]
        try:
            direct.post(f"http://{ip}:8080/", content=b"boom")
        except httpx.HTTPError:
            pass
        crashed = time.monotonic()
        poll_until(lambda c=cid, n=before: engine.inspect(c)["RestartCount"] > n)
        base.append(until_200(direct, "GET", f"http://{ip}:8080/_/health") - crashed)
        now_ip = engine.inspect(cid)["NetworkSettings"]["Networks"][engine.network]["IPAddress"]
        if now_ip != ip:
            print(f"  note: {cid[:12]} came back on {now_ip}, not {ip}")
    direct.close()
    for cid, _ in boxes:
        engine.remove(cid)
    for name in names:
        gw.client.request("DELETE", "/system/functions", json={"functionName": name})
    return {"gateway": summary(ours), "docker --restart=always": summary(base),
            "restarts_reported": restarts, "crash_answers": answers}


# ---------------------------------------------------------------- 2. requests under load

def run_load(gw: Gateway, name: str, seconds: float, *, threads: int, rate: float,
             fault: Callable[[], dict[str, Any]] | None = None, at: float = 0.0,
             after: float = 1.0) -> dict[str, Any]:
    """`threads` keep-alive clients, each at `rate` requests/s; `fault` runs `at` s in, and
    the load goes on for `seconds` in all but at least `after` s past the fault's return."""
    stop = threading.Event()
    samples: list[list[tuple[float, float, int]]] = [[] for _ in range(threads)]
    errors: list[str] = []  # the first few failures, as the client saw them

    ready = threading.Barrier(threads + 1, timeout=60)

    def client(out: list[tuple[float, float, int]]) -> None:
        with httpx.Client(base_url=gw.url, timeout=30) as c:
            with contextlib.suppress(httpx.HTTPError):  # connected before the clock starts
                c.post(f"/function/{name}", content=b"ping")
            ready.wait()
            due = time.monotonic()
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    r = c.post(f"/function/{name}", content=b"ping")
                    code = r.status_code if r.status_code != 200 or r.content == b"ping" else -1
                    if code != 200 and len(errors) < 5:
                        errors.append(f"{r.status_code} {r.text[:120]!r}")
                except httpx.HTTPError as err:
                    code = 0
                    if len(errors) < 5:
                        errors.append(repr(err)[:160])
                out.append((sent, time.monotonic(), code))
                due += 1 / rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                else:
                    due = time.monotonic()

    workers = [threading.Thread(target=client, args=(s,)) for s in samples]
    for w in workers:
        w.start()
    ready.wait()
    start = time.monotonic()
    info: dict[str, Any] = {}
    end = start + seconds
    try:
        if fault is not None:
            time.sleep(max(0.0, start + at - time.monotonic()))
            fault_at = time.monotonic()
            info = fault()
            info["fault_at_s"] = fault_at - start
            end = max(end, time.monotonic() + after)
        time.sleep(max(0.0, end - time.monotonic()))
    finally:
        end = time.monotonic()
        stop.set()
        for w in workers:
            w.join()
    flat = sorted(s for out in samples for s in out)
    # the longest time without a successful answer, the window's edges included
    edges = sorted([start, end, *(t for _, t, code in flat if code == 200 and t <= end)])
    failed = [code for _, _, code in flat if code != 200]
    latencies = [t - s for s, t, _ in flat]
    return {
        "seconds": end - start, "sent": len(flat), "failed": len(failed),
        "failures": dict(Counter(str(c) for c in failed)),  # 0: transport error, -1: bad body
        "first_failures": errors,
        "longest_gap_s": max(b - a for a, b in zip(edges, edges[1:], strict=False)),
        "max_latency_s": max(latencies), "p50_latency_s": statistics.median(latencies),
        **info,
    }


def under_load(gw: Gateway, seconds: float, threads: int, rate: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for replicas in (1, 3):
        name = f"load-{replicas}"
        gw.deploy(name, "echo", labels=pinned(replicas))
        gw.wait_for(f"{name}: {replicas} healthy", lambda n=name, r=replicas: available(gw, n) == r)
        gw.invoke_until(name, lambda r: r.status_code == 200, data=b"warm")
        base = run_load(gw, name, seconds, threads=threads, rate=rate)

        def kill(n: str = name, r: int = replicas) -> dict[str, Any]:
            victim = gw.containers(n)[0]
            docker("kill", victim)
            killed = time.monotonic()
            # the load goes on until the victim is replaced and serving (and 1 s more)
            gw.wait_for(f"{n} healed", lambda: (
                victim not in gw.containers(n, running_only=False) and available(gw, n) == r))
            return {"killed": victim[:12], "replaced_s": time.monotonic() - killed}

        hit = run_load(gw, name, seconds, threads=threads, rate=rate, fault=kill,
                       at=seconds / 2)
        results[f"kill 1 of {replicas}"] = {"fault": hit, "no fault": base}

    name = "update-2"
    gw.deploy(name, "echo", labels=pinned(2))
    gw.wait_for(f"{name}: 2 healthy", lambda: available(gw, name) == 2)
    gw.invoke_until(name, lambda r: r.status_code == 200, data=b"warm")
    base = run_load(gw, name, seconds, threads=threads, rate=rate)
    old = set(gw.containers(name))

    def update() -> dict[str, Any]:
        began = time.monotonic()
        gw.deploy(name, "echo", method="PUT", envVars={"VERSION": "2"}, labels=pinned(2))
        gw.wait_for("the new replicas to replace the old", lambda: (
            len(now := gw.containers(name)) == 2 and not old & set(now)
            and available(gw, name) == 2))
        return {"update_s": time.monotonic() - began}

    hit = run_load(gw, name, seconds, threads=threads, rate=rate, fault=update, at=1.0)
    results["rolling update of 2"] = {"fault": hit, "no fault": base}
    for n in ("load-1", "load-3", name):
        gw.client.request("DELETE", "/system/functions", json={"functionName": n})
    return results


def print_load(results: dict[str, Any], threads: int, rate: float) -> None:
    print(f"\n2. requests under constant load ({threads} keep-alive clients × {rate:.0f} req/s, "
          "echo through the gateway)")
    print(f"  {'case':22} {'run':9} {'sent':>6} {'failed':>6} {'longest gap ms':>14} "
          f"{'max lat ms':>10} {'p50 ms':>7}  notes")
    for case, runs in results.items():
        for run in ("no fault", "fault"):
            r = runs[run]
            notes = ""
            if "killed" in r:
                notes = f"kill at {r['fault_at_s']:.1f} s, replaced in {r['replaced_s']:.2f} s"
            if "update_s" in r:
                notes = f"PUT at {r['fault_at_s']:.1f} s, done in {r['update_s']:.2f} s"
            if r["failures"]:
                notes += f"  failures {r['failures']}"
            print(f"  {case:22} {run:9} {r['sent']:>6} {r['failed']:>6} "
                  f"{r['longest_gap_s'] * 1000:>14.0f} {r['max_latency_s'] * 1000:>10.0f} "
                  f"{r['p50_latency_s'] * 1000:>7.1f}  {notes}")
        gap = runs["fault"]["longest_gap_s"] / runs["no fault"]["longest_gap_s"]
        print(f"  {'':22} ratio longest gap fault / no fault: {gap:.1f}")


# ---------------------------------------------------------------- 3. scale from zero

def scale_from_zero(gw: Gateway, engine: Engine, reps: int) -> dict[str, Any]:
    name = "wake"
    gw.deploy(name, "echo", labels=pinned(1))
    gw.invoke_until(name, lambda r: r.status_code == 200, data=b"x")
    ours: list[float] = []
    for i in range(reps):
        r = gw.client.post(f"/system/scale-function/{name}", json={"replicas": 0})
        assert r.status_code == 202, r.text
        gw.wait_for("no container left",
                    lambda: gw.containers(name, running_only=False) == [])
        time.sleep(0.2)
        body = f"wake {i}".encode()
        began = time.monotonic()
        r = gw.client.post(f"/function/{name}", content=body, timeout=60)
        ours.append(time.monotonic() - began)
        if r.status_code != 200 or r.content != body:
            raise RuntimeError(f"wake-up answered {r.status_code} {r.text[:200]!r}")
    gw.client.request("DELETE", "/system/functions", json={"functionName": name})

    direct = direct_client()
    image = FIXTURE.format("echo")
    fresh: list[float] = []
    for i in range(reps):
        body = f"run {i}".encode()
        began = time.monotonic()
        cid, ip = engine.run(image)
        fresh.append(until_200(direct, "POST", f"http://{ip}:8080/", body=body, expect=body)
                     - began)
        engine.remove(cid)
    paused: list[float] = []
    cid, ip = engine.run(image)
    until_200(direct, "POST", f"http://{ip}:8080/", body=b"x", expect=b"x")
    for i in range(reps):
        engine.pause(cid)
        time.sleep(0.2)
        body = f"unpause {i}".encode()
        began = time.monotonic()
        engine.unpause(cid)
        paused.append(until_200(direct, "POST", f"http://{ip}:8080/", body=body, expect=body)
                      - began)
    engine.remove(cid)
    direct.close()
    return {"gateway": summary(ours), "create + start": summary(fresh),
            "unpause": summary(paused)}


# ---------------------------------------------------------------- 4. cold start of N functions

def all_serve(url: str, names: list[str], auth: tuple[str, str]) -> list[float]:
    """Invoke every function (one client thread each) until each answers 200; the times
    they did, sorted."""
    def one(name: str) -> float:
        with httpx.Client(base_url=url, auth=auth, timeout=60) as client:
            return until_200(client, "POST", f"/function/{name}", body=name.encode(),
                             expect=name.encode(), timeout=120)

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return sorted(pool.map(one, names))


def spread(times: list[float], began: float) -> dict[str, float]:
    """When the first, the median and the last of a set became ready, from `began`."""
    return {"all": times[-1] - began, "first": times[0] - began,
            "median": statistics.median(times) - began}


def cold_start(tmp: Path, engine: Engine, count: int, parallel: int,
               env: dict[str, str], claim: Callable[[str], None]) -> dict[str, Any]:
    gw = configure(Gateway(tmp / "converge", **env), env)
    claim(gw.instance)
    names = [f"fn-{i:02d}" for i in range(count)]
    auth = ("admin", gw.env["AUTH_PASSWORD"])
    try:
        gw.start()
        began = time.monotonic()
        for name in names:
            gw.deploy(name, "echo", labels=pinned(1))
        deployed = spread(all_serve(gw.url, names, auth), began)
        gw.kill(signal.SIGTERM)
        ids = gw.containers(running_only=False)
        if ids:
            docker("rm", "-f", *ids)
        began = time.monotonic()
        gw.start()
        healthz = time.monotonic() - began
        restarted = spread(all_serve(gw.url, names, auth), began)
    finally:
        gw.close()

    direct = threading.local()
    started: list[str] = []

    def one(i: int) -> float:
        if not hasattr(direct, "client"):
            direct.client = direct_client()
        cid, ip = engine.run(FIXTURE.format("echo"))
        started.append(cid)
        body = f"c{i}".encode()
        return until_200(direct.client, "POST", f"http://{ip}:8080/", body=body, expect=body,
                         timeout=120)

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        base = spread(sorted(pool.map(one, range(count))), began)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(engine.remove, started))
    return {"functions": count, "parallel": parallel, "gateway_healthz_s": healthz,
            "gateway restart, containers removed": restarted,
            f"gateway first deploy (POST x{count})": deployed,
            f"create + start, {parallel} at a time": base}


def print_cold(r: dict[str, Any]) -> None:
    rows = [k for k in r if isinstance(r[k], dict)]
    base = r[rows[-1]]["all"]
    print(f"\n4. {r['functions']} echo functions until every one answers 200 "
          f"(s from the start; gateway /healthz after {r['gateway_healthz_s']:.2f} s)")
    print(f"  {'':38} {'first':>7} {'median':>7} {'all':>7}  ratio all / baseline")
    for row in rows:
        t = r[row]
        print(f"  {row:38} {t['first']:>7.2f} {t['median']:>7.2f} {t['all']:>7.2f}  "
              f"{t['all'] / base:.2f}")


# ---------------------------------------------------------------- main

def configure(gw: Gateway, env: dict[str, str]) -> Gateway:
    """The product's probe and resync intervals, not the e2e harness's shorter ones (unless
    `env` sets them)."""
    for var in ("HEALTH_INTERVAL", "RESYNC_INTERVAL"):
        if var not in env:
            gw.env.pop(var, None)
    gw.log_path.parent.mkdir(parents=True, exist_ok=True)
    return gw


def engine_pid() -> str:
    """The dockerd pid from its pid file: a change means the engine restarted under us."""
    for path in ("/var/run/docker.pid", "/run/docker.pid"):
        with contextlib.suppress(OSError):
            return Path(path).read_text().strip()
    return ""


def cleanup(*steps: Callable[[], None]) -> None:
    """Run every step even when one fails; the engine may be restarting (other sessions
    restart it in their fault tests): wait for it once, then try the failed steps again."""
    failed = []
    for step in steps:
        try:
            step()
        except Exception:  # reported below; the other steps still run
            failed.append(step)
    if not failed:
        return
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and subprocess.run(
            ["docker", "info"], capture_output=True).returncode != 0:
        time.sleep(1)
    for step in failed:
        try:
            step()
        except Exception as err:
            print(f"cleanup step {getattr(step, '__name__', step)} failed: {err}",
                  file=sys.stderr)


class Activity:
    """Counts the engine's container events that are not ours. Other sessions' tests share
    the engine and the two cores (and some restart the engine): their activity during an
    item makes its figures noisy, an engine restart makes them void."""

    def __init__(self) -> None:
        self.instances: set[str] = set()  # our gateways' instance labels
        self.foreign = 0
        self.broken = False
        self._stopping = False
        threading.Thread(target=self._follow, daemon=True).start()

    def ours(self, event: dict[str, Any]) -> bool:
        labels = (event.get("Actor") or {}).get("Attributes") or {}
        return (labels.get("com.docker-faas.instance") in self.instances
                or labels.get(PID_LABEL) == str(os.getpid()))

    def _follow(self) -> None:
        params = {"filters": json.dumps({"type": ["container"]})}
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=docker_socket()),
                              timeout=None) as client, \
                    client.stream("GET", "http://docker/events", params=params) as r:
                for line in r.iter_lines():
                    if line.strip() and not self.ours(json.loads(line)):
                        self.foreign += 1
        except (httpx.HTTPError, ValueError):
            pass
        if not self._stopping:
            self.broken = True

    def stop(self) -> None:
        self._stopping = True  # the daemon thread ends with the process

    @contextlib.contextmanager
    def item(self, results: dict[str, Any], key: str) -> Iterator[None]:
        """Note what else happened on the engine while `key` was measured."""
        foreign, dockerd = self.foreign, engine_pid()
        try:
            yield
        finally:
            results.setdefault("engine", {})[key] = {
                "foreign_container_events": self.foreign - foreign,
                "engine_restarted": self.broken or engine_pid() != dockerd,
            }
            noted = results["engine"][key]
            if noted["engine_restarted"]:
                print("  !! the Docker engine restarted during this item: its figures are void")
            elif noted["foreign_container_events"]:
                print(f"  !! {noted['foreign_container_events']} container events of other "
                      "sessions during this item: its figures may be noisy")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--load-seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0, help="req/s per client thread")
    parser.add_argument("--functions", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--health-interval", default="", help="HEALTH_INTERVAL for the gateway")
    parser.add_argument("--json",
                        default=str(ROOT / "test-artifacts" / "bench-resilience.json"))
    args = parser.parse_args()
    env = {"LOG_LEVEL": "warning"}
    if args.health_interval:
        env["HEALTH_INTERVAL"] = args.health_interval
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="dfaas-bench-res-"))
    engine = Engine()
    remove_labelled(None)
    activity = Activity()
    began = time.monotonic()
    gw = configure(Gateway(tmp / "main", **env), env)
    activity.instances.add(gw.instance)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(),
        "health_interval": args.health_interval or "product default",
        "commit": subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
    }
    try:
        engine.create_network()
        gw.start()
        with activity.item(results, "crash"):
            results["crash"] = crash_recovery(gw, engine, args.reps)
            print_pair(f"1. crash → serving again ({args.reps} fresh functions / containers)",
                       {k: results["crash"][k] for k in ("gateway", "docker --restart=always")},
                       "gateway")
            print(f"  restarts reported per function: {results['crash']['restarts_reported']}")
            print(f"  answers to the crashing call: {results['crash']['crash_answers']}")
        out.write_text(json.dumps(results, indent=2))
        with activity.item(results, "load"):
            results["load"] = under_load(gw, args.load_seconds, args.threads, args.rate)
            print_load(results["load"], args.threads, args.rate)
        out.write_text(json.dumps(results, indent=2))
        with activity.item(results, "wake"):
            results["wake"] = scale_from_zero(gw, engine, args.reps)
            print_pair(f"3. scale from zero → first 200 ({args.reps} repetitions)",
                       results["wake"], "gateway")
        out.write_text(json.dumps(results, indent=2))
        gw.close()
        with activity.item(results, "cold"):
            results["cold"] = cold_start(tmp, engine, args.functions, args.parallel, env,
                                         activity.instances.add)
            print_cold(results["cold"])
    finally:
        activity.stop()
        cleanup(gw.close, engine.close, lambda: remove_labelled(os.getpid()),
                lambda: shutil.rmtree(tmp, ignore_errors=True))
        results["runtime_s"] = time.monotonic() - began
        out.write_text(json.dumps(results, indent=2))
    void = [k for k, v in results["engine"].items() if v["engine_restarted"]]
    noisy = [k for k, v in results["engine"].items() if v["foreign_container_events"]]
    print(f"\ntotal {results['runtime_s']:.0f} s; JSON in {out}"
          + (f"; void (engine restarted): {void}" if void else "")
          + (f"; noisy (other sessions on the engine): {noisy}" if noisy else ""))
    return 1 if void else 0


if __name__ == "__main__":
    sys.exit(main())
