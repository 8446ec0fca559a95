"""Headless Chromium (Debian's chromium package) driven by Playwright, for the dashboard and report tests.

Playwright's own browser builds are never downloaded: the tests launch the system's chromium through
`executable_path`, and skip, saying so, when it is not installed (`make test` installs it where missing).
Screenshots go under the tests' output folder (REPLYCLOCK_SCREENSHOTS, else pytest's temporary folder);
their paths are printed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("REPLYCLOCK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("REPLYCLOCK_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A persistent context (a fresh user-data dir) of headless Chromium."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("browser tests skipped: Chromium is not installed (apt-get install chromium, or make test)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests skipped: playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


class Watched:
    """A page's console errors, uncaught exceptions, requested URLs and bytes received."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.bytes = 0
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("response", self._received)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _received(self, response: Any) -> None:
        if response.status >= 400:
            self.errors.append(f"{response.status} {response.url}")
        try:
            self.bytes += len(response.body())
        except Exception:  # noqa: BLE001 - a redirect or an aborted request has no body
            pass


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    page = browser.new_page()
    try:
        yield Watched(page)
    finally:
        page.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it plainly at the end of the run when the browser tests could not run."""
    if chromium_path() is None:
        terminalreporter.write_line(
            "browser tests SKIPPED: Chromium is not installed (make test installs it with apt-get where it can)",
            yellow=True,
            bold=True,
        )
