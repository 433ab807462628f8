"""What the parts of the reliability suite share: gateways (the e2e harness's, each with its
own instance label, network, ports and state), the containers they own, convergence, the
engine's stop and start, and the table every part adds its rows to."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import FIXTURE, PASSWORD, Gateway, docker  # noqa: E402

__all__ = ["FIXTURE", "PASSWORD", "Gateway", "docker"]

INSTANCE = "com.docker-faas.instance"
PIDFILE = Path(os.environ.get("DOCKERD_PIDFILE", "/var/run/docker.pid"))


# ---------------------------------------------------------------- the table

@dataclass
class Row:
    part: str
    figure: str
    value: str
    target: str = ""
    met: bool | None = None  # None: a figure without a target

    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: ""}[self.met]


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def add(self, part: str, figure: str, value: object, target: str = "",
            met: bool | None = None) -> None:
        self.rows.append(Row(part, figure, str(value), target, met))
        mark = {True: "ok", False: "MISSED", None: "  "}[met]
        print(f"  [{mark:>6}] {figure}: {value}" + (f"  (target {target})" if target else ""),
              flush=True)

    def table(self) -> str:
        heads = ("part", "figure", "value", "target", "")
        cells = [heads] + [(r.part, r.figure, r.value, r.target, r.verdict())
                           for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(heads))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def markdown(self) -> str:
        out = ["| part | figure | value | target | |", "|---|---|---|---|---|"]
        for r in self.rows:
            verdict = {True: "met", False: "**missed**", None: ""}[r.met]
            out.append(f"| {r.part} | {r.figure} | {r.value} | {r.target} | {verdict} |")
        return "\n".join(out)


# ---------------------------------------------------------------- gateways and containers

def gateway(home: Path, **env: str) -> Gateway:
    """A gateway on a state of its own under `home` (not started)."""
    home.mkdir(parents=True, exist_ok=True)
    return Gateway(home, **{"LOG_LEVEL": "info", **env})


@dataclass(frozen=True)
class Container:
    id: str
    state: str
    function: str
    namespace: str
    replica: str


def containers(gw: Gateway) -> list[Container]:
    """Every container carrying the gateway's instance label, in any state."""
    out = docker(
        "ps", "-a", "--no-trunc", "--filter", f"label={INSTANCE}={gw.instance}", "--format",
        '{{.ID}} {{.State}} {{.Label "com.docker-faas.function"}} '
        '{{.Label "com.docker-faas.namespace"}} {{.Label "com.docker-faas.replica"}}',
    )
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 5:
            found.append(Container(*parts))
    return found


def desired(gw: Gateway, namespace: str = "openfaas-fn") -> dict[str, dict[str, Any]]:
    """name -> the function's status, from the gateway."""
    r = gw.client.get("/system/functions", params={"namespace": namespace})
    r.raise_for_status()
    return {f["name"]: f for f in r.json()}


@dataclass
class Anomalies:
    orphans: list[Container]  # ours by label, not part of the desired state
    duplicates: list[Container]  # a second container for one function replica slot
    missing: dict[str, int]  # function -> running replicas short of desired
    unavailable: dict[str, int]  # function -> desired - availableReplicas

    @property
    def converged(self) -> bool:
        return not (self.orphans or self.duplicates or self.missing or self.unavailable)

    def describe(self) -> str:
        parts = []
        if self.orphans:
            parts.append("orphans " + ", ".join(
                f"{c.function}/{c.replica}({c.state})" for c in self.orphans))
        if self.duplicates:
            parts.append("duplicates " + ", ".join(
                f"{c.function}/{c.replica}" for c in self.duplicates))
        if self.missing:
            parts.append(f"missing {self.missing}")
        if self.unavailable:
            parts.append(f"unavailable {self.unavailable}")
        return "; ".join(parts) or "converged"


