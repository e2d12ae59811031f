"""Money as integer fen with its currency, and exact splitting."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger import limits
from ledger.errors import InvalidInput, require

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def check_currency(currency: str, field: str = "currency") -> str:
    if not isinstance(currency, str) or not _CURRENCY_RE.match(currency):
        raise InvalidInput("must be a three-letter ISO 4217 code such as CNY", field=field)
    return currency


def check_amount(amount_fen: object, field: str, *, allow_zero: bool = False,
                 allow_negative: bool = False) -> int:
    """Validate an amount in fen coming from outside; returns it as int."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise InvalidInput("must be an integer number of fen", field=field)
    if abs(amount_fen) > limits.amount_fen_max:
        raise InvalidInput(f"must be at most {limits.amount_fen_max} fen in magnitude", field=field)
    if amount_fen == 0 and not allow_zero:
        raise InvalidInput("must not be zero", field=field)
    if amount_fen < 0 and not allow_negative:
        raise InvalidInput("must be positive", field=field)
    return amount_fen


@dataclass(frozen=True, slots=True)
class Money:
    fen: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        require(isinstance(self.fen, int) and not isinstance(self.fen, bool), "fen is an int")
        require(bool(_CURRENCY_RE.match(self.currency)), "currency is ISO 4217")

    def __add__(self, other: Money) -> Money:
        require(self.currency == other.currency, "same currency")
        return Money(self.fen + other.fen, self.currency)

    def __sub__(self, other: Money) -> Money:
        require(self.currency == other.currency, "same currency")
        return Money(self.fen - other.fen, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.fen, self.currency)


def split_by_weights(total_fen: int, weights: Sequence[int]) -> list[int]:
    """Split `total_fen` in proportion to integer `weights`, distributing every fen.

    Largest remainder (Hamilton): each part gets the floor of its exact share, then the
    fen left over go one each to the largest remainders, ties to the earlier part. The
    parts always add up to `total_fen` exactly.
    """
    require(total_fen >= 0, "split total is not negative")
    require(len(weights) > 0 and all(w >= 0 for w in weights), "weights are not negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        require(total_fen == 0, "a positive total needs a positive weight")
        return [0] * len(weights)
    floors = [total_fen * w // weight_sum for w in weights]
    remainders = [total_fen * w % weight_sum for w in weights]
    left_fen = total_fen - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left_fen]:
        floors[i] += 1
    require(sum(floors) == total_fen, "split distributes every fen")
    return floors


def split_even(total_fen: int, parts: int) -> list[int]:
    """Split into `parts` nearly equal amounts; the last part takes the remainder."""
    require(parts > 0, "at least one part")
    base, rest = divmod(total_fen, parts)
    shares = [base] * parts
    shares[-1] += rest
    return shares


def share_of(total_fen: int, numerator: int, denominator: int) -> int:
    """floor(total * numerator / denominator) in exact integers; the caller keeps the rest."""
    require(denominator > 0 and numerator >= 0, "a valid ratio")
    return total_fen * numerator // denominator
