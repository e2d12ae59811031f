"""The routines' reports (日管控、周排查、月调度, 季度报告): made on demand, listed, read as JSON
and downloaded as XLSX or CSV (Chinese headers; `?lang=en` for English)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.context import Authed, context_of, write
from api.openapi import Responses, keyed_read, keyed_write
from api.paging import After, Limit
from api.reports import computed_at_a_head, render_csv, render_xlsx
from api.schemas import NextAfter, Out, Seq, Timestamp
from api.signer import TreeHeadSigner
from ledger import limits
from ledger.access import report_scope
from ledger.db import report_queries
from ledger.flows.reports import MakeReport
from ledger.supervision.routines import (
    DISTRICT,
    ReportAsk,
    ReportKind,
    Scope,
    ScopeKind,
    resolve_period,
    scope_name_chars_max,
)

router = APIRouter(prefix="/v1")
ReportId = Annotated[int, Path(ge=1, le=limits.amount_fen_max)]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX: Responses = {200: {"description": "The report as a workbook: a sheet with what it is and "
                                        "the signed tree head it names, then a sheet per "
                                        "section.",
                         "content": {XLSX_TYPE: {"schema": {"type": "string"}}}}}
CSV: Responses = {200: {"description": "The report as CSV (UTF-8 with a byte-order mark): what "
                                       "it is and its head, then each section: title, header "
                                       "row, rows, a blank line.",
                        "content": {"text/csv": {"schema": {"type": "string"}}}}}


PERIOD_PATTERN = r"^[0-9]{4}-([0-9]{2}(-[0-9]{2})?|W[0-9]{2}|Q[1-4])$"


class Lang(StrEnum):
    zh = "zh"
    en = "en"


LangQuery = Annotated[Lang, Query(description="the headers' language: zh (default) or en")]


class ReportIn(BaseModel):
    """`period` left out: the latest closed one (yesterday, last week, last month, last
    quarter, in China time). A department or street, at most one; neither: the district. A
    department or street key gets its own scope whatever it names here, and may name only
    its own."""

    model_config = ConfigDict(extra="forbid")
    kind: ReportKind
    period: str | None = Field(default=None, pattern=PERIOD_PATTERN,
                               description="YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-Qn, as "
                                           "the kind is; one that has begun")
    department: str | None = Field(default=None, min_length=1, max_length=scope_name_chars_max)
    street: str | None = Field(default=None, min_length=1, max_length=scope_name_chars_max)

    @model_validator(mode="after")
    def one_scope(self) -> ReportIn:
        if self.department is not None and self.street is not None:
            raise ValueError("a report's scope is a department or a street, not both")
        return self

    def scope(self) -> Scope:
        if self.department is not None:
            return Scope(ScopeKind.department, self.department)
        if self.street is not None:
            return Scope(ScopeKind.street, self.street)
        return DISTRICT


class PeriodOut(Out):
    label: str
    start: str = Field(description="its first day (China time)")
    end: str = Field(description="the first day after it")


class ScopeOut(Out):
    kind: ScopeKind
    name: str | None


class HeadOut(Out):
    tree_size: int
    root_hash: str
    timestamp: Timestamp
    key_id: str
    signature: str


class ReportMade(Out):
    id: int = Field(description="the report's id: the seq of its `report.made` entry")
    kind: ReportKind
    period: str
    scope: ScopeOut
    scheduled: bool
    tree_size: int = Field(description="the signed tree head it names")
    journal_size: int = Field(description="the snapshot's journal size (the head's, unless "
                                          "writes kept landing while it was made)")
    figures_sha256: str
    journal_seq: Seq


class ReportSummary(Out):
    id: int
    kind: ReportKind
    period: PeriodOut
    scope: ScopeOut
    scheduled: bool
    tree_head: HeadOut
    journal_size: int
    made_at: Timestamp
    figures_sha256: str = Field(description="SHA-256 of the figures' canonical JSON")
    journal_seq: Seq


class ReportOut(ReportSummary):
    figures: dict[str, Any] = Field(description="kind, period, scope, the tree head, the "
                                                "journal size and the sections: each with "
                                                "its title, columns and rows")


class ReportsPage(Out):
    items: list[ReportSummary]
    next_after: NextAfter


@router.post("/reports", status_code=201, response_model=ReportMade, **keyed_write())
async def make_report(request: Request, body: ReportIn, who: Authed) -> JSONResponse:
    """Make a report now, at a tree head signed for it: the operator, or a regulator (a
    department or street key: of its own scope)."""
    scope = report_scope(who, body.scope())
    period = resolve_period(body.kind, body.period, datetime.now(UTC))
    ctx = context_of(request)
    signer: TreeHeadSigner = request.app.state.signer
    computed = await computed_at_a_head(ctx.engine, ctx.writer, signer,
                                        ReportAsk(body.kind, period, scope))
    return await write(request, who, MakeReport(who, computed.report))


@router.get("/reports", response_model=ReportsPage, **keyed_read())
def list_reports(request: Request, who: Authed, kind: ReportKind | None = None,
                 after: After = 0, limit: Limit = limits.list_page_items_default
                 ) -> dict[str, Any]:
    """The stored reports this key may read (a department or street key: its scope's), by
    id; without their figures."""
    with context_of(request).engine.connect() as conn:
        return report_queries.reports_page(conn, who, kind, after, limit)


def _report(request: Request, who: Authed, report_id: int) -> dict[str, Any]:
    with context_of(request).engine.connect() as conn:
        return report_queries.report(conn, who, report_id)


def _filename(report: dict[str, Any], suffix: str) -> str:
    # ASCII only (a header's value): the scope's name, often Chinese, is inside the file.
    return f"yufu-{report['kind']}-{report['period']['label']}-{report['id']}.{suffix}"


# The downloads before the JSON: "/reports/{report_id}" would match "7.xlsx" too.
@router.get("/reports/{report_id}.xlsx", response_class=Response,
            **keyed_read(404, responses=XLSX))
def report_xlsx(request: Request, report_id: ReportId, who: Authed, lang: LangQuery = Lang.zh
                ) -> Response:
    report = _report(request, who, report_id)
    return Response(render_xlsx(report, lang.value), media_type=XLSX_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{_filename(report, "xlsx")}"'})


@router.get("/reports/{report_id}.csv", response_class=Response,
            **keyed_read(404, responses=CSV))
def report_csv(request: Request, report_id: ReportId, who: Authed, lang: LangQuery = Lang.zh
               ) -> Response:
    report = _report(request, who, report_id)
    return Response(render_csv(report, lang.value), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="{_filename(report, "csv")}"'})


@router.get("/reports/{report_id}", response_model=ReportOut, **keyed_read(404))
def get_report(request: Request, report_id: ReportId, who: Authed) -> dict[str, Any]:
    """A stored report with its figures, and the signed tree head it names."""
    return _report(request, who, report_id)
