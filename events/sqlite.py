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
* Audit queries run in SQL (`query`), on indexes that old files get when they are opened:
  two generated (virtual) columns parse each stream name into its function name and
  namespace, so "function `x` in any namespace" is an index lookup, not a scan. Because
  the columns and the indexes live in the file, rows written by an older gateway that
  knows nothing about them are indexed all the same.
* `time_blocks` keeps the earliest and latest time of every complete block of positions
  (BLOCK of them, unless the file's `meta` says otherwise). Times are ISO 8601 UTC text,
  which sorts like the times themselves, but a clock may step back, so time order is not
  position order; the blocks turn a time into exact position bounds by reading at most a
  block of rows, never the whole log. They are derived data: missing blocks (a file from
  an older gateway, rows an older gateway appended) are computed on open and on the next
  append, and a stretch not yet covered is simply scanned.
* `snapshots` caches projected states (see events/snapshot.py); deleting it loses nothing.

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

from sqlite_utils import Database

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

_COLUMNS = ("position, stream, version, type, schema_version, payload, time, actor, "
            "request_id, source, user_agent, correlation_id")

# The stream name's parts, as events.store.stream_parts reads them (a contract test checks
# the two agree). NULL where the query can never ask: no function name outside function/
# and outcome/ streams, no namespace in a name without a slash.
_REST = "substr(stream, instr(stream, '/') + 1)"
_NAMESPACE_SQL = (
    "CASE WHEN instr(stream, '/') = 0 THEN NULL"
    f" WHEN substr(stream, 1, 10) = 'namespace/' THEN {_REST}"
    f" WHEN instr({_REST}, '/') = 0 THEN {_REST}"
    f" ELSE substr({_REST}, 1, instr({_REST}, '/') - 1) END"
)
_FUNCTION_SQL = (
    "CASE WHEN (substr(stream, 1, 9) = 'function/' OR substr(stream, 1, 8) = 'outcome/')"
    f" AND instr({_REST}, '/') > 0 THEN substr({_REST}, instr({_REST}, '/') + 1) END"
)
_GENERATED = {"function_name": _FUNCTION_SQL, "stream_namespace": _NAMESPACE_SQL}

# One column each: SQLite keeps every index entry in rowid (= position) order within a
# value, so "this function, positions L..U, oldest (or newest) first, LIMIT n" is a range
# scan that stops after n entries, with no sort.
_INDEXES = {
    "events_function": "function_name",
    "events_namespace": "stream_namespace",
    "events_actor": "actor",
    "events_correlation": "correlation_id",
    "events_type": "type",
}
# Without statistics the planner may pick any of them when several filters are given;
# we choose, most selective first in a typical log, and hide the others behind a unary +
# (which SQLite never serves from an index).
_PREFERENCE = ("correlation_id", "function_name", "stream_namespace", "actor", "type")

_TABLES = (
    """CREATE TABLE IF NOT EXISTS time_blocks (
        block INTEGER PRIMARY KEY,  -- positions block*size+1 .. (block+1)*size
        min_time TEXT NOT NULL,
        max_time TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS snapshots (
        position INTEGER PRIMARY KEY,
        format INTEGER NOT NULL,
        schema TEXT NOT NULL,
        data BLOB NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

BLOCK = 512
"""Positions per time block in a new file: position_at and a time bound read at most this
many rows. The file records its own size, so every process agrees on it."""

Row = tuple[int, str, int, str, int, str, str, str, str, str, str, str]


class SQLiteEventStore(AppendOne):
    """An event log in the SQLite file at `path` (created, with its directory, if missing)."""

    def __init__(self, path: str | Path, *, timeout: float = 10.0, block: int = BLOCK) -> None:
        self.path = Path(path)
        self.block = block  # a new file's; an existing file's own size wins
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file ourselves so it never exists, even briefly, with a wider mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(self.path, 0o600)
        # `timeout` is how long a writer waits for another writer's transaction to end.
        conn = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False)
        self._conn = conn
        self._db = Database(conn, execute_plugins=False)
        self._db.enable_wal()
        self._db.execute("PRAGMA synchronous = FULL")
        self._prepare()
        self._subscribers = Subscribers()

    def _prepare(self) -> None:
        """Create or bring up to date the schema, in one write transaction so that two
        processes opening the same old file do not both alter it."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_CREATE)
            conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS events_stream_version"
                         " ON events (stream, version)")
            columns = {row[1] for row in conn.execute("PRAGMA table_xinfo(events)")}
            for column, expression in _GENERATED.items():
                if column not in columns:
                    conn.execute(f"ALTER TABLE events ADD COLUMN {column} TEXT"
                                 f" GENERATED ALWAYS AS ({expression}) VIRTUAL")
            for name, on in _INDEXES.items():
                conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON events ({on})")
            for table in _TABLES:
                conn.execute(table)
            row = conn.execute("SELECT value FROM meta WHERE key = 'block'").fetchone()
            if row is None:
                conn.execute("DELETE FROM time_blocks")
                conn.execute("INSERT INTO meta VALUES ('block', ?)", [str(self.block)])
            else:
                self.block = int(row[0])
            self._fill_blocks(self._head())
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

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
            if written:
                self._fill_blocks(written[-1][0])
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
        return self.query(EventQuery(after=after, limit=limit))

    def read_stream(self, stream: str) -> list[Recorded]:
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE stream = ? ORDER BY version", [stream])
        return [_record(row) for row in rows]

    def stream_version(self, stream: str) -> int:
        return self._stream_version(stream)

    def head(self) -> int:
        return self._head()

    def query(self, query: EventQuery) -> list[Recorded]:
        sql, params = self._select(query)
        return [_record(row) for row in self._conn.execute(sql, params)]

    def explain(self, query: EventQuery) -> list[str]:
        """SQLite's plan for `query` (for benchmarks and for checking an index is used)."""
        sql, params = self._select(query)
        return [row[3] for row in self._conn.execute("EXPLAIN QUERY PLAN " + sql, params)]

    def position_at(self, time: datetime) -> int:
        stamp = _stamp(time)
        conn = self._conn
        [block] = conn.execute(
            "SELECT MIN(block) FROM time_blocks WHERE max_time > ?", [stamp]).fetchone()
        # every record before `block` is at or before `time`; the first one after it is in
        # `block`, or (no such block) in the tail the blocks do not cover yet
        low = block * self.block if block is not None else self._covered()
        high = (block + 1) * self.block if block is not None else None
        sql = "SELECT MIN(position) FROM events WHERE position > ? AND time > ?"
        params: list[object] = [low, stamp]
        if high is not None:
            sql += " AND position <= ?"
            params.append(high)
        [first] = conn.execute(sql, params).fetchone()
        if first is None and high is not None:  # a stale block: look further, never guess
            [first] = conn.execute(
                "SELECT MIN(position) FROM events WHERE position > ? AND time > ?",
                [low, stamp]).fetchone()
        return self._head() if first is None else int(first) - 1

    def save_snapshot(self, snapshot: StoredSnapshot) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT OR REPLACE INTO snapshots (position, format, schema, data)"
                         " VALUES (?, ?, ?, ?)",
                         [snapshot.position, snapshot.format, snapshot.schema, snapshot.data])
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def latest_snapshot(self, upto: int, format: int, schema: str) -> StoredSnapshot | None:
        row = self._conn.execute(
            "SELECT position, format, schema, data FROM snapshots"
            " WHERE position <= ? AND format = ? AND schema = ?"
            " ORDER BY position DESC LIMIT 1",
            [min(upto, self._head()), format, schema]).fetchone()
        if row is None:
            return None
        return StoredSnapshot(position=row[0], format=row[1], schema=row[2], data=bytes(row[3]))

    def drop_snapshots(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM snapshots")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self._subscribers.add(callback)

    def close(self) -> None:
        self._db.close()

    def _stream_version(self, stream: str) -> int:
        return int(self._db.execute(_STREAM_VERSION, [stream]).fetchone()[0])

    def _head(self) -> int:
        return int(self._conn.execute("SELECT COALESCE(MAX(position), 0) FROM events")
                   .fetchone()[0])

    def _covered(self) -> int:
        """The positions the time blocks cover: 1..this."""
        [done] = self._conn.execute(
            "SELECT COALESCE(MAX(block) + 1, 0) FROM time_blocks").fetchone()
        return int(done) * self.block

    def _fill_blocks(self, head: int) -> None:
        """Compute the blocks completed up to `head` (inside the caller's transaction).
        A block is complete once a later position exists: positions only grow."""
        done, complete = self._covered(), (head // self.block) * self.block
        if complete > done:
            self._conn.execute(
                "INSERT OR REPLACE INTO time_blocks (block, min_time, max_time)"
                " SELECT (position - 1) / ?, MIN(time), MAX(time) FROM events"
                " WHERE position > ? AND position <= ? GROUP BY 1",
                [self.block, done, complete])

    def _time_bounds(self, since: str | None, until: str | None) -> tuple[int, int | None]:
        """Positions (exclusive low, inclusive high or None) outside which no record can
        be within [since, until]: a pure optimisation, the time terms still apply."""
        conn, covered = self._conn, self._covered()
        low, high = 0, None
        if since is not None:
            [block] = conn.execute(
                "SELECT MIN(block) FROM time_blocks WHERE max_time >= ?", [since]).fetchone()
            low = block * self.block if block is not None else covered
        if until is not None:
            [block] = conn.execute(
                "SELECT MAX(block) FROM time_blocks WHERE min_time <= ?", [until]).fetchone()
            end = (block + 1) * self.block if block is not None else 0
            if end < covered:
                [tail] = conn.execute(
                    "SELECT MIN(time) FROM events WHERE position > ?", [covered]).fetchone()
                if tail is None or tail > until:
                    high = end
        return low, high

    def _select(self, query: EventQuery) -> tuple[str, list[object]]:
        since = None if query.since is None else _stamp(query.since)
        until = None if query.until is None else _stamp(query.until)
        low, high = query.after, query.upto
        if since is not None or until is not None:
            time_low, time_high = self._time_bounds(since, until)
            low = max(low, time_low)
            high = time_high if high is None else (high if time_high is None
                                                   else min(high, time_high))
        where: list[str] = ["position > ?"]
        params: list[object] = [low]
        if high is not None:
            where.append("position <= ?")
            params.append(high)
        given = {"correlation_id": query.correlation_id, "function_name": query.function,
                 "stream_namespace": query.namespace, "actor": query.actor,
                 "type": sorted(query.types) or None}
        indexed = next((c for c in _PREFERENCE if given[c] is not None), None)
        for column in _PREFERENCE:
            value = given[column]
            if value is None:
                continue
            term = column if column == indexed else f"+{column}"
            if isinstance(value, list):
                where.append(f"{term} IN ({', '.join('?' * len(value))})")
                params.extend(value)
            else:
                where.append(f"{term} = ?")
                params.append(value)
        if since is not None:
            where.append("time >= ?")
            params.append(since)
        if until is not None:
            where.append("time <= ?")
            params.append(until)
        order = "DESC" if query.newest_first else "ASC"
        params.append(-1 if query.limit is None else query.limit)
        sql = (f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)}"
               f" ORDER BY position {order} LIMIT ?")
        return sql, params


def _stamp(time: datetime) -> str:
    """A time as the events table stores it (ISO 8601 in UTC, so text order = time order)."""
    return as_utc(time).isoformat()


def _record(row: Row) -> Recorded:
    (position, stream, version, type_name, schema, payload, time, actor, request_id, source,
     user_agent, correlation_id) = row
    return Recorded(
        position=position,
        stream=stream,
        version=version,
        time=datetime.fromisoformat(time),
        actor=actor,
        request_id=request_id,
        event=decode(type_name, schema, json.loads(payload)),
        source=source,
        user_agent=user_agent,
        correlation_id=correlation_id,
    )
