"""Part 1: schemathesis against a running gateway's GET /system/openapi.json.

Every operation of the document, in all four of schemathesis's phases (examples, coverage,
fuzzing with positive and negative data, and stateful sequences following the links it
infers), with basic auth. Checks: no 5xx (`not_a_server_error`), every status code
documented, the content type documented, the body matching the documented schema, and our
own `ndjson_conformance` (st_hooks.py) for the NDJSON answers schemathesis cannot parse.

The gateway is a throwaway one with a function `echo` (1 replica), `env` (asleep at 0), a
secret and a namespace to find, and short timeouts (READY/EXEC/WRITE_TIMEOUT 3 s, so a
generated call to a function that cannot start, or a `follow` that streams, ends) and
MAX_REPLICAS 3 (so a generated scale cannot start dozens of containers on 2 cores).
Generated names are drawn half the time from those that exist, so the requests reach the
handlers' logic rather than stop at 404.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.reliability.common import FIXTURE, PASSWORD, ROOT, Report, gateway, log_problems

CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "ndjson_conformance", "invocation_5xx"]

CONFIG = """
[auth.basic]
username = "admin"
password = "{password}"

[dictionaries.functions]
values = ["echo", "env", "nope"]
[dictionaries.names]
values = ["echo", "env", "s1", "dev", "nope"]
[dictionaries.namespaces]
values = ["openfaas-fn", "dev"]
[dictionaries.images]
values = ["{echo}", "{env}"]
[dictionaries.follow]
values = ["false", "0"]

[parameters]
"path.name" = {{ dictionary = "functions", probability = 0.5 }}
"path.ns" = {{ dictionary = "namespaces", probability = 0.5 }}
"query.namespace" = {{ dictionary = "namespaces", probability = 0.5 }}
"query.name" = {{ dictionary = "functions", probability = 0.5 }}
"query.function" = {{ dictionary = "functions", probability = 0.5 }}
"query.follow" = {{ dictionary = "follow", probability = 0.8 }}
"body.service" = {{ dictionary = "functions", probability = 0.5 }}
"body.functionName" = {{ dictionary = "functions", probability = 0.5 }}
"body.serviceName" = {{ dictionary = "functions", probability = 0.5 }}
"body.name" = {{ dictionary = "names", probability = 0.5 }}
"body.namespace" = {{ dictionary = "namespaces", probability = 0.5 }}
"body.image" = {{ dictionary = "images", probability = 0.5 }}

