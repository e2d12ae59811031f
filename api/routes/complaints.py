"""Complaints (12345 / 12315 工单): intake one by one or a file at a time, each step of their
lives, the list, one complaint, and a department's figures."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.complaint_schemas import (
    ComplaintDetail,
    ComplaintIn,
    ComplaintsPage,
    ComplaintStats,
    DeadlineSets,
    DeadlinesIn,
    FiledComplaint,
    ImportedFile,
    IsoDay,
    PublishedDeadlines,
    Status,
    StepIn,
    SteppedComplaint,
)
from api.context import Authed, context_of, write
from api.openapi import keyed_read, keyed_write
from api.paging import PageQuery
from ledger.access import require_operator, require_overseer
from ledger.custody import cards as card_rules
from ledger.db import complaint_queries as views
from ledger.errors import InvalidInput
from ledger.flows.complaints import (
    FileComplaint,
    ImportComplaints,
    PublishDeadlines,
    StepComplaint,
)
from ledger.supervision.complaints import (
    Step,
    category_chars_max,
    check_text,
    department_chars_max,
    parse_channel,
    parse_deadlines,
)
from ledger.supervision.register import street_chars_max
from ledger.supervision.work_orders import (
    WorkOrder,
    check_order,
    parse_received_at,
    read_work_orders,
    work_order_file_bytes_max,
)

router = APIRouter(prefix="/v1")
# `{complaint_id:int}` in the paths: so /v1/complaints/stats and /import are never taken for
# a complaint's id (a GET there would answer 422, and advertise GET in a 405's Allow).
ComplaintId = Annotated[int, Path(ge=1, le=2**63 - 1)]
WORK_ORDER_FILE = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "format": "binary"}}}}}


class ComplaintsQuery(PageQuery):
    merchant_id: str | None = Field(default=None, max_length=64)
    department: str | None = Field(default=None, max_length=department_chars_max)
    street: str | None = Field(default=None, max_length=street_chars_max)
    status: Status | None = None
    overdue_as_of: IsoDay | None = Field(default=None, description="only those open past a "
                                       "deadline at the end of this day, each naming which")

    def which(self) -> views.ComplaintFilter:
        return views.ComplaintFilter(self.merchant_id, self.department, self.street,
                                     self.status, self.overdue_as_of)


class StatsQuery(BaseModel):
    department: str | None = Field(default=None, max_length=department_chars_max)
    street: str | None = Field(default=None, max_length=street_chars_max)
    from_: IsoDay = Field(alias="from", description="received on or after")
    to: IsoDay = Field(description="received on or before")
    as_of: IsoDay | None = Field(default=None, description="the day the figures stand at "
                               "(its end); `to` if not given")


class ImportQuery(BaseModel):
    filename: str = Field(default="", max_length=200)


def pseudonym_of(request: Request) -> Any:
    key = context_of(request).pseudonym_key

    def pseudonym(phone: str, field: str) -> str:
        """As a sale's consumer (api/routes/custody.py consumer_id_of): the phone's keyed
        hash; the number itself is never kept."""
        return card_rules.consumer_pseudonym(
            key, f"phone:{card_rules.normalise_phone(phone, field)}")

    return pseudonym


@router.post("/complaints", status_code=201, response_model=FiledComplaint,
             **keyed_write(404))
async def file_complaint(request: Request, body: ComplaintIn, who: Authed) -> JSONResponse:
    """A work order received (12345, 12315) or a complaint received directly, routed to its
    merchant's department and street: by the operator, or a regulator whose scope holds the
    merchant."""
    require_overseer(who)  # before the input is read: others learn nothing of it
    phone = body.phone.strip() if body.phone else None
    order = check_order(WorkOrder(
        parse_channel(body.channel), body.external_id, parse_received_at(body.received_at),
        body.merchant_id, body.credit_code,
        check_text(body.category, "category", category_chars_max), body.amount_fen,
        body.card_id, pseudonym_of(request)(phone, "phone") if phone else None))
    command = FileComplaint(who, order, body.hold_releases, context_of(request).clock())
    return await write(request, who, command)


@router.post("/complaints/import", status_code=201, response_model=ImportedFile,
             **keyed_write(404, openapi_extra=WORK_ORDER_FILE))
async def import_complaints(request: Request, who: Authed,
                           wanted: Annotated[ImportQuery, Query()]) -> JSONResponse:
    """A file of hotline work orders (CSV or XLSX, a header row, one order a row): each row
    recorded, named a duplicate of an order recorded before, or refused by its row and
    field. A file with nothing to record is 422."""
    require_overseer(who)  # before the file is read: others learn nothing of it
    data = await request.body()
    if len(data) > work_order_file_bytes_max:
        raise InvalidInput(f"over the {work_order_file_bytes_max} byte limit", field="file")
    rows = await run_in_threadpool(read_work_orders, data, pseudonym_of(request))
    source = {"filename": wanted.filename, "sha256": hashlib.sha256(data).hexdigest()}
    command = ImportComplaints(who, tuple(rows), source, context_of(request).clock())
    return await write(request, who, command)


@router.get("/complaints", response_model=ComplaintsPage, **keyed_read())
def list_complaints(request: Request, who: Authed,
                    wanted: Annotated[ComplaintsQuery, Query()]) -> dict[str, Any]:
    """A page of complaints by id, those this key may read: the operator all, a regulator
    those routed into its scope, a merchant its own."""
    with context_of(request).engine.connect() as conn:
        return views.complaints(conn, who, wanted.which(), wanted.page())


@router.get("/complaints/stats", response_model=ComplaintStats, **keyed_read())
def complaint_stats(request: Request, who: Authed,
                    wanted: Annotated[StatsQuery, Query()]) -> dict[str, Any]:
    """A department's (and street's) figures over the complaints received from `from` to
    `to`, as of `as_of`: 受理率 and 按时办结率 as exact fractions, open items by age, the
    register's two parts, 退单 and re-routes."""
    if wanted.to < wanted.from_:
        raise InvalidInput("is before from", field="to")
    window = views.Window(wanted.from_, wanted.to, wanted.as_of or wanted.to)
    which = views.ComplaintFilter(department=wanted.department, street=wanted.street)
    with context_of(request).engine.connect() as conn:
        return views.stats(conn, who, which, window)


