"""What the handlers share: settings, the log, the live desired state and the replica view.

Built once by `create_app`; no module-level singletons. The replica view is the controller's
health tracker when a controller runs, or an empty view for API tests without an engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from api.metrics import GatewayMetrics
from api.settings import Settings
from controller.logstore import LogStore
from controller.loop import Controller
from controller.secrets import SecretVault
from controller.state import LiveDesired
from events.model import Desired
from events.store import Batch, EventStore, Recorded


@attrs.define
class Gateway:
    settings: Settings
    store: EventStore
    live: LiveDesired
    metrics: GatewayMetrics
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    vault: SecretVault
    controller: Controller | None = None
    logs: LogStore | None = None  # function log lines, for /system/logs

    @property
    def desired(self) -> Desired:
        return self.live.current

    def available(self, key: tuple[str, str]) -> int:
        return self.controller.health.available(key) if self.controller else 0

    def append(self, stream: str, events: list[object], expected: int, *, actor: str,
               request_id: str, source: str = "", user_agent: str = "",
               correlation_id: str = "") -> list[Recorded]:
        """Append one stream's events (nothing for none), stamped with the clock and who."""
        return self.append_many([Batch(stream, events, expected)],  # type: ignore[arg-type]
                                actor=actor, request_id=request_id, source=source,
                                user_agent=user_agent, correlation_id=correlation_id)

    def append_many(self, batches: list[Batch], *, actor: str, request_id: str,
                    source: str = "", user_agent: str = "",
                    correlation_id: str = "") -> list[Recorded]:
        """Append several streams in one transaction; empty batches are left out."""
        batches = [b for b in batches if b.events]
        if not batches:
            return []
        return self.store.append_many(
            batches, time=self.clock(), actor=actor, request_id=request_id, source=source,
            user_agent=user_agent, correlation_id=correlation_id or request_id,
        )
