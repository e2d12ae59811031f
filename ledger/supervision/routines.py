"""The routines (日管控、周排查、月调度, seed 000; the quarterly report, 季度报告, seed 002).

A report is a kind, a period, a scope and its sections. Each section is a unit: a name, its
titles and columns (in Chinese and English), and a function from a read-only connection and
the report's parameters (`ReportParams`) to rows: ledger/db/report_sections.py holds them.
This module is the pure half: the kinds and their periods in China time, the schedule (which
reports are due at a given instant), the scope, the canonical bytes of a report's figures and
their SHA-256, and the weekly sweep's ranking. No I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Any, Final

from ledger.errors import InvalidInput
from ledger.journal import canonical_json

# China has one time zone and no daylight saving: a fixed offset is exact.
CHINA_TIME: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
# After a period closes, the scheduler waits this long before making its report, so the
# day's last writes (a till's late sale, a statement imported at midnight) are in it.
report_grace_minutes: Final = 30
# How often the scheduler looks for due reports; a report is made once per period anyway.
report_schedule_interval_s: Final = 300.0
# How many times a report is recomputed when writes land between signing the tree head and
# taking the snapshot (each time a new head is signed first). See ledger/db/report_queries.
report_snapshot_attempts_max: Final = 5
# The weekly sweep lists a merchant whose outstanding prepaid grew by this much over the week
# (in basis points of the week's opening figure), or from nothing to something.
sweep_growth_bp_min: Final = 2_000
scope_name_chars_max: Final = 100
# No report of a period before this year (Yufu's journal has nothing older).
report_year_min: Final = 2000
figures_sha256_bytes: Final = 32


class ReportKind(StrEnum):
    daily = "daily"  # 日管控: the daily control report
    weekly = "weekly"  # 周排查: the weekly sweep list
    monthly = "monthly"  # 月调度: the monthly report per department
    quarterly = "quarterly"  # 季度报告: the quarterly report to the coordination office


KIND_NAMES: Final[Mapping[ReportKind, tuple[str, str]]] = {
    ReportKind.daily: ("日管控", "Daily control report"),
    ReportKind.weekly: ("周排查", "Weekly sweep list"),
    ReportKind.monthly: ("月调度", "Monthly report by department"),
    ReportKind.quarterly: ("季度报告", "Quarterly report to the coordination office"),
}

_PERIOD_RE: Final[Mapping[ReportKind, re.Pattern[str]]] = {
    ReportKind.daily: re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})\Z"),
    ReportKind.weekly: re.compile(r"^([0-9]{4})-W([0-9]{2})\Z"),
    ReportKind.monthly: re.compile(r"^([0-9]{4})-([0-9]{2})\Z"),
    ReportKind.quarterly: re.compile(r"^([0-9]{4})-Q([1-4])\Z"),
}
_PERIOD_SHAPE: Final[Mapping[ReportKind, str]] = {
    ReportKind.daily: "YYYY-MM-DD", ReportKind.weekly: "YYYY-Www (ISO week)",
    ReportKind.monthly: "YYYY-MM", ReportKind.quarterly: "YYYY-Qn"}


@dataclass(frozen=True, slots=True)
class Period:
    """Days [start, end) in China time, named by its label (2026-12-07, 2026-W49, 2026-12,
    2026-Q4)."""

    kind: ReportKind
    start: date
    end: date  # the first day after the period

    @property
    def label(self) -> str:
        if self.kind == ReportKind.daily:
            return self.start.isoformat()
        if self.kind == ReportKind.weekly:
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == ReportKind.monthly:
            return f"{self.start.year}-{self.start.month:02d}"
        return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"

    @property
    def starts_at(self) -> datetime:
        """The period's first instant, in UTC."""
        return datetime.combine(self.start, time(), CHINA_TIME).astimezone(UTC)

    @property
    def ends_at(self) -> datetime:
        """The first instant after the period, in UTC."""
        return datetime.combine(self.end, time(), CHINA_TIME).astimezone(UTC)