def anomalies(want: dict[str, int], available: dict[str, int],
              found: list[Container]) -> Anomalies:
    """Compare the containers with the desired counts (function -> replicas). A container is
    an orphan unless it is running, of a desired function and in a slot below its count; a
    running one in a slot another running one already holds is a duplicate."""
    orphans, duplicates = [], []
    seen: Counter[tuple[str, str]] = Counter()
    running: Counter[str] = Counter()
    for c in sorted(found, key=lambda c: c.id):
        slot_ok = c.replica.isdigit() and int(c.replica) < want.get(c.function, 0)
        if c.state != "running" or c.function not in want or not slot_ok:
            orphans.append(c)
            continue
        seen[(c.function, c.replica)] += 1
        if seen[(c.function, c.replica)] > 1:
            duplicates.append(c)
        else:
            running[c.function] += 1
    missing = {f: n - running[f] for f, n in want.items() if running[f] < n}
    unavailable = {f: n - available.get(f, 0) for f, n in want.items()
                   if available.get(f, 0) < n}
    return Anomalies(orphans, duplicates, missing, unavailable)


def check(gw: Gateway) -> Anomalies:
    state = desired(gw)
    want = {name: int(f["replicas"]) for name, f in state.items()}
    available = {name: int(f["availableReplicas"]) for name, f in state.items()}
    return anomalies(want, available, containers(gw))


def converge(gw: Gateway, timeout: float = 60.0) -> tuple[float | None, Anomalies]:
    """Poll until the containers match the desired state; (seconds it took or None when it
    did not within `timeout`, the last comparison)."""
    began = time.monotonic()
    last: Anomalies | None = None
    while True:
        with contextlib.suppress(httpx.HTTPError, RuntimeError):
            last = check(gw)
            if last.converged:
                return time.monotonic() - began, last
        if time.monotonic() - began > timeout:
            if last is None:
                last = Anomalies([], [], {"<gateway unreachable>": 1}, {})
            return None, last
        time.sleep(0.25)


# ---------------------------------------------------------------- the engine

def engine_pid() -> int | None:
    try:
        return int(PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def engine_up() -> None:
    """scripts/engine.sh: starts dockerd when `docker info` fails, waits until it answers."""
    subprocess.run(["bash", str(ROOT / "scripts" / "engine.sh")], check=True, timeout=180,
                   stdout=subprocess.DEVNULL)


def restart_engine() -> dict[str, float]:
    """Stop dockerd (SIGTERM, as tests/e2e/test_faults.py does) and start it again with
    scripts/engine.sh; the seconds each took."""
    pid = engine_pid()
    if pid is None:
        raise RuntimeError(f"no dockerd pid in {PIDFILE}: the engine is not ours to restart")
    began = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    deadline = began + 90
    while not _gone(pid):
        if time.monotonic() > deadline:
            raise RuntimeError("dockerd did not stop within 90 s")
        time.sleep(0.1)
    stopped = time.monotonic()
    engine_up()
    return {"stop_s": stopped - began, "start_s": time.monotonic() - stopped}


def docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True,
                          timeout=30).returncode == 0


def cleanup(*steps: Callable[[], object]) -> None:
    """Run every step even when one fails; when the engine is away, wait for it (and start
    it) once and try the failed steps again."""
    failed = []
    for step in steps:
        try:
            step()
        except Exception:  # retried below
            failed.append(step)
    if not failed:
        return
    with contextlib.suppress(Exception):
        if not docker_answers():
            engine_up()
    for step in failed:
        try:
            step()
        except Exception as err:
            print(f"cleanup step {getattr(step, '__name__', step)} failed: {err}",
                  file=sys.stderr)


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def log_problems(gw: Gateway, since: int = 0) -> list[str]:
    """Tracebacks and ERROR lines the gateway logged after byte `since` of its log."""
    text = gw.log_path.read_bytes()[since:].decode(errors="replace")
    return [line for line in text.splitlines()
            if "Traceback" in line or " ERROR " in line or " CRITICAL " in line]


def problem_kinds(lines: list[str]) -> Counter[str]:
    """The ERROR/CRITICAL messages of `log_problems`, container ids and times taken out."""
    kinds: Counter[str] = Counter()
    for line in lines:
        if " ERROR " in line or " CRITICAL " in line:
            message = line.split(" ", 2)[-1]
            kinds[re.sub(r"\b[0-9a-f]{12}\b", "<id>", message)[:160]] += 1
    return kinds


def describe_problems(lines: list[str]) -> str:
    kinds = problem_kinds(lines)
    if not kinds:
        return "0"
    return f"{sum(kinds.values())}: " + "; ".join(f"{k} ×{n}" for k, n in kinds.most_common(3))
