"""The desired-state vocabulary: what a function is, and what the log says should run.

These values are shared by every layer (events, projections, the controller's planner and
the API's wire mapping), so they are plain frozen attrs classes with no behaviour beyond
small lookups. Maps are stored as key-sorted tuples of pairs (`Pairs`) so that two specs
with the same content are equal and hashable whatever order a client sent its JSON keys
in; that equality is what makes an identical update a no-op.

Nothing here reads the clock or touches I/O: timestamps come from the event envelope.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

__all__ = [
    "DEFAULT_NAMESPACE",
    "Desired",
    "FunctionSpec",
    "NamespaceState",
    "SecretState",
    "FunctionState",
    "Pairs",
    "Resources",
    "namespace_stream",
    "outcome_stream",
    "pairs",
    "secret_stream",
    "stream_name",
]

Pairs = tuple[tuple[str, str], ...]
"""A string map as key-sorted (key, value) pairs: hashable, frozen, order-independent."""

DEFAULT_NAMESPACE = "openfaas-fn"


def pairs(m: Mapping[str, str] | None) -> Pairs:
    """Freeze a string map into `Pairs`, sorted by key; `None` becomes `()`."""
    if not m:
        return ()
    return tuple(sorted(m.items()))


def _as_pairs(value: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Pairs:
    # Normalise whatever a caller passes (a dict, or pairs in any order) so the sorted,
    # duplicate-free invariant of `Pairs` holds for every FunctionSpec ever built.
    if value is None or isinstance(value, Mapping):
        return pairs(value)
    return pairs(dict(value))


def as_pairs(value: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Pairs:
    """The attrs converter other modules use for their `Pairs` fields."""
    return _as_pairs(value)


def _as_strings(value: Iterable[str]) -> tuple[str, ...]:
    # A bare string is an Iterable[str] too; splitting it into characters is never meant.
    if isinstance(value, str):
        raise TypeError(f"expected a sequence of strings, got the string {value!r}")
    return tuple(value)


@attrs.frozen
class Resources:
    """Resource limits or requests as Kubernetes quantity strings, echoed back verbatim."""

    memory: str = ""
    cpu: str = ""


@attrs.frozen
class FunctionSpec:
    """Everything a user asked for when deploying or updating one function."""

    name: str
    namespace: str
    image: str
    env_process: str = ""
    env_vars: Pairs = attrs.field(default=(), converter=_as_pairs)
    labels: Pairs = attrs.field(default=(), converter=_as_pairs)
    annotations: Pairs = attrs.field(default=(), converter=_as_pairs)
    secrets: tuple[str, ...] = attrs.field(default=(), converter=_as_strings)
    constraints: tuple[str, ...] = attrs.field(default=(), converter=_as_strings)
    limits: Resources | None = None
    requests: Resources | None = None
    read_only_root_filesystem: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, name): the identity of a function."""
        return (self.namespace, self.name)


@attrs.frozen
class FunctionState:
    """One deployed function as the log describes it.

    `version` is the version of the function's stream after its last event, i.e. the
    `expected_version` the next command on this function must append with. `updated_at`
    is when the spec last changed (deploy or update); scaling does not move it.
    """

    spec: FunctionSpec
    replicas: int
    version: int
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class NamespaceState:
    """A namespace created through the API (the default namespace always exists)."""

    name: str
    labels: Pairs = attrs.field(default=(), converter=_as_pairs)
    annotations: Pairs = attrs.field(default=(), converter=_as_pairs)
    version: int = 0


@attrs.frozen
class SecretState:
    """A secret as the log knows it: its name and a keyed digest of its value, never the
    value itself (that lives encrypted outside the log)."""

    namespace: str
    name: str
    digest: str
    version: int = 0


def _frozen_map(value: Mapping[Any, Any] | None) -> Mapping[Any, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class Desired:
    """All deployed functions, namespaces and secrets, as of global log position `position`.

    The mappings must be treated as immutable: the projection builds new ones for every new
    state instead of changing these.
    """

    functions: Mapping[tuple[str, str], FunctionState]
    position: int = 0
    namespaces: Mapping[str, NamespaceState] = attrs.field(
        factory=dict, converter=_frozen_map
    )
    secrets: Mapping[tuple[str, str], SecretState] = attrs.field(
        factory=dict, converter=_frozen_map
    )

    def get(self, namespace: str, name: str) -> FunctionState | None:
        return self.functions.get((namespace, name))

    def in_namespace(self, namespace: str) -> list[FunctionState]:
        """The functions of one namespace, sorted by name."""
        found = [s for (ns, _), s in self.functions.items() if ns == namespace]
        return sorted(found, key=lambda s: s.spec.name)

    def has_namespace(self, namespace: str) -> bool:
        return namespace == DEFAULT_NAMESPACE or namespace in self.namespaces

    def namespace_names(self) -> list[str]:
        """The default namespace first, then the others by name."""
        return [DEFAULT_NAMESPACE, *sorted(n for n in self.namespaces if n != DEFAULT_NAMESPACE)]

    def secrets_in(self, namespace: str) -> list[SecretState]:
        return sorted((s for (ns, _), s in self.secrets.items() if ns == namespace),
                      key=lambda s: s.name)

    def users_of_secret(self, namespace: str, name: str) -> list[str]:
        """Names of the functions in `namespace` that mount secret `name`."""
        return [s.spec.name for s in self.in_namespace(namespace) if name in s.spec.secrets]


def stream_name(namespace: str, name: str) -> str:
    """The log stream that holds every event of one function."""
    return f"function/{namespace}/{name}"


def namespace_stream(name: str) -> str:
    return f"namespace/{name}"


def outcome_stream(namespace: str, name: str) -> str:
    """What happened to a function's replicas (not what was asked): audit only."""
    return f"outcome/{namespace}/{name}"


def secret_stream(namespace: str, name: str) -> str:
    return f"secret/{namespace}/{name}"
