"""Imports flow api → controller → events; pure modules import no I/O and read no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"events": {"events"}, "controller": {"controller", "events"},
           "api": {"api", "controller", "events"}}
PURE = ["events/model.py", "events/types.py", "events/decide.py", "events/project.py",
        "events/codec.py", "controller/plan.py", "controller/model.py", "controller/render.py",
        "controller/quantities.py", "controller/labels.py", "controller/logparse.py",
        "controller/autoscale.py"]
IO_MODULES = {"asyncio", "aiodocker", "aiohttp", "httpx", "sqlite_utils", "sqlite3", "starlette",
              "uvicorn", "socket", "subprocess", "time", "random", "uuid", "os"}


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package: str) -> None:
    ours = set(ALLOWED)
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = (imported(path) & ours) - ALLOWED[package]
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    path = ROOT / module
    assert not imported(path) & IO_MODULES, f"{module} imports {imported(path) & IO_MODULES}"
    source = path.read_text()
    for call in ("datetime.now", "utcnow", "time.time", "uuid4"):
        assert call not in source, f"{module} reads the clock or makes ids ({call})"
