"""Function log lines kept by the gateway: a small SQLite file beside the state database.

The engine's own log of a container goes away with the container, and the controller
removes containers whenever it replaces a replica, so the lines are copied here as they are
written (see logs.py) and /system/logs reads them from here. Why these choices:

* Its own file (`logs.db`), not the event log: lines are plentiful and disposable, events
  are few and precious; WAL with `synchronous=NORMAL` (a power cut may lose the last lines,
  never corrupt the file); created 0600, since functions may log what they are given.
* Each container has a row with its cursor (how far its engine log has been copied, see
  logparse.Cursor), written in the same transaction as its lines, so a gateway or engine
  restart resumes exactly where the copy stopped.
* Retention: the newest `keep` lines of each function; older ones are deleted as new ones
  arrive. Lines outlive their function, so logs of a deleted function can still be read.
* Written behind: appends wait up to `flush_delay` (50 ms) to share one transaction, which
  cuts the cost per line several times over (a classic-mode function logs two lines per
  call); every read flushes first, so readers never miss a line.
* One object, used from the event loop's thread only; readers waiting for new lines of a
  function are woken when they are committed (`wait`), so a follower needs no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import attrs

from controller.logparse import Cursor, Line, Pending
from controller.model import FunctionKey

log = logging.getLogger("docker_faas.logs")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    ref INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    cursor_ts INTEGER NOT NULL DEFAULT 0,
    cursor_count INTEGER NOT NULL DEFAULT 0,
    pending TEXT NOT NULL DEFAULT '[]',
    done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS containers_by_function ON containers (namespace, function);
CREATE TABLE IF NOT EXISTS lines (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    ref INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lines_by_function ON lines (namespace, function, ts, seq);
"""

_SELECT = """
SELECT l.seq, l.ts, l.stream, l.text, c.id FROM lines l JOIN containers c ON c.ref = l.ref
WHERE l.namespace = :namespace AND l.function = :function"""
# a container id prefix, or its name (the engine reports names with a leading slash)
_INSTANCE = (" AND (substr(c.id, 1, length(:instance)) = :instance"
             " OR c.name = :instance OR c.name = '/' || :instance)")
_SINCE = " AND l.ts >= :since"


@attrs.frozen
class StoredLine:
    seq: int  # arrival order across the whole store
    ts: int  # nanoseconds since the epoch
    stream: int
    text: str
    container: str  # full container id


def _pending_json(pending: tuple[Pending, ...]) -> str:
    return json.dumps([[p.stream, p.ts, p.data.hex()] for p in pending])


def _pending_of(text: str) -> tuple[Pending, ...]:
    return tuple(Pending(s, ts, bytes.fromhex(data)) for s, ts, data in json.loads(text))


