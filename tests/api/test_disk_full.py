"""A full disk under the event log: writes answer 507 and store nothing, reads keep working,
nothing is corrupted, and writes succeed again once space returns. A real (tiny) tmpfs, not a
simulated error, so SQLite's own behaviour on ENOSPC is what is tested."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from events.sqlite import SQLiteEventStore

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)"),
]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system refuses; return it (delete it to free the space)."""
    filler = directory / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            assert err.errno == errno.ENOSPC
    return filler


async def test_writes_answer_507_reads_keep_working_and_nothing_is_lost(small_disk: Path):
    db = small_disk / "state" / "docker-faas.db"
    store = SQLiteEventStore(db)
    app = create_app(Settings(auth_password="pw", state_db_path=str(db)), store=store,
                     docker=None)
    fn = {"service": "f", "image": "img:1"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 auth=("admin", "pw")) as client:
        assert (await client.post("/system/functions", json=fn)).status_code == 202
        filler = fill(small_disk)
        big = {**fn, "service": "g", "envVars": {f"K{i}": "v" * 200 for i in range(200)}}
        refused = [await client.post("/system/functions", json=big) for _ in range(3)]
        assert {r.status_code for r in refused} == {507}
        assert "disk holding the gateway's state is full" in refused[0].text
        listed = await client.get("/system/functions")
        assert listed.status_code == 200 and [f["name"] for f in listed.json()] == ["f"]
        assert store.head() == 1
        queued = await client.post("/async-function/f", content=b"x" * 200_000)
        assert queued.status_code == 507 and "request was not queued" in queued.text
        filler.unlink()
        accepted = await client.post("/system/functions", json=big)
        assert accepted.status_code == 202, accepted.text
        names = [f["name"] for f in (await client.get("/system/functions")).json()]
        assert names == ["f", "g"]
        assert (await client.post("/async-function/f", content=b"x")).status_code == 202
    store.close()
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert check.execute("SELECT COUNT(*) FROM events").fetchone() == (2,)
