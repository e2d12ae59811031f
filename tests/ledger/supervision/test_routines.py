"""The routines' pure half: periods in China time, the schedule (which reports are due at a
given instant), and the weekly sweep's ranking. No database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.supervision.routines import (
    ReportKind,
    SweepCandidate,
    SweepReason,
    due,
    last_closed,
    parse_period,
    period_containing,
    rank_sweep,
    report_grace_minutes,
    resolve_period,
)

D, W, M, Q = ReportKind.daily, ReportKind.weekly, ReportKind.monthly, ReportKind.quarterly


def at(text: str) -> datetime:
    """An instant written in China time (UTC+8)."""
    return datetime.fromisoformat(text + "+08:00").astimezone(UTC)


def labels(now: datetime, made: set[tuple[ReportKind, str]] | None = None
           ) -> dict[ReportKind, str]:
    return {d.kind: d.period.label for d in due(now, made or set())}


def test_the_daily_report_is_due_once_the_china_day_has_closed_and_the_grace_passed() -> None:
    just_after_midnight = at("2026-12-08T00:29:59")
    assert labels(just_after_midnight)[D] == "2026-12-06"  # the 7th is still settling
    assert labels(at("2026-12-08T00:30:00"))[D] == "2026-12-07"
    # Midnight in China is 16:00 UTC the day before: the UTC date does not decide.
    assert labels(datetime(2026, 12, 7, 16, 30, tzinfo=UTC))[D] == "2026-12-07"


def test_the_weekly_sweep_is_due_on_monday_the_monthly_on_the_1st_the_quarterly_each_quarter(
        ) -> None:
    sunday, monday = at("2026-12-06T12:00:00"), at("2026-12-07T01:00:00")
    assert labels(sunday)[W] == "2026-W48" and labels(monday)[W] == "2026-W49"
    assert labels(at("2026-11-30T23:00:00"))[M] == "2026-10"
    assert labels(at("2026-12-01T01:00:00"))[M] == "2026-11"
    assert labels(at("2026-12-31T23:00:00"))[Q] == "2026-Q3"
    assert labels(at("2027-01-01T01:00:00")) == {D: "2026-12-31", W: "2026-W52",
                                                 M: "2026-12", Q: "2026-Q4"}


def test_a_report_made_is_not_due_again() -> None:
    now = at("2026-12-07T01:00:00")
    assert labels(now, {(D, "2026-12-06"), (W, "2026-W49")}) == {M: "2026-11", Q: "2026-Q3"}
    everything = {(d.kind, d.period.label) for d in due(now, set())}
    assert due(now, everything) == []


instants = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 1),
                        timezones=st.just(UTC))


@given(instants, st.sampled_from(list(ReportKind)))
def test_the_period_due_is_the_latest_one_closed(now: datetime, kind: ReportKind) -> None:
    period = last_closed(kind, now)
    grace = timedelta(minutes=report_grace_minutes)
    assert period.ends_at + grace <= now  # closed and settled
    following = period_containing(kind, period.end)
    assert following.ends_at + grace > now  # the next one is not
    assert period.start < period.end == following.start


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(9998, 12, 31)),
       st.sampled_from(list(ReportKind)))
def test_a_period_is_named_by_its_label_and_holds_its_days(day: date, kind: ReportKind
                                                           ) -> None:
    period = period_containing(kind, day)
    assert period.start <= day < period.end
    assert parse_period(kind, period.label) == period


@pytest.mark.parametrize(("kind", "label"), [
    (D, "2026-02-30"), (D, "2026-12"), (W, "2026-W54"), (W, "2021-W53"), (M, "2026-13"),
    (Q, "2026-Q5"), (Q, "2026-4"), (M, "２０２６-12"), (D, "0001-01-01"), (D, "9999-12-31"),
    (M, "9999-12"), (Q, "9999-Q4"), (W, "9999-W52")])
def test_a_period_that_does_not_exist_is_refused_naming_the_field(kind: ReportKind, label: str
                                                                  ) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_period(kind, label)
    assert refused.value.field == "period"


def test_a_period_not_begun_is_refused_and_none_named_is_the_latest_closed() -> None:
    now = at("2026-12-08T10:00:00")
    assert resolve_period(D, "2026-12-08", now).label == "2026-12-08"  # begun: in progress
    with pytest.raises(InvalidInput):
        resolve_period(D, "2026-12-09", now)
    assert resolve_period(Q, None, now).label == "2026-Q3"


def candidate(merchant_id: str, tier: str = "blue", shortfall: int = 0, difference: int = 0,
              breaks: int = 0, start: int = 100, end: int = 100, alerts: int = 0,
              signals: tuple[str, ...] = ()) -> SweepCandidate:
    return SweepCandidate(merchant_id, tier, shortfall, difference, breaks, start, end,
                          alerts, signals)


def test_the_sweep_lists_the_heaviest_reasons_first_and_leaves_out_the_healthy() -> None:
    ranked = rank_sweep([
        candidate("m_healthy"), candidate("m_grows", start=100, end=120),
        candidate("m_slow", start=100, end=119), candidate("m_red", tier="red"),
        candidate("m_short_big", shortfall=900), candidate("m_short", shortfall=10, breaks=1),
        candidate("m_new", start=0, end=1)])
    assert [(c.merchant_id, [r.value for r in reasons]) for c, reasons in ranked] == [
        ("m_red", ["red_tier"]),
        ("m_short", ["coverage_shortfall", "open_breaks"]),  # two reasons before one
        ("m_short_big", ["coverage_shortfall"]),
        ("m_grows", ["prepaid_growth"]),  # grew 20 of 100: 20 %, the threshold
        ("m_new", ["prepaid_growth"]),
    ]


def test_an_unseen_alert_comes_after_the_tier_and_a_standing_signal_after_the_money() -> None:
    ranked = rank_sweep([
        candidate("m_signal", signals=("tax_arrears",)),
        candidate("m_grows", start=100, end=200),
        candidate("m_alert_red", tier="red", alerts=1, signals=("run_away_pattern",)),
        candidate("m_alert", alerts=2),
        candidate("m_alert_one", alerts=1),
        candidate("m_breaks", breaks=1),
        candidate("m_yellow", tier="yellow", signals=("sales_spike_day",))])
    assert [(c.merchant_id, [r.value for r in reasons]) for c, reasons in ranked] == [
        ("m_alert_red", ["red_tier", "open_alerts", "active_signals"]),
        ("m_yellow", ["yellow_tier", "active_signals"]),
        ("m_alert", ["open_alerts"]),  # two unseen alerts before one
        ("m_alert_one", ["open_alerts"]),
        ("m_breaks", ["open_breaks"]),
        ("m_signal", ["active_signals"]),
        ("m_grows", ["prepaid_growth"]),
    ]


@given(st.lists(st.builds(
    candidate, st.text("abc", min_size=1, max_size=3), st.sampled_from(["blue", "yellow", "red"]),
    st.integers(0, 10**6), st.integers(-10**6, 10**6), st.integers(0, 5),
    st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 3),
    st.lists(st.sampled_from(["tax_arrears", "sales_spike_day", "run_away_pattern"]),
             max_size=3, unique=True).map(tuple)), max_size=20))
def test_the_sweep_is_a_function_of_its_candidates_and_lists_exactly_those_with_a_reason(
        candidates: list[SweepCandidate]) -> None:
    ranked = rank_sweep(candidates)
    assert ranked == rank_sweep(list(reversed(candidates))) or len(
        {c.merchant_id for c in candidates}) < len(candidates)
    assert sorted(c.merchant_id for c, _ in ranked) == sorted(
        c.merchant_id for c in candidates if c.reasons())
    heaviest = [min(list(SweepReason).index(r) for r in reasons) for _, reasons in ranked]
    assert heaviest == sorted(heaviest)