def _month_after(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def period_containing(kind: ReportKind, day: date) -> Period:
    """The period of `kind` that holds the day (a China-time date)."""
    if kind == ReportKind.daily:
        return Period(kind, day, day + timedelta(days=1))
    if kind == ReportKind.weekly:
        monday = day - timedelta(days=day.weekday())
        return Period(kind, monday, monday + timedelta(days=7))
    if kind == ReportKind.monthly:
        first = day.replace(day=1)
        return Period(kind, first, _month_after(first))
    first = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return Period(kind, first, _month_after(_month_after(_month_after(first))))


def parse_period(kind: ReportKind, label: str) -> Period:
    """The period a label names; InvalidInput (field `period`) for any other text."""
    match = _PERIOD_RE[kind].match(label)
    if match is None:
        raise InvalidInput(f"a {kind.value} period is written {_PERIOD_SHAPE[kind]}",
                           field="period")
    numbers = [int(part) for part in match.groups()]
    if numbers[0] < report_year_min:
        raise InvalidInput(f"reports begin in {report_year_min}", field="period")
    try:
        if kind == ReportKind.daily:
            day = date(*numbers)
        elif kind == ReportKind.weekly:
            day = date.fromisocalendar(numbers[0], numbers[1], 1)
        elif kind == ReportKind.monthly:
            day = date(numbers[0], numbers[1], 1)
        else:
            day = date(numbers[0], (numbers[1] - 1) * 3 + 1, 1)
        period = period_containing(kind, day)
    except (ValueError, OverflowError) as exc:  # no such day, or its period ends past 9999
        raise InvalidInput(f"no such {kind.value} period: {exc}", field="period") from None
    if period.label != label:  # e.g. a week 53 in a year of 52, taken as the next year's 1
        raise InvalidInput(f"no such {kind.value} period {label}", field="period")
    return period


def china_date(moment: datetime) -> date:
    return moment.astimezone(CHINA_TIME).date()


def last_closed(kind: ReportKind, now: datetime) -> Period:
    """The latest period of `kind` that had closed, grace included, at `now`."""
    settled = now - timedelta(minutes=report_grace_minutes)
    current = period_containing(kind, china_date(settled))
    return period_containing(kind, current.start - timedelta(days=1))


def resolve_period(kind: ReportKind, label: str | None, now: datetime) -> Period:
    """The period asked for; when none is named, the latest closed one. A period that has not
    begun yet is refused: there is nothing to report."""
    period = last_closed(kind, now) if label is None else parse_period(kind, label)
    if period.starts_at > now:
        raise InvalidInput(f"the {kind.value} period {period.label} has not begun",
                           field="period")
    return period


@dataclass(frozen=True, slots=True)
class Due:
    kind: ReportKind
    period: Period


def due(now: datetime, made: Collection[tuple[ReportKind, str]]) -> list[Due]:
    """The scheduled reports due at `now` and not yet made (`made`: (kind, period label) of the
    scheduled district reports already stored): for each kind, the latest closed period. So
    the daily report comes after each China day closes, the weekly on Monday, the monthly on
    the 1st and the quarterly on the 1st of January, April, July and October (each once
    the grace has passed); a service that was down catches up with the latest period."""
    wanted = [Due(kind, last_closed(kind, now)) for kind in ReportKind]
    return [d for d in wanted if (d.kind, d.period.label) not in made]


# --- scope -------------------------------------------------------------------------------------


class ScopeKind(StrEnum):
    district = "district"  # every merchant (区): the operator's and a district key's
    department = "department"  # one supervising department (行业主管部门)
    street = "street"  # one street or town (属地)


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.kind == ScopeKind.district) != (self.name is None):
            raise InvalidInput("a department or street scope names one; a district none",
                               field="scope")
        if self.name is not None and not 1 <= len(self.name) <= scope_name_chars_max:
            raise InvalidInput(f"a scope's name is 1 to {scope_name_chars_max} characters",
                               field="scope")

    def view(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "name": self.name}


DISTRICT: Final = Scope(ScopeKind.district)


@dataclass(frozen=True, slots=True)
class ReportAsk:
    """A report to make: its kind, period and scope; scheduled ones are the district's."""

    kind: ReportKind
    period: Period
    scope: Scope = DISTRICT
    scheduled: bool = False


