"""Dashboard benchmark: first load of the functions page with 50 functions.

A real `docker-faas serve` (the e2e harness' Gateway) holds 50 functions, deployed asleep
(`com.openfaas.scale.min=0`: no containers, so the engine's speed does not enter) and each
updated once, so the event log and the "last change" column have something to show.
Debian's Chromium, headless, driven by Playwright, then opens /ui/ in a fresh browser
context (empty cache) `--runs` times and measures:

* transferred: the bytes the page received until it was interactive plus one second
  (Chrome DevTools' `encodedDataLength` of every response: headers and bodies as sent,
  compressed where they were), and the number of requests;
* interactive: the `docker-faas:functions-interactive` performance mark, which the page sets
  once the table is drawn with every row and its handlers attached (ms since navigation start);
* DOMContentLoaded and load, for reference;
* a warm reload in the same context (ETag revalidation: the assets answer 304);
* layout shift while the page refreshes: the cumulative layout shift score (Chromium's
  `layout-shift` entries) over the two 5 s refreshes after the first drawing; 0 means no
  element moved.

The credentials go in an Authorization header on every request, as a browser sends them
once the user has logged in (Playwright's own http_credentials intercept requests, which
turns Chromium's HTTP cache off and would hide the 304s).

Budget (issue 7): under 300 KB transferred and under 500 ms to interactive. Exits 1 when the
median misses it. Results: docs/benchmarks.md, "Issue 7 — dashboard".
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import FIXTURE, PASSWORD, Gateway, remove_instance  # noqa: E402

BUDGET_BYTES = 300 * 1024
BUDGET_MS = 500.0
MARK = "docker-faas:functions-interactive"


def chromium_path() -> str:
    """Debian's Chromium, installed by scripts/chromium.sh when missing."""
    for attempt in range(2):
        for name in ("chromium", "chromium-browser"):
            found = shutil.which(name)
            if found:
                return found
        if attempt == 0:
            subprocess.run(["bash", str(ROOT / "scripts" / "chromium.sh")], check=False)
    raise SystemExit("Chromium is missing: install Debian's chromium (scripts/chromium.sh)")


def populate(gw: Gateway, count: int) -> None:
    for i in range(count):
        body = {"service": f"fn-{i:02d}", "image": FIXTURE.format("echo"),
                "labels": {"com.openfaas.scale.min": "0"}, "annotations": {"team": "bench"},
                "envVars": {"A": "1"}}
        r = gw.client.post("/system/functions", json=body)
        assert r.status_code == 202, r.text
        r = gw.client.put("/system/functions", json={**body, "envVars": {"A": "2"}})
        assert r.status_code == 202, r.text


def new_context(browser: Any) -> Any:
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    return browser.new_context(extra_http_headers={"Authorization": f"Basic {token}"},
                               viewport={"width": 1366, "height": 800})


def load_once(context: Any, url: str, functions: int) -> dict[str, float]:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    sizes: dict[str, float] = {}
    statuses: dict[str, int] = {}
    cdp.on("Network.loadingFinished",
           lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
    # the status on the wire (a revalidated file shows as its cached 200 elsewhere)
    cdp.on("Network.responseReceivedExtraInfo",
           lambda e: statuses.__setitem__(e["requestId"], e["statusCode"]))
    page.goto(url + "/ui/", wait_until="commit")
    page.wait_for_function("() => document.documentElement.dataset.ready === 'functions'",
                           timeout=15_000)
    rows = page.locator("table.functions tbody tr[data-name]").count()
    assert rows == functions, f"{rows} rows drawn, expected {functions}"
    page.wait_for_timeout(1000)
    timing = page.evaluate(f"""() => {{
        const nav = performance.getEntriesByType('navigation')[0];
        const mark = performance.getEntriesByName('{MARK}')[0];
        return {{interactive: mark.startTime, dcl: nav.domContentLoadedEventEnd,
                 load: nav.loadEventEnd}};
    }}""")
    result = {**timing, "bytes": sum(sizes.values()), "requests": len(sizes),
              "not_modified": sum(1 for s in statuses.values() if s == 304)}
    page.close()
    return result


def reload_warm(context: Any, url: str) -> dict[str, float]:
    """A second load in the same context: the assets revalidate (304)."""
    load_once(context, url, FUNCTIONS)  # fill the cache
    return load_once(context, url, FUNCTIONS)


SHIFTS = """window.__shift = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__shift += entry.value;
}).observe({ type: 'layout-shift', buffered: true });"""


def refresh_shift(context: Any, url: str) -> float:
    """The layout shift score added by two refreshes after the table is first drawn."""
    context.add_init_script(SHIFTS)
    page = context.new_page()
    page.goto(url + "/ui/")
    page.wait_for_function("() => document.documentElement.dataset.ready === 'functions'")
    page.wait_for_timeout(300)
    before = float(page.evaluate("() => window.__shift"))
    page.wait_for_timeout(11_000)
    after = float(page.evaluate("() => window.__shift"))
    page.close()
    return after - before


FUNCTIONS = 50


def main() -> int:
    global FUNCTIONS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--functions", type=int, default=50)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    FUNCTIONS = args.functions
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    gw = Gateway(tmp, LOG_LEVEL="warning")
    try:
        gw.start()
        populate(gw, args.functions)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), headless=True)
            cold = []
            for _ in range(args.runs):
                context = new_context(browser)
                cold.append(load_once(context, gw.url, args.functions))
                context.close()
            context = new_context(browser)
            warm = reload_warm(context, gw.url)
            context.close()
            context = new_context(browser)
            shift = refresh_shift(context, gw.url)
            context.close()
            version = browser.version
            browser.close()
    finally:
        gw.close()
        remove_instance(gw.instance)
        shutil.rmtree(tmp, ignore_errors=True)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in cold)

    summary = {
        "chromium": version, "functions": args.functions, "runs": args.runs,
        "bytes_median": med("bytes"), "bytes_max": max(r["bytes"] for r in cold),
        "requests": med("requests"),
        "interactive_ms_median": med("interactive"),
        "interactive_ms_max": max(r["interactive"] for r in cold),
        "dcl_ms_median": med("dcl"), "load_ms_median": med("load"),
        "warm_bytes": warm["bytes"], "warm_interactive_ms": warm["interactive"],
        "warm_not_modified": warm["not_modified"], "refresh_layout_shift": shift,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(f"dashboard, {args.functions} functions, Chromium {version}, {args.runs} cold loads")
    print(f"  transferred   median {summary['bytes_median'] / 1024:7.1f} KB  "
          f"max {summary['bytes_max'] / 1024:7.1f} KB  ({summary['requests']:.0f} requests)"
          f"   budget {BUDGET_BYTES // 1024} KB")
    print(f"  interactive   median {summary['interactive_ms_median']:7.1f} ms  "
          f"max {summary['interactive_ms_max']:7.1f} ms   budget {BUDGET_MS:.0f} ms")
    print(f"  DOMContentLoaded {summary['dcl_ms_median']:.1f} ms, "
          f"load {summary['load_ms_median']:.1f} ms")
    print(f"  warm reload   {summary['warm_bytes'] / 1024:.1f} KB "
          f"({summary['warm_not_modified']} answered 304), interactive "
          f"{summary['warm_interactive_ms']:.1f} ms")
    print(f"  layout shift over two refreshes: {shift:.4f}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "cold": cold, "warm": warm},
                                        indent=2) + "\n")
    ok = summary["bytes_median"] < BUDGET_BYTES and summary["interactive_ms_median"] < BUDGET_MS
    print("  within budget" if ok else "  OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
