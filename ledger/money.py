"""Money as integer fen: checking amounts and currencies, and splitting exactly."""

from __future__ import annotations

import re
from collections.abc import Sequence

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