# --- sections ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportParams:
    """What a section is computed from: the report and the snapshot it is computed in."""

    kind: ReportKind
    period: Period
    scope: Scope
    journal_size: int  # the snapshot's: entries 1..journal_size are what the figures see


def canonical_figures(figures: Mapping[str, Any]) -> bytes:
    """The figures as the journal encodes JSON (sorted keys, UTF-8, no whitespace): what the
    SHA-256 named in `report.made` is taken over."""
    return canonical_json(figures)


def figures_sha256(figures: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(canonical_figures(figures)).digest()


# --- the weekly sweep's ranking ----------------------------------------------------------------


class SweepReason(StrEnum):
    """Why a merchant is on the weekly sweep list: its tier, the alerts no regulator has
    seen yet, its 四查 fund-flow side, and the signals standing on it."""

    red_tier = "red_tier"  # 红色标签
    yellow_tier = "yellow_tier"  # 黄色标签
    open_alerts = "open_alerts"  # 未处理预警
    coverage_shortfall = "coverage_shortfall"  # 存管资金不足
    cross_verification_difference = "cross_verification_difference"  # 对账差异
    open_breaks = "open_breaks"  # 未结差错
    active_signals = "active_signals"  # 风险信号
    prepaid_growth = "prepaid_growth"  # 预收款快速增长


# Heaviest first: a merchant's rank is its heaviest reason, then how many it has, then its
# open alerts and standing signals, then the money: shortfall, then growth of outstanding
# prepaid. An alert nobody has acknowledged is a call to look (a run-away pattern is one), so
# it comes straight after the tier; a standing signal is already weighed in the tier, so it
# comes after the fund-flow figures the sweep computes itself.
SWEEP_REASON_ORDER: Final = tuple(SweepReason)


@dataclass(frozen=True, slots=True)
class SweepCandidate:
    merchant_id: str
    tier: str
    shortfall_fen: int  # custody below what the rule set's ratio asks; 0 if none
    difference_fen: int  # the week's largest cross-verification difference, absolute
    open_breaks: int
    liability_start_fen: int  # outstanding prepaid as the week opened
    liability_end_fen: int  # and at the report's snapshot
    open_alerts: int = 0  # alerts raised on it that no regulator has acknowledged
    signals: tuple[str, ...] = ()  # the kinds of the 四查 signals standing on it

    @property
    def growth_fen(self) -> int:
        return self.liability_end_fen - self.liability_start_fen

    def reasons(self) -> list[SweepReason]:
        found = []
        if self.tier == "red":
            found.append(SweepReason.red_tier)
        if self.tier == "yellow":
            found.append(SweepReason.yellow_tier)
        if self.open_alerts > 0:
            found.append(SweepReason.open_alerts)
        if self.shortfall_fen > 0:
            found.append(SweepReason.coverage_shortfall)
        if self.difference_fen != 0:
            found.append(SweepReason.cross_verification_difference)
        if self.open_breaks > 0:
            found.append(SweepReason.open_breaks)
        if self.signals:
            found.append(SweepReason.active_signals)
        if grew_fast(self.liability_start_fen, self.liability_end_fen):
            found.append(SweepReason.prepaid_growth)
        return found


def grew_fast(start_fen: int, end_fen: int) -> bool:
    if end_fen <= start_fen:
        return False
    if start_fen <= 0:
        return True
    return (end_fen - start_fen) * 10_000 >= start_fen * sweep_growth_bp_min


def rank_sweep(candidates: Sequence[SweepCandidate]
               ) -> list[tuple[SweepCandidate, list[SweepReason]]]:
    """The merchants to inspect, most urgent first, each with why; a merchant with no reason
    is not listed. Ties go by merchant id, so the list is a function of its inputs."""
    listed = [(c, c.reasons()) for c in candidates]
    listed = [(c, reasons) for c, reasons in listed if reasons]

    def urgency(item: tuple[SweepCandidate, list[SweepReason]]) -> tuple[Any, ...]:
        c, reasons = item
        heaviest = min(SWEEP_REASON_ORDER.index(r) for r in reasons)
        return (heaviest, -len(reasons), -c.open_alerts, -len(c.signals), -c.shortfall_fen,
                -c.growth_fen, c.merchant_id)

    return sorted(listed, key=urgency)
