"""A real browser against a live server: Playwright driving Debian's Chromium (`/usr/bin/chromium`, or
`CHROMIUM`), nothing downloaded at run time. Screenshots go to `var/screenshots/<test name>/` (or
`SCREENSHOT_DIR`), kept after the run for a person to look at."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

# Playwright's synchronous API runs an event loop in the test's thread; the test's own database calls
# (making users, reading rows back) are still plain synchronous calls between browser steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def screenshots(request) -> Path:
    """The folder this test saves its screenshots into, named after the test."""
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    folder = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "var" / "screenshots")) / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def page_for(browser, live_server) -> Iterator[object]:
    """`page_for(locale="uk-UA", width=1280)`: a fresh browser context (its own cookies) and page, with
    the live server's address as its base URL."""
    contexts = []

    def open_page(*, locale: str = "uk-UA", width: int = 1280, height: int = 900):
        context = browser.new_context(base_url=live_server.url, locale=locale,
                                      viewport={"width": width, "height": height})
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
