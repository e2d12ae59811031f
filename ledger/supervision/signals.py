"""Signals (风险信号): what the four checks (四查) found about a merchant, each with its value,
the threshold it crossed, its source and the day it was seen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Check(StrEnum):
    """Seed 000's four checks: 查资金流水、查投诉记录、查经营状态、查舆情信息."""

    fund_flows = "fund_flows"
    complaints = "complaints"
    operating_status = "operating_status"
    public_sentiment = "public_sentiment"


class SignalKind(StrEnum):
    # 查资金流水
    coverage_below_required = "coverage_below_required"
    coverage_far_below = "coverage_far_below"
    prepaid_over_revenue = "prepaid_over_revenue"
    sales_spike_day = "sales_spike_day"
    sales_spike_week = "sales_spike_week"
    consumption_collapse = "consumption_collapse"
    open_bank_breaks = "open_bank_breaks"
    cross_verification_difference = "cross_verification_difference"
    # 查投诉记录
    complaints_many = "complaints_many"
    complaint_surge = "complaint_surge"
    # 查经营状态
    legal_representative_changed = "legal_representative_changed"
    officers_changed = "officers_changed"
    abnormal_operations_list = "abnormal_operations_list"  # 经营异常名录
    court_listed_defaulter = "court_listed_defaulter"  # 失信被执行人
    litigation = "litigation"  # 涉诉
    tax_arrears = "tax_arrears"  # 欠税
    deregistering = "deregistering"  # 注销
    # 查舆情信息
    public_sentiment = "public_sentiment"
    # Derived: a sales spike with a change of legal representative or a complaint surge
    # (the discount drive before a run, 关门跑路).
    run_away_pattern = "run_away_pattern"


_KINDS_OF_CHECK: dict[Check, tuple[SignalKind, ...]] = {
    Check.fund_flows: (
        SignalKind.coverage_below_required, SignalKind.coverage_far_below,
        SignalKind.prepaid_over_revenue, SignalKind.sales_spike_day, SignalKind.sales_spike_week,
        SignalKind.consumption_collapse, SignalKind.open_bank_breaks,
        SignalKind.cross_verification_difference, SignalKind.run_away_pattern),
    Check.complaints: (SignalKind.complaints_many, SignalKind.complaint_surge),
    Check.operating_status: (
        SignalKind.legal_representative_changed, SignalKind.officers_changed,
        SignalKind.abnormal_operations_list, SignalKind.court_listed_defaulter,
        SignalKind.litigation, SignalKind.tax_arrears, SignalKind.deregistering),
    Check.public_sentiment: (SignalKind.public_sentiment,),
}
CHECK_OF: Mapping[SignalKind, Check] = {
    kind: check for check, kinds in _KINDS_OF_CHECK.items() for kind in kinds}

# Operating-status records a regulator imports or enters (keyed by credit code), each of
# which is a signal while it stands; and the ones that block sales outright (the custody
# side's hard blocks, ledger/custody/merchants.py HARD_BLOCKS, by the same names).
RECORDED_KINDS: frozenset[SignalKind] = frozenset({
    SignalKind.abnormal_operations_list, SignalKind.court_listed_defaulter,
    SignalKind.litigation, SignalKind.tax_arrears, SignalKind.deregistering,
    SignalKind.public_sentiment})
HARD_BLOCK_KINDS: frozenset[SignalKind] = frozenset({
    SignalKind.court_listed_defaulter, SignalKind.abnormal_operations_list,
    SignalKind.deregistering})


class SignalState(StrEnum):
    raised = "raised"
    cleared = "cleared"


@dataclass(frozen=True, slots=True)
class Signal:
    """An active signal: `value` crossed `threshold` (both integers in the unit the kind
    names: fen, basis points, or a count), seen by `source`."""

    kind: SignalKind
    value: int
    threshold: int
    source: str

    @property
    def check(self) -> Check:
        return CHECK_OF[self.kind]

    def view(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "check": self.check.value, "value": self.value,
                "threshold": self.threshold, "source": self.source}
