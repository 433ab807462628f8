"""Old logs stay readable: a log written by schema version 1 decodes and projects to the
state it described then. If a change to an event breaks this test, the change needs a new
schema version and an upcaster (see docs/events.md), not an edit of the fixture.

golden-v2.jsonl is a log that spans the upgrade to `function.scaled` version 2: its first
four records were written by a gateway that knew only version 1 (no `reason`), the rest by
one that writes version 2."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from events.codec import EVENT_TYPES, UPCASTERS, decode, encode
from events.model import FunctionSpec, Resources
from events.project import project
from events.store import Recorded
from events.types import FunctionScaled, ReplicaFailed

FIXTURES = Path(__file__).parents[2] / "fixtures" / "events"
GOLDEN = FIXTURES / "golden-v1.jsonl"
GOLDEN_V2 = FIXTURES / "golden-v2.jsonl"


def _lines(path: Path = GOLDEN) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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


@pytest.mark.parametrize("path", [GOLDEN, GOLDEN_V2], ids=["v1", "v2"])
def test_current_version_events_re_encode_to_the_stored_payload(path: Path) -> None:
    # Catches a shape change made without bumping the schema version: while a record's
    # schema version is current, encoding what it decodes to must reproduce it.
    checked = 0
    for line in _lines(path):
        if EVENT_TYPES[line["type"]][1] != line["schema_version"]:
            continue
        event = decode(line["type"], line["schema_version"], line["payload"])
        assert encode(event) == (line["type"], line["schema_version"], line["payload"])
        checked += 1
    assert checked >= 4


def test_a_log_spanning_the_upgrade_reads_with_the_reason_where_it_was_written() -> None:
    lines = _lines(GOLDEN_V2)
    assert [line["schema_version"] for line in lines if line["type"] == "function.scaled"] == [
        1, 1, 2, 2, 2]
    assert ("function.scaled", 1) in UPCASTERS
    records = [_recorded(line) for line in lines]
    scaled = [(r.position, r.event) for r in records if isinstance(r.event, FunctionScaled)]
    assert scaled == [
        (2, FunctionScaled("openfaas-fn", "resize", 4, 1, reason="")),  # v1: not recorded
        (4, FunctionScaled("openfaas-fn", "thumbs", 0, 2, reason="")),
        (5, FunctionScaled("openfaas-fn", "thumbs", 1, 0, reason="scale-from-zero")),
        (6, FunctionScaled("openfaas-fn", "resize", 1, 4,
                           reason="down: rps load 12.00, target 50 per replica")),
        (8, FunctionScaled("openfaas-fn", "resize", 3, 1, reason="manual")),
    ]
    # upcast, a version-1 record now encodes as version 2 with the unknown reason
    assert encode(scaled[0][1]) == ("function.scaled", 2, {
        "namespace": "openfaas-fn", "name": "resize", "replicas": 4, "previous": 1,
        "reason": ""})
    failed = records[6].event
    assert isinstance(failed, ReplicaFailed) and failed.exit_code == 137

    desired = project(records)
    assert desired.position == 8
    resize, thumbs = desired.get("openfaas-fn", "resize"), desired.get("openfaas-fn", "thumbs")
    assert resize is not None and thumbs is not None
    assert (resize.replicas, resize.version) == (3, 4)  # the outcome is not folded
    assert (thumbs.replicas, thumbs.version) == (1, 3)
    assert thumbs.created_at == datetime(2026, 6, 1, 9, 0, 0, 250000, tzinfo=UTC)
    assert resize.spec.labels == (("com.openfaas.scale.max", "5"),
                                  ("com.openfaas.scale.min", "1"))
    # as of the upgrade (position 4), thumbs slept at zero
    before = project(records[:4]).get("openfaas-fn", "thumbs")
    assert before is not None and before.replicas == 0