# An invocation's 502 (no replica can start: a generated image that does not exist) and 504
# (EXEC_TIMEOUT) are the gateway's documented answers, not server errors; st_hooks.py's
# invocation_5xx records each for the report.
[[operations]]
include-path-regex = "^/function/"
[operations.checks.not_a_server_error]
expected-statuses = ["1xx", "2xx", "3xx", "4xx", "502", "504"]
"""

KINDS = {  # schemathesis failure type -> our row
    "ServerError": "5xx answers", "ContentTypeServerError": "5xx answers",
    "UndefinedStatusCode": "undocumented status codes",
    "MissingContentType": "content type not as documented",
    "UndefinedContentType": "content type not as documented",
    "MalformedMediaType": "content type not as documented",
    "JsonSchemaError": "bodies not matching the schema",
    "MalformedJson": "bodies not matching the schema",
    "ContentDeserializationError": "bodies not matching the schema",
    "CustomFailure": "NDJSON lines not matching the schema",
}


def seed(gw: Any) -> None:
    c = gw.client
    for body in ({"service": "echo", "image": FIXTURE.format("echo")},
                 {"service": "env", "image": FIXTURE.format("env"),
                  "labels": {"com.openfaas.scale.min": "0"}}):
        assert c.post("/system/functions", json=body).status_code == 202
    assert c.post("/system/secrets", json={"name": "s1", "value": "v"}).status_code == 201
    assert c.post("/system/namespace/", json={"name": "dev", "labels": {"openfaas": "1"}}
                  ).status_code == 201
    gw.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")


def run(report: Report, tmp: Path, *, examples: int, seed_value: int) -> None:
    part = "1 API fuzzing"
    print(f"\n== {part}: schemathesis, {examples} examples per operation and phase", flush=True)
    gw = gateway(tmp / "fuzz", READY_TIMEOUT="3s", EXEC_TIMEOUT="3s", WRITE_TIMEOUT="3s",
                 MAX_REPLICAS="3", LOG_LEVEL="warning")
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    out = artifacts / "reliability-schemathesis.txt"
    json_path = tmp / "schemathesis.json"
    config = tmp / "schemathesis.toml"
    invocations = tmp / "invocation-5xx.ndjson"
    config.write_text(CONFIG.format(password=PASSWORD, echo=FIXTURE.format("echo"),
                                    env=FIXTURE.format("env")))
    try:
        gw.start()
        seed(gw)
        offset = gw.log_path.stat().st_size
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "bench.reliability.st_hooks",
               "PYTHONPATH": str(ROOT), "DFAAS_INVOCATION_5XX": str(invocations)}
        began = time.monotonic()
        with open(out, "w") as sink:
            proc = subprocess.run(
                [str(ROOT / ".venv" / "bin" / "st"), "--config-file", str(config),
                 "--no-color", "run", f"{gw.url}/system/openapi.json",
                 "--checks", ",".join(CHECKS), "--max-examples", str(examples),
                 "--seed", str(seed_value), "--request-timeout", "15",
                 "--phases", "examples,coverage,fuzzing,stateful",
                 "--report", "json", "--report-json-path", str(json_path)],
                cwd=tmp, env=env, stdout=sink, stderr=subprocess.STDOUT, timeout=1200,
            )
        took = time.monotonic() - began
        alive = gw.proc is not None and gw.proc.poll() is None
        problems = log_problems(gw, offset)
        functions = len(gw.client.get("/system/functions").json()) if alive else -1
        running = len(gw.containers())
    finally:
        gw.close()
    result: dict[str, Any] = json.loads(json_path.read_text())
    report.raw["fuzz"] = {"exit_code": proc.returncode, "seconds": took, "result": result,
                          "log_problems": problems[:20]}
    ops = result["operations"]
    cases = result["test_cases"]
    report.add(part, "operations tested", f"{ops['tested']} of {ops['total']}",
               "every operation", ops["tested"] == ops["total"])
    report.add(part, "test cases generated", f"{cases['generated']} in {took:.0f} s",
               "hundreds", cases["generated"] >= 300)
    found: dict[str, list[str]] = {kind: [] for kind in dict.fromkeys(KINDS.values())}
    other: list[str] = []
    for failure in result["failures"]:
        text = f"{failure['code']} {failure['title']} ×{failure['count']}: " + \
               ", ".join(failure["operations"])
        found.setdefault(KINDS.get(failure["type"], ""), other).append(text)
    for kind, texts in found.items():
        report.add(part, kind, "; ".join(texts) if texts else 0, "0", not texts)
    if other:
        report.add(part, "other failures", "; ".join(other), "0", False)
    noted = [json.loads(line) for line in invocations.read_text().splitlines()] \
        if invocations.exists() else []
    why = Counter(f"{n['status']} {_reason(n['reason'])}" for n in noted)
    report.raw["fuzz"]["invocation_5xx"] = dict(why)
    report.add(part, "invocations answered 502/504 (documented: function cannot run)",
               ", ".join(f"{k} ×{v}" for k, v in why.most_common()) or 0)
    report.add(part, "functions deployed by the fuzzer, containers running at the end",
               f"{functions}, {running}")
    errors = [f"{e.get('title', e)}" for e in result.get("errors", [])]
    report.add(part, "network errors and timeouts", "; ".join(errors) if errors else 0,
               "0", not errors)
    report.add(part, "gateway alive afterwards, errors logged",
               f"{'yes' if alive else 'NO'}, {len(problems)}", "yes, 0",
               alive and not problems)
    print(f"  (schemathesis output: {out.relative_to(ROOT)})")


def _reason(text: str) -> str:
    """The reason of a 502 without the function's name, so that equal reasons count once."""
    text = re.sub(r"replica of \S+:", "replica of <fn>:", text)
    return text[:120] or "(empty body: HEAD)"
