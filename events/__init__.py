"""The event log: desired state as a fold over recorded intent.

The pure core (model, types, decide, project, codec) and the store contract are
re-exported here. The SQLite store is not, so that importing the vocabulary never loads
a database library: use `from events.sqlite import SQLiteEventStore`.
"""

from events.codec import UnknownEvent, decode, encode
from events.decide import deploy, remove, scale, update
from events.errors import AlreadyExists, DomainError, Invalid, NotFound
from events.memory import MemoryEventStore
from events.model import (
    DEFAULT_NAMESPACE,
    Desired,
    FunctionSpec,
    FunctionState,
    Pairs,
    Resources,
    pairs,
    stream_name,
)
from events.project import EMPTY, project
from events.store import ConcurrencyError, EventStore, Recorded
from events.types import (
    Event,
    FunctionDeployed,
    FunctionRemoved,
    FunctionScaled,
    FunctionUpdated,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "EMPTY",
    "AlreadyExists",
    "ConcurrencyError",
    "Desired",
    "DomainError",
    "Event",
    "EventStore",
    "FunctionDeployed",
    "FunctionRemoved",
    "FunctionScaled",
    "FunctionSpec",
    "FunctionState",
    "FunctionUpdated",
    "Invalid",
    "MemoryEventStore",
    "NotFound",
    "Pairs",
    "Recorded",
    "Resources",
    "UnknownEvent",
    "decode",
    "deploy",
    "encode",
    "pairs",
    "project",
    "remove",
    "scale",
    "stream_name",
    "update",
]
