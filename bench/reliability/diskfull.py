"""Part 4: the disk under the state full, under a serving gateway.

tests/api/test_disk_full.py checks the rule in process (the app on a 4 MiB tmpfs); here the
same scenario runs against a real `docker-faas serve` whose whole state directory (event
log, async queue, function logs) is on a tmpfs of its own, with a function running:

1. deploy `echo`, invoke it; then fill the tmpfs with a file until ENOSPC;
2. while it is full: API writes of every kind (deploy, update, scale, secret create, async
   submit) must answer 507; reads (functions, one function, events, secrets, history) must
   answer 200, and so must invocations of `echo`;
3. the file is deleted: the same writes must succeed;
4. the gateway is stopped: PRAGMA integrity_check on every database, the log holds exactly
   the accepted writes, and a gateway started again on that state serves the same
   functions.

It also runs tests/api/test_disk_full.py and reports its outcome. Needs root (mount).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.reliability.common import (
    ROOT,
    Gateway,
    Report,
    describe_problems,
    gateway,
    log_problems,
    problem_kinds,
)

SIZE = "8m"


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
    return filler


def writes(gw: Gateway, round_: int) -> list[tuple[str, int]]:
    """One API write of each kind; (what, status)."""
    c = gw.client
    image = "docker-faas-fixtures/echo:latest"
    calls: list[tuple[str, Any]] = [
        ("deploy", lambda: c.post("/system/functions", json={
            "service": f"new-{round_}", "image": image,
            "labels": {"com.openfaas.scale.min": "0"}})),
        ("update", lambda: c.put("/system/functions", json={
            "service": "echo", "image": image, "envVars": {"ROUND": str(round_)}})),
        # 3, 2, 3, 2: each a change from where the accepted ones left it (a scale to the
        # count the function has appends nothing and answers 202, full disk or not)
        ("scale", lambda: c.post("/system/scale-function/echo",
                                 json={"replicas": 2 + round_ % 2})),
        ("secret", lambda: c.post("/system/secrets",
                                  json={"name": f"s-{round_}", "value": "x" * 1000})),
        ("async", lambda: c.post("/async-function/echo", content=b"x" * 20_000)),
    ]
    out = []
    for what, call in calls:
        try:
            out.append((what, call().status_code))
        except httpx.HTTPError:
            out.append((what, 0))
    return out


def reads(gw: Gateway) -> list[tuple[str, int]]:
    c = gw.client
    out = []
    for what, path in (("functions", "/system/functions"), ("function", "/system/function/echo"),
                       ("events", "/system/events?limit=1000"), ("secrets", "/system/secrets"),
                       ("history", "/system/function/echo/history")):
        try:
            out.append((what, c.get(path).status_code))
        except httpx.HTTPError:
            out.append((what, 0))
    for i in range(20):
        try:
            r = c.post("/function/echo", content=f"full {i}".encode())
            out.append(("invoke", r.status_code if r.text == f"full {i}" else -r.status_code))
        except httpx.HTTPError:
            out.append(("invoke", 0))
    return out


def integrity(state: Path) -> dict[str, str]:
    out = {}
    for db in sorted(state.glob("*.db")):
        with contextlib.closing(sqlite3.connect(db)) as conn:
            out[db.name] = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return out


def run_pytest() -> tuple[bool, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/api/test_disk_full.py"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    last = (proc.stdout.strip().splitlines() or ["no output"])[-1]
    return proc.returncode == 0 and "skipped" not in last, last


def run(report: Report, tmp: Path) -> None:
    part = "4 disk full"
    print(f"\n== {part}: the state on a {SIZE} tmpfs under a serving gateway", flush=True)
    ok, summary = run_pytest()
    report.add(part, "tests/api/test_disk_full.py (in process, 4 MiB tmpfs)", summary,
               "passed", ok)
    if os.geteuid() != 0:
        report.add(part, "served scenario", "skipped: mounting a tmpfs needs root")
        return
    mount = tmp / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
                   check=True)
    state = mount / "state"
    gw = gateway(tmp / "diskfull", STATE_DB_PATH=str(state / "docker-faas.db"))
    raw: dict[str, Any] = {}
    try:
        gw.start()
        gw.deploy("echo", "echo")
        gw.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
        head = len(gw.client.get("/system/events?limit=1000").json())
        offset = gw.log_path.stat().st_size
        filler = fill(mount)
        full_writes = writes(gw, 1) + writes(gw, 2)
        full_reads = reads(gw)
        time.sleep(1.5)  # the log collector meets the full disk too (each call logs lines)
        full_reads += reads(gw)
        problems = log_problems(gw, offset)
        alive_full = gw.proc is not None and gw.proc.poll() is None
        filler.unlink()
        after_writes = writes(gw, 3) + writes(gw, 4)
        functions = sorted(f["name"] for f in gw.client.get("/system/functions").json())
        gw.kill()  # SIGKILL: what is on disk is what was committed
        checks = integrity(state)
        with contextlib.closing(sqlite3.connect(state / "docker-faas.db")) as conn:
            events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        gw.start()
        restarted = sorted(f["name"] for f in gw.client.get("/system/functions").json())
        raw = {"full_writes": full_writes, "full_reads": Counter(f"{w} {s}" for w, s in
                                                               full_reads),
               "after_writes": after_writes, "integrity": checks, "events": events,
               "events_before": head, "functions": functions, "restarted": restarted,
               "log_problems_while_full": dict(problem_kinds(problems))}
    finally:
        gw.close()
        subprocess.run(["umount", "-l", str(mount)], check=False)
    report.raw["diskfull"] = raw
    refused = sum(s == 507 for _, s in full_writes)
    report.add(part, "writes while full answered 507", f"{refused} of {len(full_writes)}"
               + _others(full_writes, 507), "all", refused == len(full_writes))
    api_reads = [(w, s) for w, s in full_reads if w != "invoke"]
    served = sum(s == 200 for _, s in api_reads)
    report.add(part, "API reads while full answered 200", f"{served} of {len(api_reads)}"
               + _others(api_reads, 200), "all", served == len(api_reads))
    calls = [(w, s) for w, s in full_reads if w == "invoke"]
    answered = sum(s == 200 for _, s in calls)
    report.add(part, "invocations while full answered (200, right body)",
               f"{answered} of {len(calls)}" + _others(calls, 200), "all",
               answered == len(calls))
    report.add(part, "gateway alive while full; errors logged",
               f"{'yes' if alive_full else 'NO'}; {describe_problems(problems)}", "yes",
               alive_full)
    accepted = sum(200 <= s < 300 for _, s in after_writes)
    report.add(part, "the same writes once space returned, accepted",
               f"{accepted} of {len(after_writes)}" + _others(after_writes, 202, 201),
               "all", accepted == len(after_writes))
    # each accepted API write appends one record; the async submits go to the queue
    expected = head + sum(200 <= s < 300 for w, s in after_writes if w != "async")
    intact = all(v == "ok" for v in checks.values())
    report.add(part, "after SIGKILL: integrity_check of every database, records in the log",
               f"{', '.join(f'{k} {v}' for k, v in checks.items())}; {events} records "
               f"(expected {expected})", f"ok; {expected}", intact and events == expected)
    report.add(part, "restarted on that state: same functions", "yes" if restarted ==
               functions else f"NO: {restarted} != {functions}", "yes", restarted == functions)


def _others(results: list[tuple[str, int]], *wanted: int) -> str:
    other = Counter(f"{w} {s}" for w, s in results if s not in wanted)
    return f" (others: {dict(other)})" if other else ""
