"""plan(desired, actual) -> actions: the whole reconcile decision, with no I/O.

Per function, replica slots 0..N-1 each want exactly one running container whose spec-hash
label matches the desired spec. The rules, in the order the actions come out:

| observed container                                   | action                         |
|------------------------------------------------------|--------------------------------|
| its function is no longer desired                    | remove ("function removed")    |
| not running (exited, dead, created, paused)          | remove ("not running: <state>")|
| running, slot >= desired replicas or bad slot label  | remove ("scaled down")         |
| running, hash differs from the desired spec          | remove ("spec changed")        |
| running, second one with the same slot and hash      | remove ("duplicate")           |
| slot with no running container of the desired hash   | create                         |

Containers being removed by the engine ("removing") are ignored. Removals of containers that
cannot serve come first (they may hold the deterministic name a create needs), then creates,
then removals of containers that still serve, so a replacement starts before the old replica
goes. Output order is deterministic. Only containers handed in are considered, and the caller
hands in only containers carrying our labels.
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
        (r for r in observed if r.state != _GONE), key=lambda r: (r.replica, r.created, r.id)
    )
    if target is None:
        return [_remove(r, "function removed") for r in candidates]

    kept: set[int] = set()
    for replica in candidates:
        if not replica.live:
            dead.append(_remove(replica, f"not running: {replica.state}"))
        elif not 0 <= replica.replica < target.replicas:
            stale.append(_remove(replica, "scaled down"))
        elif replica.spec_hash != target.spec_hash:
            stale.append(_remove(replica, "spec changed"))
        elif replica.replica in kept:
            stale.append(_remove(replica, "duplicate"))
        else:
            kept.add(replica.replica)
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
