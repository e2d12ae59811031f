"""Where the embedded PostgreSQL's binaries come from, and what is said when there are none."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from ledger.db import embedded


def test_the_wheel_binaries_are_found_first() -> None:
    assert (embedded.find_bin_dir() / "pg_ctl").exists()


def test_with_no_postgresql_anywhere_the_error_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(embedded.glob, "glob", lambda pattern: [])
    with pytest.raises(embedded.EmbeddedUnavailable) as refusal:
        embedded.find_bin_dir()
    message = str(refusal.value)
    assert "pip install pgserver" in message
    assert "apt-get install postgresql" in message
    assert "YUFU_DATABASE_URL" in message
