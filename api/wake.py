"""Waiting for a replica, and waking a function that sleeps at zero replicas.

An invocation that finds no healthy replica is held, not failed: if the function is
scaled to zero it is scaled up first (an event with actor `gateway`, so waking is
audited like any other change), then the request waits for the first replica to pass its
health probe, up to READY_TIMEOUT.
"""

from __future__ import annotations

import logging

from api.context import Gateway
from controller.health import Address
from events import decide
from events.errors import DomainError
from events.model import stream_name
from events.store import ConcurrencyError

log = logging.getLogger("docker_faas.wake")
ACTOR = "gateway"


def wake_replicas(gw: Gateway, key: tuple[str, str]) -> int:
    """The replica count a sleeping function wakes to: `scale.min` when above 0, else 1."""
    state = gw.desired.functions.get(key)
    raw = dict(state.spec.labels).get("com.openfaas.scale.min", "1") if state else "1"
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def wake(gw: Gateway, key: tuple[str, str]) -> None:
    """Scale a function at zero replicas up; nothing when it already has some."""
    state = gw.desired.functions.get(key)
    if state is None or state.replicas > 0:
        return
    try:
        events = decide.scale(gw.desired, key[0], key[1], wake_replicas(gw, key),
                              reason="scale-from-zero")
        gw.append(stream_name(*key), list(events), state.version, actor=ACTOR,
                  request_id=gw.new_id(), source="", user_agent="scale-from-zero")
    except (ConcurrencyError, DomainError) as err:  # someone else changed it: fine
        log.info("wake %s/%s: %s", key[0], key[1], err)


async def wait_for_replica(gw: Gateway, key: tuple[str, str]) -> Address | None:
    """A healthy replica, waiting for one; None at once when the controller is failing to
    start any (a missing image, say): the caller then answers 502 with the reason."""
    if gw.controller is None or gw.desired.functions.get(key) is None:
        return None
    wake(gw, key)
    if key in gw.controller.errors:
        return None
    return await gw.controller.health.wait_routable(key, gw.settings.ready_timeout)


def unavailable_reason(gw: Gateway, key: tuple[str, str]) -> str:
    error = gw.controller.errors.get(key) if gw.controller else None
    name = f"{key[1]}.{key[0]}"
    return f"no healthy replica of {name}: {error}" if error else f"no healthy replica of {name}"
