"""The event store contract: the envelope, the conflict error, and the store protocol.

Why a protocol: the API and the controller depend on this contract, not on SQLite, and
the in-memory store used by fast tests must behave exactly like the real one; the
contract test suite (tests/contract/test_store_contract.py) runs the same cases against
both so the fake cannot drift.

Concurrency rule: every append names the version the caller believes its stream is at
(0 for a stream that must not exist yet). If the stream has moved on, the append raises
`ConcurrencyError` and writes nothing: a conflicting writer is told, never overwritten.
"""

import itertools
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import attrs

from events.types import Event

__all__ = [
    "Batch",
    "ConcurrencyError",
    "EventStore",
    "Recorded",
    "Subscriber",
    "Subscribers",
    "as_utc",
    "check_batches",
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

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback` with the new records after each successful append.

        Returns a function that unsubscribes. Exceptions from callbacks are logged and
        swallowed: the append has already been committed and must not look failed.
        """
        ...

    def close(self) -> None: ...


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
