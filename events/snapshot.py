"""Snapshots of the projected desired state: the cache that makes a long log quick to open
and quick to ask "what was deployed as of then?".

Folding a million records takes tens of seconds; folding from the nearest snapshot takes
at most `SNAPSHOT_EVERY` records. A snapshot is `project(records 1..position)` encoded
with its own cattrs converter, compressed, and stored beside the log by the store.

A snapshot is a cache and never an authority. It is used only when it was written in this
`FORMAT` and under this event `schema()` (the type names and schema versions the code
reads: a new version or upcaster can change what an old record folds into, so snapshots
from before the change describe a fold this code would not make). Anything else, or
anything that fails to decode, is skipped, and the fold starts from an older snapshot or
from the beginning. Dropping every snapshot changes no answer, only its speed.
"""

import json
import zlib
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import cattrs

from events.codec import EVENT_TYPES
from events.model import Desired, FunctionState, NamespaceState, Pairs, SecretState, pairs
from events.project import EMPTY, project
from events.store import EventQuery, EventStore, StoredSnapshot

__all__ = [
    "FORMAT",
    "SNAPSHOT_EVERY",
    "catch_up",
    "decode",
    "due",
    "encode",
    "latest",
    "save",
    "schema",
    "state_at",
]

FORMAT = 1
"""The layout of a snapshot's data; bump it whenever `encode` changes what it writes."""

SNAPSHOT_EVERY = 2048
"""Records between snapshots. Chosen by measurement (bench/eventlog.py, docs/benchmarks.md):
the state as of any position decodes one snapshot (25-50 ms for 1,000 functions) and folds
fewer than this many records (~20 µs each), 41-87 ms at the median and under 200 ms at
p95 on a busy 2-core machine with a million records; a snapshot of 1,000 functions is
39 KiB and 18-48 ms to encode and write, once per this many appends."""


def schema() -> str:
    """The event vocabulary a snapshot was folded under: every type name and version."""
    return ",".join(f"{name}@{version}" for name, (_, version) in sorted(EVENT_TYPES.items()))


def _structure_pairs(value: Any, _: Any) -> Pairs:
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError("expected a JSON object of strings")
    return pairs(value)


def _structure_time(value: Any, _: Any) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"snapshot time {value!r} has no zone")
    return moment


_converter = cattrs.Converter(detailed_validation=False)  # as the codec's, for speed
_converter.register_unstructure_hook_func(lambda t: t == Pairs, lambda p: dict(p))
_converter.register_structure_hook_func(lambda t: t == Pairs, _structure_pairs)
_converter.register_unstructure_hook(datetime, lambda d: d.isoformat())
_converter.register_structure_hook(datetime, _structure_time)


def encode(desired: Desired) -> StoredSnapshot:
    """`desired` as the store keeps it. Maps keyed by tuples become lists of their values
    (each value carries its own key)."""
    document = {
        "format": FORMAT,
        "schema": schema(),
        "position": desired.position,
        "functions": [_converter.unstructure(s) for _, s in sorted(desired.functions.items())],
        "namespaces": [_converter.unstructure(s) for _, s in sorted(desired.namespaces.items())],
        "secrets": [_converter.unstructure(s) for _, s in sorted(desired.secrets.items())],
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return StoredSnapshot(position=desired.position, format=FORMAT, schema=schema(),
                          data=zlib.compress(text.encode(), 6))


def decode(stored: StoredSnapshot) -> Desired | None:
    """The state in `stored`, or None when this code cannot trust it: another format or
    event schema (on the row or inside the data), a position that disagrees, or data that
    does not decode."""
    if stored.format != FORMAT or stored.schema != schema():
        return None
    try:
        document = json.loads(zlib.decompress(stored.data))
        if (document["format"], document["schema"], document["position"]) != (
                FORMAT, schema(), stored.position):
            return None
        functions = [_converter.structure(s, FunctionState) for s in document["functions"]]
        namespaces = [_converter.structure(s, NamespaceState) for s in document["namespaces"]]
        secrets = [_converter.structure(s, SecretState) for s in document["secrets"]]
    except (ValueError, KeyError, TypeError, zlib.error, cattrs.BaseValidationError):
        return None
    by_key = {s.spec.key: s for s in functions}
    secret_map = {(s.namespace, s.name): s for s in secrets}
    if len(by_key) != len(functions) or len(secret_map) != len(secrets):
        return None
    return Desired(MappingProxyType(by_key), stored.position,
                   {s.name: s for s in namespaces}, secret_map)


def save(store: EventStore, desired: Desired) -> None:
    store.save_snapshot(encode(desired))


def latest(store: EventStore, upto: int) -> Desired:
    """The newest usable snapshot at or before position `upto`; EMPTY when there is none."""
    while upto > 0:
        stored = store.latest_snapshot(upto, FORMAT, schema())
        if stored is None:
            break
        desired = decode(stored)
        if desired is not None:
            return desired
        upto = stored.position - 1  # unreadable: an older one may still serve
    return EMPTY


def state_at(store: EventStore, position: int) -> Desired:
    """project(records 1..position): the nearest snapshot, then the records after it."""
    base = latest(store, position)
    if base.position >= position:
        return base
    return project(store.query(EventQuery(after=base.position, upto=position)), base)


def due(before: int, after: int, every: int) -> bool:
    """Whether folding from position `before` to `after` crossed a multiple of `every`."""
    return after // every > before // every


def catch_up(store: EventStore, every: int = SNAPSHOT_EVERY) -> Desired:
    """The state at the log's head, folded from the newest usable snapshot, a page of at
    most `every` records at a time, saving a snapshot at each multiple of `every` passed
    (so a log written before snapshots existed gets them on its first opening)."""
    desired = latest(store, store.head())
    while True:
        page = store.query(EventQuery(after=desired.position,
                                      limit=every - desired.position % every))
        if not page:
            return desired
        folded = project(page, desired)
        if due(desired.position, folded.position, every):
            save(store, folded)
        desired = folded
