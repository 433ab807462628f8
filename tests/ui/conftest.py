"""Browser tests of the dashboard: Debian's Chromium, headless, driven by Playwright, against
one real `docker-faas serve` from the e2e harness (tests/e2e/conftest.py).

`playwright install` cannot download browsers here, so the browser is the system's Chromium
(`scripts/chromium.sh` installs it; `just test` runs that first). One gateway and one
browser serve the module; each test gets a fresh context (no shared cache or storage).
Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, ROOT, Gateway, engine  # noqa: F401 (engine: autouse)

ARTIFACTS = ROOT / "test-artifacts" / "ui"


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Chromium is missing: run `bash scripts/chromium.sh` (or `just test`, which "
                "installs it)", pytrace=False)


@pytest.fixture(scope="module")
def ui_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("ui"))
    gw.start()
    yield gw
    gw.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run `just setup`", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Any, ui_gateway: Gateway, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(
        http_credentials={"username": "admin", "password": PASSWORD},
        viewport={"width": 1280, "height": 900}, base_url=ui_gateway.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    if request.node.stash.get(FAILED, False):  # what the page showed when it failed
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"),
                        full_page=True)
    context.close()
    assert not errors, f"the page threw: {errors}"


@pytest.fixture
def shot(page: Any) -> Any:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str, full_page: bool = True) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
