"""Rule sets: what varies by jurisdiction and industry, as data with versions.

Ratios are in basis points (10000 = 100%) so every computation stays in integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from ledger.errors import InvalidInput

basis_points_whole: Final = 10_000


@dataclass(frozen=True, slots=True)
class RuleSet:
    custody_ratio_bp: int
    named_card_value_fen_max: int
    anonymous_card_value_fen_max: int
    sessions_per_payment_max: int
    months_per_payment_max: int
    cooling_off_days: int
    confirmation_required: bool
    confirmation_silence_working_days: int
    release_cadence_days: int
    reserve_share_bp: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "custody_ratio_bp": (0, basis_points_whole),
    "named_card_value_fen_max": (1, 10**12),
    "anonymous_card_value_fen_max": (0, 10**12),
    "sessions_per_payment_max": (1, 100_000),
    "months_per_payment_max": (1, 1200),
    "cooling_off_days": (0, 365),
    "confirmation_silence_working_days": (0, 365),
    "release_cadence_days": (1, 366),
    "reserve_share_bp": (0, basis_points_whole),
}


def parse_rule_set(raw: Mapping[str, Any], base: RuleSet | None = None) -> RuleSet:
    """Validate rule values; fields left out keep the base's value (a new version)."""
    values: dict[str, Any] = asdict(base) if base is not None else {}
    unknown = set(raw) - {f.name for f in fields(RuleSet)}
    if unknown:
        first = sorted(unknown)[0]
        raise InvalidInput(f"unknown rule {first!r}", field=f"rules.{first}")
    values.update(raw)
    for f in fields(RuleSet):
        where = f"rules.{f.name}"
        if f.name not in values:
            raise InvalidInput("is required", field=where)
        value = values[f.name]
        if f.name == "confirmation_required":
            if not isinstance(value, bool):
                raise InvalidInput("must be true or false", field=where)
            continue
        low, high = _BOUNDS[f.name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"must be an integer from {low} to {high}", field=where)
    return RuleSet(**values)


# Beijing defaults (DOMAIN.md): commerce 40% of the prepaid balance; youth sports and
# off-campus training 100%, at most 3 months or 60 lessons per payment, at most 5,000 CNY.
BEIJING_COMMERCE: Final = RuleSet(
    custody_ratio_bp=4_000, named_card_value_fen_max=500_000,
    anonymous_card_value_fen_max=100_000, sessions_per_payment_max=100_000,
    months_per_payment_max=1200, cooling_off_days=7, confirmation_required=False,
    confirmation_silence_working_days=15, release_cadence_days=7, reserve_share_bp=1_000)
BEIJING_TRAINING: Final = RuleSet(
    custody_ratio_bp=10_000, named_card_value_fen_max=500_000,
    anonymous_card_value_fen_max=100_000, sessions_per_payment_max=60,
    months_per_payment_max=3, cooling_off_days=7, confirmation_required=True,
    confirmation_silence_working_days=15, release_cadence_days=7, reserve_share_bp=1_000)

TRAINING_INDUSTRIES: Final = frozenset({"学科类培训", "学历提升类培训", "科技类培训",
                                        "文化艺术类培训", "体育类培训", "体育健身", "托育",
                                        "民办职业培训"})
DEFAULT_JURISDICTION: Final = "beijing"
ANY_INDUSTRY: Final = "*"


def default_rule_sets() -> list[tuple[str, str, RuleSet]]:
    """(jurisdiction, industry, rules) shipped at install; '*' is the industry fallback."""
    shipped = [(DEFAULT_JURISDICTION, ANY_INDUSTRY, BEIJING_COMMERCE)]
    shipped += [(DEFAULT_JURISDICTION, industry, BEIJING_TRAINING)
                for industry in sorted(TRAINING_INDUSTRIES)]
    return shipped
