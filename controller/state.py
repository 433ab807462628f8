"""The desired state kept current in memory: the log's projection, updated on every append.

Handlers read it to decide, the controller reads it to converge. It folds only new records
(the store hands them to subscribers after each commit), so reads cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from events.model import Desired
from events.project import EMPTY, project
from events.store import EventStore, Recorded

Listener = Callable[[list[Recorded]], None]


class LiveDesired:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._desired: Desired = project(store.read_all(), EMPTY)
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
            self._desired = project(fresh, self._desired)
        for listener in self._listeners:
            listener(records)

    def close(self) -> None:
        self._unsubscribe()


def touched_keys(records: Iterable[Recorded]) -> set[tuple[str, str]]:
    """The (namespace, name) of every function the records change."""
    return {record.event.key for record in records if not record.stream.startswith("outcome/")}
