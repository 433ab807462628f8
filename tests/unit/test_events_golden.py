"""Old logs stay readable: a log written by schema version 1 decodes and projects to the
state it described then. If a change to an event breaks this test, the change needs a new
schema version and an upcaster (see docs/events.md), not an edit of the fixture."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from events.codec import EVENT_TYPES, decode, encode
from events.model import FunctionSpec, Resources
from events.project import project
from events.store import Recorded

GOLDEN = Path(__file__).parents[2] / "fixtures" / "events" / "golden-v1.jsonl"


def _lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GOLDEN.read_text().splitlines() if line.strip()]


def _recorded(line: dict[str, Any]) -> Recorded:
    return Recorded(
        position=line["position"],
        stream=line["stream"],
        version=line["version"],
        time=datetime.fromisoformat(line["time"]),
        actor=line["actor"],
        request_id=line["request_id"],
        event=decode(line["type"], line["schema_version"], line["payload"]),
        source=line["source"],
        user_agent=line["user_agent"],
        correlation_id=line["correlation_id"],
    )


def test_golden_log_projects_to_the_state_it_recorded() -> None:
    desired = project(_recorded(line) for line in _lines())

    assert desired.position == 7
    assert sorted(desired.functions) == [("dev", "echo"), ("openfaas-fn", "figlet")]

    figlet = desired.get("openfaas-fn", "figlet")
    assert figlet is not None
    assert figlet.spec == FunctionSpec(
        name="figlet",
        namespace="openfaas-fn",
        image="ghcr.io/openfaas/figlet:0.13.0",
        env_process="figlet",
        env_vars={"write_debug": "false"},
        labels={"com.openfaas.scale.min": "1"},
        limits=Resources(memory="64Mi"),
    )
    assert (figlet.replicas, figlet.version) == (3, 3)
    assert figlet.created_at == datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    assert figlet.updated_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)

    echo = desired.get("dev", "echo")
    assert echo is not None
    assert echo.spec == FunctionSpec(
        name="echo",
        namespace="dev",
        image="echo:1",
        env_process="cat",
        annotations={"owner": "team-a"},
        secrets=("api-key",),
        constraints=("node.platform.os == linux",),
        requests=Resources(memory="16Mi", cpu="50m"),
        read_only_root_filesystem=True,
    )
    assert (echo.replicas, echo.version) == (0, 2)

    assert desired.get("openfaas-fn", "nodeinfo") is None


def test_current_version_events_re_encode_to_the_stored_payload() -> None:
    # Catches a shape change made without bumping the schema version: the fixture was
    # written by version 1, so while version 1 is current, encoding must reproduce it.
    for line in _lines():
        if EVENT_TYPES[line["type"]][1] != line["schema_version"]:
            continue
        event = decode(line["type"], line["schema_version"], line["payload"])
        assert encode(event) == (line["type"], line["schema_version"], line["payload"])
