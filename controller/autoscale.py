"""The built-in autoscaler's decision: labels + observed load → desired replicas. Pure.

OpenFaaS labels drive it (no Prometheus needed): `com.openfaas.scale.min` / `.max`,
`.type` (`rps`: requests per second; `capacity`: requests in flight), `.target` (load one
replica should carry, default 50), `.target-proportion` (aim at this fraction of the
target, default 0.9), `.zero` / `.zero-duration` (idle scale to zero) and
`.down.window` (how long a lower recommendation must persist before we scale down).
min == max turns it off. Scaling up is immediate; scaling down takes the highest
recommendation seen within the window, so a dip does not make it flap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

PREFIX = "com.openfaas.scale."


class PolicyError(ValueError):
    """A scaling label that cannot be used; the message names it."""


@attrs.frozen
class ScalePolicy:
    min: int = 1
    max: int = 20
    type: str = "rps"
    target: float = 50.0
    proportion: float = 0.9
    zero: bool = False
    zero_duration: float = 15 * 60.0
    down_window: float = 30.0

    @property
    def enabled(self) -> bool:
        return self.min != self.max


def _seconds(text: str, label: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, number = 0.0, ""
    rest = text.strip()
    try:
        while rest:
            i = 0
            while i < len(rest) and (rest[i].isdigit() or rest[i] == "."):
                i += 1
            number, rest = rest[:i], rest[i:]
            unit = "ms" if rest.startswith("ms") else rest[:1]
            if unit not in units or not number:
                raise ValueError
            total += float(number) * units[unit]
            rest = rest[len(unit):]
    except ValueError:
        raise PolicyError(f"labels.{label}: {text!r} is not a duration like 15m or 30s") from None
    return total


def policy_from_labels(labels: Mapping[str, str], *, max_replicas: int,
                       default_min: int = 1) -> ScalePolicy:
    def get(key: str) -> str | None:
        return labels.get(PREFIX + key)

    def whole(key: str, default: int) -> int:
        raw = get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise PolicyError(f"labels.{PREFIX}{key}: {raw!r} is not a whole number") from None
        if not 0 <= value <= max_replicas:
            raise PolicyError(f"labels.{PREFIX}{key}: {value} is outside 0..{max_replicas}")
        return value

    def number(key: str, default: float, low: float, high: float) -> float:
        raw = get(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise PolicyError(f"labels.{PREFIX}{key}: {raw!r} is not a number") from None
        if not low < value <= high:
            raise PolicyError(f"labels.{PREFIX}{key}: {value} is outside ({low}, {high}]")
        return value

    low = whole("min", default_min)
    high = whole("max", max_replicas)
    if high < low:
        raise PolicyError(f"labels.{PREFIX}max: {high} is below {PREFIX}min ({low})")
    kind = get("type") or "rps"
    if kind not in ("rps", "capacity"):
        raise PolicyError(f"labels.{PREFIX}type: {kind!r} must be rps or capacity")
    zero = (get("zero") or "false").lower()
    if zero not in ("true", "false", "1", "0"):
        raise PolicyError(f"labels.{PREFIX}zero: {zero!r} must be true or false")
    return ScalePolicy(
        min=low, max=high, type=kind,
        target=number("target", 50.0, 0, 1e9),
        proportion=number("target-proportion", 0.9, 0, 1),
        zero=zero in ("true", "1"),
        zero_duration=_seconds(get("zero-duration") or "15m", PREFIX + "zero-duration"),
        down_window=_seconds(get("down.window") or "30s", PREFIX + "down.window"),
    )


def recommend(policy: ScalePolicy, load: float) -> int:
    """Replicas needed for `load` (rps or in-flight), within min..max."""
    per_replica = policy.target * policy.proportion
    needed = math.ceil(load / per_replica - 1e-9) if load > 0 else 0
    return max(policy.min, min(policy.max, needed))


@attrs.frozen
class Decision:
    replicas: int | None  # None: leave the count alone
    history: tuple[tuple[float, int], ...]  # (time, recommendation) within the window


def decide(
    policy: ScalePolicy,
    current: int,
    load: float,
    now: float,
    idle_since: float | None,
    history: tuple[tuple[float, int], ...] = (),
) -> Decision:
    """What the autoscaler wants now. `idle_since` is when the function last had traffic
    (None while requests are in flight)."""
    if not policy.enabled and not policy.zero:
        return Decision(None, ())
    idle_for = (now - idle_since) if idle_since is not None else 0.0
    if policy.zero and load == 0 and idle_since is not None and idle_for >= policy.zero_duration:
        return Decision(0 if current != 0 else None, ())
    if current == 0:
        return Decision(None, ())  # asleep: the next invocation wakes it, not the autoscaler
    if not policy.enabled:
        return Decision(None, ())
    # Awake, it keeps at least one replica even with scale.min 0: only the zero policy
    # (scale.zero + zero-duration) puts a function to sleep, never an ordinary scale-down.
    rec = max(1, recommend(policy, load))
    history = tuple(h for h in history if now - h[0] < policy.down_window) + ((now, rec),)
    if rec >= current:
        wanted = rec
    else:
        # The highest recent wish wins on the way down, but a way down never goes up: a
        # wish older than a user's scale-down must not bring the replicas back.
        wanted = min(current, max(n for _, n in history))
    return Decision(wanted if wanted != current else None, history)
