"""Supervision (监管): the four checks (四查) as signals, tiers (红黄蓝) and their overrides,
operating-status records and their files, release holds, the alerts inbox and webhooks."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from api.context import Authed, context_of, write
from api.jobs import answer_job
from api.openapi import job_write, keyed_read, keyed_write
from api.paging import After, Limit
from api.schemas import Day, NextAfter, Out, Seq, Timestamp
from ledger import limits
from ledger.access import require_operator, require_overseer
from ledger.custody.merchants import Tier
from ledger.custody.settlement import check_as_of
from ledger.db import supervision_queries as views
from ledger.db.queries import Page
from ledger.errors import InvalidInput
from ledger.flows import sweeps
from ledger.flows.supervision import (
    AcknowledgeAlert,
    AssessMerchant,
    ClearHold,
    CreateSupervisionRules,
    OverrideTier,
    RecordRevenue,
    RecordStatus,
    ReviewOverride,
    Subscribe,
    reason_chars_max,
)
from ledger.flows.sweeps import supervision_steps
from ledger.supervision.records import (
    entry_of,
    note_chars_max,
    read_status_file,
    source_chars_max,
    status_file_bytes_max,
)

router = APIRouter(prefix="/v1")
Id = Annotated[str, Path(min_length=1, max_length=64)]
NumericId = Annotated[int, Path(ge=1, le=2**63 - 1)]
TierName = Literal["blue", "yellow", "red"]
revenue_fen_max = 10**15  # a year's revenue, in fen: ten trillion yuan
secret_chars_min, secret_chars_max, url_chars_max = 16, 200, 2000
STATUS_FILE = {"requestBody": {"required": True, "content": {
    media: {"schema": {"type": "string"}} for media in (
        "text/csv", "text/plain")}}}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- what the answers hold ---------------------------------------------------------------------


class SignalOut(Out):
    kind: str
    check: Literal["fund_flows", "complaints", "operating_status", "public_sentiment"]
    value: int
    threshold: int
    source: str


class Assessment(Out):
    merchant_id: str
    raised: list[str] = Field(description="signal kinds raised by this assessment")
    cleared: list[str]
    tier: TierName
    computed_tier: TierName = Field(description="the tier of the signals alone")
    previous_tier: TierName
    alerts: list[int] = Field(description="alerts raised by this assessment")
    releases_held: bool


class SupervisionSweep(Out):
    as_of: Day
    assessed: list[Assessment] = Field(description="the merchants whose signals or tier "
                                                   "changed")


class OverrideOut(Out):
    id: int
    tier: TierName
    reason: str
    expires_on: Day | None
    created_seq: Seq
    ended_seq: Seq | None


class RiskOut(Out):
    merchant_id: str
    tier: TierName
    computed_tier: TierName
    hard_blocks: list[str]
    signals: list[SignalOut]
    releases_held: bool
    assessed_on: Day | None
    overrides: list[OverrideOut]


class SignalEvent(Out):
    id: int
    kind: str
    state: Literal["raised", "cleared"]
    value: int
    threshold: int
    source: str
    observed_on: Day
    journal_seq: Seq


class SignalHistory(Out):
    items: list[SignalEvent]
    next_after: NextAfter


class Recorded(Out):
    row: int
    merchant_id: str
    credit_code: str
    kind: str
    listed: bool
    source: str
    note: str
    recorded_on: Day
    file: str | None
    journal_seq: Seq


class RefusedRow(Out):
    row: int
    field: str | None
    reason: str


class StatusRecorded(Out):
    recorded: list[Recorded]
    refused: list[RefusedRow]
    assessed: list[Assessment]


class RevenueRecorded(Out):
    merchant_id: str
    year: int
    revenue_fen: int
    journal_seq: Seq
    assessed: Assessment | None = Field(description="none where the jurisdiction has no "
                                        "supervision rules")


class Decided(Out):
    tier: TierName
    computed_tier: TierName
    previous_tier: TierName
    alerts: list[int]
    releases_held: bool


class Overridden(Decided):
    merchant_id: str
    override_id: int
    reason: str
    expires_on: Day | None
    journal_seq: Seq


class Reviewed(Decided):
    override_id: int
    merchant_id: str
    reason: str
    reviewed_on: Day
    journal_seq: Seq


class HoldCleared(Out):
    merchant_id: str
    reason: str
    held_seq: Seq | None
    releases_held: bool
    journal_seq: Seq


class AlertOut(Out):
    id: int
    merchant_id: str
    merchant_name: str
    kind: Literal["tier_yellow", "tier_red", "run_away"]
    severity: Literal["warning", "critical"]
    signals: list[SignalOut]
    department: str
    street: str | None
    created_seq: Seq
    created_at: Timestamp
    acknowledged_by: int | None = Field(description="the key id that acknowledged it")
    acknowledged_at: Timestamp | None


class Alerts(Out):
    items: list[AlertOut]
    next_after: NextAfter


class Acknowledged(Out):
    alert_id: int
    acknowledged_seq: Seq
    acknowledged_at: Timestamp
    journal_seq: Seq


class Subscribed(Out):
    subscription_id: int
    department: str | None
    street: str | None
    url: str
    journal_seq: Seq


class DeliveryOut(Out):
    id: int
    subscription_id: int
    alert_id: int
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None = Field(description="the receiver's last HTTP status")
    last_error: str | None
    delivered_at: Timestamp | None


class Deliveries(Out):
    items: list[DeliveryOut]


class RulesOut(Out):
    id: int
    jurisdiction: str
    industry: str
    version: int
    rules: dict[str, Any]
    journal_seq: Seq


# -- what the requests hold ---------------------------------------------------------------------


class SweepIn(Strict):
    as_of: date | None = None


class AssessIn(Strict):
    as_of: date | None = None


class StatusIn(Strict):
    """One record (经营异常名录, 失信被执行人, 涉诉, 欠税, 注销) or public-sentiment flag
    (舆情), keyed by credit code; `listed: false` lifts it (移出)."""

    credit_code: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=source_chars_max)
    listed: StrictBool = True
    note: str = Field(default="", max_length=note_chars_max)


class RevenueIn(Strict):
    year: StrictInt = Field(ge=1990, le=2200)
    revenue_fen: StrictInt = Field(ge=0, le=revenue_fen_max)


class OverrideIn(Strict):
    tier: TierName
    reason: str = Field(min_length=1, max_length=reason_chars_max)
    expires_on: date | None = Field(default=None, description="the override ends at the "
                                    "start of this day; without one, at a review")


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=reason_chars_max)


class SubscriptionIn(Strict):
    department: str | None = Field(default=None, min_length=1, max_length=100)
    street: str | None = Field(default=None, min_length=1, max_length=100)
    url: AnyHttpUrl = Field(description="where alerts are POSTed")
    secret: str = Field(min_length=secret_chars_min, max_length=secret_chars_max,
                        description="the key of the HMAC-SHA-256 signature of each delivery")


class RulesIn(Strict):
    jurisdiction: str = Field(min_length=1, max_length=50)
    industry: str = Field(min_length=1, max_length=50, description="'*' for the fallback")
    rules: dict[str, Any] = Field(description="fields left out keep the latest version's")


class AlertsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unacknowledged: bool = False
    merchant_id: str | None = Field(default=None, max_length=64)
    after: int = Field(default=0, ge=0, le=2**63 - 1)
    limit: int = Field(default=limits.list_page_items_default, ge=1,
                       le=limits.list_page_items_max)


# -- the routes ---------------------------------------------------------------------------------


@router.post("/supervision/sweep", response_model=SupervisionSweep,
             **job_write(what="A sweep over more merchants than one slice", body=True))
async def sweep(request: Request, body: SweepIn, who: Authed) -> JSONResponse:
    """The four checks (四查) over every active merchant as of a day (today if none): signals
    raised and cleared, tiers changed, alerts raised. A sweep over at most one slice's
    merchants answers at once; a bigger one answers 202 with the job to poll."""
    require_operator(who)
    today = context_of(request).clock()
    as_of = check_as_of(body.as_of or today, today, 0)
    slice_max = sweeps.supervision_slice_merchants_max
    return await answer_job(request, who, supervision_steps(who, as_of, slice_max), slice_max,
                            200)


@router.post("/merchants/{merchant_id}/assessments", response_model=Assessment,
             **keyed_write(404))
async def assess(request: Request, merchant_id: Id, who: Authed,
                 body: AssessIn | None = None) -> JSONResponse:
    """The four checks on one merchant now (the operator, or a regulator in scope)."""
    today = context_of(request).clock()
    as_of = check_as_of(body.as_of if body and body.as_of else today, today, 0)
    return await write(request, who, AssessMerchant(who, merchant_id, as_of), 200)


@router.get("/merchants/{merchant_id}/risk", response_model=RiskOut, **keyed_read(404))
def risk(request: Request, merchant_id: Id, who: Authed) -> dict[str, Any]:
    """Its tier, the tier its signals give, the standing signals, overrides and hold."""
    with context_of(request).engine.connect() as conn:
        return views.merchant_risk(conn, who, merchant_id)


@router.get("/merchants/{merchant_id}/signals", response_model=SignalHistory,
            **keyed_read(404))
def signals(request: Request, merchant_id: Id, who: Authed, after: After = 0,
            limit: Limit = limits.list_page_items_default) -> dict[str, Any]:
    """Every signal raised and cleared, oldest first."""
    with context_of(request).engine.connect() as conn:
        return views.signal_history(conn, who, merchant_id, Page(after, limit))


@router.post("/supervision/records", status_code=201, response_model=StatusRecorded,
             **keyed_write())
async def record_status(request: Request, body: StatusIn, who: Authed) -> JSONResponse:
    """One operating-status record or sentiment flag, entered by hand."""
    require_overseer(who)
    entry = entry_of(body.model_dump())
    command = RecordStatus(who, [entry], context_of(request).clock())
    return await write(request, who, command)


@router.post("/supervision/records/import", status_code=201, response_model=StatusRecorded,
             **keyed_write(413, openapi_extra=STATUS_FILE))
async def import_status(request: Request, who: Authed,
                        name: Annotated[str | None, Query(max_length=200)] = None
                        ) -> JSONResponse:
    """A regulator's file (CSV or XLSX) of records by credit code: every row recorded or
    refused by its number and reason."""
    require_overseer(who)
    data = await request.body()
    if len(data) > status_file_bytes_max:
        raise InvalidInput(f"must be at most {status_file_bytes_max} bytes", field="file")
    entries, refused = read_status_file(data)
    command = RecordStatus(who, entries, context_of(request).clock(), name or "upload",
                           refused)
    return await write(request, who, command)


@router.post("/merchants/{merchant_id}/revenues", status_code=201,
             response_model=RevenueRecorded, **keyed_write(404))
async def record_revenue(request: Request, merchant_id: Id, body: RevenueIn, who: Authed
                         ) -> JSONResponse:
    """A year's revenue (营业收入): outstanding prepaid is judged against the prior year's."""
    command = RecordRevenue(who, merchant_id, body.year, body.revenue_fen,
                            context_of(request).clock())
    return await write(request, who, command)


@router.post("/merchants/{merchant_id}/tier-overrides", status_code=201,
             response_model=Overridden, **keyed_write(404))
async def override_tier(request: Request, merchant_id: Id, body: OverrideIn, who: Authed
                        ) -> JSONResponse:
    """A regulator in scope (or the operator) sets the tier, with a reason, until
    `expires_on` or a review."""
    command = OverrideTier(who, merchant_id, Tier(body.tier), body.reason,
                           context_of(request).clock(), body.expires_on)
    return await write(request, who, command)


@router.post("/tier-overrides/{override_id}/review", response_model=Reviewed,
             **keyed_write(404))
async def review_override(request: Request, override_id: NumericId, body: ReasonIn,
                          who: Authed) -> JSONResponse:
    """The review that ends an override: the computed tier returns."""
    command = ReviewOverride(who, override_id, body.reason, context_of(request).clock())
    return await write(request, who, command, 200)


@router.post("/merchants/{merchant_id}/release-hold/clear", response_model=HoldCleared,
             **keyed_write(404))
async def clear_hold(request: Request, merchant_id: Id, body: ReasonIn, who: Authed
                     ) -> JSONResponse:
    """A regulator in scope looked at a run-away pattern: releases go on."""
    return await write(request, who, ClearHold(who, merchant_id, body.reason), 200)


@router.get("/alerts", response_model=Alerts, **keyed_read())
def list_alerts(request: Request, who: Authed,
                wanted: Annotated[AlertsQuery, Query()]) -> dict[str, Any]:
    """The inbox: a regulator's scope's alerts (a district key's: all), a merchant's own."""
    with context_of(request).engine.connect() as conn:
        return views.alerts(conn, who, Page(wanted.after, wanted.limit), wanted.unacknowledged,
                            wanted.merchant_id)


@router.post("/alerts/{alert_id}/acknowledge", response_model=Acknowledged,
             **keyed_write(404, body=False))
async def acknowledge(request: Request, alert_id: NumericId, who: Authed) -> JSONResponse:
    return await write(request, who, AcknowledgeAlert(who, alert_id), 200)


@router.post("/webhooks", status_code=201, response_model=Subscribed, **keyed_write())
async def subscribe(request: Request, body: SubscriptionIn, who: Authed) -> JSONResponse:
    """Alerts of a department or a street POSTed to a URL, signed with HMAC-SHA-256 over the
    body (`X-Yufu-Signature: sha256=<hex>`), retried with backoff."""
    command = Subscribe(who, str(body.url), body.secret, body.department, body.street)
    return await write(request, who, command)


@router.get("/webhooks/deliveries", response_model=Deliveries, **keyed_read())
def list_deliveries(request: Request, who: Authed) -> dict[str, Any]:
    """Every delivery of the subscriptions of the key's scope, with its attempts: a delivery
    that failed for good stays listed as `failed`."""
    with context_of(request).engine.connect() as conn:
        return {"items": views.deliveries(conn, who)}


@router.post("/supervision/rules", status_code=201, response_model=RulesOut,
             **keyed_write())
async def create_rules(request: Request, body: RulesIn, who: Authed) -> JSONResponse:
    """A new version of a jurisdiction's and industry's supervision rules (operator)."""
    require_operator(who)
    command = CreateSupervisionRules(who, body.jurisdiction, body.industry, body.rules)
    return await write(request, who, command)
