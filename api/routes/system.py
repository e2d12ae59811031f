"""Health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.context import context_of
from api.openapi import open_read
from api.schemas import Health
from ledger.db import queries

router = APIRouter(prefix="/v1")


@router.get("/health", response_model=Health, **open_read())
def health(request: Request) -> dict[str, Any]:
    with context_of(request).engine.connect() as conn:
        seq, entry_hash = queries.chain_head(conn)
    return {"status": "ok", "journal_head_seq": seq, "journal_head_hash": entry_hash.hex()}
