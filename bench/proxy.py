"""Proxy benchmark: the same function called direct, through nginx and through the gateway.

Starts a gateway (its own instance label and network), deploys each upstream fixture
(fast-echo: a static C echo server, so the proxy's own cost shows; http-echo: our Python
one), starts nginx (Debian package, one worker, upstream keep-alive) in front of the same
container, and drives each with `hey` at concurrency 1, 16 and 64, in interleaved rounds
(medians reported). Prints requests/s, p50/p99, mean latency, the proxy's CPU per request
(user + system, from /proc/<pid>/stat) and the ratios gateway/nginx and gateway/direct; with
fast-echo it also runs the gateway with NATIVE_RELAY=false (llhttp alone) for comparison.
Then the gateway's RSS with 1,000 keep-alive connections. Bounded: a few seconds per run,
loopback and the Docker bridge only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import Gateway, docker  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
BODY = "hello world"


def ensure_tools() -> None:
    found = {t: shutil.which(t) or Path(f"/usr/sbin/{t}").exists() for t in ("hey", "nginx")}
    missing = [t for t, ok in found.items() if not ok]
    if missing:
        packages = {"hey": "hey", "nginx": "nginx-light"}
        subprocess.run(["apt-get", "install", "-y", "-qq", *(packages[m] for m in missing)],
                       check=True, stdout=subprocess.DEVNULL)


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of `pids` so far."""
    user = system = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / CLK, system / CLK


def hey(url: str, concurrency: int, seconds: float, pids: list[int]) -> dict[str, float]:
    before = cpu_seconds(pids)
    out = subprocess.run(
        ["hey", "-z", f"{seconds}s", "-c", str(concurrency), "-m", "POST", "-d", BODY,
         "-T", "text/plain", url],
        capture_output=True, text=True, check=True,
    ).stdout
    after = cpu_seconds(pids)
    user, system = after[0] - before[0], after[1] - before[1]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    codes = re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)
    total = sum(int(n) for _, n in codes)
    ok = sum(int(n) for code, n in codes if code == "200")
    errors = out.split("Error distribution:")[1] if "Error distribution:" in out else ""
    failed = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s", errors, re.M))
    pct = dict(re.findall(r"\s(\d+)% in ([\d.]+) secs", out))
    mean = float(re.search(r"Average:\s+([\d.]+) secs", out).group(1))  # type: ignore[union-attr]
    if total - ok + failed:
        odd = {code: n for code, n in codes if code != "200"}
        first = [e.strip() for e in errors.strip().splitlines()[:3]]
        print(f"  {url} c={concurrency}: {total - ok + failed} errors: {odd or ''} "
              f"{' | '.join(first)}", flush=True)
    return {
        "rps": rps, "p50_ms": float(pct.get("50", "nan")) * 1000,
        "p99_ms": float(pct.get("99", "nan")) * 1000, "mean_ms": mean * 1000,
        "errors": total - ok + failed,
        "cpu_us_per_req": ((user + system) / total * 1e6) if pids and total else float("nan"),
        "user_us_per_req": (user / total * 1e6) if pids and total else float("nan"),
    }


NGINX_CONF = """
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream fn {{ server {upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://fn;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }}
  }}
}}
"""


def start_nginx(upstream: str, port: int, prefix: Path) -> subprocess.Popen[bytes]:
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, upstream=upstream, port=port))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"])
    for _ in range(50):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("nginx did not start")


