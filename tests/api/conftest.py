"""In-process API tests: the real app on a memory event log, no engine (handlers never call it)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from events.memory import MemoryEventStore

AUTH = ("admin", "secret")


@pytest.fixture
def store() -> MemoryEventStore:
    return MemoryEventStore()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(auth_password="secret", max_replicas=10,
                    state_db_path=str(tmp_path / "state" / "docker-faas.db"))


@pytest.fixture
def app(store, settings):
    """The real app on the memory log, without an engine; its clock ticks one second per
    reading from 2026-01-02T03:04:05Z and request ids are req-0, req-1, ..."""
    ticks, ids = itertools.count(), itertools.count()
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return create_app(
        settings, store=store, docker=None,
        clock=lambda: start + timedelta(seconds=next(ticks)),
        new_id=lambda: f"req-{next(ids)}",
    )


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", auth=AUTH) as c:
        yield c
