"""The labels that mark a container as ours, and how we read them back.

Every container the controller creates carries these labels; the controller lists, adopts
and removes containers only by them, so anything another tool (or a person) started on the
same engine is never touched. ``instance`` separates several gateways — and test runs —
sharing one engine.
"""

from __future__ import annotations

PREFIX = "com.docker-faas."
INSTANCE = PREFIX + "instance"
FUNCTION = PREFIX + "function"
NAMESPACE = PREFIX + "namespace"
REPLICA = PREFIX + "replica"
SPEC_HASH = PREFIX + "spec-hash"
HEALTH_PATH = PREFIX + "health-path"  # what the prober asks, fixed per container
# OpenFaaS clients (the certifier) expect the function name under this key.
FAAS_FUNCTION = "faas_function"


def instance_filter(
    instance: str, namespace: str | None = None, name: str | None = None
) -> list[str]:
    """Docker `label=` filters selecting our containers, optionally one function's."""
    filters = [f"{INSTANCE}={instance}"]
    if namespace is not None:
        filters.append(f"{NAMESPACE}={namespace}")
    if name is not None:
        filters.append(f"{FUNCTION}={name}")
    return filters
