"""A statement file as read, in JSON: what `yufu statements parse --json` prints and what
`POST /v1/banks/{bank}/statements?dry_run=true` answers, so a bank's integrator sees every
statement, balance and line exactly as Yufu read them (docs/bank-formats.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from ledger.bank.amounts import text_from_fen
from ledger.bank.model import (
    ParsedFile,
    RefusedStatement,
    Statement,
    StatementEntry,
    booked_movement_fen,
)


def parsed_view(parsed: ParsedFile, imports: Sequence[dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    """Every statement in file order; with `imports`, what an import would make of each."""
    items = [item_view(item) for item in parsed.items]
    if imports is not None:
        for view, imported in zip(items, imports, strict=True):
            view["import"] = imported
    return {"format": parsed.format, "statements": items,
            "read": len(parsed.statements), "refused": len(parsed.refused)}


def item_view(item: Statement | RefusedStatement) -> dict[str, Any]:
    if isinstance(item, RefusedStatement):
        return {"read": False, **_plain(dataclasses.asdict(item))}
    view = {f.name: _plain(getattr(item, f.name)) for f in dataclasses.fields(item)
            if f.name != "entries"}
    view.update(read=True, booked_movement_fen=booked_movement_fen(item.entries),
                entries=[_entry(e) for e in item.entries])
    return view


def _entry(entry: StatementEntry) -> dict[str, Any]:
    view = {f.name: _plain(getattr(entry, f.name)) for f in dataclasses.fields(entry)}
    view["amount"] = text_from_fen(entry.amount_fen)
    return view


def _plain(value: Any) -> Any:
    """A value as JSON has it: dates in ISO 8601, enums by value, dataclasses as objects."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date | datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
