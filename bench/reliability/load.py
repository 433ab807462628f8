"""Part 5: 1,000 concurrent keep-alive connections for 60 s.

A gateway (the product's intervals) runs the `fast-echo` fixture (a static C HTTP server
behind no watchdog: the upstream costs next to nothing, so the gateway is what is measured)
with several replicas. `hey` POSTs an 11-byte body over 1,000 connections for 60 s; every
100 ms we sample the gateway's VmRSS (/proc/<pid>/status) and, before and after, its CPU
time. Errors are every answer but 200 plus every request hey could not complete; the
gateway's own answers (5xx) and client-side failures (hey's timeouts and connection errors)
are listed apart.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.reliability.common import Report, gateway, log_problems, rss_kb

BODY = "hello world"
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK


def parse_hey(out: str) -> dict[str, Any]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    pct = dict(re.findall(r"\s(\d+)% in ([\d.]+) secs", out))
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors_text = out.split("Error distribution:")[1] if "Error distribution:" in out else ""
    errors = [(int(n), text.strip()) for n, text in
              re.findall(r"^\s+\[(\d+)\]\s+(.*)$", errors_text, re.M)]
    return {"rps": float(rps.group(1)) if rps else 0.0,
            "p50_ms": float(pct.get("50", "nan")) * 1000,
            "p99_ms": float(pct.get("99", "nan")) * 1000,
            "codes": codes, "errors": errors}


def ensure_hey() -> None:
    if shutil.which("hey") is None:  # Debian's package, as bench/proxy.py installs it
        subprocess.run(["apt-get", "install", "-y", "-qq", "hey"], check=True,
                       stdout=subprocess.DEVNULL)


def run(report: Report, tmp: Path, *, connections: int, seconds: float, replicas: int) -> None:
    part = "5 load"
    ensure_hey()
    print(f"\n== {part}: {connections} connections for {seconds:.0f} s, fast-echo x{replicas}",
          flush=True)
    gw = gateway(tmp / "load", LOG_LEVEL="warning")
    for var in ("HEALTH_INTERVAL", "RESYNC_INTERVAL"):
        gw.env.pop(var, None)
    try:
        gw.start()
        assert gw.proc is not None
        pid = gw.proc.pid
        gw.deploy("fast-echo", "fast-echo", labels={"com.openfaas.scale.min": str(replicas)})
        gw.wait_for(f"{replicas} healthy replicas", lambda: gw.client.get(
            "/system/function/fast-echo").json()["availableReplicas"] == replicas, timeout=60)
        url = f"{gw.url}/function/fast-echo"
        subprocess.run(["hey", "-z", "2s", "-c", "64", "-m", "POST", "-d", BODY, url],
                       capture_output=True, check=True)  # warm the upstream pools
        idle = rss_kb(pid)
        cpu_before = cpu_seconds(pid)
        began = time.monotonic()
        proc = subprocess.Popen(
            ["hey", "-z", f"{seconds:g}s", "-c", str(connections), "-m", "POST", "-d", BODY,
             "-T", "text/plain", url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        peak, samples = 0, []
        while proc.poll() is None:
            rss = rss_kb(pid)
            peak = max(peak, rss)
            samples.append(rss)
            time.sleep(0.1)
        out = proc.stdout.read() if proc.stdout else ""
        took = time.monotonic() - began
        cpu = cpu_seconds(pid) - cpu_before
        alive = gw.proc.poll() is None
        problems = log_problems(gw)
    finally:
        gw.close()
    result = parse_hey(out)
    total = sum(result["codes"].values())
    ok = result["codes"].get(200, 0)
    gateway_errors = {c: n for c, n in result["codes"].items() if c != 200}
    client_errors = sum(n for n, _ in result["errors"])
    report.raw["load"] = {**result, "seconds": took, "idle_rss_kb": idle, "peak_rss_kb": peak,
                          "rss_samples_kb": samples[::10], "cpu_s": cpu,
                          "log_problems": problems[:20], "hey_tail": out[-3000:]}
    report.add(part, f"requests ({connections} connections, {seconds:.0f} s)",
               f"{total + client_errors:,} sent, {ok:,} answered 200")
    report.add(part, "errors: gateway answers other than 200",
               sum(gateway_errors.values()) if not gateway_errors else str(gateway_errors),
               "0", not gateway_errors)
    report.add(part, "errors: requests hey could not complete",
               client_errors if not result["errors"] else
               "; ".join(f"{n}× {text[:100]}" for n, text in result["errors"][:3]),
               "0", client_errors == 0)
    report.add(part, "requests/s", f"{result['rps']:,.0f}")
    report.add(part, "latency p50 / p99 ms", f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f}")
    report.add(part, "gateway RSS idle / peak MB", f"{idle / 1024:.0f} / {peak / 1024:.0f}",
               "peak < 100", peak / 1024 < 100)
    report.add(part, "gateway CPU µs per request", f"{cpu / max(total, 1) * 1e6:.0f}")
    report.add(part, "gateway alive afterwards, errors logged",
               f"{'yes' if alive else 'NO'}, {len(problems)}", "yes, 0", alive and not problems)
