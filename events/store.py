"""The event store contract: the envelope, the conflict error, and the store protocol.

Why a protocol: the API and the controller depend on this contract, not on SQLite, and
the in-memory store used by fast tests must behave exactly like the real one; the
contract test suite (tests/contract/test_store_contract.py) runs the same cases against
both so the fake cannot drift.

Concurrency rule: every append names the version the caller believes its stream is at
(0 for a stream that must not exist yet). If the stream has moved on, the append raises
`ConcurrencyError` and writes nothing: a conflicting writer is told, never overwritten.

Reading: `query(EventQuery(...))` is the audit trail's one filtered read, and
`EventQuery.matches` is its reference meaning (the memory store filters with it, the
SQLite store translates it to SQL, and the contract tests hold the two together).
`position_at(time)` finds the end of the log's prefix accepted by a given time, and
snapshots of the projected state are cached beside the log (a cache only: any snapshot
may be dropped or ignored and every answer stays the same).
"""

import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import attrs

from events.codec import type_name
from events.types import Event

__all__ = [
    "AppendOne",
    "Batch",
    "ConcurrencyError",
    "EventQuery",
    "EventStore",
    "Recorded",
    "StoredSnapshot",
    "Subscriber",
    "Subscribers",
    "as_utc",
    "check_batches",
    "stream_parts",
]

log = logging.getLogger(__name__)


@attrs.frozen
class Recorded:
    """An event as stored: the domain event plus the envelope the store added.

    `position` is global and strictly increasing across the whole log; `version` counts
    the events of `stream`, starting at 1. `time` is timezone-aware UTC.
    """

    position: int
    stream: str
    version: int
    time: datetime
    actor: str
    request_id: str
    event: Event
    source: str = ""
    user_agent: str = ""
    correlation_id: str = ""


Subscriber = Callable[[list[Recorded]], None]


def stream_parts(stream: str) -> tuple[str, str, str]:
    """(kind, namespace, name) of a stream name.

    `function/<ns>/<name>`, `outcome/<ns>/<name>` and `secret/<ns>/<name>` split as they
    read; a namespace's own stream `namespace/<ns>` belongs to that namespace and is named
    after it.
    """
    kind, _, rest = stream.partition("/")
    if kind == "namespace":
        return kind, rest, rest
    namespace, _, name = rest.partition("/")
    return kind, namespace, name


FUNCTION_KINDS = ("function", "outcome")
"""The stream kinds that hold a function's records: what it was asked to be, what happened."""


def _optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _frozen(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise TypeError(f"types: expected type names, got the string {values!r}")
    return frozenset(values)


def _optional_name(value: str | None) -> str | None:
    if value is not None and not value:
        raise ValueError("an empty name matches nothing; pass None for no filter")
    return value


@attrs.frozen
class EventQuery:
    """One filtered read of the log. Every filter given must hold (AND); None, or an empty
    `types`, means no filter on that field.

    * `function`: records of the streams `function/<ns>/<function>` and
      `outcome/<ns>/<function>`, in any namespace unless `namespace` is also given.
    * `namespace`: every stream of that namespace, its own `namespace/<ns>` included.
    * `types`: stable event type names (`function.scaled`, ...).
    * `actor`, `correlation_id`: equal to the envelope field.
    * `since`, `until`: the envelope time, both inclusive.
    * `after` (exclusive) and `upto` (inclusive): bounds on the position.
    * `limit`: at most this many records; `newest_first` reverses the order, so that the
      limit keeps the newest.
    """

    function: str | None = attrs.field(default=None, converter=_optional_name)
    namespace: str | None = attrs.field(default=None, converter=_optional_name)
    types: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen)
    actor: str | None = None
    correlation_id: str | None = None
    since: datetime | None = attrs.field(default=None, converter=_optional_utc)
    until: datetime | None = attrs.field(default=None, converter=_optional_utc)
    after: int = 0
    upto: int | None = None
    limit: int | None = None
    newest_first: bool = False

    def __attrs_post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")

    def matches(self, record: Recorded) -> bool:
        """Whether `record` passes every filter and the position bounds (not the limit)."""
        if record.position <= self.after:
            return False
        if self.upto is not None and record.position > self.upto:
            return False
        if self.function is not None or self.namespace is not None:
            kind, namespace, name = stream_parts(record.stream)
            if self.function is not None and (kind not in FUNCTION_KINDS
                                              or name != self.function):
                return False
            if self.namespace is not None and namespace != self.namespace:
                return False
        if self.types and type_name(record.event) not in self.types:
            return False
        if self.actor is not None and record.actor != self.actor:
            return False
        if self.correlation_id is not None and record.correlation_id != self.correlation_id:
            return False
        if self.since is not None and record.time < self.since:
            return False
        return self.until is None or record.time <= self.until


@attrs.frozen
class StoredSnapshot:
    """A cached projection of the log's first `position` records, as bytes the store keeps
    without reading them. `format` and `schema` say which code wrote it (events/snapshot.py
    decides whether it can be trusted; the store only filters on them)."""

    position: int
    format: int
    schema: str
    data: bytes


