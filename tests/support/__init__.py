"""What the tests share, and the only part of tests/ a test module imports (besides pytest's
fixtures from the conftest.py files, which are never imported)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: pyproject.toml, README.md, docs/
