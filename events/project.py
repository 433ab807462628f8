"""Fold the log into the desired state: desired = project(records).

Why a pure fold: the log is the only source of truth, so "what should be running" must
be a deterministic function of it. Folding everything at once, or a prefix and then the
rest (as a running service does with each newly appended batch), gives the same result,
which the property tests check.

Events that do not apply (an update, scale or removal of a function that is not
deployed) cannot be produced by `events.decide` under the store's concurrency rule; they
are skipped rather than raised so that one odd record can never make the log unreadable.
"""

from collections.abc import Iterable
from types import MappingProxyType

import attrs

from events.model import Desired, FunctionState, NamespaceState, SecretState
from events.store import Recorded
from events.types import (
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

__all__ = ["EMPTY", "project"]

EMPTY = Desired(MappingProxyType({}), 0)


def project(records: Iterable[Recorded], initial: Desired = EMPTY) -> Desired:
    """The desired state after folding `records`, in order, into `initial`."""
    # private copies, mutated, then frozen again
    functions = dict(initial.functions)
    namespaces = dict(initial.namespaces)
    secrets = dict(initial.secrets)
    position = initial.position
    for record in records:
        _apply(functions, record)
        _apply_other(namespaces, secrets, record)
        position = record.position
    return Desired(MappingProxyType(functions), position, namespaces, secrets)


def _apply_other(
    namespaces: dict[str, NamespaceState],
    secrets: dict[tuple[str, str], SecretState],
    record: Recorded,
) -> None:
    match record.event:
        case NamespaceCreated(name=name, labels=labels, annotations=annotations):
            namespaces[name] = NamespaceState(name, labels, annotations, record.version)
        case NamespaceUpdated(name=name, labels=labels, annotations=annotations):
            if name in namespaces:
                namespaces[name] = NamespaceState(name, labels, annotations, record.version)
        case NamespaceRemoved(name=name):
            namespaces.pop(name, None)
            for key in [k for k in secrets if k[0] == name]:
                del secrets[key]
        case SecretCreated(namespace=ns, name=name, digest=digest):
            secrets[(ns, name)] = SecretState(ns, name, digest, record.version)
        case SecretUpdated(namespace=ns, name=name, digest=digest):
            if (ns, name) in secrets:
                secrets[(ns, name)] = SecretState(ns, name, digest, record.version)
        case SecretRemoved(namespace=ns, name=name):
            secrets.pop((ns, name), None)


def _apply(functions: dict[tuple[str, str], FunctionState], record: Recorded) -> None:
    event = record.event
    key = event.key
    match event:
        case FunctionDeployed(spec=spec, replicas=replicas):
            functions[key] = FunctionState(
                spec=spec,
                replicas=replicas,
                version=record.version,
                created_at=record.time,
                updated_at=record.time,
            )
        case FunctionUpdated(spec=spec):
            if (state := functions.get(key)) is not None:
                functions[key] = attrs.evolve(
                    state, spec=spec, version=record.version, updated_at=record.time
                )
        case FunctionScaled(replicas=replicas):
            if (state := functions.get(key)) is not None:
                functions[key] = attrs.evolve(state, replicas=replicas, version=record.version)
        case FunctionRemoved():
            functions.pop(key, None)
