"""The real statement files (../shared/real-statements): other projects' test data, read where
they lie and never copied into this repository (SOURCES.md there names each one's origin)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "YUFU_REAL_STATEMENTS"


def corpus_dir() -> Path:
    """Beside the repository (../shared), or where YUFU_REAL_STATEMENTS says."""
    named = os.environ.get(ENV)
    if named:
        return Path(named)
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "real-statements"


CORPUS = corpus_dir()
needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"no real statements at {CORPUS} (set {ENV}, or clone ../shared)")
