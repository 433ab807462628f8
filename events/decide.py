"""Command handlers: (desired state, command) -> the events that record the decision.

Why pure functions: the business rules (what may be deployed, updated, scaled, removed)
are decided here without I/O, so they are trivially testable and the HTTP layer stays a
thin shell: validate -> decide -> append -> respond. A refused command raises a
`DomainError` carrying its HTTP status. A command that would change nothing returns no
events, which makes retried requests (CI re-running `faas-cli deploy`) harmless.

The caller appends the events to `stream_name(namespace, name)` with the version it read
(`FunctionState.version`, or the store's `stream_version` for a function that is not
deployed), so a concurrent change to the same function is detected, not overwritten.
"""

from events.errors import AlreadyExists, Invalid, NotFound
from events.model import Desired, FunctionSpec, FunctionState
from events.types import Event, FunctionDeployed, FunctionRemoved, FunctionScaled, FunctionUpdated

__all__ = ["deploy", "remove", "scale", "update"]


def deploy(desired: Desired, spec: FunctionSpec, replicas: int) -> list[Event]:
    _check_replicas(replicas)
    if desired.get(spec.namespace, spec.name) is not None:
        raise AlreadyExists(
            f"function {spec.name!r} already exists in namespace {spec.namespace!r}; "
            "update it instead"
        )
    return [FunctionDeployed(spec=spec, replicas=replicas)]


def update(desired: Desired, spec: FunctionSpec) -> list[Event]:
    state = _existing(desired, spec.namespace, spec.name)
    if state.spec == spec:
        return []
    return [FunctionUpdated(spec=spec)]


def scale(desired: Desired, namespace: str, name: str, replicas: int) -> list[Event]:
    _check_replicas(replicas)
    state = _existing(desired, namespace, name)
    if state.replicas == replicas:
        return []
    return [
        FunctionScaled(namespace=namespace, name=name, replicas=replicas, previous=state.replicas)
    ]


def remove(desired: Desired, namespace: str, name: str) -> list[Event]:
    _existing(desired, namespace, name)
    return [FunctionRemoved(namespace=namespace, name=name)]


def _existing(desired: Desired, namespace: str, name: str) -> FunctionState:
    state = desired.get(namespace, name)
    if state is None:
        raise NotFound(f"function {name!r} not found in namespace {namespace!r}")
    return state


def _check_replicas(replicas: int) -> None:
    if replicas < 0:
        raise Invalid(f"replicas must be 0 or more, got {replicas}")
