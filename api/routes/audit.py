"""The audit API: the tree-head key, signed tree heads, proofs, consumers' receipts and the
regulators' read-only views (/v1/audit/..., /v1/cards/{id}/receipt).

The public key and the tree heads need no API key: anyone may hold the service to what it
signed. Proofs, the journal export and the merchants' figures are for operator, regulator
and bank keys (a bank sees the merchants whose custody it holds); merchants read none of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import Connection, Engine

from api.context import as_json, context_of, principal_of, write
from api.routes.custody import MaybeAuthed, ReceiptCode, card_reader
from api.signer import TreeHeadSigner
from ledger import limits
from ledger.auth import Principal, Role
from ledger.db import audit_queries, queries

router = APIRouter(prefix="/v1")
Authed = Annotated[Principal, Depends(principal_of)]
Size = Annotated[int, Query(ge=0, le=limits.amount_fen_max)]
Seq = Annotated[int, Query(ge=1, le=limits.amount_fen_max)]
READERS = (Role.operator, Role.regulator, Role.bank)
JSON_LINES = "application/x-ndjson"


def reading(request: Request) -> Connection:
    """A connection in autocommit: a proof is one statement on append-only rows, so it needs
    no transaction, and skipping BEGIN and ROLLBACK saves two round trips per request."""
    conn = context_of(request).engine.connect()
    return conn.execution_options(isolation_level="AUTOCOMMIT")


def signer_of(request: Request) -> TreeHeadSigner:
    signer: TreeHeadSigner = request.app.state.signer
    return signer


@router.get("/audit/public-key")
def public_key(request: Request) -> JSONResponse:
    return as_json(signer_of(request).public_view())


@router.get("/audit/tree-head")
def tree_head(request: Request) -> JSONResponse:
    with context_of(request).engine.connect() as conn:
        return as_json(audit_queries.latest_head_view(conn))


@router.get("/audit/tree-heads")
def tree_heads(request: Request, after: Size = 0,
               limit: Annotated[int, Query(ge=1, le=limits.tree_heads_page_max)] =
               limits.tree_heads_page_default) -> JSONResponse:
    with context_of(request).engine.connect() as conn:
        return as_json(audit_queries.heads_page(conn, after, limit))


@router.post("/audit/tree-heads")
async def sign_tree_head(request: Request, who: Authed) -> JSONResponse:
    """Sign a head over the journal as it is now; the latest head if nothing was added since
    (`created` tells which)."""
    who.require_role(Role.operator)
    return await write(request, who, signer_of(request).command(), status_code=200)


@router.get("/audit/proofs/inclusion")
def inclusion_proof(request: Request, who: Authed, seq: Seq, tree_size: Size
                    ) -> JSONResponse:
    # JSONResponse, not a dict: FastAPI would validate and re-encode it (proofs are hot).
    who.require_role(*READERS)
    with reading(request) as conn:
        if who.role == Role.bank:  # a bank proves its own entries only
            queries.journal_entry(conn, seq, who)
        return as_json(audit_queries.inclusion(conn, seq, tree_size))


@router.get("/audit/proofs/consistency")
def consistency_proof(request: Request, who: Authed, first: Size, second: Size
                      ) -> JSONResponse:
    who.require_role(*READERS)
    with reading(request) as conn:
        return as_json(audit_queries.consistency(conn, first, second))


@router.get("/audit/merchants")
def merchants(request: Request, who: Authed) -> dict[str, Any]:
    who.require_role(*READERS)
    with context_of(request).engine.connect() as conn:
        return audit_queries.merchants_exposure(conn, who)


@router.get("/audit/totals")
def totals(request: Request, who: Authed) -> dict[str, Any]:
    who.require_role(*READERS)
    with context_of(request).engine.connect() as conn:
        return audit_queries.totals(conn, who)


def _export(engine: Engine) -> Iterator[bytes]:
    # The connection lives as long as the stream: a generator, iterated in the thread pool.
    with engine.connect() as conn:
        yield from audit_queries.export_lines(conn)


@router.get("/audit/journal/export")
def journal_export(request: Request, who: Authed) -> StreamingResponse:
    """The whole journal as JSON Lines, exactly as `yufu export` writes it. Not for banks:
    they read their own entries (GET /v1/journal) and prove them against signed heads."""
    who.require_role(Role.operator, Role.regulator)
    return StreamingResponse(_export(context_of(request).engine), media_type=JSON_LINES)


@router.get("/cards/{card_id}/receipt")
def card_receipt(request: Request, card_id: Annotated[str, Path(min_length=1, max_length=64)],
                 who: MaybeAuthed, receipt: ReceiptCode = None) -> dict[str, Any]:
    """A consumer's proof that the card's sale is in the journal: its entry, and once a signed
    head covers it, that head and the entry's inclusion proof against it."""
    reader = card_reader(who, receipt)
    with context_of(request).engine.connect() as conn:
        return audit_queries.card_receipt(conn, card_id, reader)
