"""Complaints (12345 / 12315 工单) at the HTTP edge: what comes in, what goes out."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt

from api.schemas import Day, NextAfter, Out, Seq
from ledger import limits
from ledger.custody.cards import consumer_ref_chars_max
from ledger.supervision.complaints import (
    category_chars_max,
    deadline_days_max,
    department_chars_max,
    external_id_chars_max,
    note_chars_max,
)
from ledger.supervision.register import street_chars_max

ChannelName = Literal["12345", "12315", "direct"]
Status = Literal["received", "returned", "assigned", "merchant_responded", "mediated",
                 "escalated", "resolved", "case_opened"]
StepName = Literal["accept", "return", "reroute", "respond", "mediate", "escalate", "resolve",
                   "open_case"]
DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_day(value: object) -> object:
    """A day as ISO 8601 writes it: pydantic alone also takes `0` (a Unix time)."""
    if isinstance(value, str) and not _ISO_DAY.match(value):
        raise ValueError("must be a date: YYYY-MM-DD")
    return value


def _iso_moment(value: object) -> object:
    """A time of day as ISO 8601 writes it (an offset, or China Standard Time without one):
    not a number of seconds, which pydantic alone would take."""
    if not isinstance(value, str):
        raise ValueError("must be a date and time: YYYY-MM-DDTHH:MM:SS, with an offset or not")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date and time: YYYY-MM-DDTHH:MM:SS, with an offset or "
                         "not") from None
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day)]
IsoMoment = Annotated[datetime, BeforeValidator(_iso_moment)]


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: ChannelName = Field(description="12345, 12315, or direct (直接受理)")
    external_id: str | None = Field(default=None, min_length=1,
                                    max_length=external_id_chars_max,
                                    description="the hotline's order id (工单编号): one "
                                                "complaint per channel's id")
    received_at: IsoMoment = Field(description="when the order was received; without an "
                                              "offset, China Standard Time")
    merchant_id: str | None = Field(default=None, min_length=1, max_length=64)
    credit_code: str | None = Field(default=None, min_length=1, max_length=40,
                                    description="the merchant by its credit code, instead")
    category: str = Field(min_length=1, max_length=category_chars_max,
                          description="诉求类别")
    amount_fen: StrictInt = Field(default=0, ge=0, le=limits.amount_fen_max,
                                  description="the amount at stake")
    card_id: str | None = Field(default=None, min_length=1, max_length=64)
    phone: str | None = Field(default=None, max_length=consumer_ref_chars_max,
                              description="the consumer's phone: kept only as its pseudonym")
    hold_releases: StrictBool = Field(default=False, description="hold the card's releases "
                                      "(as a dispute does) until the complaint is resolved")


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: StepName
    note: str = Field(default="", max_length=note_chars_max,
                      description="the reason: required to send back (退单) or re-route")
    department: str | None = Field(default=None, min_length=1,
                                   max_length=department_chars_max,
                                   description="a re-route's new department")
    street: str | None = Field(default=None, min_length=1, max_length=street_chars_max,
                               description="a re-route's street, if not the merchant's")


class ComplaintOut(Out):
    id: int
    channel: ChannelName
    external_id: str | None
    merchant_id: str
    department: str = Field(description="routed to now (行业主管部门)")
    street: str | None = Field(description="属地")
    jurisdiction: str
    category: str
    amount_fen: int
    card_id: str | None
    holds_card: bool = Field(description="holding the card's releases until resolved")
    consumer_id: str | None = Field(description="the consumer's pseudonym")
    status: Status
    received_at: DateTime
    received_on: Day
    accept_by: Day
    respond_by: Day | None
    close_by: Day
    accepted_on: Day | None
    responded_on: Day | None
    closed_on: Day | None
    deadline_set_id: int
    received_seq: Seq


class FiledComplaint(ComplaintOut):
    journal_seq: Seq


class StepOut(Out):
    journal_seq: Seq
    step: StepName
    from_status: Status
    to_status: Status
    department: str
    from_department: str | None
    key_id: int | None
    note: str
    on: Day


class ComplaintDetail(ComplaintOut):
    steps: list[StepOut]


class ListedComplaint(ComplaintOut):
    overdue: list[Literal["acceptance", "merchant_response", "closure"]] | None = Field(
        default=None, description="with `overdue_as_of`: the deadlines crossed")


class ComplaintsPage(Out):
    items: list[ListedComplaint]
    next_after: NextAfter


class SteppedComplaint(Out):
    complaint_id: int
    merchant_id: str
    step: StepName
    from_status: Status
    to_status: Status
    department: str
    from_department: str | None
    street: str | None
    note: str
    on: Day
    journal_seq: Seq
    complaint: ComplaintOut


class RecordedRow(Out):
    row: int
    complaint_id: int
    journal_seq: Seq


class DuplicateRow(Out):
    row: int
    channel: ChannelName
    external_id: str
    complaint_id: int = Field(description="the complaint it is already recorded as")


class RefusedRow(Out):
    row: int = Field(description="as a spreadsheet numbers it: the header is row 1")
    field: str
    reason: str


class ImportedFile(Out):
    file: dict[str, Any]
    rows: int
    recorded: list[RecordedRow]
    duplicates: list[DuplicateRow]
    refused: list[RefusedRow]


class Rate(Out):
    numerator: int
    denominator: int
    rate_bp: int | None = Field(description="numerator / denominator in basis points, "
                                            "rounded down; null when there is nothing to rate")


class AgeBucket(Out):
    bucket: str
    open: int


class RegisterPart(Out):
    received: int
    open: int


class RegisterParts(Out):
    routed: RegisterPart = Field(description="routed in from 12345 / 12315 (平台分流)")
    direct: RegisterPart = Field(description="received directly (自行接收)")


class ComplaintStats(Out):
    department: str | None
    street: str | None
    from_: Day = Field(alias="from")
    to: Day
    as_of: Day
    received: int
    acceptance_rate: Rate = Field(description="受理率: accepted by `as_of` / received")
    on_time_closure_rate: Rate = Field(description="按时办结率: closed by its deadline / "
                                                   "closed or past its deadline by `as_of`")
    open_by_age_days: list[AgeBucket]
    age_bucket_days_bounds: list[int]
    overdue: int
    register_: RegisterParts = Field(alias="register", description="台账 (seed 004): "
                                     "routed in vs received directly")
    returned: int = Field(description="退单: sent back by the department")
    rerouted_in: int = Field(description="re-routed to the department")
    rerouted_away: int = Field(description="错单: re-routed away from the department")


class PeriodIn(BaseModel):
    """One of {"working_days": n} or {"days": n}."""

    model_config = ConfigDict(extra="forbid")
    working_days: StrictInt | None = Field(default=None, ge=0, le=deadline_days_max)
    days: StrictInt | None = Field(default=None, ge=0, le=deadline_days_max)


class DeadlinesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jurisdiction: str = Field(min_length=1, max_length=50)
    acceptance: PeriodIn = Field(description="受理: from receipt, or from a re-route")
    merchant_response: PeriodIn = Field(description="the merchant's first answer, from "
                                                    "acceptance")
    closure: PeriodIn = Field(description="办结: from receipt")
    source: str = Field(default="", max_length=note_chars_max,
                        description="where these deadlines come from")


class DeadlineSet(Out):
    id: int
    jurisdiction: str
    version: int
    deadlines: dict[Literal["acceptance", "merchant_response", "closure"],
                    dict[Literal["working_days", "days"], int]] = Field(
        description='each {"working_days": n} or {"days": n}')
    source: str


class PublishedDeadlines(DeadlineSet):
    journal_seq: Seq


class StoredDeadlines(DeadlineSet):
    created_seq: Seq


class DeadlineSets(Out):
    items: list[StoredDeadlines]
    next_after: NextAfter
