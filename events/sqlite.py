"""The durable `EventStore`: one SQLite file, the source of truth and the audit trail.

Why these choices:
* WAL lets readers (the API, the controller) read while a writer appends, and
  `synchronous=FULL` makes every committed append survive a power cut, since a function
  the user was told is deployed must not vanish on reboot.
* Appends run in `BEGIN IMMEDIATE` transactions, so writers, even in other processes,
  take turns; the stream version is checked inside the transaction. The UNIQUE index on
  (stream, version) is the last line of defence: two writers can never both store
  version N of a stream, so a stale writer gets `ConcurrencyError`, never a lost update.
* Because writers are serialised, positions become visible in increasing order, so a
  reader that remembers the last position it saw can never skip a later-committed lower
  position.
* The file holds function environments and the audit trail, so it is created 0600.

An object is meant for one thread at a time (the connection is not shared concurrently);
open one object per thread or process. Subscribers only hear about appends made through
this object, not through other connections to the same file.
"""

import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from events.codec import decode, encode
from events.store import (
    Batch,
    ConcurrencyError,
    Recorded,
    Subscriber,
    Subscribers,
    as_utc,
    check_batches,
)
from events.types import Event

__all__ = ["SQLiteEventStore"]

_CREATE = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload TEXT NOT NULL,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    request_id TEXT NOT NULL,
    source TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    correlation_id TEXT NOT NULL
)
"""

_INSERT = """
INSERT INTO events (stream, version, type, schema_version, payload, time, actor,
                    request_id, source, user_agent, correlation_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_STREAM_VERSION = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?"


class SQLiteEventStore:
    """An event log in the SQLite file at `path` (created, with its directory, if missing)."""

    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file ourselves so it never exists, even briefly, with a wider mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(self.path, 0o600)
        # `timeout` is how long a writer waits for another writer's transaction to end.
        conn = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False)
        self._db = Database(conn, execute_plugins=False)
        self._db.enable_wal()
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute(_CREATE)
        self._db.table("events").create_index(
            ["stream", "version"],
            index_name="events_stream_version",
            unique=True,
            if_not_exists=True,
        )
        self._subscribers = Subscribers()

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
        check_batches(batches)
        time = as_utc(time)
        envelope = [time.isoformat(), actor, request_id, source, user_agent, correlation_id]
        encoded = [[encode(event) for event in batch.events] for batch in batches]
        db = self._db
        written: list[tuple[int, str, int, tuple[str, int, dict[str, object]]]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for batch, stored in zip(batches, encoded, strict=True):
                actual = self._stream_version(batch.stream)
                if actual != batch.expected_version:
                    raise ConcurrencyError(batch.stream, batch.expected_version, actual)
                for version, item in enumerate(stored, start=actual + 1):
                    type_name, schema, payload = item
                    cursor = db.execute(
                        _INSERT,
                        [batch.stream, version, type_name, schema,
                         json.dumps(payload, sort_keys=True, separators=(",", ":")), *envelope],
                    )
                    assert cursor.lastrowid is not None
                    written.append((cursor.lastrowid, batch.stream, version, item))
            db.commit()
        except sqlite3.IntegrityError:
            # The unique (stream, version) index caught a writer that slipped past the
            # version check. Anything else that violates a constraint is not a conflict.
            db.rollback()
            for batch in batches:
                actual = self._stream_version(batch.stream)
                if actual != batch.expected_version:
                    raise ConcurrencyError(batch.stream, batch.expected_version, actual) from None
            raise
        except BaseException:
            db.rollback()
            raise
        new = [
            Recorded(
                position=position,
                stream=stream,
                version=version,
                time=time,
                actor=actor,
                request_id=request_id,
                event=decode(*item),
                source=source,
                user_agent=user_agent,
                correlation_id=correlation_id,
            )
            for position, stream, version, item in written
        ]
        if new:
            self._subscribers.notify(new)
        return new

    def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        rows = self._db.query(
            "SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?",
            [after, -1 if limit is None else limit],
        )
        return [_record(row) for row in rows]

    def read_stream(self, stream: str) -> list[Recorded]:
        rows = self._db.query("SELECT * FROM events WHERE stream = ? ORDER BY version", [stream])
        return [_record(row) for row in rows]

    def stream_version(self, stream: str) -> int:
        return self._stream_version(stream)

    def head(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()
        return int(row[0])

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self._subscribers.add(callback)

    def close(self) -> None:
        self._db.close()

    def _stream_version(self, stream: str) -> int:
        return int(self._db.execute(_STREAM_VERSION, [stream]).fetchone()[0])


def _record(row: dict[str, Any]) -> Recorded:
    return Recorded(
        position=row["position"],
        stream=row["stream"],
        version=row["version"],
        time=datetime.fromisoformat(row["time"]),
        actor=row["actor"],
        request_id=row["request_id"],
        event=decode(row["type"], row["schema_version"], json.loads(row["payload"])),
        source=row["source"],
        user_agent=row["user_agent"],
        correlation_id=row["correlation_id"],
    )
