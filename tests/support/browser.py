"""A real headless Chromium for the dashboard's tests: Debian's (/usr/bin/chromium, which
scripts/test installs), driven by Playwright for Python. Never a browser Playwright downloads
(`playwright install` is never run): the tests fail, not skip, when the binary is absent."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; closed afterwards, with every file it and Playwright's
    driver wrote under a temporary folder of its own (their TMPDIR), removed."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Debian's Chromium is not at {CHROMIUM}: scripts/test installs it "
                    "(apt-get install chromium); the browser tests need it")
    # Chromium will not start its sandbox as root (it says: "Running as root without
    # --no-sandbox is not supported"); as any other user it keeps the sandbox.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    scratch = tempfile.mkdtemp(prefix="yufu-browser-")
    try:
        # The driver (Node.js) takes its environment when it starts, and the browser its own.
        with mock.patch.dict(os.environ, {"TMPDIR": scratch}), sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=args,
                env={**os.environ, "TMPDIR": scratch})
            try:
                yield browser
            finally:
                browser.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
