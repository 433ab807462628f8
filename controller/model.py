"""What the controller sees of Docker, and the actions it may take — plain values.

`ObservedReplica.from_container` is the one place that reads Docker's container-list JSON;
everything above it works with these frozen values.
"""

from __future__ import annotations

from typing import Any

import attrs

from controller import labels as L

FunctionKey = tuple[str, str]  # (namespace, name)


@attrs.frozen
class ObservedReplica:
    id: str
    namespace: str
    function: str
    replica: int  # -1 when the label is missing or malformed
    spec_hash: str
    state: str  # Docker's State: created, running, exited, dead, paused, removing, ...
    ip: str = ""
    created: int = 0
    health_path: str = "/_/health"
    healthy: bool = False  # its last health probe passed (filled in by the loop)
    failing_for: float = 0.0  # seconds its probes have failed after it was healthy once

    @property
    def key(self) -> FunctionKey:
        return (self.namespace, self.function)

    @property
    def live(self) -> bool:
        return self.state == "running"

    @classmethod
    def from_container(cls, data: dict[str, Any]) -> ObservedReplica:
        """From an entry of Docker's container list; the address is the one on the
        container's (single) network."""
        labels = data.get("Labels") or {}
        try:
            replica = int(labels.get(L.REPLICA, "-1"))
        except ValueError:
            replica = -1
        networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
        ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
        return cls(
            id=data["Id"],
            namespace=labels.get(L.NAMESPACE, ""),
            function=labels.get(L.FUNCTION, ""),
            replica=replica,
            spec_hash=labels.get(L.SPEC_HASH, ""),
            state=data.get("State", ""),
            ip=ip,
            created=int(data.get("Created", 0)),
            health_path=labels.get(L.HEALTH_PATH) or "/_/health",
        )


@attrs.frozen
class Target:
    """What plan() needs to know of one desired function."""

    replicas: int
    spec_hash: str


@attrs.frozen
class CreateReplica:
    namespace: str
    function: str
    replica: int
    spec_hash: str


@attrs.frozen
class RemoveReplica:
    id: str
    namespace: str
    function: str
    reason: str


Action = CreateReplica | RemoveReplica
