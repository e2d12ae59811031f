"""Health and API keys."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.context import context_of, principal_of, write
from ledger import limits
from ledger.auth import Principal, Role
from ledger.db import queries
from ledger.service import IssueKey

router = APIRouter(prefix="/v1")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["operator", "merchant", "bank", "regulator"]
    merchant_id: str | None = Field(default=None, max_length=limits.owner_chars_max)
    bank_id: str | None = Field(default=None, max_length=limits.owner_chars_max)
    label: str = Field(default="", max_length=limits.name_chars_max)


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    with context_of(request).engine.connect() as conn:
        seq, entry_hash = queries.chain_head(conn)
    return {"status": "ok", "journal_head_seq": seq, "journal_head_hash": entry_hash.hex()}


@router.post("/keys", status_code=201)
async def issue_key(request: Request, body: KeyIn,
                    who: Annotated[Principal, Depends(principal_of)]) -> JSONResponse:
    who.require_role(Role.operator)
    command = IssueKey(Role(body.role), body.merchant_id, body.bank_id, body.label)
    return await write(request, who, command)
