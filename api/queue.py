"""The durable queue of asynchronous invocations: one SQLite table in its own file.

OpenFaaS CE keeps async requests in NATS memory, so a restart loses them (faas-netes#857).
Here a request is committed (WAL, `synchronous=FULL`) before the gateway answers 202, and a
worker only ever *leases* it: claiming sets `status=running` and `lease_until`, the worker
renews the lease while it runs, and a lease nobody renewed (the gateway died) expires, after
which the request is claimable again. That gives at-least-once delivery; the call id travels
with every attempt (X-Call-Id) so that functions and callback receivers can deduplicate.

A request has two stages. `invoke` runs the function until it gives a final answer or the
attempts run out; `callback` then delivers that answer to X-Callback-Url (with a separate
attempt counter), so a crash between the two never runs the function again just to deliver.

The store is synchronous and never reads the clock: callers pass `now` (Unix seconds, wall
clock, since leases must mean the same thing to the next process) and the lease token. Every
change made on behalf of a worker names the token, so a worker whose lease was taken over can
no longer change the row. One object per thread (the connection is not shared).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.asyncmodel import (
    CALLBACK,
    DONE,
    FAILED,
    INVOKE,
    QUEUED,
    RUNNING,
    Headers,
    Job,
    Result,
    Submission,
)

_CREATE = """
CREATE TABLE IF NOT EXISTS async_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    namespace TEXT NOT NULL,
    function_name TEXT NOT NULL,
    target TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB,
    callback_url TEXT,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    callback_attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    lease_token TEXT,
    lease_until REAL,
    outcome TEXT,
    last_error TEXT,
    function_status INTEGER,
    callback_status INTEGER,
    duration REAL,
    response_headers TEXT,
    response_body BLOB,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS async_due ON async_requests (status, next_at)",
    "CREATE INDEX IF NOT EXISTS async_lease ON async_requests (lease_token)",
)
# Due: queued and its time has come, or running under a lease nobody renewed.
_DUE = ("((status = 'queued' AND next_at <= ?) OR (status = 'running' AND lease_until <= ?))")


def _skip(exclude: Collection[str]) -> str:
    """SQL that leaves out invocations of saturated functions (callbacks still go)."""
    if not exclude:
        return ""
    marks = ",".join("?" * len(exclude))
    return f" AND (stage = 'callback' OR function_name NOT IN ({marks}))"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _headers(raw: str | None) -> Headers:
    return tuple((str(k), str(v)) for k, v in json.loads(raw or "[]"))


