"""plan(desired, actual) -> actions: the whole reconcile decision, with no I/O.

Per function, replica slots 0..N-1 each want exactly one running container whose spec-hash
label matches the desired spec. The rules, in the order the actions come out:

| observed container                                   | action                         |
|------------------------------------------------------|--------------------------------|
| its function is no longer desired                    | remove ("function removed")    |
| not running (exited, dead, created, paused)          | remove ("not running: <state>")|
| running, slot >= desired replicas or bad slot label  | remove ("scaled down")         |
| running, hash differs, its slot's replacement healthy | remove ("spec changed")        |
| running, hash differs, and it is not healthy itself  | remove ("spec changed")        |
| running, hash differs, replacement not healthy yet   | keep: it serves until then     |
| running, healthy once, probes failing for too long   | remove ("unhealthy")           |
| running, second one with the same slot and hash      | remove ("duplicate")           |
| slot with no running container of the desired hash   | create                         |

Containers being removed by the engine ("removing") are ignored. Removals of containers that
cannot serve come first (they may hold the deterministic name a create needs), then creates,
then removals of containers that still serve, so a replacement starts before the old replica
goes — and an old replica whose replacement is not healthy yet is not removed at all: a
rolling update never drops below the desired count, and an update to a spec that never
becomes healthy stalls with the old replicas serving. Output order is deterministic. Only
containers handed in are considered, and the caller hands in only containers carrying our
labels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from controller.model import (
    Action,
    CreateReplica,
    FunctionKey,
    ObservedReplica,
    RemoveReplica,
    Target,
)

_GONE = "removing"
UNHEALTHY_AFTER = 10.0  # seconds of failing probes before a replica is replaced


def _remove(replica: ObservedReplica, reason: str) -> RemoveReplica:
    return RemoveReplica(replica.id, replica.namespace, replica.function, reason)


def plan_function(
    key: FunctionKey, target: Target | None, observed: Iterable[ObservedReplica]
) -> list[Action]:
    """The actions for one function; `target` None means the function is not desired."""
    dead: list[Action] = []
    creates: list[Action] = []
    stale: list[Action] = []
    candidates = sorted(
        (r for r in observed if r.state != _GONE),
        key=lambda r: (r.replica, not r.healthy, r.created, r.id),  # keep a healthy duplicate
    )
    if target is None:
        return [_remove(r, "function removed") for r in candidates]

    kept: set[int] = set()
    outdated: list[ObservedReplica] = []
    for replica in candidates:
        if not replica.live:
            dead.append(_remove(replica, f"not running: {replica.state}"))
        elif not 0 <= replica.replica < target.replicas:
            stale.append(_remove(replica, "scaled down"))
        elif replica.spec_hash != target.spec_hash:
            outdated.append(replica)
        elif replica.failing_for > UNHEALTHY_AFTER:
            dead.append(_remove(replica, "unhealthy"))
        elif replica.replica in kept:
            stale.append(_remove(replica, "duplicate"))
        else:
            kept.add(replica.replica)
    ready = {r.replica for r in candidates
             if r.live and r.healthy and r.spec_hash == target.spec_hash
             and r.failing_for <= UNHEALTHY_AFTER}
    for replica in outdated:
        if replica.replica in ready or not replica.healthy:
            stale.append(_remove(replica, "spec changed"))
    for slot in range(target.replicas):
        if slot not in kept:
            creates.append(CreateReplica(key[0], key[1], slot, target.spec_hash))
    return dead + creates + stale


def plan(
    desired: Mapping[FunctionKey, Target], actual: Iterable[ObservedReplica]
) -> list[Action]:
    """The actions for every function, grouped by function in key order."""
    by_key: dict[FunctionKey, list[ObservedReplica]] = defaultdict(list)
    for replica in actual:
        by_key[replica.key].append(replica)
    actions: list[Action] = []
    for key in sorted(set(desired) | set(by_key)):
        actions.extend(plan_function(key, desired.get(key), by_key.get(key, ())))
    return actions
