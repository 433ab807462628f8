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

from collections.abc import Iterable, Sequence

import attrs

from events.errors import AlreadyExists, DomainError, InUse, Invalid, NotFound
from events.model import DEFAULT_NAMESPACE, Desired, FunctionSpec, FunctionState, Pairs
from events.types import (
    Event,
    FunctionDeployed,
    FunctionRemoved,
    FunctionScaled,
    FunctionUpdated,
    NamespaceCreated,
    NamespaceRemoved,
    NamespaceUpdated,
    SecretCreated,
    SecretRemoved,
    SecretUpdated,
)

__all__ = [
    "Step",
    "apply",
    "create_namespace",
    "create_secret",
    "deploy",
    "remove",
    "remove_namespace",
    "remove_secret",
    "scale",
    "update",
    "update_namespace",
    "update_secret",
]


def deploy(desired: Desired, spec: FunctionSpec, replicas: int) -> list[Event]:
    _check_replicas(replicas)
    if desired.get(spec.namespace, spec.name) is not None:
        raise AlreadyExists(
            f"function {spec.name!r} already exists in namespace {spec.namespace!r}; "
            "update it instead"
        )
    _check_references(desired, spec)
    return [FunctionDeployed(spec=spec, replicas=replicas)]


def update(desired: Desired, spec: FunctionSpec) -> list[Event]:
    state = _existing(desired, spec.namespace, spec.name)
    if state.spec == spec:
        return []
    _check_references(desired, spec)
    return [FunctionUpdated(spec=spec)]


def scale(
    desired: Desired, namespace: str, name: str, replicas: int, reason: str = "manual"
) -> list[Event]:
    """`reason` says why, for the audit trail: "manual" (someone asked through the API)
    unless the caller is a machine with a reason of its own."""
    _check_replicas(replicas)
    state = _existing(desired, namespace, name)
    if state.replicas == replicas:
        return []
    return [
        FunctionScaled(namespace=namespace, name=name, replicas=replicas,
                       previous=state.replicas, reason=reason)
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


def _check_references(desired: Desired, spec: FunctionSpec) -> None:
    """The namespace and every secret a spec names must exist."""
    if not desired.has_namespace(spec.namespace):
        raise Invalid(f"namespace {spec.namespace!r} does not exist; create it first")
    missing = [s for s in spec.secrets if (spec.namespace, s) not in desired.secrets]
    if missing:
        raise Invalid(
            f"secrets: {', '.join(repr(m) for m in missing)} not found in namespace "
            f"{spec.namespace!r}; create the secret first"
        )


# ---- declarative apply ----


@attrs.frozen
class Step:
    """One line of an apply plan: what happens to one function, and the events it takes.

    `action` is "create", "update", "unchanged" or "remove"; `before` is the function as it
    stands (None for a create), `after` the spec asked for (None for a remove).
    """

    action: str
    namespace: str
    name: str
    events: tuple[Event, ...] = ()
    before: FunctionState | None = None
    after: FunctionSpec | None = None
    replicas: int = 0


def apply(
    desired: Desired,
    wanted: Sequence[tuple[FunctionSpec, int]],
    namespaces: Iterable[str],
    *,
    prune: bool,
) -> list[Step]:
    """The plan that makes `desired` hold exactly `wanted` (each spec with the replicas it
    starts with when created; an existing function keeps its count). With `prune`, the
    functions of `namespaces` that `wanted` does not name are removed; functions in other
    namespaces are never touched. Every function is checked before any step is returned,
    so a plan is all or nothing: the first refusal raises, naming the function."""
    seen: set[tuple[str, str]] = set()
    steps: list[Step] = []
    for spec, replicas in wanted:
        where = f"function {spec.name!r} in namespace {spec.namespace!r}"
        if spec.key in seen:
            raise Invalid(f"{where}: named twice in one apply")
        seen.add(spec.key)
        try:
            state = desired.get(*spec.key)
            if state is None:
                events = deploy(desired, spec, replicas)
                steps.append(Step("create", *spec.key, tuple(events), None, spec, replicas))
            else:
                events = update(desired, spec)
                action = "update" if events else "unchanged"
                steps.append(Step(action, *spec.key, tuple(events), state, spec, state.replicas))
        except DomainError as err:
            raise type(err)(f"{where}: {err.message}") from None
    if prune:
        covered = set(namespaces)
        for key, state in sorted(desired.functions.items()):
            if key[0] in covered and key not in seen:
                steps.append(Step("remove", *key, tuple(remove(desired, *key)), state, None,
                                  state.replicas))
    return steps


# ---- namespaces ----

def create_namespace(
    desired: Desired, name: str, labels: Pairs, annotations: Pairs
) -> list[Event]:
    if desired.has_namespace(name):
        raise AlreadyExists(f"namespace {name!r} already exists")
    return [NamespaceCreated(name=name, labels=labels, annotations=annotations)]


def update_namespace(
    desired: Desired, name: str, labels: Pairs, annotations: Pairs
) -> list[Event]:
    if name == DEFAULT_NAMESPACE:
        raise Invalid(f"namespace {name!r} is the default namespace and cannot be changed")
    state = desired.namespaces.get(name)
    if state is None:
        raise NotFound(f"namespace {name!r} not found")
    if (state.labels, state.annotations) == (labels, annotations):
        return []
    return [NamespaceUpdated(name=name, labels=labels, annotations=annotations)]


def remove_namespace(desired: Desired, name: str) -> list[Event]:
    if name == DEFAULT_NAMESPACE:
        raise Invalid(f"namespace {name!r} is the default namespace and cannot be removed")
    if name not in desired.namespaces:
        raise NotFound(f"namespace {name!r} not found")
    functions = [s.spec.name for s in desired.in_namespace(name)]
    if functions:
        raise InUse(
            f"namespace {name!r} still has functions: {', '.join(functions)}; remove them first"
        )
    return [NamespaceRemoved(name=name)]


# ---- secrets ----

def create_secret(desired: Desired, namespace: str, name: str, digest: str) -> list[Event]:
    if not desired.has_namespace(namespace):
        raise Invalid(f"namespace {namespace!r} does not exist; create it first")
    if (namespace, name) in desired.secrets:
        raise AlreadyExists(f"secret {name!r} already exists in namespace {namespace!r}")
    return [SecretCreated(namespace=namespace, name=name, digest=digest)]


def update_secret(desired: Desired, namespace: str, name: str, digest: str) -> list[Event]:
    state = desired.secrets.get((namespace, name))
    if state is None:
        raise NotFound(f"secret {name!r} not found in namespace {namespace!r}")
    if state.digest == digest:
        return []
    return [SecretUpdated(namespace=namespace, name=name, digest=digest, previous=state.digest)]


def remove_secret(desired: Desired, namespace: str, name: str) -> list[Event]:
    if (namespace, name) not in desired.secrets:
        raise NotFound(f"secret {name!r} not found in namespace {namespace!r}")
    users = desired.users_of_secret(namespace, name)
    if users:
        raise InUse(
            f"secret {name!r} is used by functions: {', '.join(users)}; "
            "remove it from them first"
        )
    return [SecretRemoved(namespace=namespace, name=name)]