class QueueStore:
    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        if str(path) != ":memory:":
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            # The queue holds request headers (maybe credentials) and bodies: owner only.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute(_CREATE)
        for index in _INDEXES:
            self._db.execute(index)

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): committed when the block
        ends, rolled back when it raises."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, args: Iterable[Any]) -> int:
        return self._db.execute(sql, list(args)).rowcount

    # ---- submitting ----
    def enqueue(self, sub: Submission, now: float) -> bool:
        """Store a new request; False (and nothing changed) when its call id is known."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO async_requests (call_id, name, namespace, function_name,"
            " target, method, path, query, headers, body, callback_url, stage, status,"
            " next_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [sub.call_id, sub.name, sub.namespace, sub.function_name, sub.target, sub.method,
             sub.path, sub.query, json.dumps(sub.headers), sub.body, sub.callback_url,
             INVOKE, QUEUED, now, now, now],
        )
        return cursor.rowcount == 1

    # ---- claiming ----
    def claim(self, now: float, *, token: str, lease: float,
              exclude: Collection[str] = ()) -> Job | None:
        """Lease the oldest due request (invocations of `exclude`d functions are skipped)."""
        skip = _skip(exclude)
        with self._immediate() as db:
            row = db.execute(
                f"SELECT seq FROM async_requests WHERE {_DUE}{skip} ORDER BY next_at, seq LIMIT 1",
                [now, now, *exclude],
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE async_requests SET status = 'running', lease_token = ?,"
                " lease_until = ?, updated_at = ?,"
                " attempts = attempts + (stage = 'invoke'),"
                " callback_attempts = callback_attempts + (stage = 'callback') WHERE seq = ?",
                [token, now + lease, now, row["seq"]],
            )
            job = db.execute("SELECT * FROM async_requests WHERE seq = ?", [row["seq"]]).fetchone()
        return _job(job)

    def next_due(self, now: float, exclude: Collection[str] = ()) -> float | None:
        """When the next request becomes claimable (≤ now: already), None when none waits."""
        skip = _skip(exclude)
        row = self._db.execute(
            "SELECT MIN(CASE status WHEN 'queued' THEN next_at ELSE lease_until END) AS at"
            f" FROM async_requests WHERE status IN ('queued', 'running'){skip}",
            list(exclude),
        ).fetchone()
        return None if row["at"] is None else float(row["at"])

    def renew(self, tokens: Collection[str], until: float) -> int:
        if not tokens:
            return 0
        return self._write(
            f"UPDATE async_requests SET lease_until = ? WHERE status = 'running'"
            f" AND lease_token IN ({','.join('?' * len(tokens))})", [until, *tokens])

    def requeue_expired(self, now: float) -> int:
        """At start-up: running requests whose lease ran out go back to the queue."""
        return self._write(
            "UPDATE async_requests SET status = 'queued', lease_token = NULL,"
            " lease_until = NULL, next_at = ?, updated_at = ?"
            " WHERE status = 'running' AND lease_until <= ?", [now, now, now])

    def release(self, tokens: Collection[str], now: float) -> int:
        """On an orderly stop: give leased requests back without counting the attempt."""
        if not tokens:
            return 0
        return self._write(
            "UPDATE async_requests SET status = 'queued', lease_token = NULL,"
            " lease_until = NULL, next_at = ?, updated_at = ?,"
            " attempts = attempts - (stage = 'invoke'),"
            " callback_attempts = callback_attempts - (stage = 'callback')"
            f" WHERE status = 'running' AND lease_token IN ({','.join('?' * len(tokens))})",
            [now, now, *tokens])

    # ---- outcomes (each only while the caller still holds the lease) ----
    def retry(self, token: str, now: float, *, at: float, error: str,
              function_status: int | None = None, callback_status: int | None = None) -> bool:
        return self._write(
            "UPDATE async_requests SET status = 'queued', lease_token = NULL,"
            " lease_until = NULL, next_at = ?, last_error = ?, updated_at = ?,"
            " function_status = CASE stage WHEN 'invoke' THEN ? ELSE function_status END,"
            " callback_status = CASE stage WHEN 'callback' THEN ? ELSE callback_status END"
            " WHERE lease_token = ? AND status = 'running'",
            [at, error, now, function_status, callback_status, token]) == 1

    def finish_invoke(self, token: str, now: float, *, outcome: str, result: Result,
                      error: str | None = None) -> str | None:
        """Record the function's final answer. With a callback URL the request moves on to
        the callback stage, still leased by the caller (first callback attempt counted).
        Returns the new status (None: the lease was lost)."""
        with self._immediate() as db:
            row = db.execute(
                "SELECT callback_url FROM async_requests WHERE lease_token = ?"
                " AND status = 'running' AND stage = 'invoke'", [token]).fetchone()
            if row is None:
                return None
            common = [outcome, result.status, result.duration, error, now]
            if row["callback_url"]:
                status = RUNNING
                db.execute(
                    "UPDATE async_requests SET outcome = ?, function_status = ?, duration = ?,"
                    " last_error = COALESCE(?, last_error), updated_at = ?, stage = 'callback',"
                    " callback_attempts = 1,"
                    " response_headers = ?, response_body = ?, body = NULL"
                    " WHERE lease_token = ?",
                    [*common, json.dumps(result.headers), result.body, token])
            else:
                status = outcome
                db.execute(
                    "UPDATE async_requests SET outcome = ?, function_status = ?, duration = ?,"
                    " last_error = COALESCE(?, last_error), updated_at = ?, status = ?,"
                    " lease_token = NULL,"
                    " lease_until = NULL, body = NULL WHERE lease_token = ?",
                    [*common, status, token])
        return status

    def finish_callback(self, token: str, now: float, *, delivered: bool,
                        callback_status: int | None, error: str | None = None) -> str | None:
        """The callback went through (status = the invocation's outcome) or gave up (failed)."""
        with self._immediate() as db:
            row = db.execute(
                "SELECT outcome, last_error FROM async_requests WHERE lease_token = ?"
                " AND status = 'running' AND stage = 'callback'", [token]).fetchone()
            if row is None:
                return None
            status = (row["outcome"] or DONE) if delivered else FAILED
            db.execute(
                "UPDATE async_requests SET status = ?, callback_status = ?, last_error = ?,"
                " updated_at = ?, lease_token = NULL, lease_until = NULL, response_body = NULL,"
                " response_headers = NULL WHERE lease_token = ?",
                [status, callback_status, error if error is not None else row["last_error"],
                 now, token])
        return str(status)

    # ---- reading and housekeeping ----
    def status(self, call_id: str) -> dict[str, Any] | None:
        """The request as GET /system/async/{call-id} shows it."""
        row = self._db.execute(
            "SELECT call_id, name, namespace, status, attempts, callback_attempts, last_error,"
            " function_status, callback_status, created_at, updated_at FROM async_requests"
            " WHERE call_id = ?", [call_id]).fetchone()
        if row is None:
            return None
        return {
            "callId": row["call_id"], "function": row["name"], "namespace": row["namespace"],
            "status": row["status"], "attempts": row["attempts"],
            "callbackAttempts": row["callback_attempts"], "lastError": row["last_error"],
            "functionStatus": row["function_status"], "callbackStatus": row["callback_status"],
            "createdAt": _iso(row["created_at"]), "updatedAt": _iso(row["updated_at"]),
        }

    def pending_counts(self) -> dict[str, int]:
        """Queued and running requests per function (`name.namespace`)."""
        rows = self._db.execute(
            "SELECT function_name, COUNT(*) AS n FROM async_requests"
            " WHERE status IN ('queued', 'running') GROUP BY function_name").fetchall()
        return {row["function_name"]: int(row["n"]) for row in rows}

    def purge(self, before: float) -> int:
        """Forget finished requests last changed before `before`."""
        return self._write(
            "DELETE FROM async_requests WHERE status IN ('done', 'failed') AND updated_at < ?",
            [before])


def _job(row: sqlite3.Row) -> Job:
    sub = Submission(
        call_id=row["call_id"], name=row["name"], namespace=row["namespace"],
        target=row["target"], path=row["path"], query=row["query"],
        headers=_headers(row["headers"]), body=bytes(row["body"] or b""),
        callback_url=row["callback_url"], method=row["method"],
    )
    result = None
    if row["stage"] == CALLBACK:
        result = Result(status=row["function_status"],
                        headers=_headers(row["response_headers"]),
                        body=bytes(row["response_body"] or b""),
                        duration=float(row["duration"] or 0.0))
    return Job(request=sub, token=row["lease_token"], stage=row["stage"],
               attempts=row["attempts"], callback_attempts=row["callback_attempts"],
               outcome=row["outcome"], result=result, last_error=row["last_error"])
