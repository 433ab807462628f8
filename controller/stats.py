"""What the controller did, counted for the metrics port (plain counters, read at scrape)."""

from __future__ import annotations

from collections import Counter

import attrs


@attrs.define
class ControllerStats:
    # (action, reason) -> count, e.g. ("create", "") or ("remove", "spec changed")
    actions: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    # "name.namespace" -> failed reconcile passes
    errors: Counter[str] = attrs.field(factory=Counter)
    engine_reconnects: int = 0
