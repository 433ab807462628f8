"""The pure rules and values of async invocations: states, back-off, verdicts, records.

No I/O and no clock here: the store (queue.py) and the workers (asyncworker.py) pass times
and answers in, and act on what comes out.
"""

from __future__ import annotations

from typing import Literal

import attrs

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
INVOKE, CALLBACK = "invoke", "callback"
RETRYABLE = frozenset({429, 502, 503, 504})
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
KEEP_FINISHED = 24 * 3600.0  # finished requests stay queryable this long

Headers = tuple[tuple[str, str], ...]


def backoff(attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Delay after failed attempt number `attempt` (1, 2, …): base, 2·base, 4·base, … ≤ cap."""
    return min(cap, base * 2.0 ** min(max(attempt - 1, 0), 64))


Verdict = tuple[Literal["retry"], float] | tuple[Literal["done", "failed"], None]


def judge_invoke(status: int | None, attempts: int, max_attempts: int) -> Verdict:
    """What to do after an invocation answered `status` (None: no answer at all)."""
    if status is not None and status not in RETRYABLE:
        return ("done", None)
    if attempts >= max_attempts:
        return ("failed", None)
    return ("retry", backoff(attempts))


def judge_callback(status: int | None, attempts: int, max_attempts: int) -> Verdict:
    """After a callback POST: below 400 delivered; 429, 5xx or no answer retried; else failed."""
    if status is not None and status < 400:
        return ("done", None)
    if status is not None and status != 429 and status < 500:
        return ("failed", None)
    if attempts >= max_attempts:
        return ("failed", None)
    return ("retry", backoff(attempts))


@attrs.frozen
class Submission:
    """What POST /async-function stored: enough to replay the request later."""

    call_id: str
    name: str
    namespace: str
    target: str  # the function as the caller wrote it: `echo` or `echo.openfaas-fn`
    path: str  # after the function name, `/` at least (raw bytes as latin-1)
    query: str  # raw query string, without `?`
    headers: Headers
    body: bytes
    callback_url: str | None = None
    method: str = "POST"

    @property
    def function_name(self) -> str:
        return f"{self.name}.{self.namespace}"


@attrs.frozen
class Result:
    """The function's answer (status None: it never answered; `error` says why)."""

    status: int | None
    headers: Headers = ()
    body: bytes = b""
    duration: float = 0.0
    error: str = ""


@attrs.frozen
class Job:
    """A claimed request: the submission, its stage and counters, and the lease token."""

    request: Submission
    token: str
    stage: str
    attempts: int
    callback_attempts: int
    outcome: str | None  # done/failed once the invocation stage ended
    result: Result | None  # the function's answer, kept for the callback stage
    last_error: str | None
