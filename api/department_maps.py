"""The shipped department maps (ledger/custody/department_maps/*.json), read once at start.

A file that is not a valid map stops the start with its name and reason: filing depends on
it, so a broken one must not wait for the first merchant to show."""

from __future__ import annotations

import json
from importlib import resources

from api.profiles import ProfileFileError
from ledger.custody.departments import DepartmentMap, parse_shipped_map
from ledger.errors import InvalidInput

SHIPPED = "ledger.custody.department_maps"


class DepartmentMapFileError(ProfileFileError):
    """A shipped map that stops the start: its file and what is wrong with it (a data file,
    as a bank profile is: `yufu serve` reports either and stops)."""


def shipped_department_maps() -> list[tuple[DepartmentMap, str]]:
    """Each shipped map, with its source (the seed it comes from), by file name."""
    maps = []
    for entry in sorted(resources.files(SHIPPED).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        where = f"ledger/custody/department_maps/{entry.name}"
        try:
            raw = json.loads(entry.read_bytes())
            maps.append((parse_shipped_map(raw), str(raw.get("source", ""))))
        except (ValueError, AttributeError) as error:
            raise DepartmentMapFileError(f"{where}: not a JSON object: {error}") from error
        except InvalidInput as error:
            raise DepartmentMapFileError(f"{where}: {error.field}: {error.detail}") from error
    return maps