def nginx_worker(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else [master]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_under_load(url: str, pid: int, connections: int,
                        seconds: float) -> tuple[float, dict[str, float]]:
    """Gateway RSS peak (MB) while `connections` keep-alive clients hammer `url`."""
    proc = subprocess.Popen(["hey", "-z", f"{seconds}s", "-c", str(connections), "-m", "POST",
                             "-d", BODY, url], stdout=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, rss_mb(pid))
        time.sleep(0.1)
    out = proc.stdout.read() if proc.stdout else ""
    codes = re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)
    errors = out.split("Error distribution:")[1] if "Error distribution:" in out else ""
    failed = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s", errors, re.M))
    ok = sum(int(n) for code, n in codes if code == "200")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if any(c != "200" for c, _ in codes):
        print("  status codes under load:", dict(codes))
    if errors.strip():
        first = [e.strip() for e in errors.strip().splitlines()[:4]]
        print("  errors under load:", " | ".join(first))
    return peak, {"ok": ok, "failed": failed + sum(int(n) for c, n in codes if c != "200"),
                  "rps": float(rps.group(1)) if rps else 0.0}


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds (errors: the sum)."""
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["errors"] = sum(r["errors"] for r in runs)
    return out


def measure(targets: dict[str, tuple[str, list[int]]], levels: list[int], seconds: float,
            rounds: int) -> dict[str, dict[int, dict[str, float]]]:
    """Every target at every level, `rounds` times, interleaved (target after target, so a
    noisy neighbour hits them alike), each run after a short warm-up; medians kept."""
    runs: dict[str, dict[int, list[dict[str, float]]]] = {
        t: {c: [] for c in levels} for t in targets}
    for _ in range(rounds):
        for c in levels:
            for target, (url, pids) in targets.items():
                hey(url, c, 0.5, pids)  # warm the keep-alive pools
                runs[target][c].append(hey(url, c, seconds, pids))
    return {t: {c: median_run(runs[t][c]) for c in levels} for t in targets}


def latency_us(r: dict[str, float], c: int) -> float:
    """Mean latency from throughput: a closed loop of c connections has c requests in flight
    (finer than hey's own mean, which it rounds to 0.1 ms)."""
    return c / r["rps"] * 1e6


def run_upstream(gw: Gateway, fixture: str, levels: list[int], seconds: float, rounds: int,
                 tmp: Path, compare: bool) -> dict[str, dict[int, dict[str, float]]]:
    gw.deploy(fixture, fixture)
    gw.invoke_until(fixture, lambda r: r.status_code == 200, data=b"warm up")
    [cid] = gw.containers(fixture)
    ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid)
    port = 18000 + os.getpid() % 1000 + len(fixture)
    prefix = tmp / fixture
    prefix.mkdir()
    nginx = start_nginx(f"{ip}:8080", port, prefix)
    url = f"{gw.url}/function/{fixture}"
    try:
        results = measure({
            "direct": (f"http://{ip}:8080/", []),
            "nginx": (f"http://127.0.0.1:{port}/", nginx_worker(nginx.pid)),
            "gateway": (url, [gw.proc.pid]),  # type: ignore[union-attr]
        }, levels, seconds, rounds)
        if compare:
            # the alternative we replaced: the same gateway with llhttp alone parsing
            # (NATIVE_RELAY=false), restarted on the same state and the same replica
            restart(gw, NATIVE_RELAY="false")
            gw.invoke_until(fixture, lambda r: r.status_code == 200, data=b"warm up")
            results.update(measure({"llhttp": (url, [gw.proc.pid])},  # type: ignore[union-attr]
                                   levels, seconds, 1))
            restart(gw, NATIVE_RELAY="true")
            gw.invoke_until(fixture, lambda r: r.status_code == 200, data=b"warm up")
    finally:
        nginx.terminate()
        nginx.wait()
    print(f"\nupstream {fixture}: medians of {rounds} interleaved rounds, {seconds:.0f} s per run, "
          "11-byte POST bodies (hey)")
    if compare:
        print("(llhttp: the gateway with NATIVE_RELAY=false, one round)")
    print(f"\n{'target':8} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'latency µs':>10} "
          f"{'CPU µs/req':>10} {'user µs':>7} {'errors':>6}")
    for target in results:
        for c in levels:
            r = results[target][c]
            print(f"{target:8} {c:>3} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                  f"{latency_us(r, c):>10.0f} {r['cpu_us_per_req']:>10.0f} "
                  f"{r['user_us_per_req']:>7.0f} {r['errors']:>6.0f}")
    print("\nratios:")
    for c in levels:
        g, n, d = (results[t][c]["rps"] for t in ("gateway", "nginx", "direct"))
        added = latency_us(results["gateway"][c], c) - latency_us(results["direct"][c], c)
        cpu = results["gateway"][c]["cpu_us_per_req"] / results["nginx"][c]["cpu_us_per_req"]
        print(f"  c={c:<3} gateway/nginx {g / n:.2f}   gateway/direct {g / d:.2f}   "
              f"nginx/direct {n / d:.2f}   CPU gateway/nginx {cpu:.2f}   "
              f"added mean latency {added:.0f} µs")
    return results


def restart(gw: Gateway, **env: str) -> None:
    gw.kill(signal.SIGTERM)
    gw.env.update(env)
    gw.start()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the NATIVE_RELAY=false comparison run")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--upstreams", default="fast-echo,http-echo")
    parser.add_argument("--connections", type=int, default=1000,
                        help="keep-alive connections for the memory run (0: skip)")
    parser.add_argument("--json", default=str(ROOT / "test-artifacts" / "bench-proxy.json"))
    args = parser.parse_args()
    ensure_tools()
    levels = [int(c) for c in args.concurrency.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="dfaas-bench-"))
    gw = Gateway(tmp, LOG_LEVEL="warning")
    report: dict[str, object] = {}
    try:
        gw.start()
        for fixture in args.upstreams.split(","):
            report[fixture] = run_upstream(gw, fixture, levels, args.seconds, args.rounds, tmp,
                                           not args.no_compare and fixture == "fast-echo")
        if args.connections:
            pid = gw.proc.pid  # type: ignore[union-attr]
            idle = rss_mb(pid)
            fixture = args.upstreams.split(",")[0]
            peak, load = peak_rss_under_load(f"{gw.url}/function/{fixture}", pid,
                                             args.connections, 10)
            print(f"\nmemory: gateway RSS {idle:.0f} MB idle, peak {peak:.0f} MB with "
                  f"{args.connections} concurrent keep-alive connections for 10 s "
                  f"({load['ok']:.0f} answered 200, {load['failed']:.0f} failed, "
                  f"{load['rps']:.0f} req/s)")
            report["memory"] = {"idle_mb": idle, "peak_mb": peak, **load}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    finally:
        gw.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
