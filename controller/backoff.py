"""Crash-loop back-off per replica slot: pure values, the loop supplies the clock.

A replica that dies is replaced, but not in a tight loop: the n-th consecutive failure of a
slot waits `initial * 2**(n-1)` seconds (capped) before the slot is filled again, and never
gives up. A replica that stays healthy for `stable` seconds resets its slot's count.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class BackoffPolicy:
    initial: float = 0.1
    cap: float = 30.0
    stable: float = 10.0


@attrs.frozen
class SlotHistory:
    failures: int = 0  # consecutive failures not yet forgiven
    restarts: int = 0  # every replacement after a failure, for status; never reset
    last_exit: str = ""
    failed_at: float = 0.0
    healthy_since: float | None = None

    def failed(self, now: float, reason: str) -> SlotHistory:
        return SlotHistory(self.failures + 1, self.restarts + 1, reason, now, None)

    def healthy(self, now: float, policy: BackoffPolicy) -> SlotHistory:
        """Seen healthy at `now`; after `policy.stable` seconds of it the count is forgiven."""
        since = self.healthy_since if self.healthy_since is not None else now
        failures = 0 if now - since >= policy.stable else self.failures
        return attrs.evolve(self, failures=failures, healthy_since=since)

    def unhealthy(self) -> SlotHistory:
        return attrs.evolve(self, healthy_since=None)

    def delay(self, policy: BackoffPolicy) -> float:
        if self.failures == 0:
            return 0.0
        return min(policy.cap, policy.initial * 2.0 ** (self.failures - 1))

    def ready_at(self, policy: BackoffPolicy) -> float:
        """The earliest time the slot may be filled again."""
        return self.failed_at + self.delay(policy)