@router.get("/complaints/{complaint_id:int}", response_model=ComplaintDetail, **keyed_read(404))
def get_complaint(request: Request, complaint_id: ComplaintId, who: Authed) -> dict[str, Any]:
    """One complaint and every step of its life."""
    with context_of(request).engine.connect() as conn:
        return views.complaint(conn, who, complaint_id)


@router.post("/complaints/{complaint_id:int}/steps", response_model=SteppedComplaint,
             **keyed_write(404))
async def step_complaint(request: Request, complaint_id: ComplaintId, body: StepIn,
                         who: Authed) -> JSONResponse:
    """A step of the complaint's life: accept (受理), return (退单, by the department it is
    routed to), reroute (the operator or a district key), respond (the merchant's own key),
    mediate, escalate, resolve (办结: a hold on the card ends), open_case (诉转案)."""
    command = StepComplaint(who, complaint_id, Step(body.step), body.note.strip(),
                            context_of(request).clock(), body.department, body.street)
    return await write(request, who, command, 200)


@router.post("/complaint-deadlines", status_code=201, response_model=PublishedDeadlines,
             **keyed_write())
async def publish_deadlines(request: Request, body: DeadlinesIn, who: Authed) -> JSONResponse:
    """A jurisdiction's new complaint deadlines, the next version (journaled
    `complaint.deadlines_published`): complaints received from now on take them. Until a
    jurisdiction publishes its own, its first complaint stores the shipped ones
    (ledger/supervision/complaint_deadlines.json)."""
    require_operator(who)  # before the input is read: others learn nothing of it
    raw = body.model_dump(exclude={"jurisdiction", "source"})
    deadlines = parse_deadlines({name: {k: v for k, v in period.items() if v is not None}
                                 for name, period in raw.items()}, where="")
    command = PublishDeadlines(who, body.jurisdiction.strip(), deadlines, body.source)
    return await write(request, who, command)


@router.get("/complaint-deadlines", response_model=DeadlineSets, **keyed_read())
def list_deadlines(request: Request, who: Authed,
                   wanted: Annotated[PageQuery, Query()]) -> dict[str, Any]:
    """Every stored version of every jurisdiction's complaint deadlines: any key reads them."""
    del who  # any role: the deadlines are published
    with context_of(request).engine.connect() as conn:
        return views.deadline_sets(conn, wanted.page())
