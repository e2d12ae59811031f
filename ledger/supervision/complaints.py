"""Complaints (12345 / 12315 工单): a work order's life, its deadlines and the rates they make.

A complaint about a merchant comes from the government hotline 12345, the market regulator's
12315, or is received directly (直接受理); it is routed to the merchant's supervising
department (行业主管部门) and its street (属地). Its life is an enum with the transitions below,
each a step journaled as `complaint.<step's status>`; its deadlines are data per jurisdiction
(complaint_deadlines.json beside this module, stored versioned and journaled the first time a
jurisdiction's complaint needs them).

Pure: dates in, dates out. The rates (受理率, 按时办结率) are integer numerators and
denominators; the basis points are derived from them, never the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from importlib import resources
from typing import Any, Final

from ledger.custody.cards import working_days_after
from ledger.errors import Conflict, InvalidInput

category_chars_max: Final = 100
external_id_chars_max: Final = 64
note_chars_max: Final = 500
department_chars_max: Final = 50
# Open complaints by age in calendar days since received: the upper bounds of each bucket
# but the last (0-1, 2-7, 8-30, 31 and over).
open_age_bucket_days_bounds: Final = (1, 7, 30)
deadline_days_max: Final = 365
basis_points_whole: Final = 10_000
ANY_JURISDICTION: Final = "*"  # the deadlines of a jurisdiction that ships none of its own


class Channel(StrEnum):
    """Where a work order came from: the complaint register's two parts (seed 004: 区局平台分流的
    vs 自行接收的) are the hotlines against `direct`."""

    hotline_12345 = "12345"  # 政务服务便民热线
    hotline_12315 = "12315"  # 市场监管投诉举报热线
    direct = "direct"  # 直接受理

    @property
    def routed(self) -> bool:
        return self is not Channel.direct


CHANNEL_NAMES: Final[Mapping[str, Channel]] = {
    "12345": Channel.hotline_12345, "12315": Channel.hotline_12315,
    "direct": Channel.direct, "直接受理": Channel.direct}


def parse_channel(text: object, field: str = "channel") -> Channel:
    channel = CHANNEL_NAMES.get(str(text).strip()) if isinstance(text, str | int) else None
    if channel is None:
        raise InvalidInput("must be 12345, 12315 or direct (直接受理)", field=field)
    return channel


class ComplaintStatus(StrEnum):
    received = "received"  # 已接收: routed, waiting for the department to accept it
    returned = "returned"  # 退单: sent back by the department as not its own, to re-route
    assigned = "assigned"  # 已受理: accepted by the department, the merchant asked to answer
    merchant_responded = "merchant_responded"  # 商户已答复
    mediated = "mediated"  # 已调解
    escalated = "escalated"  # 已升级: to the district or the joint meeting (联席会议)
    resolved = "resolved"  # 已办结
    case_opened = "case_opened"  # 诉转案: an administrative case opened on it

    @property
    def closed(self) -> bool:
        return self in CLOSED


CLOSED: Final = frozenset({ComplaintStatus.resolved, ComplaintStatus.case_opened})


class Step(StrEnum):
    """What is done to a complaint; each names the status it leads to (`STEPS`)."""

    accept = "accept"  # 受理
    return_ = "return"  # 退单
    reroute = "reroute"  # 改派
    respond = "respond"  # the merchant's answer, through its own key
    mediate = "mediate"  # 调解
    escalate = "escalate"  # 升级
    resolve = "resolve"  # 办结
    open_case = "open_case"  # 诉转案


S = ComplaintStatus
# step -> (the statuses it may be taken from, the status it leads to)
STEPS: Final[Mapping[Step, tuple[frozenset[ComplaintStatus], ComplaintStatus]]] = {
    Step.accept: (frozenset({S.received}), S.assigned),
    Step.return_: (frozenset({S.received}), S.returned),
    Step.reroute: (frozenset({S.received, S.returned}), S.received),
    Step.respond: (frozenset({S.assigned}), S.merchant_responded),
    Step.mediate: (frozenset({S.assigned, S.merchant_responded, S.escalated}), S.mediated),
    Step.escalate: (frozenset({S.assigned, S.merchant_responded, S.mediated}), S.escalated),
    Step.resolve: (frozenset({S.merchant_responded, S.mediated, S.escalated}), S.resolved),
    Step.open_case: (frozenset({S.assigned, S.merchant_responded, S.mediated, S.escalated}),
                     S.case_opened),
}
# Every (from, to) the database lets a complaint's status take (migration 0017's trigger).
TRANSITIONS: Final = frozenset((before, after) for befores, after in STEPS.values()
                               for before in befores)


def status_after(step: Step, status: ComplaintStatus) -> ComplaintStatus:
    befores, after = STEPS[step]
    if status not in befores:
        allowed = ", ".join(sorted(befores))
        raise Conflict(f"a complaint {status.value} cannot take the step {step.value} "
                       f"(only from: {allowed})", field="step")
    return after


# -- deadlines (data per jurisdiction) -----------------------------------------------------


class DayUnit(StrEnum):
    working_days = "working_days"  # Monday to Friday (public holidays are not modelled)
    days = "days"


@dataclass(frozen=True, slots=True)
class Period:
    count: int
    unit: DayUnit

    def after(self, start: date) -> date:
        if self.unit is DayUnit.working_days:
            return working_days_after(start, self.count)
        return start + timedelta(days=self.count)

    def view(self) -> dict[str, int]:
        return {self.unit.value: self.count}


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Acceptance (受理) counted from receipt (or from a re-route), the merchant's first
    response from acceptance, closure (办结) from receipt."""

    acceptance: Period
    merchant_response: Period
    closure: Period

    def view(self) -> dict[str, dict[str, int]]:
        return {"acceptance": self.acceptance.view(),
                "merchant_response": self.merchant_response.view(),
                "closure": self.closure.view()}


