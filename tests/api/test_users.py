"""Two users on one gateway: each change is recorded with the user who made it."""

from __future__ import annotations

import attrs
import httpx
import pytest

from api.app import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_each_user_is_the_actor_of_their_changes(store, settings):
    settings = attrs.evolve(settings, auth_users=(("alice", "a-pass"),))
    app = create_app(settings, store=store, docker=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gw") as c:
        fn = {"service": "f", "image": "img:1"}
        r = await c.post("/system/functions", json=fn, auth=("admin", "secret"))
        assert r.status_code == 202
        r = await c.put("/system/functions", json={**fn, "image": "img:2"},
                        auth=("alice", "a-pass"))
        assert r.status_code == 202
        r = await c.put("/system/functions", json=fn, auth=("alice", "secret"))
        assert r.status_code == 401
        history = (await c.get("/system/function/f/history", auth=("alice", "a-pass"))).json()
    assert [(v["actor"], v["type"]) for v in history] == [
        ("admin", "function.deployed"), ("alice", "function.updated")]
    assert [r.actor for r in store.read_all()] == ["admin", "alice"]
