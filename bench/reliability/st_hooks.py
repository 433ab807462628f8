"""Schemathesis hooks (SCHEMATHESIS_HOOKS=bench.reliability.st_hooks): a check that every
line of an NDJSON answer (GET /system/events?follow=true, GET /system/logs) matches the
schema our document gives for one line (schemathesis has no deserializer for
application/x-ndjson and would skip those bodies), and one that notes the 5xx answers of
invocations for the report."""

from __future__ import annotations

import json
import os
from typing import Any

import jsonschema
import schemathesis

NDJSON = "application/x-ndjson"


def _line_schema(case: Any, status: int) -> dict[str, Any] | None:
    raw = case.operation.schema.raw_schema
    operation = raw["paths"][case.operation.path][case.operation.method.lower()]
    documented = operation["responses"].get(str(status), {}).get("content", {})
    schema = documented.get(NDJSON, {}).get("schema")
    return None if schema is None else {**schema, "components": raw["components"]}


@schemathesis.check
def ndjson_conformance(ctx: Any, response: Any, case: Any) -> bool | None:
    """Each line of an application/x-ndjson answer is JSON matching the documented schema."""
    types = response.headers.get("content-type") or []
    if not any(t.split(";")[0].strip() == NDJSON for t in types):
        return None
    schema = _line_schema(case, response.status_code)
    if schema is None:
        raise AssertionError(f"{response.status_code} answered {NDJSON}, which the document "
                             "does not list for it")
    for number, line in enumerate(response.content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as err:
            raise AssertionError(f"line {number} is not JSON: {err}: {line[:200]!r}") from err
        try:
            jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)
        except jsonschema.ValidationError as err:
            raise AssertionError(f"line {number} does not match the schema: "
                                 f"{err.message}") from err
    return True


@schemathesis.check
def invocation_5xx(ctx: Any, response: Any, case: Any) -> bool | None:
    """Never fails: notes each 5xx answer of an invocation (/function/…), with the first
    line of its body, in the file named by DFAAS_INVOCATION_5XX (one JSON line each)."""
    path = os.environ.get("DFAAS_INVOCATION_5XX")
    if not path or response.status_code < 500 or not case.operation.path.startswith(
            "/function/"):
        return None
    reason = response.content.decode(errors="replace").strip().splitlines()[:1]
    with open(path, "a") as sink:
        sink.write(json.dumps({"status": response.status_code, "method": case.method,
                               "path": case.formatted_path,
                               "reason": reason[0][:300] if reason else ""}) + "\n")
    return None
