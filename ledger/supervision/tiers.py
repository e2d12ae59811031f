"""Tiers (红黄蓝): a merchant's tier as a pure function of its active signals, the tier rules
(data: ledger/supervision/thresholds.py), the overrides a regulator recorded, and the day.

Red: any signal of `red_any` (a hard block: 失信被执行人, 经营异常名录, 注销; coverage far
below; the run-away pattern), or at least `red_when_yellow_signals_at_least` yellow signals at
once. Yellow: any signal of `yellow_any`. Blue otherwise. An override stands from its entry
until its expiry date (exclusive) or the review that ends it, and then wins: the latest one
standing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from ledger.custody.merchants import Tier
from ledger.supervision.signals import SignalKind
from ledger.supervision.thresholds import SupervisionRules


@dataclass(frozen=True, slots=True)
class Override:
    """A regulator's or the operator's tier for a merchant, with its reason."""

    seq: int  # the journal entry that recorded it: the later wins
    tier: Tier
    expires_on: date | None  # None: until a review ends it
    ended: bool = False  # a review ended it

    def stands(self, as_of: date) -> bool:
        return not self.ended and (self.expires_on is None or as_of < self.expires_on)


@dataclass(frozen=True, slots=True)
class Judgement:
    tier: Tier
    computed: Tier  # what the signals alone give
    causes: tuple[SignalKind, ...]  # the signals that made `computed` (none for blue)
    override_seq: int | None  # the override that decided `tier`, if one did


def computed_tier(kinds: Iterable[SignalKind], rules: SupervisionRules
                  ) -> tuple[Tier, tuple[SignalKind, ...]]:
    active = frozenset(kinds)
    red = tuple(sorted(active & set(rules.red_any)))
    yellow = tuple(sorted(active & set(rules.yellow_any)))
    if red:
        return Tier.red, red
    if len(yellow) >= rules.red_when_yellow_signals_at_least:
        return Tier.red, yellow
    if yellow:
        return Tier.yellow, yellow
    return Tier.blue, ()


def judge(kinds: Iterable[SignalKind], rules: SupervisionRules,
          overrides: Iterable[Override], as_of: date) -> Judgement:
    computed, causes = computed_tier(kinds, rules)
    standing = [o for o in overrides if o.stands(as_of)]
    if standing:
        latest = max(standing, key=lambda o: o.seq)
        return Judgement(latest.tier, computed, causes, latest.seq)
    return Judgement(computed, computed, causes, None)
