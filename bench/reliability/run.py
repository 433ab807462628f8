"""`just reliability`: issue 6's reliability suite against real gateways on the real engine.

Five parts, each on gateways of its own (the e2e harness: own instance label, network,
ports, state), each adding rows to one table of figures against their targets:

1. fuzz.py     — schemathesis from GET /system/openapi.json: no 5xx, answers as documented;
2. stateful.py — a hypothesis state machine: random deploy/update/scale/delete and secret
                 operations against a model, the containers converging to it;
3. chaos.py    — replicas killed, the gateway SIGKILLed, the engine restarted, under load
                 and API writes: failed requests, lost events, orphans, duplicates;
4. diskfull.py — the state's disk full under a serving gateway (and tests/api/test_disk_full.py);
5. load.py     — 1,000 concurrent connections for 60 s: errors, peak RSS, latency, req/s.

The table goes to stdout, test-artifacts/reliability.md (the docs/reliability.md table) and
test-artifacts/bench-reliability.json (everything measured). Exit status 1 when a target is
missed. Part 3 restarts the Docker engine: every other user of the engine notices.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.reliability import chaos, diskfull, fuzz, load, stateful  # noqa: E402
from bench.reliability.common import Report, docker_answers, engine_up  # noqa: E402

PARTS = ("fuzz", "stateful", "chaos", "diskfull", "load")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run (default all: {','.join(PARTS)})")
    parser.add_argument("--examples", type=int, default=100,
                        help="schemathesis: examples per operation and phase")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--machine-runs", type=int, default=50,
                        help="hypothesis: state machine runs (examples)")
    parser.add_argument("--machine-steps", type=int, default=30, help="hypothesis: steps per run")
    parser.add_argument("--rounds", type=int, default=20, help="chaos rounds")
    parser.add_argument("--engine-restarts", type=int, default=4,
                        help="chaos: how many of the rounds restart the engine (0: none)")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--replicas", type=int, default=4, help="load: replicas of fast-echo")
    parser.add_argument("--keep", action="store_true",
                        help="keep the gateways' state and logs (printed at the end)")
    parser.add_argument("--json",
                        default=str(ROOT / "test-artifacts" / "bench-reliability.json"))
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = Report()
    report.raw.update({
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(),
        "commit": subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        "args": vars(args),
    })
    tmp = Path(tempfile.mkdtemp(prefix="dfaas-reliability-"))
    began = time.monotonic()
    timings: dict[str, float] = {}
    try:
        for part in parts:
            started = time.monotonic()
            try:
                if part == "fuzz":
                    fuzz.run(report, tmp, examples=args.examples, seed_value=args.seed)
                elif part == "stateful":
                    stateful.run(report, tmp, runs=args.machine_runs, steps=args.machine_steps,
                                 seed_value=args.seed)
                elif part == "chaos":
                    chaos.run(report, tmp, rounds=args.rounds,
                              engine_restarts=args.engine_restarts, seed_value=args.seed)
                elif part == "diskfull":
                    diskfull.run(report, tmp)
                elif part == "load":
                    load.run(report, tmp, connections=args.connections,
                             seconds=args.load_seconds, replicas=args.replicas)
            except Exception as err:  # the part is reported as not run; the others go on
                import traceback
                traceback.print_exc()
                report.add(part, "the part ran to its end", f"no: {type(err).__name__}: {err}",
                           "yes", False)
            timings[part] = time.monotonic() - started
            out.write_text(json.dumps(report.raw, indent=2, default=str))
    finally:
        if not docker_answers():  # a part that restarts the engine was interrupted
            engine_up()
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    total = time.monotonic() - began
    report.raw["timings_s"] = {**timings, "total": total}
    report.raw["rows"] = [vars(r) for r in report.rows]
    out.write_text(json.dumps(report.raw, indent=2, default=str))
    (out.parent / "reliability.md").write_text(report.markdown() + "\n")
    print("\n" + report.table())
    missed = [r for r in report.rows if r.met is False]
    print(f"\n{len(report.rows)} figures, {sum(r.met is True for r in report.rows)} targets "
          f"met, {len(missed)} missed; "
          + ", ".join(f"{p} {s:.0f} s" for p, s in timings.items())
          + f"; total {total / 60:.1f} min; JSON in {out}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
