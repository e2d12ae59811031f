"""The bank profiles (ledger/bank/profile.py) read from their JSON files once, at start.

The shipped ones are package data (ledger/bank/profiles/*.json); an operator adds a bank's in
the directory YUFU_BANK_PROFILES_DIR names (api/settings.py). A file that is not a valid
profile stops the start with its name and reason, rather than leaving that bank's statements
to fail one by one later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ledger.bank.profile import BankProfile, ProfileError, profile_from_mapping
from ledger.errors import InvalidInput

# A profile is a page of JSON: this leaves room for long lists of header names.
profile_file_bytes_max = 64 * 1024


class ProfileFileError(RuntimeError):
    """A profile file that stops the start: its path and what is wrong with it."""


def load_profiles(extra_dir: Path | None = None) -> dict[str, BankProfile]:
    """Every profile by name: the shipped ones, then the operator's."""
    shipped = resources.files("ledger.bank.profiles")
    files: list[tuple[str, bytes]] = [
        (f"ledger/bank/profiles/{entry.name}", entry.read_bytes())
        for entry in sorted(shipped.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")]
    if extra_dir is not None:
        files.extend(_operator_files(extra_dir))
    return profiles_from(files)


def profiles_from(files: Iterable[tuple[str, bytes]]) -> dict[str, BankProfile]:
    profiles: dict[str, BankProfile] = {}
    for where, data in files:
        profile = _profile(where, data)
        if profile.name in profiles:
            raise ProfileFileError(f"bank profile {where}: the name {profile.name!r} is "
                                   "taken by another profile file")
        profiles[profile.name] = profile
    return profiles


def _operator_files(directory: Path) -> list[tuple[str, bytes]]:
    if not directory.is_dir():
        raise ProfileFileError(f"YUFU_BANK_PROFILES_DIR {directory}: not a directory")
    files = []
    for path in sorted(directory.glob("*.json")):
        if path.stat().st_size > profile_file_bytes_max:
            raise ProfileFileError(f"bank profile {path}: over {profile_file_bytes_max} bytes")
        files.append((str(path), path.read_bytes()))
    return files


def _profile(where: str, data: bytes) -> BankProfile:
    try:
        raw: Any = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileFileError(f"bank profile {where}: not JSON in UTF-8: {exc}") from None
    if not isinstance(raw, dict):
        raise ProfileFileError(f"bank profile {where}: a JSON object is required")
    try:
        return profile_from_mapping(raw)
    except ProfileError as exc:
        raise ProfileFileError(f"bank profile {where}: {exc}") from None


def profile_named(profiles: Mapping[str, BankProfile], name: str | None
                  ) -> BankProfile | None:
    """The profile a caller names (None: none named); an unknown name is refused naming
    `profile` and the names there are."""
    if not name:
        return None
    if name not in profiles:
        raise InvalidInput(f"no bank profile {name[:100]!r}: there are "
                           f"{', '.join(sorted(profiles))}", field="profile")
    return profiles[name]


def describe(profile: BankProfile) -> dict[str, Any]:
    """What an integrator needs to know of a profile (GET /v1/bank-profiles)."""
    return {"name": profile.name, "bank": profile.bank, "format": profile.format.value,
            "reader": profile.reader.value,
            "encoding": profile.encoding.value if profile.encoding else None,
            "header_row": profile.header_row,
            "columns": {f.value: list(names) for f, names in profile.columns.items()},
            "title_labels": {k: list(v) for k, v in profile.title_labels.items()},
            "footer_labels": list(profile.footer_labels)}
