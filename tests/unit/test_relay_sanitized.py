"""api/_relay.c under AddressSanitizer and UndefinedBehaviorSanitizer.

The C relay reads bytes straight off the network, so its memory safety is tested as well as
its answers: the extension is compiled again with -fsanitize=address,undefined into a
scratch copy of the packages, and tests/unit/test_relay.py (generated, mutated and arbitrary
inputs, 1 MiB ones included) runs against that build in a child interpreter with the
sanitizer runtimes preloaded. Any out-of-bounds access, use after free or undefined
behaviour aborts the child with the sanitizer's report, and this test fails with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _runtime(name: str) -> str | None:
    """The path of a gcc sanitizer runtime, or None when gcc does not have it."""
    if shutil.which("gcc") is None:
        return None
    path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                          text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


ASAN, UBSAN = _runtime("libasan.so"), _runtime("libubsan.so")


@pytest.mark.skipif(ASAN is None or UBSAN is None,
                    reason="no gcc with libasan/libubsan here (just setup installs gcc)")
def test_the_relay_is_memory_safe_on_every_relay_test(tmp_path: Path) -> None:
    work = tmp_path / "work"
    for package in ("api", "events", "controller"):
        shutil.copytree(ROOT / package, work / package,
                        ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copytree(ROOT / "tests", work / "tests",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", work)
    built = work / "api" / ("_relay" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(
        ["gcc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         "-fno-omit-frame-pointer", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"],
         str(ROOT / "api" / "_relay.c"), "-o", str(built)], check=True)
    env = {**os.environ, "LD_PRELOAD": f"{ASAN}:{UBSAN}",
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
           # Python's own allocator would hide small blocks from AddressSanitizer
           "PYTHONMALLOC": "malloc", "PYTHONDONTWRITEBYTECODE": "1"}
    script = ("import api._relay, sys; print('relay', api._relay.__file__); "
              "import pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
              "'tests/unit/test_relay.py']))")
    run = subprocess.run([sys.executable, "-c", script], cwd=work, env=env,
                         capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert f"relay {built}" in out, out[-3000:]  # the sanitized build, not the installed one
    assert run.returncode == 0, out[-6000:]
    assert "passed" in out and "ERROR: AddressSanitizer" not in out and (
        "runtime error" not in out), out[-6000:]
