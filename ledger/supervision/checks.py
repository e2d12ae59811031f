"""The four checks (四查) over what the books know of a merchant on a day: pure, so a sweep,
an event and a test all judge alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from ledger.custody.rules import basis_points_whole
from ledger.supervision.signals import Signal, SignalKind
from ledger.supervision.thresholds import SupervisionRules

sales_day_window_days = 30  # the trailing daily average today's sales are set against
sales_week_window_days = 90  # ... and this week's
week_days = 7
consumption_window_days = 30


@dataclass(frozen=True, slots=True)
class Facts:
    """A merchant's figures as of a day (ledger/db/supervision_store.py reads them)."""

    as_of: date
    card_liability_fen: int  # outstanding prepaid (paid money not yet consumed or refunded)
    custody_fen: int  # custody cash and money in transit
    required_ratio_bp: int  # the custody rule set's ratio
    prior_year_revenue_fen: int | None  # as recorded for the year before as_of's
    sales_today_fen: int
    sales_week_fen: int  # the 7 days to as_of
    sales_trailing_30_fen: int  # the 30 days before as_of
    sales_trailing_90_fen: int  # the 90 days before this week
    sales_last_30_fen: int  # the 30 days to as_of
    consumption_last_30_fen: int  # paid money consumed, by confirmation date
    consumption_prior_30_fen: int
    open_breaks: int
    cross_verification_difference_fen: int  # the latest one's; 0 if none
    complaints_window: int  # in the rules' complaint window to as_of (0: not yet recorded)
    complaints_prior_window: int  # in the window before
    legal_representative_changes: int  # in the rules' change window
    officer_changes: int
    # Standing records by kind (经营异常名录, 失信被执行人, ...; 舆情 flags): how many, and
    # their sources.
    records: dict[SignalKind, list[str]] = field(default_factory=dict)
    complaints_source: str = "complaints"


def people_changes(before: Sequence[Mapping[str, str]], after: Sequence[Mapping[str, str]]
                   ) -> tuple[int, int]:
    """(1 if the legal representative changed, 1 if the officers did) between two lists of
    a register's people ({"role", "person_id"})."""
    def holders(people: Sequence[Mapping[str, str]]) -> tuple[frozenset[str],
                                                              frozenset[tuple[str, str]]]:
        legal = frozenset(p["person_id"] for p in people
                          if p["role"] == "legal_representative")
        officers = frozenset((p["role"], p["person_id"]) for p in people
                             if p["role"] != "legal_representative")
        return legal, officers
    (legal_before, officers_before), (legal_after, officers_after) = \
        holders(before), holders(after)
    return int(legal_before != legal_after), int(officers_before != officers_after)


def _over(value: int, threshold: int) -> bool:
    return value > threshold


def evaluate(facts: Facts, rules: SupervisionRules) -> list[Signal]:
    """Every signal that stands on facts.as_of under these rules, by kind."""
    f, r = facts, rules
    found: list[Signal] = []

    def raise_if(crossed: bool, kind: SignalKind, value: int, threshold: int,
                 source: str) -> None:
        if crossed:
            found.append(Signal(kind, value, threshold, source))

    # 查资金流水: coverage in basis points of the card liability.
    if f.card_liability_fen > 0:
        coverage = f.custody_fen * basis_points_whole // f.card_liability_fen
        raise_if(coverage < f.required_ratio_bp, SignalKind.coverage_below_required, coverage,
                 f.required_ratio_bp, "custody ledger")
        raise_if(coverage < r.coverage_red_bp, SignalKind.coverage_far_below, coverage,
                 r.coverage_red_bp, "custody ledger")
    if f.prior_year_revenue_fen is not None and f.prior_year_revenue_fen > 0:
        ratio = f.card_liability_fen * basis_points_whole // f.prior_year_revenue_fen
        raise_if(_over(ratio, r.prepaid_to_revenue_bp_max), SignalKind.prepaid_over_revenue,
                 ratio, r.prepaid_to_revenue_bp_max, "custody ledger; recorded revenue")
    day_threshold = max(r.spike_sales_fen_min, f.sales_trailing_30_fen * r.spike_day_multiple_bp
                        // (sales_day_window_days * basis_points_whole))
    raise_if(_over(f.sales_today_fen, day_threshold), SignalKind.sales_spike_day,
             f.sales_today_fen, day_threshold, "card sales")
    week_threshold = max(r.spike_sales_fen_min,
                         f.sales_trailing_90_fen * week_days * r.spike_week_multiple_bp
                         // (sales_week_window_days * basis_points_whole))
    raise_if(_over(f.sales_week_fen, week_threshold), SignalKind.sales_spike_week,
             f.sales_week_fen, week_threshold, "card sales")
    if f.consumption_prior_30_fen >= max(1, r.collapse_consumption_fen_min) and \
            f.sales_last_30_fen > 0:
        share = f.consumption_last_30_fen * basis_points_whole // f.consumption_prior_30_fen
        raise_if(share < r.collapse_consumption_bp, SignalKind.consumption_collapse, share,
                 r.collapse_consumption_bp, "consumptions; card sales")
    raise_if(_over(f.open_breaks, r.open_breaks_max), SignalKind.open_bank_breaks,
             f.open_breaks, r.open_breaks_max, "bank reconciliation")
    difference = abs(f.cross_verification_difference_fen)
    raise_if(difference > 0, SignalKind.cross_verification_difference, difference, 0,
             "cross-verification")
    # 查投诉记录
    raise_if(_over(f.complaints_window, r.complaints_max), SignalKind.complaints_many,
             f.complaints_window, r.complaints_max, f.complaints_source)
    surge = max(r.complaint_surge_min,
                f.complaints_prior_window * r.complaint_surge_bp // basis_points_whole)
    raise_if(f.complaints_window >= surge, SignalKind.complaint_surge, f.complaints_window,
             surge, f.complaints_source)
    # 查经营状态, 查舆情信息
    raise_if(_over(f.legal_representative_changes, r.legal_representative_changes_max),
             SignalKind.legal_representative_changed, f.legal_representative_changes,
             r.legal_representative_changes_max, "merchant_amendments")
    raise_if(_over(f.officer_changes, r.officer_changes_max), SignalKind.officers_changed,
             f.officer_changes, r.officer_changes_max, "merchant_amendments")
    for kind, sources in sorted(f.records.items()):
        raise_if(bool(sources), kind, len(sources), 0, "; ".join(sorted(set(sources))))
    kinds = {s.kind for s in found}
    spike = kinds & {SignalKind.sales_spike_day, SignalKind.sales_spike_week}
    change = kinds & {SignalKind.legal_representative_changed, SignalKind.complaint_surge}
    if spike and change:
        found.append(Signal(SignalKind.run_away_pattern, len(spike) + len(change), 1,
                            "+".join(sorted(k.value for k in spike | change))))
    return sorted(found, key=lambda s: s.kind.value)
