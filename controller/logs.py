"""Copies every replica's log from the engine into the log store, as it is written.

The engine keeps a container's log only as long as the container, and the controller
removes containers whenever it replaces a replica; so each running replica the controller
observes gets a follower task that streams its log (`follow=1`, from the stored cursor) into
the LogStore. A follower ends when its container has stopped and its log has been read to
the end (then unfinished last lines are stored too); if the stream breaks (engine restart,
socket gone) it reconnects with back-off and resumes after the last stored message, so
nothing is lost or stored twice. Before the controller deletes a container it calls
`finish`, which waits for that follower (or, for a container never seen running, reads its
log once), so the last words of a crashed or replaced replica are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from controller.docker import DockerAdapter, EngineError, EngineUnavailable
from controller.logparse import Assembler, Cursor, FrameParser, since_param
from controller.logstore import LogStore
from controller.model import FunctionKey, ObservedReplica

log = logging.getLogger("docker_faas.logs")


class LogCollector:
    def __init__(self, docker: DockerAdapter, store: LogStore, *, retry_initial: float = 0.5,
                 retry_max: float = 5.0, drain_timeout: float = 5.0) -> None:
        self.docker = docker
        self.store = store
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.drain_timeout = drain_timeout
        self._tasks: dict[str, asyncio.Task[None]] = {}  # container id -> its reader

    # ---- what the controller tells it ----
    def observe(self, key: FunctionKey, replicas: list[ObservedReplica]) -> None:
        """Follow every running replica of `key` that is not followed yet."""
        for replica in replicas:
            if replica.live and replica.id not in self._tasks:
                self._start(key, replica.id, follow=True)

    async def finish(self, key: FunctionKey, container_id: str) -> None:
        """Called before the container is deleted: its log must be copied to the end.

        Waits (at most `drain_timeout`) for the follower, which ends by itself once the
        stopped container's stream is drained; never raises.
        """
        task = self._tasks.get(container_id)
        if task is None:
            task = self._start(key, container_id, follow=False)
        done, _ = await asyncio.wait({task}, timeout=self.drain_timeout)
        if not done:
            log.warning("log of %s not drained after %.0fs; dropping its reader",
                        container_id[:12], self.drain_timeout)
            task.cancel()
        try:
            self.store.flush()  # committed before the engine's copy is deleted
        except Exception:
            log.exception("storing the last log lines of %s failed", container_id[:12])

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- reading ----
    def _start(self, key: FunctionKey, container_id: str, *, follow: bool) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._run(key, container_id, follow))
        self._tasks[container_id] = task
        task.add_done_callback(lambda t: self._forget(container_id, t))
        return task

    def _forget(self, container_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(container_id) is task:
            del self._tasks[container_id]

    async def _run(self, key: FunctionKey, container_id: str, follow: bool) -> None:
        try:
            await self._copy(key, container_id, follow)
        except Exception:  # a bug must not go unnoticed, nor take the controller down
            log.exception("log reader of %s failed", container_id[:12])

    async def _copy(self, key: FunctionKey, container_id: str, follow: bool) -> None:
        delay, pause = self.retry_initial, 0.0
        name: str | None = None
        while True:
            if pause:
                await asyncio.sleep(pause)
                delay = min(delay * 2, self.retry_max)
            try:
                info = await self.docker.inspect(container_id)
                if info is None:
                    break  # gone: what was copied is all there is
                name = info.get("Name") or ""
                # the stored cursor is the truth, also after a read that broke off midway
                cursor = self.store.start(key, container_id, name)
                running = bool((info.get("State") or {}).get("Running"))
                assembler, productive = await self._read(container_id, cursor,
                                                         follow=follow and running)
                if not running:  # it had stopped before this read, so the read got it all
                    self.store.append(container_id, assembler.finish(), assembler.cursor,
                                      done=True)
                    return
                if not follow:
                    return
                # The stream ended: usually the container stopped, and the next turn reads
                # its end at once; a stream the engine keeps ending early backs off.
                pause = 0.0 if productive else delay
                if productive:
                    delay = self.retry_initial
            except EngineError as err:
                if err.status in (404, 409):  # gone, or dead / being removed: nothing to read
                    break
                log.warning("log of %s: %s; retrying in %.1fs", container_id[:12], err, delay)
                pause = delay
            except EngineUnavailable as err:
                log.info("log of %s: %s; retrying in %.1fs", container_id[:12], err, delay)
                pause = delay
        if name is not None:  # it vanished: keep its unfinished lines, if any
            final = Assembler(self.store.start(key, container_id, name))
            self.store.append(container_id, final.finish(), final.cursor, done=True)

    async def _read(self, container_id: str, cursor: Cursor, *,
                    follow: bool) -> tuple[Assembler, bool]:
        """One connection: copy what comes after `cursor` until the stream ends.

        Returns the assembler (its cursor, its unfinished lines) and whether the stream was
        worth it: it brought something or stayed open a while.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        parser, assembler = FrameParser(), Assembler(cursor)
        got = False
        try:
            stream = self.docker.logs(container_id, follow=follow, since=since_param(cursor.ts))
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    got = True
                    self._store(container_id, assembler, parser.feed(chunk))
            self._store(container_id, assembler, parser.close())
        finally:
            for error in assembler.errors:
                log.warning("engine, reading the log of %s: %s", container_id[:12], error)
            assembler.errors.clear()
        return assembler, got or loop.time() - started >= 1.0

    def _store(self, container_id: str, assembler: Assembler,
               messages: list[tuple[int, bytes]]) -> None:
        if messages:
            lines = [line for stream, payload in messages
                     for line in assembler.feed(stream, payload)]
            self.store.append(container_id, lines, assembler.cursor)
