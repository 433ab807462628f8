"""The async workers: take leased requests from the durable queue, run them, call back.

Like the OpenFaaS queue-worker, a worker invokes the function by POSTing to the gateway's own
`/function/<name>.<namespace><path>?<query>` on loopback, with the queued headers (so the
function sees the original X-Call-Id), which keeps replica choice, metrics and timeouts in one
place: the proxy. The call goes through the proxy's pooled client (upstream.py), not httpx,
which only delivers callbacks (any host, maybe https).

`ASYNC_WORKERS` tasks share the queue; at most `ASYNC_CONCURRENCY` invocations of one function
run at a time (claims skip a saturated function, and a lock makes count-then-claim atomic).
429, 502, 503, 504 and no answer are retried with exponential back-off until
`ASYNC_MAX_ATTEMPTS`; callbacks the same, with their own counter. A heartbeat renews the
leases of running requests, so only requests of a dead gateway ever expire.

The SQLite store runs on a thread of its own (`QueueThread`): its commits wait for fsync,
which must not stall the event loop that also carries every synchronous invocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import attrs
import httpx

from api.asyncmodel import (
    CALLBACK,
    DONE,
    FAILED,
    INVOKE,
    KEEP_FINISHED,
    RETRYABLE,
    RUNNING,
    Job,
    Result,
    Submission,
    judge_callback,
    judge_invoke,
)
from api.metrics import GatewayMetrics
from api.queue import QueueStore
from api.upstream import Address, Pool, UpstreamError, send_request

log = logging.getLogger("docker_faas.async")
T = TypeVar("T")
P = ParamSpec("P")
_HOP_BY_HOP = frozenset(
    "connection proxy-connection keep-alive proxy-authenticate proxy-authorization te "
    "trailer transfer-encoding upgrade content-length host".split()
)
# Not copied from the function's answer onto the callback: set by us or by the transport.
_CALLBACK_SETS = _HOP_BY_HOP | {"x-function-status", "x-function-name", "x-call-id",
                                "x-duration-seconds"}
USER_AGENT = "docker-faas-async/0.1.0"


class QueueThread:
    """The queue store on one thread; opened there on first use, so building it is free."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._store: QueueStore | None = None

    def _run(self, op: Callable[..., T], args: tuple[object, ...], kwargs: dict[str, object]) -> T:
        if self._store is None:
            self._store = QueueStore(self.path)
        return op(self._store, *args, **kwargs)

    async def call(self, op: Callable[Concatenate[QueueStore, P], T],
                   *args: P.args, **kwargs: P.kwargs) -> T:
        """`op(store, *args, **kwargs)` on the queue's thread, e.g. `call(QueueStore.get, id)`."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="async-queue")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, op, args, kwargs)

    def close(self) -> None:
        if self._executor is None:
            return
        self._executor.submit(self._close_store).result()
        self._executor.shutdown()
        self._executor = None

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def loopback(bind: str, port: int) -> Address:
    """Where the gateway reaches itself: the bound address, or loopback for a wildcard."""
    if bind in ("", "0.0.0.0"):
        return ("127.0.0.1", port)
    if bind == "::":
        return ("::1", port)
    return (bind, port)


@attrs.define
class AsyncWorkers:
    queue: QueueThread
    metrics: GatewayMetrics
    address: Address
    workers: int = 8
    concurrency: int = 4
    max_attempts: int = 10
    lease: float = 10.0
    timeout: float = 65.0  # one invocation, end to end (the proxy answers 504 before)
    response_limit: int = 16 * 2**20  # function answers kept for the callback, at most
    callback_timeout: float = 30.0
    clock: Callable[[], float] = time.time
    depth: dict[str, int] = attrs.field(factory=dict)  # queued + running, per function
    _running: dict[str, int] = attrs.field(factory=dict, init=False)
    _held: dict[str, Job | None] = attrs.field(factory=dict, init=False)
    _wake: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _claim_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    _tasks: list[asyncio.Task[None]] = attrs.field(factory=list, init=False)
    _pool: Pool = attrs.field(factory=Pool, init=False)
    _http: httpx.AsyncClient | None = attrs.field(default=None, init=False)

    # ---- life cycle ----
    def enqueued(self, function_name: str) -> None:
        """A request was committed: count it and wake an idle worker."""
        self.depth[function_name] = self.depth.get(function_name, 0) + 1
        self._wake.set()

    async def start(self) -> None:
        now = self.clock()
        requeued = await self.queue.call(QueueStore.requeue_expired, now)
        if requeued:
            log.info("%d async requests of a stopped gateway are queued again", requeued)
        counts = await self.queue.call(QueueStore.pending_counts)
        self.depth = {fn: counts.get(fn, 0) for fn in {*self.depth, *counts}}
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per callback
        self._http = httpx.AsyncClient(timeout=self.callback_timeout, follow_redirects=False,
                                       headers={"user-agent": USER_AGENT})
        self._tasks = [asyncio.create_task(self._worker(), name=f"async-worker-{i}")
                       for i in range(self.workers)]
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="async-heartbeat"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        tokens, now = list(self._held), self.clock()
        if tokens:  # hand them back now rather than after their lease runs out
            await self.queue.call(QueueStore.release, tokens, now)
            self._held.clear()
        self._pool.close()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # ---- claiming ----
    async def _next(self) -> Job:
        while True:
            async with self._claim_lock:
                self._wake.clear()
                now = self.clock()
                full = tuple(fn for fn, n in self._running.items() if n >= self.concurrency)
                token = uuid.uuid4().hex
                self._held[token] = None  # released on stop even if we are cancelled here
                job, due = await self.queue.call(_claim_or_due, now, token, self.lease, full)
                if job is not None:
                    self._held[token] = job
                    if job.stage == INVOKE:
                        fn = job.request.function_name
                        self._running[fn] = self._running.get(fn, 0) + 1
                    return job
                del self._held[token]
            wait = 5.0 if due is None else min(5.0, max(due - self.clock(), 0.0))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _worker(self) -> None:
        while True:
            job = await self._next()
            try:
                if job.stage == INVOKE:
                    await self._invoke_stage(job)
                else:
                    await self._callback_stage(job)
            except Exception:  # a bug here must not take the worker down with it
                log.exception("async request %s failed unexpectedly", job.request.call_id)
            # Not on cancellation: stop() hands the leases still held back to the queue.
            self._held.pop(job.token, None)

    async def _heartbeat(self) -> None:
        purged = 0.0
        while True:
            await asyncio.sleep(self.lease / 3)
            tokens, now = [t for t, job in self._held.items() if job], self.clock()
            try:
                await self.queue.call(QueueStore.renew, tokens, now + self.lease)
                if now - purged > 3600:
                    await self.queue.call(QueueStore.purge, now - KEEP_FINISHED)
                    purged = now
            except Exception:
                log.exception("cannot renew async leases")

    def _finished(self, function_name: str) -> None:
        self.depth[function_name] = max(0, self.depth.get(function_name, 0) - 1)

    # ---- the two stages ----
    async def _invoke_stage(self, job: Job) -> None:
        sub, token = job.request, job.token
        fn = sub.function_name
        try:
            if job.attempts > self.max_attempts:  # the last attempt died with its gateway
                verdict, result = FAILED, Result(None, error="interrupted")
                error = (f"gave up after {self.max_attempts} attempts; the last one was "
                         f"interrupted ({job.last_error or 'the gateway stopped'})")
            else:
                result = await self._call_function(sub)
                judged, delay = judge_invoke(result.status, job.attempts, self.max_attempts)
                error = result.error or (f"function answered {result.status}"
                                         if result.status in RETRYABLE else "")
                if judged == "retry":
                    assert delay is not None
                    self.metrics.async_retry(fn)
                    now = self.clock()
                    await self.queue.call(QueueStore.retry, token, now, at=now + delay,
                                          error=error, function_status=result.status)
                    return
                verdict = judged
                if verdict == FAILED:
                    error = f"gave up after {job.attempts} attempts: {error}"
            now = self.clock()
            status = await self.queue.call(QueueStore.finish_invoke, token, now,
                                           outcome=verdict, result=result, error=error or None)
        finally:
            self._running[fn] = self._running.get(fn, 1) - 1
            self._wake.set()
        if status == RUNNING:
            await self._callback_stage(attrs.evolve(
                job, stage=CALLBACK, callback_attempts=1, outcome=verdict, result=result))
        elif status in (DONE, FAILED):
            if status == FAILED:
                log.info("async request %s failed: %s", sub.call_id, error)
            self._finished(fn)

    async def _callback_stage(self, job: Job) -> None:
        token, now = job.token, self.clock()
        if job.callback_attempts > self.max_attempts:
            error = f"callback: gave up after {self.max_attempts} attempts; the last one was " \
                    f"interrupted ({job.last_error or 'the gateway stopped'})"
            final = await self.queue.call(QueueStore.finish_callback, token, now,
                                          delivered=False, callback_status=None, error=error)
        else:
            status, problem = await self._post_callback(job)
            judged, delay = judge_callback(status, job.callback_attempts, self.max_attempts)
            now = self.clock()
            error = f"callback: {problem}"
            if judged == "retry":
                assert delay is not None
                await self.queue.call(QueueStore.retry, token, now, at=now + delay,
                                      error=error, callback_status=status)
                return
            if judged == FAILED and (status is None or status == 429 or status >= 500):
                error = f"callback: gave up after {job.callback_attempts} attempts: {problem}"
            final = await self.queue.call(
                QueueStore.finish_callback, token, now, delivered=judged == DONE,
                callback_status=status, error=None if judged == DONE else error)
        if final == FAILED:
            log.info("async request %s failed: %s", job.request.call_id, error)
        if final is not None:
            self._finished(job.request.function_name)

    # ---- I/O ----
    async def _call_function(self, sub: Submission) -> Result:
        target = f"/function/{sub.name}.{sub.namespace}{sub.path}"
        if sub.query:
            target += "?" + sub.query
        lines = [f"{k}: {v}\r\n" for k, v in sub.headers]
        if not any(k.lower() == "host" for k, _ in sub.headers):
            lines.append(f"host: {sub.name}\r\n")
        lines.append(f"content-length: {len(sub.body)}\r\n")
        head = f"POST {target} HTTP/1.1\r\n{''.join(lines)}\r\n".encode("latin-1")
        start = time.perf_counter()
        for attempt in (1, 2):  # a pooled connection may have died idle: one fresh try
            reused = False
            try:
                async with asyncio.timeout(self.timeout):
                    conn, reused = await self._pool.get(self.address)
                    try:
                        await send_request(conn, head, sub.body, False, _no_more, False)
                        response = await conn.read_head(False)
                    except BaseException:
                        conn.reusable = False
                        conn.release()
                        raise
                    body, cut = await _read_limited(response.body(), self.response_limit)
            except TimeoutError:
                return Result(None, error=f"no answer within {self.timeout:g}s",
                              duration=time.perf_counter() - start)
            except (UpstreamError, OSError) as err:
                if reused and attempt == 1:
                    continue
                return Result(None, error=f"cannot reach the gateway: {err}",
                              duration=time.perf_counter() - start)
            headers = tuple((k.decode("latin-1"), v.decode("latin-1"))
                            for k, v in response.headers)
            return Result(response.status, headers, body, time.perf_counter() - start,
                          f"answer cut at {self.response_limit} bytes" if cut else "")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_callback(self, job: Job) -> tuple[int | None, str]:
        sub, result = job.request, job.result or Result(None)
        assert self._http is not None and sub.callback_url
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in result.headers
                   if k.lower() not in _CALLBACK_SETS]
        headers += [
            (b"x-function-status", str(result.status or 503).encode()),
            (b"x-function-name", sub.target.encode()),
            (b"x-call-id", sub.call_id.encode("latin-1")),
            (b"x-duration-seconds", b"%f" % result.duration),
        ]
        try:
            response = await self._http.post(sub.callback_url, content=result.body,
                                             headers=headers)
        except httpx.HTTPError as err:
            return None, f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        if response.status_code < 400:
            return response.status_code, ""
        return response.status_code, f"the receiver answered {response.status_code}"


def _claim_or_due(store: QueueStore, now: float, token: str, lease: float,
                  full: tuple[str, ...]) -> tuple[Job | None, float | None]:
    """One trip to the queue thread: a leased job, or else when the next one is due."""
    job = store.claim(now, token=token, lease=lease, exclude=full)
    return (job, None) if job else (None, store.next_due(now, full))


async def _no_more() -> tuple[bytes, bool]:  # pragma: no cover - bodies are sent whole
    return b"", False


async def _read_limited(chunks: AsyncIterator[bytes], limit: int) -> tuple[bytes, bool]:
    """The body up to `limit` bytes, and whether more was cut off."""
    parts: list[bytes] = []
    size = 0
    async with contextlib.aclosing(chunks) as body:  # type: ignore[type-var]
        async for chunk in body:
            if size + len(chunk) > limit:
                parts.append(chunk[: limit - size])
                return b"".join(parts), True
            parts.append(chunk)
            size += len(chunk)
    return b"".join(parts), False
