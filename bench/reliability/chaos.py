"""Part 3: faults under constant load and API writes.

One gateway (the product's HEALTH_INTERVAL and RESYNC_INTERVAL) runs three echo functions:
`two` (2 replicas) and `one` (1 replica) under constant load — keep-alive client threads
sending GET /function/… at a fixed rate (GET: a request caught on a dying replica may be
re-sent, as the gateway does for idempotent methods) — and `writes`, which a writer thread
scales between 1 and 2 (POST /system/scale-function, each with its own X-Correlation-Id),
noting which writes were accepted (202).

Each round injects one fault: `kill-replica` (docker kill of a random replica of `two` or
`one`), `kill-gateway` (SIGKILL, then started again on the same state at once) or
`restart-engine` (dockerd stopped with SIGTERM and started again with scripts/engine.sh,
as tests/e2e/test_faults.py does). Two seconds later the writer pauses and we wait (at most
90 s) until the containers carrying the gateway's instance label match the desired state
(one running, healthy container per replica slot of each function, nothing else), then
check once more a resync later. Counted per fault kind:

- failed requests (not 200, or no answer), per function, split into those sent while the
  gateway or the engine was down (nothing can answer them) and the others;
- lost events: writes answered 202 whose correlation id is not in GET /system/events at the
  end (and accepted writes recorded with another replica count);
- orphaned containers (ours by label but not part of the desired state: an unknown
  function, a slot above the count, not running) and duplicates (a second running container
  for one function replica slot), after convergence.
"""

from __future__ import annotations

import contextlib
import random
import signal
import statistics
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.reliability.common import (
    Anomalies,
    Gateway,
    Report,
    check,
    containers,
    converge,
    describe_problems,
    docker,
    docker_answers,
    engine_pid,
    engine_up,
    gateway,
    log_problems,
    problem_kinds,
    restart_engine,
)

LOADED = {"two": 2, "one": 1}
THREADS = {"two": 4, "one": 2}
RATE = 40.0  # requests/s per load thread
CONVERGE_TIMEOUT = 90.0
KINDS = ("kill-replica", "kill-gateway", "restart-engine")


@dataclass
class Call:
    sent: float
    done: float
    function: str
    status: int  # 0: no answer
    error: str = ""


@dataclass
class Write:
    sent: float
    correlation: str
    replicas: int
    status: int  # 0: no answer (outcome unknown)


@dataclass
class Round:
    kind: str
    began: float
    detail: dict[str, Any] = field(default_factory=dict)
    down: tuple[float, float] | None = None  # when nothing could answer (gateway/engine)
    ended: float = 0.0
    converged_s: float | None = None
    anomalies: Anomalies | None = None


