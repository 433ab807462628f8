"""The desired state kept current in memory: the log's projection, updated on every append.

Handlers read it to decide, the controller reads it to converge. It folds only new records
(the store hands them to subscribers after each commit), so reads cost nothing.

It starts from the newest usable snapshot and folds the records after it, so opening a
long log takes milliseconds, not a fold of the whole log; and it leaves a snapshot behind
every `snapshot_every` records (events/snapshot.py), which also serves `?at=` queries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from events import snapshot
from events.model import Desired
from events.project import project
from events.store import EventStore, Recorded

Listener = Callable[[list[Recorded]], None]
log = logging.getLogger("docker_faas.state")


class LiveDesired:
    def __init__(self, store: EventStore, *,
                 snapshot_every: int = snapshot.SNAPSHOT_EVERY) -> None:
        self._store = store
        self._every = snapshot_every
        self._desired: Desired = snapshot.catch_up(store, snapshot_every)
        self._listeners: list[Listener] = []
        self._unsubscribe = store.subscribe(self._on_append)

    @property
    def current(self) -> Desired:
        return self._desired

    def listen(self, listener: Listener) -> None:
        """Call `listener` with new records after the projection has folded them in."""
        self._listeners.append(listener)

    def _on_append(self, records: list[Recorded]) -> None:
        fresh = [r for r in records if r.position > self._desired.position]
        if fresh:
            before = self._desired.position
            self._desired = project(fresh, self._desired)
            if snapshot.due(before, self._desired.position, self._every):
                try:
                    snapshot.save(self._store, self._desired)
                except Exception:  # a cache: the append stands, the next one tries again
                    log.exception("saving a snapshot at position %d failed",
                                  self._desired.position)
        for listener in self._listeners:
            listener(records)

    def close(self) -> None:
        self._unsubscribe()


def touched_keys(records: Iterable[Recorded]) -> set[tuple[str, str]]:
    """The (namespace, name) of every function the records change."""
    return {record.event.key for record in records if not record.stream.startswith("outcome/")}
