"""The events of the function lifecycle: the facts the log records, forever.

Events are named in the past tense because they state what was decided, not what should
be attempted. Their payload is domain data only; who, when and where (position, stream,
version, time, actor, request id) live in the envelope the store adds (`Recorded`).
Once an event shape has been written to a log it must stay readable: change a shape only
together with a new schema version and an upcaster in `events.codec`.
"""

import attrs

from events.model import FunctionSpec

__all__ = ["Event", "FunctionDeployed", "FunctionRemoved", "FunctionScaled", "FunctionUpdated"]


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
    """A deployed function's desired replica count changed from `previous` to `replicas`."""

    namespace: str
    name: str
    replicas: int
    previous: int

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


Event = FunctionDeployed | FunctionUpdated | FunctionScaled | FunctionRemoved