class Load:
    """Keep-alive client threads, each at RATE requests/s, recording every call."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.calls: list[Call] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(fn,), daemon=True)
                        for fn, n in THREADS.items() for _ in range(n)]

    def _run(self, function: str) -> None:
        with httpx.Client(base_url=self.url, timeout=45) as client:
            due = time.monotonic()
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    r = client.get(f"/function/{function}")
                    call = Call(sent, time.monotonic(), function, r.status_code,
                                "" if r.status_code == 200 else r.text[:160])
                except httpx.HTTPError as err:
                    call = Call(sent, time.monotonic(), function, 0, repr(err)[:160])
                self.calls.append(call)
                due += 1 / RATE
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                else:
                    due = time.monotonic()

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


class Writer:
    """Scales `writes` between 1 and 2 every 0.3 s, each write with its own correlation id;
    after an unknown outcome it reads the count first, so that every write changes it (a
    scale to the count it has appends nothing, by design)."""

    def __init__(self, url: str, auth: tuple[str, str]) -> None:
        self.client = httpx.Client(base_url=url, auth=auth, timeout=10)
        self.writes: list[Write] = []
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.idle = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _current(self) -> int | None:
        try:
            r = self.client.get("/system/function/writes")
            return int(r.json()["replicas"]) if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    def _run(self) -> None:
        last: int | None = 1
        while not self.stop.is_set():
            if self.paused.is_set():
                self.idle.set()
                time.sleep(0.05)
                continue
            self.idle.clear()
            if last is None:
                last = self._current()
                if last is None:
                    time.sleep(0.2)
                    continue
            target = 1 if last == 2 else 2
            correlation = f"chaos-{uuid.uuid4().hex[:12]}"
            sent = time.monotonic()
            try:
                r = self.client.post("/system/scale-function/writes",
                                     json={"replicas": target},
                                     headers={"X-Correlation-Id": correlation})
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            self.writes.append(Write(sent, correlation, target, status))
            last = target if 200 <= status < 300 else None
            time.sleep(0.3)
        self.idle.set()

    def pause(self) -> None:
        self.paused.set()
        self.idle.wait(timeout=30)

    def resume(self) -> None:
        self.paused.clear()

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.client.close()


def plan(rounds: int, engine_restarts: int, rng: random.Random) -> list[str]:
    restarts = min(engine_restarts, rounds)
    rest = rounds - restarts
    kinds = ["restart-engine"] * restarts + ["kill-gateway"] * (rest * 2 // 5)
    kinds += ["kill-replica"] * (rounds - len(kinds))
    rng.shuffle(kinds)
    return kinds


def kill_replica(gw: Gateway, rng: random.Random) -> dict[str, Any]:
    victims = [c for c in containers(gw) if c.function in LOADED and c.state == "running"]
    victim = rng.choice(victims)
    docker("kill", victim.id)
    return {"function": victim.function, "replica": victim.replica, "id": victim.id[:12]}


def kill_gateway(gw: Gateway) -> tuple[dict[str, Any], tuple[float, float]]:
    down = time.monotonic()
    gw.kill(signal.SIGKILL)
    gw.start()
    up = time.monotonic()
    return {"down_s": up - down}, (down, up)


def bounce_engine() -> tuple[dict[str, Any], tuple[float, float]]:
    down = time.monotonic()
    took = restart_engine()
    up = time.monotonic()
    return took, (down, up)


def wait_ready(gw: Gateway) -> None:
    """Before the load starts: every function's replicas healthy."""
    seconds, found = converge(gw, timeout=60)
    if seconds is None:
        raise RuntimeError(f"functions never became ready: {found.describe()}")


def events_of(gw: Gateway) -> dict[str, int]:
    """correlationId -> replicas of every function.scaled record of `writes`."""
    out: dict[str, int] = {}
    after = 0
    while True:
        r = gw.client.get("/system/events", params={
            "function": "writes", "type": "function.scaled", "limit": "1000",
            "after": str(after)})
        r.raise_for_status()
        batch = r.json()
        for record in batch:
            out[record["correlationId"]] = int(record["data"]["replicas"])
        if len(batch) < 1000:
            return out
        after = batch[-1]["position"]


