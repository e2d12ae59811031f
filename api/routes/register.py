"""The register (备案台账): amending a filing, and reading its amendments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.ban_schemas import PremisesFlag
from api.context import Authed, context_of, write
from api.openapi import keyed_read, keyed_write
from api.paging import After, Limit
from api.register_schemas import PersonIn, PersonOut, people_of
from api.schemas import NextAfter, Out, Seq
from ledger import limits
from ledger.access import require_operator
from ledger.custody.merchants import bank_account_chars_max, barest_account
from ledger.db import custody_queries as views
from ledger.flows.register import AmendFiling, reason_chars_max
from ledger.supervision.register import (
    address_chars_max,
    people_per_merchant_max,
    street_chars_max,
)

router = APIRouter(prefix="/v1")
Id = Annotated[str, Path(min_length=1, max_length=64)]


class AmendmentIn(BaseModel):
    """Only the fields given change; `people`, when given, is the whole new list."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=reason_chars_max)
    street: str | None = Field(default=None, min_length=1, max_length=street_chars_max)
    address: str | None = Field(default=None, min_length=1, max_length=address_chars_max)
    people: list[PersonIn] | None = Field(default=None, max_length=people_per_merchant_max)
    custody_account: str | None = Field(default=None, min_length=1,
                                        max_length=bank_account_chars_max,
                                        description="at the same bank")


class Change(BaseModel):
    before: Any
    after: Any


class Register(BaseModel):
    street: str | None
    address: str | None
    premises: str | None
    people: list[PersonOut]


class Amendment(Out):
    merchant_id: str
    changes: dict[str, Change] = Field(description="each changed field, before and after")
    reason: str
    amended_on: str
    journal_seq: Seq


class Amended(Amendment):
    registered: Register = Field(description="the register as the amendment leaves it")
    custody_account: str
    premises_flag: PremisesFlag | None = Field(
        default=None, description="the premises' churn flag, if this amendment raised it")


class Amendments(Out):
    items: list[Amendment]
    next_after: NextAfter


@router.post("/merchants/{merchant_id}/amendments", status_code=201, response_model=Amended,
             **keyed_write(404))
async def amend(request: Request, merchant_id: Id, body: AmendmentIn, who: Authed
                ) -> JSONResponse:
    """An amendment to a filing (变更登记), journaled with each field before and after."""
    require_operator(who)  # before the input is read: others learn nothing of it
    people = None if body.people is None else people_of(request, body.people)
    account = None if body.custody_account is None else barest_account(body.custody_account)
    command = AmendFiling(who, merchant_id, body.reason, context_of(request).clock(),
                          body.street, body.address, people, account,
                          tuple(p.person_id for p in people or ()))
    return await write(request, who, command)


@router.get("/merchants/{merchant_id}/amendments", response_model=Amendments,
            **keyed_read(404))
def list_amendments(request: Request, merchant_id: Id, who: Authed, after: After = 0,
                    limit: Limit = limits.list_page_items_default) -> dict[str, Any]:
    """A merchant's amendments, oldest first: to whoever may read its books."""
    with context_of(request).engine.connect() as conn:
        return views.amendments(conn, who, merchant_id, after, limit)
