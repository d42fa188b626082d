"""Ponte's own public pages in a real browser: Debian's Chromium driven by Playwright (sync API).

Chromium starts once per session; each test gets a fresh context (no cookies, no cache) and page.
Playwright's own browser download is not used: the browser is the ``chromium`` that ``make setup``
installs (``.ci/system-packages``), and a missing one fails these tests saying so (never a skip: a
browser test that silently does not run checks nothing).

``PONTE_SCREENSHOTS=<dir>`` (``make screenshots`` sets it to ``docs/screenshots``) makes :func:`shoot`
save PNGs of the pages the tests visit; without it nothing is written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: Debian's Chromium in a container: no sandbox (no user namespaces), no GPU, no calls home
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1100, "height": 800}
SCREENSHOTS_ENV = "PONTE_SCREENSHOTS"


def chromium_path() -> str:
    """Debian's Chromium, or a test failure that says how to get it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: run `make setup` (it installs the chromium Debian package)",
                    pytrace=False)
    return found


def screenshot_dir() -> Path | None:
    target = os.environ.get(SCREENSHOTS_ENV)
    if not target:
        return None
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run `make setup`", pytrace=False)
    executable = chromium_path()
    with sync_playwright() as playwright:
        # launch() gives the browser a fresh temporary profile (user-data dir), removed on close
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, locale="pt-BR")
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def shoot() -> Callable[[Any, str], Path | None]:
    """``shoot(page, "verify-page")``: a full-page PNG in $PONTE_SCREENSHOTS, when it is set."""

    def take(page: Any, name: str) -> Path | None:
        target = screenshot_dir()
        if target is None:
            return None
        path = target / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
