"""Releases to merchants and pro-rata payouts at closure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from ledger.custody.rules import basis_points_whole
from ledger.errors import InvalidInput, require
from ledger.money import split_by_weights

epoch_monday = date(2024, 1, 1)


def release_split(earned_fen: int, reserve_share_bp: int) -> tuple[int, int]:
    """(released, held back as reserve) of confirmed earned money."""
    released, held = split_by_weights(
        earned_fen, [basis_points_whole - reserve_share_bp, reserve_share_bp])
    return released, held


# Business dates a cycle may be run for: none before custody rules existed (and the period
# arithmetic stays within the calendar), and no consumption confirmed by silence before its
# day has come; releases may be run ahead (a bank's cut-off), at most this far.
as_of_earliest = date(2000, 1, 1)
release_run_ahead_days_max = 366


def check_as_of(as_of: date, today: date, ahead_days_max: int) -> date:
    """The day a release or auto-confirm cycle runs for, within its bounds."""
    latest = today + timedelta(days=ahead_days_max)
    if not as_of_earliest <= as_of <= latest:
        raise InvalidInput(f"must lie between {as_of_earliest.isoformat()} and "
                           f"{latest.isoformat()}", field="as_of")
    return as_of


def period_of(as_of: date, cadence_days: int) -> tuple[date, date]:
    """The release period [start, end) that ends on or before `as_of`: periods are fixed
    windows of `cadence_days` counted from a Monday, so re-running a day finds the same one."""
    elapsed = (as_of - epoch_monday).days // cadence_days
    end = epoch_monday + timedelta(days=elapsed * cadence_days)
    return end - timedelta(days=cadence_days), end


@dataclass(frozen=True, slots=True)
class Payout:
    card_id: str
    claim_fen: int
    payout_fen: int

    @property
    def shortfall_fen(self) -> int:
        return self.claim_fen - self.payout_fen


def prorate_payouts(claims: Sequence[tuple[str, int]], available_fen: int) -> list[Payout]:
    """Pay every claim in full if custody covers them, else pro rata by largest remainder."""
    total = sum(claim for _, claim in claims)
    require(available_fen >= 0 and all(c >= 0 for _, c in claims), "claims are not negative")
    if not claims:
        return []
    if available_fen >= total:
        return [Payout(card, claim, claim) for card, claim in claims]
    shares = split_by_weights(available_fen, [claim for _, claim in claims])
    return [Payout(card, claim, share) for (card, claim), share in zip(claims, shares, strict=True)]