class LogStore:
    def __init__(self, path: str | Path, *, keep: int = 10_000,
                 flush_delay: float = 0.05, flush_lines: int = 1000) -> None:
        self.path = str(path)
        self.keep = keep
        self.flush_delay = flush_delay
        self.flush_lines = flush_lines
        self._conn: sqlite3.Connection | None = None  # opened on first use
        self._refs: dict[str, tuple[int, FunctionKey]] = {}  # container id -> row, function
        self._counts: dict[FunctionKey, int] = {}
        self._waiters: dict[FunctionKey, set[asyncio.Future[None]]] = {}
        # written behind: lines and cursors wait a moment to share one transaction
        self._lines: list[tuple[int, FunctionKey, Line]] = []
        self._cursors: dict[int, tuple[Cursor, bool]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.flush()
            self._conn.close()
            self._conn = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- what the collector writes ----
    def start(self, key: FunctionKey, container: str, name: str) -> Cursor:
        """Register a container being read (again) and return where its copy stopped."""
        self.flush()
        db = self._db()
        db.execute(
            "INSERT INTO containers (id, namespace, function, name) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, done = 0",
            (container, key[0], key[1], name),
        )
        row = db.execute(
            "SELECT ref, namespace, function, cursor_ts, cursor_count, pending FROM containers"
            " WHERE id = ?", (container,)
        ).fetchone()
        self._refs[container] = (row[0], (row[1], row[2]))
        return Cursor(row[3], row[4], _pending_of(row[5]))

    def append(self, container: str, lines: Sequence[Line], cursor: Cursor, *,
               done: bool = False) -> None:
        """Store `lines` of a started container with its new cursor.

        Written behind: within `flush_delay` (or at once past `flush_lines` lines, or before
        any read), in one transaction with the cursor, so a crash loses both or neither and
        the next reader resumes from the cursor that was committed.
        """
        if container not in self._refs:
            raise KeyError(f"container {container} was not started in the log store")
        ref, key = self._refs[container]
        self._lines.extend((ref, key, line) for line in lines)
        self._cursors[ref] = (cursor, done)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or len(self._lines) >= self.flush_lines:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.flush_delay, self._flush_later)

    def _flush_later(self) -> None:
        self._timer = None
        try:
            self.flush()
        except sqlite3.Error:
            log.exception("storing function log lines failed; they are dropped")

    def flush(self) -> None:
        """Commit what `append` holds; waiters of the functions that got lines wake up."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._cursors:
            return
        lines, self._lines = self._lines, []
        cursors, self._cursors = self._cursors, {}
        added: dict[FunctionKey, int] = {}
        for _, key, _ in lines:
            added[key] = added.get(key, 0) + 1
        db = self._db()
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT INTO lines (namespace, function, ref, ts, stream, text)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(key[0], key[1], ref, line.ts, line.stream, line.text)
                 for ref, key, line in lines],
            )
            db.executemany(
                "UPDATE containers SET cursor_ts = ?, cursor_count = ?, pending = ?, done = ?"
                " WHERE ref = ?",
                [(cursor.ts, cursor.count, _pending_json(cursor.pending), int(done), ref)
                 for ref, (cursor, done) in cursors.items()],
            )
            for key, count in added.items():
                self._retain(db, key, count)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._counts.clear()
            raise
        for key in added:
            self._wake(key)

    def _retain(self, db: sqlite3.Connection, key: FunctionKey, added: int) -> None:
        count = self._counts.get(key)
        if count is None:
            count = db.execute(
                "SELECT COUNT(*) FROM lines WHERE namespace = ? AND function = ?", key
            ).fetchone()[0]
        else:
            count += added
        if count > self.keep:
            db.execute(
                "DELETE FROM lines WHERE seq IN (SELECT seq FROM lines"
                " WHERE namespace = ? AND function = ? ORDER BY ts, seq LIMIT ?)",
                (*key, count - self.keep),
            )
            db.execute(  # finished containers whose every line has aged out
                "DELETE FROM containers WHERE namespace = ? AND function = ? AND done = 1"
                " AND NOT EXISTS (SELECT 1 FROM lines WHERE lines.ref = containers.ref)",
                key,
            )
            count = self.keep
        self._counts[key] = count

    # ---- what the API reads ----
    def known(self, key: FunctionKey) -> bool:
        """Whether any line (or any container) of the function was ever kept."""
        self.flush()
        row = self._db().execute(
            "SELECT 1 FROM containers WHERE namespace = ? AND function = ? LIMIT 1", key
        ).fetchone()
        return row is not None

    def last_seq(self) -> int:
        self.flush()
        row = self._db().execute("SELECT COALESCE(MAX(seq), 0) FROM lines").fetchone()
        return int(row[0])

    def backlog(self, key: FunctionKey, *, instance: str = "", since: int | None = None,
                tail: int = 0) -> list[StoredLine]:
        """The kept lines in time order (all replicas merged); `tail` > 0: only the last N."""
        self.flush()
        sql, args = self._where(key, instance, since)
        if tail > 0:
            sql += " ORDER BY l.ts DESC, l.seq DESC LIMIT :tail"
            rows = self._db().execute(sql, {**args, "tail": tail}).fetchall()
            rows.reverse()
        else:
            rows = self._db().execute(sql + " ORDER BY l.ts, l.seq", args).fetchall()
        return [StoredLine(*row) for row in rows]

    def after(self, key: FunctionKey, seq: int, *, instance: str = "",
              since: int | None = None, limit: int = 1000) -> list[StoredLine]:
        """Lines stored after `seq`, in arrival order (what a follower has not seen yet)."""
        self.flush()
        sql, args = self._where(key, instance, since)
        sql += " AND l.seq > :seq ORDER BY l.seq LIMIT :limit"
        rows = self._db().execute(sql, {**args, "seq": seq, "limit": limit}).fetchall()
        return [StoredLine(*row) for row in rows]

    @staticmethod
    def _where(key: FunctionKey, instance: str,
               since: int | None) -> tuple[str, dict[str, object]]:
        sql = _SELECT + (_INSTANCE if instance else "") + (_SINCE if since is not None else "")
        if since is not None:  # years before 1678 or after 2262 do not fit in 64 bits
            since = min(max(since, -(2**63)), 2**63 - 1)
        return sql, {"namespace": key[0], "function": key[1], "instance": instance,
                     "since": since}

    # ---- waiting for new lines ----
    async def wait(self, key: FunctionKey, timeout: float) -> None:
        """Return when a line of `key` is appended, or after `timeout` seconds."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(key, set())
        waiters.add(future)
        try:
            await asyncio.wait({future}, timeout=max(timeout, 0))
        finally:
            waiters.discard(future)
            if not waiters:
                self._waiters.pop(key, None)
            future.cancel()

    def _wake(self, key: FunctionKey) -> None:
        for future in self._waiters.get(key, ()):
            if not future.done():
                future.set_result(None)
