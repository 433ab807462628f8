"""The one place that talks to the Docker engine (through aiodocker).

Everything above this module works with plain dicts and our own errors: `EngineUnavailable`
when the engine cannot be reached (the loop waits and reconnects) and `EngineError` for an
answer the engine gave (carrying its status). Nothing else in the project imports aiodocker.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiodocker
import aiohttp

# aiodocker negotiates the API version; 1.41 is Debian 12's docker.io.
_CALL_TIMEOUT = 30.0


class EngineUnavailable(Exception):
    """The engine did not answer (not running, restarting, socket gone)."""


class EngineError(Exception):
    """The engine answered with an error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"docker: {message} ({status})")
        self.status = status
        self.message = message


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except aiodocker.DockerError as err:
        message = err.message if isinstance(err.message, str) else json.dumps(err.message)
        if err.status >= 900 or err.status == 0:
            raise EngineUnavailable(message) from err
        raise EngineError(err.status, message) from err
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        raise EngineUnavailable(str(err) or type(err).__name__) from err


class DockerAdapter:
    """Thin async wrapper: list, create+start, remove, network, events."""

    def __init__(self, url: str | None = None) -> None:
        self._url = url
        self._client: aiodocker.Docker | None = None

    def _docker(self) -> aiodocker.Docker:
        if self._client is None:
            self._client = aiodocker.Docker(url=self._url)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.close()

    async def ping(self) -> dict[str, Any]:
        with _mapped():
            result: dict[str, Any] = await self._docker().version()
            return result

    async def list_containers(self, label_filters: list[str]) -> list[dict[str, Any]]:
        """Raw container-list entries (all states) matching every `label=` filter."""
        with _mapped():
            containers = await self._docker().containers.list(
                all=True, filters=json.dumps({"label": label_filters})
            )
            return [dict(c._container) for c in containers]

    async def create_and_start(self, name: str, config: dict[str, Any]) -> str:
        """Create and start a container; an existing container of that name is reused."""
        docker = self._docker()
        with _mapped():
            try:
                container = await docker.containers.create(config, name=name)
            except aiodocker.DockerError as err:
                if err.status != 409:
                    raise
                container = await docker.containers.get(name)
            await container.start()
            return str(container.id)

    async def remove(self, container_id: str, *, stop_timeout: float = 0,
                     before_delete: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop (SIGTERM, then SIGKILL after `stop_timeout` s) and remove; gone is fine.

        `before_delete` runs between the stop and the delete (the log collector reads the
        stopped container's last lines there: the delete takes the engine's log with it).
        """
        docker = self._docker()
        with _mapped():
            try:
                container = docker.containers.container(container_id)
                if stop_timeout > 0:
                    with contextlib.suppress(aiodocker.DockerError):
                        await container.stop(t=int(stop_timeout))
                if before_delete is not None:
                    await before_delete()
                await container.delete(force=True, v=True)
            except aiodocker.DockerError as err:
                if err.status not in (404, 409):  # gone, or removal already in progress
                    raise

    async def networks(self, label_filters: list[str]) -> list[dict[str, Any]]:
        """Networks carrying every `label=` filter (with their attached containers)."""
        with _mapped():
            found: list[dict[str, Any]] = await self._docker().networks.list(
                filters={"label": label_filters})
            return found

    async def remove_network(self, network_id: str) -> None:
        """Remove a network; gone or still in use is fine (the next resync tries again)."""
        with _mapped():
            try:
                network = await self._docker().networks.get(network_id)
                await network.delete()
            except aiodocker.DockerError as err:
                if err.status not in (403, 404, 409):
                    raise

    async def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        docker = self._docker()
        with _mapped():
            existing = [n for n in await docker.networks.list(filters={"name": [name]})
                        if n.get("Name") == name]
            # Duplicates (made by an older race) make every create fail as "ambiguous":
            # keep the oldest, drop the others when nothing is attached to them.
            for extra in sorted(existing, key=lambda n: n.get("Created", ""))[1:]:
                with contextlib.suppress(aiodocker.DockerError):
                    network = await docker.networks.get(extra["Id"])
                    await network.delete()
            if existing:
                return
            try:
                await docker.networks.create(
                    {"Name": name, "Driver": "bridge", "Labels": labels, "CheckDuplicate": True}
                )
            except aiodocker.DockerError as err:
                if err.status != 409:
                    raise

    async def events(self, label_filters: list[str]) -> AsyncIterator[dict[str, Any]]:
        """Container events for our labels until the stream ends (engine gone)."""
        docker = self._docker()
        filters = json.dumps({"type": ["container"], "label": label_filters})
        with _mapped():
            async with docker._query(
                "events", method="GET", params={"filters": filters}, timeout=None
            ) as response:
                async for line in response.content:
                    if line.strip():
                        yield json.loads(line)

    async def inspect(self, container_id: str) -> dict[str, Any] | None:
        """The engine's inspect JSON of one container; None when it is gone."""
        with _mapped():
            try:
                container = await self._docker().containers.get(container_id)
            except aiodocker.DockerError as err:
                if err.status == 404:
                    return None
                raise
            return dict(container._container)

    async def logs(
        self, container_id: str, *, follow: bool, since: str
    ) -> AsyncGenerator[bytes, None]:
        """The raw log stream of a container (stdout and stderr, each message timestamped)
        from `since` (engine form: seconds[.nanoseconds]), until it ends.

        Each stream has a client of its own: a follow holds its connection for as long as
        the container runs, and the shared client's pool (100 connections) must stay free
        for the controller's calls.
        """
        version = self._client.api_version if self._client is not None else "auto"
        with _mapped():
            try:
                client = aiodocker.Docker(url=self._url, api_version=version)
            except (ValueError, AssertionError) as err:
                # no socket to be found (aiodocker 0.27 asserts, older ones raise ValueError;
                # the engine restarting removes the socket for a moment)
                raise EngineUnavailable(f"no Docker socket at {self._url}: {err!r}") from err
            try:
                params = {"stdout": "1", "stderr": "1", "timestamps": "1",
                          "follow": "1" if follow else "0", "since": since}
                async with client._query(
                    f"containers/{container_id}/logs", method="GET", params=params, timeout=None
                ) as response:
                    async for chunk in response.content.iter_any():
                        yield chunk
            finally:
                await client.close()
