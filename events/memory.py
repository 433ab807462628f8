"""An in-memory `EventStore` for tests and throwaway runs.

It keeps the same contract as the SQLite store (the contract tests run against both) and
even passes every event through the codec on append, so an event that the real store
could not write or read back fails here too instead of only in production.
"""

import bisect
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from events.codec import decode, encode
from events.store import (
    AppendOne,
    Batch,
    ConcurrencyError,
    EventQuery,
    Recorded,
    StoredSnapshot,
    Subscriber,
    Subscribers,
    as_utc,
    check_batches,
)

__all__ = ["MemoryEventStore"]


class MemoryEventStore(AppendOne):
    """The log as a Python list; positions are list indexes plus one. Snapshots are kept
    in a dict by position."""

    def __init__(self) -> None:
        self._records: list[Recorded] = []
        # _high[i]: the latest time among records 1..i+1; never decreases, so bisectable
        self._high: list[datetime] = []
        self._snapshots: dict[int, StoredSnapshot] = {}
        self._versions: dict[str, int] = {}
        self._subscribers = Subscribers()
        self._lock = threading.Lock()

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
        check_batches(batches)
        time = as_utc(time)
        stored = [[decode(*encode(event)) for event in batch.events] for batch in batches]
        with self._lock:
            for batch in batches:
                actual = self._versions.get(batch.stream, 0)
                if actual != batch.expected_version:
                    raise ConcurrencyError(batch.stream, batch.expected_version, actual)
            new: list[Recorded] = []
            for batch, events in zip(batches, stored, strict=True):
                for version, event in enumerate(events, start=batch.expected_version + 1):
                    new.append(Recorded(
                        position=len(self._records) + len(new) + 1,
                        stream=batch.stream,
                        version=version,
                        time=time,
                        actor=actor,
                        request_id=request_id,
                        event=event,
                        source=source,
                        user_agent=user_agent,
                        correlation_id=correlation_id,
                    ))
            self._records.extend(new)
            for record in new:
                self._versions[record.stream] = record.version
                self._high.append(max(self._high[-1], time) if self._high else time)
        if new:
            self._subscribers.notify(new)
        return new

    def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        start = max(after, 0)
        end = None if limit is None else start + limit
        with self._lock:
            return self._records[start:end]

    def read_stream(self, stream: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self._records if r.stream == stream]

    def stream_version(self, stream: str) -> int:
        with self._lock:
            return self._versions.get(stream, 0)

    def head(self) -> int:
        with self._lock:
            return len(self._records)

    def query(self, query: EventQuery) -> list[Recorded]:
        with self._lock:
            start = max(query.after, 0)
            end = len(self._records) if query.upto is None else max(start, query.upto)
            window = self._records[start:end]
        found: list[Recorded] = []
        for record in reversed(window) if query.newest_first else window:
            if query.limit is not None and len(found) >= query.limit:
                break
            if query.matches(record):
                found.append(record)
        return found

    def position_at(self, time: datetime) -> int:
        moment = as_utc(time)
        with self._lock:
            return bisect.bisect_right(self._high, moment)

    def save_snapshot(self, snapshot: StoredSnapshot) -> None:
        with self._lock:
            self._snapshots[snapshot.position] = snapshot

    def latest_snapshot(self, upto: int, format: int, schema: str) -> StoredSnapshot | None:
        with self._lock:
            bound = min(upto, len(self._records))
            usable = [s for p, s in self._snapshots.items()
                      if p <= bound and s.format == format and s.schema == schema]
        return max(usable, key=lambda s: s.position, default=None)

    def drop_snapshots(self) -> None:
        with self._lock:
            self._snapshots.clear()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self._subscribers.add(callback)

    def close(self) -> None:
        """Nothing to release; the records stay readable."""
