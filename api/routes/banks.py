"""Partner banks: statements in, instruction files out, breaks and cross-verification."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from api.bank_schemas import (
    BankProfiles,
    Breaks,
    CrossVerifications,
    InstructionAnswer,
    PaymentInstructions,
    ResolvedBreak,
    ResolvedBreaks,
    StatementImport,
    StatementsRead,
)
from api.context import Authed, context_of, write
from api.jobs import answer_job, import_slices
from api.openapi import NOT_BLANK, Responses, job_write, keyed_read, keyed_write
from api.paging import PageQuery
from api.profiles import describe, profile_named
from api.statement_view import parsed_view
from ledger import limits
from ledger.access import require_bank, require_operator
from ledger.bank import limits as bank_limits
from ledger.bank.identity import fingerprints
from ledger.bank.model import StatementRejected
from ledger.bank.payments import build_pain001, build_payment_csv
from ledger.bank.reconciliation import BreakKind
from ledger.bank.statements import read_file
from ledger.bank.store import BreakSelection
from ledger.db import bank_queries as views
from ledger.db.queries import Page
from ledger.errors import Conflict, NotFound
from ledger.flows.imports import (
    StageImport,
    import_steps,
)
from ledger.flows.instructions import (
    AcceptInstruction,
    RejectInstruction,
    ResolveBreak,
    ResolveBreaks,
    breaks_resolved_per_request_max,
)
from ledger.flows.sorting import check_importable, sorted_by
from ledger.flows.statements import duplicate_file

router = APIRouter(prefix="/v1")
BankId = Annotated[str, Path(min_length=1, max_length=100)]
reason_chars_max = 500
initiating_party = "Yufu prepaid-fund custody"
STATEMENT_FILE = {"requestBody": {"required": True, "content": {
    media: {"schema": {"type": "string"}} for media in ("application/xml", "text/plain",
                                                       "text/csv")}}}
INSTRUCTION_FILES: Responses = {
    200: {"description": "The pending instructions: ISO 20022 pain.001.001.09 "
                         "(`format=pain001`), CSV (`format=csv`), or a page of them by "
                         "end-to-end id in JSON (`format=json`, with `after` and `limit`).",
          "model": PaymentInstructions,  # application/json
          "content": {"application/xml": {"schema": {"type": "string"}},
                      "text/csv": {"schema": {"type": "string"}}}},
    204: {"description": "No pending instruction, as pain.001 or CSV: a payment file carries "
                         "at least one."},
}


class InstructionFileQuery(BaseModel):
    """The file asked for; as JSON, a page of it by end-to-end id (a string cursor)."""

    format: Literal["pain001", "csv", "json"] = "pain001"
    after: str = Field(default="", max_length=limits.owner_chars_max,
                       description="as JSON: the previous page's `next_after`")
    limit: int = Field(default=limits.list_page_items_default, ge=1,
                       le=limits.list_page_items_max, description="as JSON: items per page "
                                                                  "at most")


class BreaksQuery(PageQuery):
    bank_id: str | None = None
    merchant_id: str | None = None
    status: Literal["open", "resolved"] | None = None


class CrossVerificationsQuery(PageQuery):
    merchant_id: str | None = None
    bank_id: str | None = None


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=reason_chars_max)


class ResolutionIn(BaseModel):
    # How the break was resolved is required (the command refuses a blank one); the body
    # stays optional to FastAPI so that roles answer before the body is looked at.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["resolution"]})
    resolution: str = Field(default="", max_length=reason_chars_max, json_schema_extra=NOT_BLANK)


class ImportQuery(BaseModel):
    filename: str = Field(default="", max_length=200)
    profile: str = Field(default="", max_length=100, description="the bank profile to read "
                         "a bank's own CSV or Excel export by (GET /v1/bank-profiles)")
    dry_run: bool = Field(default=False, description="read and sort the file, write nothing: "
                                                     "the statements as read (200)")
    all_or_nothing: bool = Field(default=False, description="refuse the whole file if any "
                                                            "statement of it is refused")


def _import_responses() -> dict[str, Any]:
    options = job_write(413, what="A file of more lines than one slice",
                        openapi_extra=STATEMENT_FILE)
    options["responses"][200] = {"model": StatementsRead,
                                 "description": "`dry_run=true`: the file as read"}
    return options


class BreakFilterIn(BaseModel):
    """Open breaks picked by what they are about: each field given narrows the pick."""

    model_config = ConfigDict(extra="forbid")
    bank_id: str | None = Field(default=None, max_length=100)
    merchant_id: str | None = Field(default=None, max_length=limits.owner_chars_max)
    kind: BreakKind | None = None
    opened_before: date | None = Field(default=None, description="opened on an earlier day")

    def selection(self) -> BreakSelection:
        return BreakSelection(self.bank_id, self.merchant_id, self.kind, self.opened_before)


class BulkResolutionIn(BaseModel):
    # Like ResolutionIn, the body stays optional to FastAPI so that roles answer first.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["resolution"]})
    resolution: str = Field(default="", max_length=reason_chars_max, json_schema_extra=NOT_BLANK)
    break_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        default=[], max_length=breaks_resolved_per_request_max,
        description="the breaks to resolve, by id; or, instead, `filter`")
    filter: BreakFilterIn | None = Field(
        default=None, description=f"the oldest open breaks it picks, at most "
                                  f"{breaks_resolved_per_request_max} a request")


@router.post("/banks/{bank_id}/statements", status_code=201, response_model=StatementImport,
             **_import_responses())
async def import_statement(request: Request, bank_id: BankId, who: Authed,
                           wanted: Annotated[ImportQuery, Query()]) -> JSONResponse:
    """The statement file as the body (camt.052, camt.053, camt.054, MT940, the documented
    CSV, a zip or gzip of them, or a bank's own CSV or Excel export read by a bank profile:
    the one `profile` names, else the one whose header the file has; see
    GET /v1/bank-profiles). A file of at most one slice's lines is imported at once (201); a
    bigger one answers 202 with the job to poll. The same file sent again resumes an import
    a crash interrupted. Every statement of the file is imported, named already imported, or
    refused with its reason; with `all_or_nothing=true` one refusal refuses the file."""
    data = await request.body()
    if len(data) > bank_limits.statement_bytes_max:
        raise StatementRejected(f"file is over the {bank_limits.statement_bytes_max} byte "
                                "limit", field="file")
    require_bank(who, bank_id)  # before any parsing of what a stranger sent
    ctx = context_of(request)
    named = profile_named(ctx.bank_profiles, wanted.profile)
    # Read here, off the appender: a big file's parse must not hold up every other write.
    parsed = await run_in_threadpool(read_file, data, wanted.filename or None, named,
                                     tuple(ctx.bank_profiles.values()))
    prints = await run_in_threadpool(fingerprints, parsed)
    # The profile it was read by, named or found by its header: a resumed job reads it so.
    profile = wanted.profile or (parsed.format if parsed.format in ctx.bank_profiles else None)
    stage = StageImport(who, bank_id, wanted.filename, data, ctx.clock(), parsed,
                        wanted.all_or_nothing, profile, prints)
    if wanted.dry_run:
        return JSONResponse(await run_in_threadpool(_dry_run, ctx.engine, stage))
    sizes = import_slices(ctx.writer, ctx.import_slice_lines_min, ctx.import_slice_lines_max)
    return await answer_job(request, who, import_steps(stage, sizes), sizes.least)


def _dry_run(engine: Engine, stage: StageImport) -> dict[str, Any]:
    """The file as read, what an import now would make of each statement, and whether it
    would take the file at all: as the import (`stage`) decides, for a file received before
    too."""
    bank_id, parsed, prints = stage.bank_id, stage.parsed, stage.prints
    digest = hashlib.sha256(stage.data).digest()
    with engine.connect() as conn:
        accounts = views.merchants_by_account(conn, bank_id)
        sorted_ = sorted_by(accounts, lambda fps: views.statements_seen(conn, bank_id, fps),
                            bank_id, parsed, prints)
        earlier = views.file_by_hash(conn, digest)
    imports = [s.view() for s in sorted_]
    refusal = None
    try:
        if earlier is not None:
            imports = duplicate_file(earlier, digest, bank_id, sorted_)["statements"]
        else:
            check_importable(sorted_, all_or_nothing=stage.all_or_nothing)
    except (StatementRejected, Conflict) as refused:
        refusal = refused.detail
    return {"dry_run": True, "file_refused": refusal, **parsed_view(parsed, imports)}


@router.get("/bank-profiles", response_model=BankProfiles, **keyed_read())
def list_bank_profiles(request: Request, who: Authed) -> dict[str, Any]:
    """The bank profiles this service reads banks' own exports by (docs/bank-formats.md,
    "bank profiles"): for an integrator to see which layout their bank's file must have.
    Any key may read them."""
    del who  # any role: a key is all it takes
    profiles = context_of(request).bank_profiles
    return {"items": [describe(profiles[name]) for name in sorted(profiles)]}


@router.get("/banks/{bank_id}/instructions", response_class=Response,
            **keyed_read(responses=INSTRUCTION_FILES))
def instruction_file(request: Request, bank_id: BankId, who: Authed,
                     wanted: Annotated[InstructionFileQuery, Query()]) -> Response:
    """Pending release and refund instructions out of this bank's custody accounts: a payment
    file holds them all; the JSON list is paged by end-to-end id (`after`, `limit`)."""
    format, after, limit = wanted.format, wanted.after, wanted.limit
    ctx = context_of(request)
    page = Page(after, limit) if format == "json" else None
    with ctx.engine.connect() as conn:
        instructions = views.payment_instructions(conn, who, bank_id, ctx.clock(), page)
    if format == "json":
        return JSONResponse({"items": [{
            "end_to_end_id": i.end_to_end_id, "amount_fen": i.amount_fen,
            "currency": i.currency, "debtor_account": i.debtor_account,
            "creditor_name": i.creditor_name, "creditor_account": i.creditor_account,
            "remittance": i.remittance} for i in instructions],
            "next_after": instructions[-1].end_to_end_id if len(instructions) == limit
            else None})
    if not instructions:  # a payment file, pain.001 or CSV, carries at least one transfer
        return Response(status_code=204)
    if format == "csv":
        return Response(build_payment_csv(instructions), media_type="text/csv; charset=utf-8")
    body = build_pain001(instructions, message_id=f"YUFU{secrets.token_hex(8).upper()}",
                         created_at=datetime.now(UTC), initiating_party=initiating_party)
    return Response(body, media_type="application/xml")


@router.post("/banks/{bank_id}/instructions/{end_to_end_id}/accept",
             response_model=InstructionAnswer, **keyed_write(404))
async def accept_instruction(request: Request, bank_id: BankId, end_to_end_id: str,
                             who: Authed, body: AnswerIn | None = None) -> JSONResponse:
    command = AcceptInstruction(who, bank_id, end_to_end_id, body.reason if body else "")
    return await write(request, who, command, 200)


@router.post("/banks/{bank_id}/instructions/{end_to_end_id}/reject",
             response_model=InstructionAnswer, **keyed_write(404))
async def reject_instruction(request: Request, bank_id: BankId, end_to_end_id: str,
                             who: Authed, body: AnswerIn | None = None) -> JSONResponse:
    command = RejectInstruction(who, bank_id, end_to_end_id, body.reason if body else "")
    return await write(request, who, command, 200)


@router.get("/breaks", response_model=Breaks, **keyed_read())
def list_breaks(request: Request, who: Authed,
                wanted: Annotated[BreaksQuery, Query()]) -> dict[str, Any]:
    """A page of breaks by id; `open` and `by_bank_merchant` count every break the filter
    matches, on every page."""
    ctx = context_of(request)
    which = views.BreakFilter(wanted.bank_id, wanted.merchant_id, wanted.status)
    with ctx.engine.connect() as conn:
        return views.breaks(conn, who, which, ctx.clock(), wanted.page())


@router.post("/breaks/{break_id}/resolve", response_model=ResolvedBreak,
             **keyed_write(404, openapi_extra={"requestBody": {"required": True}}))
async def resolve_break(request: Request, break_id: Annotated[str, Path(max_length=20)],
                        who: Authed, body: ResolutionIn | None = None) -> JSONResponse:
    require_operator(who)  # before the id is looked at: roles answer first
    if not break_id.isdigit():
        raise NotFound(f"break {break_id} does not exist", field="break_id")
    resolution = body.resolution if body else ""
    return await write(request, who, ResolveBreak(who, int(break_id), resolution), 200)


@router.post("/breaks/resolve", response_model=ResolvedBreaks,
             **keyed_write(404, openapi_extra={"requestBody": {"required": True}}))
async def resolve_breaks(request: Request, who: Authed,
                         body: BulkResolutionIn | None = None) -> JSONResponse:
    """Many breaks resolved with one resolution, all or none: named by `break_ids` or picked
    by `filter` (one of the two). An unknown or resolved id is refused by its index."""
    require_operator(who)  # before the body is looked at: roles answer first
    body = body or BulkResolutionIn()
    command = ResolveBreaks(who, body.resolution, tuple(body.break_ids),
                            body.filter.selection() if body.filter is not None else None)
    return await write(request, who, command, 200)


@router.get("/cross-verifications", response_model=CrossVerifications, **keyed_read())
def list_cross_verifications(request: Request, who: Authed,
                             wanted: Annotated[CrossVerificationsQuery, Query()]
                             ) -> dict[str, Any]:
    """The last cross-verification of each custody account (交叉验证), a page by id."""
    with context_of(request).engine.connect() as conn:
        return views.cross_verifications(conn, who, wanted.merchant_id, wanted.bank_id,
                                         wanted.page())
