"""Accounts, transactions and the journal: /v1/accounts, /v1/transactions, /v1/journal."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from api.context import Authed, context_of, write
from api.openapi import NOT_BLANK, keyed_read, keyed_write
from api.schemas import (
    AccountView,
    BatchResult,
    JournalEntry,
    JournalPage,
    OpenedAccount,
    PostingsPage,
    Transaction,
)
from ledger import limits
from ledger.access import require_journal_reader, require_operator
from ledger.db import queries
from ledger.service import OpenAccount, PostBatch, PostTransaction, ReverseTransaction

router = APIRouter(prefix="/v1")
Amount = Annotated[StrictInt, Field(ge=-limits.amount_fen_max, le=limits.amount_fen_max)]
SeqPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(Strict):
    kind: Literal["asset", "liability", "equity", "income", "expense"]
    name: str = Field(min_length=1, max_length=limits.name_chars_max, json_schema_extra=NOT_BLANK)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    merchant_id: str | None = Field(default=None, max_length=limits.owner_chars_max,
                                    json_schema_extra=NOT_BLANK)
    bank_id: str | None = Field(default=None, max_length=limits.owner_chars_max,
                                json_schema_extra=NOT_BLANK)
    non_negative: StrictBool = False


class PostingIn(Strict):
    account_id: StrictInt = Field(ge=1, le=2**63 - 1)
    amount_fen: Amount = Field(description="signed fen: debit positive, credit negative")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class TransactionIn(Strict):
    postings: list[PostingIn] = Field(min_length=limits.postings_per_transaction_min,
                                      max_length=limits.postings_per_transaction_max)
    memo: str = Field(default="", max_length=limits.memo_chars_max)


class BatchIn(Strict):
    transactions: list[TransactionIn] = Field(min_length=1,
                                              max_length=limits.batch_transactions_max)
    atomic: StrictBool = False


class ReverseIn(Strict):
    memo: str = Field(default="", max_length=limits.memo_chars_max)


@router.post("/accounts", status_code=201, response_model=OpenedAccount, **keyed_write())
async def open_account(request: Request, body: AccountIn, who: Authed) -> JSONResponse:
    require_operator(who)
    return await write(request, who, OpenAccount.parse(body.model_dump()))


@router.get("/accounts/{account_id}", response_model=AccountView, **keyed_read(404))
def get_account(request: Request, account_id: SeqPath, who: Authed,
                as_of: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None) -> dict[str, Any]:
    with context_of(request).engine.connect() as conn:
        return queries.account_view(conn, who, account_id, as_of)


@router.get("/accounts/{account_id}/postings", response_model=PostingsPage,
            **keyed_read(404))
def get_postings(request: Request, account_id: SeqPath, who: Authed,
                 after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                 limit: Annotated[int, Query(ge=1, le=limits.postings_page_max)] =
                 limits.postings_page_default) -> dict[str, Any]:
    with context_of(request).engine.connect() as conn:
        return queries.postings_page(conn, who, account_id, after, limit)


# The lane (api/lane.py) serves this write too: the model documents the answer, which the
# endpoint's JSONResponse carries unvalidated, on either path.
@router.post("/transactions", status_code=201, response_model=Transaction, **keyed_write(404))
async def post_transaction(request: Request, body: TransactionIn, who: Authed) -> JSONResponse:
    require_operator(who)
    return await write(request, who, PostTransaction.parse(body.model_dump()))


@router.post("/transactions/batch", status_code=200, response_model=BatchResult,
             **keyed_write(404))
async def post_batch(request: Request, body: BatchIn, who: Authed) -> JSONResponse:
    require_operator(who)
    items = [PostTransaction.parse(tx.model_dump(), f"transactions[{i}]")
             for i, tx in enumerate(body.transactions)]
    return await write(request, who, PostBatch(items, body.atomic), status_code=200)


@router.post("/transactions/{transaction_id}/reverse", status_code=201,
             response_model=Transaction, **keyed_write(404))
async def reverse_transaction(request: Request, transaction_id: SeqPath, who: Authed,
                              body: ReverseIn | None = None) -> JSONResponse:
    require_operator(who)
    memo = body.memo if body is not None else ""
    return await write(request, who, ReverseTransaction(transaction_id, memo))


@router.get("/journal", response_model=JournalPage, **keyed_read())
def get_journal(request: Request, who: Authed,
                after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                limit: Annotated[int, Query(ge=1, le=limits.journal_page_entries_max)] =
                limits.journal_page_entries_default) -> dict[str, Any]:
    require_journal_reader(who)
    with context_of(request).engine.connect() as conn:
        return queries.journal_page(conn, after, limit, who)


@router.get("/journal/{seq}", response_model=JournalEntry, **keyed_read(404))
def get_journal_entry(request: Request, seq: SeqPath, who: Authed) -> dict[str, Any]:
    require_journal_reader(who)
    with context_of(request).engine.connect() as conn:
        return queries.journal_entry(conn, seq, who)
