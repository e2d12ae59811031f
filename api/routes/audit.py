"""The audit API: the tree-head key, signed tree heads, proofs, consumers' receipts and the
regulators' read-only views (/v1/audit/..., /v1/cards/{id}/receipt).

The public key and the tree heads need no API key: anyone may hold the service to what it
signed. Proofs, the journal export and the merchants' figures are for operator, regulator
and bank keys (a bank sees the merchants whose custody it holds); merchants read none of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import Connection, Engine

from api.context import Authed, MaybeAuthed, ReceiptCode, as_json, context_of, write
from api.custody_schemas import Exposures
from api.openapi import Responses, card_read, keyed_read, keyed_write, open_read
from api.paging import AfterName, ExposureLimit
from api.routes.custody import card_reader
from api.schemas import (
    ConsistencyProof,
    InclusionProof,
    PublicKey,
    Receipt,
    SignedTreeHead,
    Totals,
    TreeHead,
    TreeHeadsPage,
)
from api.signer import TreeHeadSigner
from ledger import limits
from ledger.access import (
    is_scoped,
    require_district,
    require_journal_reader,
    require_operator,
)
from ledger.auth import Role
from ledger.db import audit_queries, queries

router = APIRouter(prefix="/v1")
Size = Annotated[int, Query(ge=0, le=limits.amount_fen_max)]
Seq = Annotated[int, Query(ge=1, le=limits.amount_fen_max)]
JSON_LINES = "application/x-ndjson"
EXPORT: Responses = {200: {"description": "One line per journal entry, in order: `{\"entry\": <the "
                               "entry's canonical JSON>, \"hash\": <its hash, hex>}` "
                               "(docs/journal-format.md).",
                "content": {JSON_LINES: {"schema": {"type": "string"}}}}}


def reading(request: Request) -> Connection:
    """A connection in autocommit: a proof is one statement on append-only rows, so it needs
    no transaction, and skipping BEGIN and ROLLBACK saves two round trips per request."""
    conn = context_of(request).engine.connect()
    return conn.execution_options(isolation_level="AUTOCOMMIT")


def signer_of(request: Request) -> TreeHeadSigner:
    signer: TreeHeadSigner = request.app.state.signer
    return signer


@router.get("/audit/public-key", response_model=PublicKey, **open_read())
def public_key(request: Request) -> JSONResponse:
    return as_json(signer_of(request).public_view())


@router.get("/audit/tree-head", response_model=TreeHead, **open_read(404))
def tree_head(request: Request) -> JSONResponse:
    with context_of(request).engine.connect() as conn:
        return as_json(audit_queries.latest_head_view(conn))


@router.get("/audit/tree-heads", response_model=TreeHeadsPage, **open_read())
def tree_heads(request: Request, after: Size = 0,
               limit: Annotated[int, Query(ge=1, le=limits.tree_heads_page_max)] =
               limits.tree_heads_page_default) -> JSONResponse:
    with context_of(request).engine.connect() as conn:
        return as_json(audit_queries.heads_page(conn, after, limit))


@router.post("/audit/tree-heads", response_model=SignedTreeHead,
             **keyed_write(body=False))
async def sign_tree_head(request: Request, who: Authed) -> JSONResponse:
    """Sign a head over the journal as it is now; the latest head if nothing was added since
    (`created` tells which)."""
    require_operator(who)
    return await write(request, who, signer_of(request).command(), status_code=200)


@router.get("/audit/proofs/inclusion", response_model=InclusionProof, **keyed_read(404))
def inclusion_proof(request: Request, who: Authed, seq: Seq, tree_size: Size
                    ) -> JSONResponse:
    # JSONResponse, not a dict: FastAPI would validate and re-encode it (proofs are hot).
    require_journal_reader(who)
    with reading(request) as conn:
        if who.role == Role.bank or is_scoped(who):  # a bank, a department or street key:
            # its own entries only
            queries.journal_entry(conn, seq, who)
        return as_json(audit_queries.inclusion(conn, seq, tree_size))


@router.get("/audit/proofs/consistency", response_model=ConsistencyProof, **keyed_read())
def consistency_proof(request: Request, who: Authed, first: Size, second: Size
                      ) -> JSONResponse:
    require_journal_reader(who)
    with reading(request) as conn:
        return as_json(audit_queries.consistency(conn, first, second))


@router.get("/audit/merchants", response_model=Exposures, **keyed_read())
def merchants(request: Request, who: Authed, after: AfterName = "",
              limit: ExposureLimit = limits.exposure_page_merchants_default) -> dict[str, Any]:
    """The exposure of every merchant this key sees, a page by merchant id."""
    require_journal_reader(who)
    with context_of(request).engine.connect() as conn:
        return audit_queries.merchants_exposure(conn, who, queries.Page(after, limit))


@router.get("/audit/totals", response_model=Totals, **keyed_read())
def totals(request: Request, who: Authed) -> dict[str, Any]:
    require_journal_reader(who)
    with context_of(request).engine.connect() as conn:
        return audit_queries.totals(conn, who)


def _export(engine: Engine) -> Iterator[bytes]:
    # The connection lives as long as the stream: a generator, iterated in the thread pool.
    with engine.connect() as conn:
        yield from audit_queries.export_lines(conn)


@router.get("/audit/journal/export", response_class=StreamingResponse,
            **keyed_read(responses=EXPORT))
def journal_export(request: Request, who: Authed) -> StreamingResponse:
    """The whole journal as JSON Lines, exactly as `yufu export` writes it. Not for banks:
    they read their own entries (GET /v1/journal) and prove them against signed heads."""
    require_district(who)
    return StreamingResponse(_export(context_of(request).engine), media_type=JSON_LINES)


@router.get("/cards/{card_id}/receipt", response_model=Receipt, **card_read())
def card_receipt(request: Request, card_id: Annotated[str, Path(min_length=1, max_length=64)],
                 who: MaybeAuthed, receipt: ReceiptCode = None) -> dict[str, Any]:
    """A consumer's proof that the card's sale is in the journal: its entry, and once a signed
    head covers it, that head and the entry's inclusion proof against it."""
    reader = card_reader(who, receipt)
    with context_of(request).engine.connect() as conn:
        return audit_queries.card_receipt(conn, card_id, reader)