@attrs.frozen
class Batch:
    """The events for one stream within a multi-stream append, with the version the caller
    read that stream at (0 for a stream that must not exist yet)."""

    stream: str
    events: Sequence[Event]
    expected_version: int


class ConcurrencyError(Exception):
    """An append named a stale `expected` version; the stream is at `actual`."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream!r} is at version {actual}, not {expected}: "
            "it changed since it was read; re-read and retry"
        )
        self.stream = stream
        self.expected = expected
        self.actual = actual


class EventStore(Protocol):
    def append(
        self,
        stream: str,
        events: Sequence[Event],
        expected_version: int,
        *,
        time: datetime,
        actor: str,
        request_id: str = "",
        source: str = "",
        user_agent: str = "",
        correlation_id: str = "",
    ) -> list[Recorded]:
        """Append `events` to `stream` atomically, if it is at `expected_version`.

        Raises `ConcurrencyError` otherwise. Subscribers are called after the commit.
        """
        ...

    def append_many(
        self,
        batches: Sequence[Batch],
        *,
        time: datetime,
        actor: str,
        request_id: str = "",
        source: str = "",
        user_agent: str = "",
        correlation_id: str = "",
    ) -> list[Recorded]:
        """Append to several streams in one transaction: every batch or none.

        Each batch's stream must be at its `expected_version` and appear once; otherwise
        `ConcurrencyError` (or ValueError for a repeated stream) and nothing is written.
        Records get consecutive positions in batch order; subscribers hear them in one call.
        """
        ...

    def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        """Records with position > `after`, in position order, at most `limit` of them."""
        ...

    def read_stream(self, stream: str) -> list[Recorded]:
        """All records of one stream, in version order."""
        ...

    def stream_version(self, stream: str) -> int:
        """The version of the stream's last event; 0 if it has none."""
        ...

    def head(self) -> int:
        """The position of the last record; 0 if the log is empty."""
        ...

    def query(self, query: EventQuery) -> list[Recorded]:
        """The records that match `query`, in position order (newest first if asked), at
        most `query.limit` of them."""
        ...

    def position_at(self, time: datetime) -> int:
        """The end of the longest prefix of the log whose records were all accepted at or
        before `time`: the state "as of `time`" is the fold of records 1..position_at(time).
        While times never go backwards this is the last position with time <= `time`; if a
        clock did step back, a record stamped later ends the prefix (as a fold would stop)."""
        ...

    def save_snapshot(self, snapshot: StoredSnapshot) -> None:
        """Keep `snapshot` (replacing one at the same position)."""
        ...

    def latest_snapshot(self, upto: int, format: int, schema: str) -> StoredSnapshot | None:
        """The snapshot with this format and schema at the highest position <= `upto` that
        is also <= head(), or None."""
        ...

    def drop_snapshots(self) -> None:
        """Forget every snapshot (they are a cache; answers do not change)."""
        ...

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback` with the new records after each successful append.

        Returns a function that unsubscribes. Exceptions from callbacks are logged and
        swallowed: the append has already been committed and must not look failed.
        """
        ...

    def close(self) -> None: ...


class AppendOne:
    """`append` for a store that implements `append_many`: one stream is one batch."""

    def append(
        self,
        stream: str,
        events: Sequence[Event],
        expected_version: int,
        *,
        time: datetime,
        actor: str,
        request_id: str = "",
        source: str = "",
        user_agent: str = "",
        correlation_id: str = "",
    ) -> list[Recorded]:
        return self.append_many(
            [Batch(stream, events, expected_version)], time=time, actor=actor,
            request_id=request_id, source=source, user_agent=user_agent,
            correlation_id=correlation_id,
        )

    def append_many(
        self,
        batches: Sequence[Batch],
        *,
        time: datetime,
        actor: str,
        request_id: str = "",
        source: str = "",
        user_agent: str = "",
        correlation_id: str = "",
    ) -> list[Recorded]:
        raise NotImplementedError


def check_batches(batches: Sequence[Batch]) -> None:
    """A stream named twice in one append would make its expected versions ambiguous."""
    seen: set[str] = set()
    for batch in batches:
        if batch.stream in seen:
            raise ValueError(f"stream {batch.stream!r} appears twice in one append")
        seen.add(batch.stream)


def as_utc(time: datetime) -> datetime:
    """The envelope time in UTC; a naive time is refused since its zone is unknowable."""
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError(f"event time must be timezone-aware, got {time.isoformat()}")
    return time.astimezone(UTC)


class Subscribers:
    """The subscriber list shared by the store implementations."""

    def __init__(self) -> None:
        self._callbacks: dict[int, Subscriber] = {}
        self._ids = itertools.count()

    def add(self, callback: Subscriber) -> Callable[[], None]:
        token = next(self._ids)
        self._callbacks[token] = callback

        def unsubscribe() -> None:
            self._callbacks.pop(token, None)

        return unsubscribe

    def notify(self, records: list[Recorded]) -> None:
        # Copy first: a callback may unsubscribe itself (or others) while we iterate.
        for callback in list(self._callbacks.values()):
            try:
                callback(list(records))
            except Exception:
                log.exception("event subscriber %r failed; the append stands", callback)