def run(report: Report, tmp: Path, *, rounds: int, engine_restarts: int,
        seed_value: int) -> None:
    part = "3 chaos"
    rng = random.Random(seed_value)
    if engine_restarts and engine_pid() is None:
        print("  no dockerd pid file: the engine is not ours to restart; no engine rounds")
        engine_restarts = 0
    kinds = plan(rounds, engine_restarts, rng)
    print(f"\n== {part}: {rounds} rounds ({dict(Counter(kinds))}) under load", flush=True)
    gw = gateway(tmp / "chaos")
    for var in ("HEALTH_INTERVAL", "RESYNC_INTERVAL"):  # the product's, not the harness's
        gw.env.pop(var, None)
    load = writer = None
    history: list[Round] = []
    began = time.monotonic()
    try:
        gw.start()
        for name, n in {**LOADED, "writes": 1}.items():
            gw.deploy(name, "echo", labels={"com.openfaas.scale.min": str(n)})
        wait_ready(gw)
        load = Load(gw.url)
        writer = Writer(gw.url, ("admin", gw.env["AUTH_PASSWORD"]))
        load.start()
        writer.start()
        time.sleep(3)  # steady state before the first fault
        for i, kind in enumerate(kinds, 1):
            rnd = Round(kind, time.monotonic())
            history.append(rnd)
            if kind == "kill-replica":
                rnd.detail = kill_replica(gw, rng)
            elif kind == "kill-gateway":
                rnd.detail, rnd.down = kill_gateway(gw)
            else:
                rnd.detail, rnd.down = bounce_engine()
            time.sleep(2)
            writer.pause()
            rnd.converged_s, first = converge(gw, timeout=CONVERGE_TIMEOUT)
            time.sleep(2.5)  # a resync later: nothing added, nothing left over
            with contextlib.suppress(httpx.HTTPError, RuntimeError):
                first = check(gw)
            rnd.anomalies = first
            rnd.ended = time.monotonic()
            writer.resume()
            took = "not converged" if rnd.converged_s is None else f"{rnd.converged_s:.1f} s"
            print(f"  round {i:2} {kind:14} {_short(rnd.detail)}: converged {took}; "
                  f"{first.describe()}", flush=True)
            time.sleep(1)
        load.finish()
        writer.finish()
        final_s, final = converge(gw, timeout=CONVERGE_TIMEOUT)
        recorded = events_of(gw)
        problems = log_problems(gw)
        alive = gw.proc is not None and gw.proc.poll() is None
    finally:
        if load is not None:
            load.stop.set()
        if writer is not None:
            writer.stop.set()
        if not docker_answers():
            engine_up()
        gw.close()
    took = time.monotonic() - began
    summarize(report, part, history, load.calls, writer.writes, recorded, final, final_s,
              problems, alive, took)


def _short(detail: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in detail.items())