DEADLINE_NAMES: Final = ("acceptance", "merchant_response", "closure")


def parse_deadlines(raw: object, where: str = "deadlines") -> Deadlines:
    if not isinstance(raw, Mapping):
        raise InvalidInput("must be an object", field=where)
    unknown = set(raw) - set(DEADLINE_NAMES) - {"source"}
    if unknown:
        raise InvalidInput(f"unknown deadlines: {sorted(unknown)}", field=where)
    periods = [_period(raw.get(name), f"{where}.{name}" if where else name)
               for name in DEADLINE_NAMES]
    return Deadlines(*periods)


def _period(raw: object, where: str) -> Period:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise InvalidInput("must be one of {\"working_days\": n} or {\"days\": n}", field=where)
    [(unit, count)] = raw.items()
    if unit not in DayUnit.__members__:
        raise InvalidInput("the unit must be working_days or days", field=where)
    if not isinstance(count, int) or isinstance(count, bool) or \
            not 0 <= count <= deadline_days_max:
        raise InvalidInput(f"must be a whole number of days, 0 to {deadline_days_max}",
                           field=where)
    return Period(count, DayUnit(unit))


def shipped_deadlines() -> dict[str, Deadlines]:
    """The deadlines shipped in the package, by jurisdiction (`*`: any other)."""
    text = resources.files("ledger.supervision").joinpath(
        "complaint_deadlines.json").read_text(encoding="utf-8")
    raw: dict[str, Any] = json.loads(text)
    return {name: parse_deadlines(value, name) for name, value in raw.items()
            if not name.startswith("_")}


def shipped_for(jurisdiction: str) -> Deadlines:
    shipped = shipped_deadlines()
    return shipped.get(jurisdiction) or shipped[ANY_JURISDICTION]


# -- a complaint -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Complaint:
    id: int
    channel: Channel
    external_id: str | None
    merchant_id: str
    department: str  # where it is routed now
    street: str | None
    jurisdiction: str
    category: str
    amount_fen: int
    card_id: str | None
    holds_card: bool  # it holds the card's releases (a dispute) until it is resolved
    consumer_id: str | None
    status: ComplaintStatus
    received_at: datetime  # as the work order gives it
    received_on: date  # the China date of receipt: the deadlines count from it
    accept_by: date
    respond_by: date | None
    close_by: date
    accepted_on: date | None
    responded_on: date | None
    closed_on: date | None
    deadline_set_id: int
    received_seq: int

    def overdue(self, as_of: date) -> list[str]:
        """The deadlines this complaint has crossed unmet at the end of `as_of` (each step
        as of that day: one taken later had not happened yet)."""
        accepted, responded, closed = (_by(self.accepted_on, as_of),
                                       _by(self.responded_on, as_of),
                                       _by(self.closed_on, as_of))
        crossed = []
        if not accepted and self.accept_by < as_of:
            crossed.append("acceptance")
        if self.respond_by is not None and self.respond_by < as_of and not responded \
                and not closed:
            crossed.append("merchant_response")
        if not closed and self.close_by < as_of:
            crossed.append("closure")
        return crossed


def _by(day: date | None, as_of: date) -> bool:
    return day is not None and day <= as_of


def rate_bp(numerator: int, denominator: int) -> int | None:
    """The rate in basis points, rounded down; None when there is nothing to rate."""
    if denominator == 0:
        return None
    return numerator * basis_points_whole // denominator


def age_bucket(received_on: date, as_of: date) -> str:
    """The name of the age bucket of an item received on `received_on`, as of `as_of`."""
    age = (as_of - received_on).days
    low = 0
    for high in open_age_bucket_days_bounds:
        if age <= high:
            return f"{low}-{high}"
        low = high + 1
    return f"{low}+"


def age_bucket_names() -> list[str]:
    names, low = [], 0
    for high in open_age_bucket_days_bounds:
        names.append(f"{low}-{high}")
        low = high + 1
    return [*names, f"{low}+"]


def check_text(value: str, field: str, chars_max: int) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput("must not be blank", field=field)
    if len(text) > chars_max:
        raise InvalidInput(f"must be at most {chars_max} characters", field=field)
    return text
