"""The events of the function lifecycle: the facts the log records, forever.

Events are named in the past tense because they state what was decided, not what should
be attempted. Their payload is domain data only; who, when and where (position, stream,
version, time, actor, request id) live in the envelope the store adds (`Recorded`).
Once an event shape has been written to a log it must stay readable: change a shape only
together with a new schema version and an upcaster in `events.codec`.
"""

import attrs

from events.model import (
    FunctionSpec,
    Pairs,
    as_pairs,
    namespace_stream,
    outcome_stream,
    secret_stream,
    stream_name,
)

__all__ = [
    "Event",
    "FunctionDeployed",
    "FunctionRemoved",
    "FunctionScaled",
    "FunctionUpdated",
    "NamespaceCreated",
    "NamespaceRemoved",
    "NamespaceUpdated",
    "ReplicaFailed",
    "SecretCreated",
    "SecretRemoved",
    "SecretUpdated",
    "stream_of",
]


@attrs.frozen
class FunctionDeployed:
    """A new function was deployed with this spec and initial replica count."""

    spec: FunctionSpec
    replicas: int

    @property
    def key(self) -> tuple[str, str]:
        return self.spec.key


@attrs.frozen
class FunctionUpdated:
    """A deployed function's spec was replaced; its replica count is left as it was."""

    spec: FunctionSpec

    @property
    def key(self) -> tuple[str, str]:
        return self.spec.key


@attrs.frozen
class FunctionScaled:
    """A deployed function's desired replica count changed from `previous` to `replicas`,
    for `reason` ("manual" through the API, "scale-from-zero" when an invocation woke it,
    the autoscaler's decision; "" when unknown, as in records written before version 2)."""

    namespace: str
    name: str
    replicas: int
    previous: int
    reason: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@attrs.frozen
class FunctionRemoved:
    """A deployed function was removed; its replicas are to be stopped."""

    namespace: str
    name: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@attrs.frozen
class NamespaceCreated:
    """A namespace was created (OpenFaaS requires label openfaas=1 on it)."""

    name: str
    labels: Pairs = attrs.field(default=(), converter=as_pairs)
    annotations: Pairs = attrs.field(default=(), converter=as_pairs)

    @property
    def key(self) -> tuple[str, str]:
        return ("", self.name)


@attrs.frozen
class NamespaceUpdated:
    """A namespace's labels and annotations were replaced."""

    name: str
    labels: Pairs = attrs.field(default=(), converter=as_pairs)
    annotations: Pairs = attrs.field(default=(), converter=as_pairs)

    @property
    def key(self) -> tuple[str, str]:
        return ("", self.name)


@attrs.frozen
class NamespaceRemoved:
    """An empty namespace was removed, and with it the secrets it held."""

    name: str

    @property
    def key(self) -> tuple[str, str]:
        return ("", self.name)


@attrs.frozen
class SecretCreated:
    """A secret was created; `digest` is a keyed digest of the value, never the value."""

    namespace: str
    name: str
    digest: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@attrs.frozen
class SecretUpdated:
    """A secret's value was replaced (from `previous` to `digest`)."""

    namespace: str
    name: str
    digest: str
    previous: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@attrs.frozen
class SecretRemoved:
    namespace: str
    name: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@attrs.frozen
class ReplicaFailed:
    """An outcome, not an intent: a replica died or failed its health checks and is being
    replaced. Kept in the function's own `outcome/…` stream for the audit trail; the
    desired-state projection never reads it."""

    namespace: str
    name: str
    replica: int
    container: str
    reason: str
    exit_code: int | None = None
    restarts: int = 0  # replacements of this function after failures, this one included
    retry_in: float = 0.0  # back-off before the replacement, seconds

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


FunctionEvent = FunctionDeployed | FunctionUpdated | FunctionScaled | FunctionRemoved
Event = (
    FunctionDeployed
    | FunctionUpdated
    | FunctionScaled
    | FunctionRemoved
    | NamespaceCreated
    | NamespaceUpdated
    | NamespaceRemoved
    | SecretCreated
    | SecretUpdated
    | SecretRemoved
    | ReplicaFailed
)


def stream_of(event: Event) -> str:
    """The stream an event belongs to: one per function, namespace and secret."""
    if isinstance(event, NamespaceCreated | NamespaceUpdated | NamespaceRemoved):
        return namespace_stream(event.name)
    if isinstance(event, SecretCreated | SecretUpdated | SecretRemoved):
        return secret_stream(event.namespace, event.name)
    if isinstance(event, ReplicaFailed):
        return outcome_stream(event.namespace, event.name)
    return stream_name(*event.key)
