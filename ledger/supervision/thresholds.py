"""Supervision rules (监管规则): the thresholds of the four checks (四查), the tier rules
(红黄蓝) and the controls that follow a tier, as data per jurisdiction and industry.

Like the custody rule sets (ledger/custody/rules.py) they ship as JSON in the package
(ledger/supervision/thresholds/*.json), are stored versioned and journaled
(`supervision_rules.created`), and a merchant is judged by the latest version of its
jurisdiction and industry, with the `*` industry as the fallback. Ratios are in basis points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from ledger.custody.rules import basis_points_whole
from ledger.errors import InvalidInput
from ledger.supervision.signals import SignalKind

days_window_max: Final = 366
count_threshold_max: Final = 1_000_000
fen_threshold_max: Final = 10**12
multiple_bp_max: Final = 1_000 * basis_points_whole


@dataclass(frozen=True, slots=True)
class SupervisionRules:
    # -- 查资金流水 (fund flows)
    coverage_red_bp: int  # custody below this share of card liability: coverage_far_below
    prepaid_to_revenue_bp_max: int  # outstanding prepaid against prior-year revenue
    spike_day_multiple_bp: int  # today's sales against the trailing 30-day daily average
    spike_week_multiple_bp: int  # this week's against 7 x the trailing 90-day daily average
    spike_sales_fen_min: int  # sales below this are never a spike (a new shop's first day)
    collapse_consumption_bp: int  # last 30 days' consumption below this share of the 30 before
    collapse_consumption_fen_min: int  # ... counted only if the 30 before had at least this
    open_breaks_max: int
    # -- 查投诉记录 (complaints)
    complaint_window_days: int
    complaints_max: int  # in the window
    complaint_surge_bp: int  # the window's count against the window before
    complaint_surge_min: int
    # -- 查经营状态 (operating status)
    change_window_days: int
    legal_representative_changes_max: int  # in the window (频繁变更法人)
    officer_changes_max: int
    # -- 红黄蓝: the tier rules
    red_any: tuple[SignalKind, ...]
    yellow_any: tuple[SignalKind, ...]
    red_when_yellow_signals_at_least: int
    # -- the controls
    yellow_daily_sales_fen_max: int  # 控增量: a yellow merchant's sales per day
    yellow_reserve_share_bp: int  # a yellow merchant's releases keep at least this back
    hold_releases_on_run_away: bool

    def as_dict(self) -> dict[str, Any]:
        view = asdict(self)
        view["red_any"] = [k.value for k in self.red_any]
        view["yellow_any"] = [k.value for k in self.yellow_any]
        return view


_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "coverage_red_bp": (0, basis_points_whole),
    "prepaid_to_revenue_bp_max": (0, multiple_bp_max),
    "spike_day_multiple_bp": (basis_points_whole, multiple_bp_max),
    "spike_week_multiple_bp": (basis_points_whole, multiple_bp_max),
    "spike_sales_fen_min": (0, fen_threshold_max),
    "collapse_consumption_bp": (0, basis_points_whole),
    "collapse_consumption_fen_min": (0, fen_threshold_max),
    "open_breaks_max": (0, count_threshold_max),
    "complaint_window_days": (1, days_window_max),
    "complaints_max": (0, count_threshold_max),
    "complaint_surge_bp": (basis_points_whole, multiple_bp_max),
    "complaint_surge_min": (1, count_threshold_max),
    "change_window_days": (1, days_window_max),
    "legal_representative_changes_max": (0, count_threshold_max),
    "officer_changes_max": (0, count_threshold_max),
    "red_when_yellow_signals_at_least": (1, len(SignalKind)),
    "yellow_daily_sales_fen_max": (0, fen_threshold_max),
    "yellow_reserve_share_bp": (0, basis_points_whole),
}
_KIND_LISTS: Final = ("red_any", "yellow_any")
_FLAGS: Final = ("hold_releases_on_run_away",)


def parse_supervision_rules(raw: Mapping[str, Any], base: SupervisionRules | None = None
                            ) -> SupervisionRules:
    """Validate; fields left out keep the base's value (a new version)."""
    values: dict[str, Any] = base.as_dict() if base is not None else {}
    names = {f.name for f in fields(SupervisionRules)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise InvalidInput(f"unknown rule {unknown[0]!r}", field=f"rules.{unknown[0]}")
    values.update(raw)
    for name in sorted(names):
        where = f"rules.{name}"
        if name not in values:
            raise InvalidInput("is required", field=where)
        value = values[name]
        if name in _FLAGS:
            if not isinstance(value, bool):
                raise InvalidInput("must be true or false", field=where)
        elif name in _KIND_LISTS:
            values[name] = _kinds(value, where)
        else:
            low, high = _BOUNDS[name]
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not low <= value <= high:
                raise InvalidInput(f"must be an integer from {low} to {high}", field=where)
    return SupervisionRules(**values)


def _kinds(value: object, where: str) -> tuple[SignalKind, ...]:
    if not isinstance(value, list | tuple):
        raise InvalidInput("must be a list of signal kinds", field=where)
    kinds = []
    for i, item in enumerate(value):
        if isinstance(item, SignalKind):
            kinds.append(item)
            continue
        if not isinstance(item, str) or item not in SignalKind.__members__:
            raise InvalidInput(f"must be one of {', '.join(SignalKind)}", field=f"{where}[{i}]")
        kinds.append(SignalKind(item))
    return tuple(sorted(set(kinds)))


def parse_shipped(raw: Mapping[str, Any]) -> list[tuple[str, str, SupervisionRules]]:
    """A shipped file: {"jurisdiction", "rules": {industry: rules}}; each industry's rules
    fill in from the `*` industry's."""
    jurisdiction = raw.get("jurisdiction")
    by_industry = raw.get("rules")
    if not isinstance(jurisdiction, str) or not isinstance(by_industry, Mapping) or \
            "*" not in by_industry:
        raise InvalidInput("a shipped file names its jurisdiction and its '*' rules",
                           field="rules")
    fallback = parse_supervision_rules(by_industry["*"])
    shipped = [(jurisdiction, "*", fallback)]
    shipped += [(jurisdiction, industry, parse_supervision_rules(rules, fallback))
                for industry, rules in sorted(by_industry.items()) if industry != "*"]
    return shipped