def summarize(report: Report, part: str, history: list[Round], calls: list[Call],
              writes: list[Write], recorded: dict[str, int], final: Anomalies,
              final_s: float | None, problems: list[str], alive: bool, took: float) -> None:
    # which round each call belongs to: the last one begun before it was sent
    starts = [r.began for r in history]

    def round_of(t: float) -> Round | None:
        index = -1
        for i, s in enumerate(starts):
            if s <= t:
                index = i
        return history[index] if index >= 0 else None

    # a call in flight while the gateway was down (in any round: one sent at the end of a
    # round can be cut by the next round's SIGKILL) could not be answered; while the engine
    # restarts the gateway is up and holds calls, so those failures count
    downs = [r.down for r in history if r.down is not None and r.kind == "kill-gateway"]
    per: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    examples: dict[tuple[str, str], list[str]] = defaultdict(list)
    failures: list[dict[str, Any]] = []
    baseline: Counter[str] = Counter()
    for call in calls:
        rnd = round_of(call.sent)
        if rnd is None:
            baseline["sent"] += 1
            baseline["failed"] += call.status != 200
            continue
        counts = per[rnd.kind][call.function]
        counts["sent"] += 1
        if call.status == 200:
            continue
        during = any(d0 <= call.done and call.sent <= d1 for d0, d1 in downs)
        counts["failed while down" if during else "failed"] += 1
        failures.append({"round": history.index(rnd) + 1, "kind": rnd.kind,
                         "function": call.function, "while_down": during,
                         "sent_after_round_start_s": round(call.sent - rnd.began, 3),
                         "took_s": round(call.done - call.sent, 3), "status": call.status,
                         "error": call.error})
        if not during and len(examples[(rnd.kind, call.function)]) < 3:
            examples[(rnd.kind, call.function)].append(f"{call.status} {call.error}")

    accepted = [w for w in writes if 200 <= w.status < 300]
    lost = [w for w in accepted if w.correlation not in recorded]
    wrong = [w for w in accepted if w.correlation in recorded
             and recorded[w.correlation] != w.replicas]
    unknown = [w for w in writes if w.status == 0]
    by_kind: dict[str, list[Round]] = defaultdict(list)
    for rnd in history:
        by_kind[rnd.kind].append(rnd)

    report.raw["chaos"] = {
        "seconds": took, "rounds": [
            {"kind": r.kind, "detail": r.detail, "converged_s": r.converged_s,
             "down_s": (r.down[1] - r.down[0]) if r.down else None,
             "after": r.anomalies.describe() if r.anomalies else None} for r in history],
        "requests": {k: {f: dict(c) for f, c in v.items()} for k, v in per.items()},
        "requests_before_first_fault": dict(baseline),
        "failures": [f for f in failures if not f["while_down"]]
        + [f for f in failures if f["while_down"]][:30],
        "writes": {"sent": len(writes), "accepted": len(accepted), "unknown": len(unknown),
                   "other": len(writes) - len(accepted) - len(unknown),
                   "lost": [w.correlation for w in lost],
                   "recorded_differently": [w.correlation for w in wrong]},
        "final": final.describe(), "final_converged_s": final_s,
        "log_problems": dict(problem_kinds(problems)),
    }
    report.add(part, "rounds (kill-replica / kill-gateway / restart-engine)",
               " / ".join(str(len(by_kind[k])) for k in KINDS) + f" in {took:.0f} s")
    for kind in KINDS:
        rounds = by_kind[kind]
        if not rounds:
            continue
        for function in LOADED:
            c = per[kind][function]
            value = f"{c['failed']} of {c['sent']}"
            if c["failed while down"]:
                value += f" (+{c['failed while down']} in flight while the gateway was down)"
            if examples[(kind, function)]:
                value += f"; e.g. {examples[(kind, function)][0]}"
            if kind == "kill-replica" and function == "two":
                report.add(part, f"{kind}: failed requests to `two` (2 replicas)", value, "0",
                           c["failed"] == 0)
            else:
                report.add(part, f"{kind}: failed requests to `{function}` "
                           f"({LOADED[function]} replica{'s' if LOADED[function] > 1 else ''})",
                           value)
        done = sorted(r.converged_s for r in rounds if r.converged_s is not None)
        stuck = len(rounds) - len(done)
        report.add(part, f"{kind}: converged, median / max s",
                   f"{len(done)} of {len(rounds)}" + (
                       f", {statistics.median(done):.1f} / {done[-1]:.1f}" if done else ""),
                   f"all within {CONVERGE_TIMEOUT:.0f} s", stuck == 0)
        orphans = sum(len(r.anomalies.orphans) for r in rounds if r.anomalies)
        dupes = sum(len(r.anomalies.duplicates) for r in rounds if r.anomalies)
        report.add(part, f"{kind}: orphaned / duplicate containers after convergence",
                   f"{orphans} / {dupes}", "0 / 0", orphans == 0 and dupes == 0)
        downs = [r.down[1] - r.down[0] for r in rounds if r.down]
        if downs:
            report.add(part, f"{kind}: {'gateway' if kind == 'kill-gateway' else 'engine'} "
                       "down, median s", f"{statistics.median(downs):.1f}")
    report.add(part, "API writes: accepted / no answer / refused",
               f"{len(accepted)} / {len(unknown)} / {len(writes) - len(accepted) - len(unknown)}")
    report.add(part, "lost events (accepted writes not in GET /system/events)",
               len(lost) + len(wrong), "0", not lost and not wrong)
    report.add(part, "at the end: converged, orphans / duplicates",
               f"{'yes' if final_s is not None else 'NO'}, {len(final.orphans)} / "
               f"{len(final.duplicates)}", "yes, 0 / 0",
               final_s is not None and not final.orphans and not final.duplicates)
    report.add(part, "gateway alive at the end; errors logged",
               f"{'yes' if alive else 'NO'}; {describe_problems(problems)}")
