"""Tiers (红黄蓝) are a function of the signals, the rules, the overrides and the day: replayed
from the journal's events they come out as the tier changes recorded along the way."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources

from hypothesis import given
from hypothesis import strategies as st

from ledger.custody.merchants import Tier
from ledger.supervision.signals import SignalKind
from ledger.supervision.thresholds import SupervisionRules, parse_shipped
from ledger.supervision.tiers import Override, computed_tier, judge

RULES: SupervisionRules = parse_shipped(json.loads(
    resources.files("ledger.supervision.shipped").joinpath("beijing.json").read_text()))[0][2]
D0 = date(2026, 6, 1)

kinds = st.sampled_from(sorted(SignalKind))
tiers = st.sampled_from(sorted(Tier))
events = st.one_of(
    st.tuples(st.just("raise"), kinds), st.tuples(st.just("clear"), kinds),
    st.tuples(st.just("override"), tiers, st.one_of(st.none(), st.integers(1, 10))),
    st.tuples(st.just("review"), st.integers(0, 5)),
    st.tuples(st.just("day"), st.integers(1, 4)))


@dataclass
class Books:
    """What the commands keep as they go: the standing signals, the overrides, the day, the
    tier, and the journal of every event (the tier's changes among them)."""

    signals: set[SignalKind] = field(default_factory=set)
    overrides: list[Override] = field(default_factory=list)
    day: date = D0
    tier: Tier = Tier.blue
    journal: list[tuple[object, ...]] = field(default_factory=list)

    def apply(self, event: tuple[object, ...]) -> None:
        seq = len(self.journal) + 1
        what = event[0]
        if what == "raise":
            self.signals.add(event[1])  # type: ignore[arg-type]
        elif what == "clear":
            self.signals.discard(event[1])  # type: ignore[arg-type]
        elif what == "override":
            days = event[2]
            until = None if days is None else self.day + timedelta(days=days)  # type: ignore
            self.overrides.append(Override(seq, event[1], until))  # type: ignore[arg-type]
        elif what == "review":
            standing = [o for o in self.overrides if not o.ended]
            if not standing:
                return
            ended = standing[int(event[1]) % len(standing)]  # type: ignore[call-overload]
            self.overrides = [Override(o.seq, o.tier, o.expires_on, True) if o is ended else o
                              for o in self.overrides]
            event = ("review", ended.seq)
        else:
            self.day += timedelta(days=event[1])  # type: ignore[arg-type]
        self.journal.append(event)
        verdict = judge(self.signals, RULES, self.overrides, self.day)
        if verdict.tier != self.tier:
            self.journal.append(("tier_changed", verdict.tier))
            self.tier = verdict.tier


def replay(journal: list[tuple[object, ...]]) -> tuple[Tier, Tier]:
    """(the tier recomputed from the journal's signals, overrides and days; the last tier
    change the journal records)."""
    signals: set[SignalKind] = set()
    overrides: dict[int, Override] = {}
    day, recorded = D0, Tier.blue
    for seq, event in enumerate(journal, start=1):
        what = event[0]
        if what == "raise":
            signals.add(event[1])  # type: ignore[arg-type]
        elif what == "clear":
            signals.discard(event[1])  # type: ignore[arg-type]
        elif what == "override":
            days = event[2]
            until = None if days is None else day + timedelta(days=days)  # type: ignore
            overrides[seq] = Override(seq, event[1], until)  # type: ignore[arg-type]
        elif what == "review":
            o = overrides[event[1]]  # type: ignore[index]
            overrides[o.seq] = Override(o.seq, o.tier, o.expires_on, True)
        elif what == "day":
            day += timedelta(days=event[1])  # type: ignore[arg-type]
        else:
            recorded = event[1]  # type: ignore[assignment]
    return judge(signals, RULES, overrides.values(), day).tier, recorded


@given(st.lists(events, max_size=40))
def test_the_tier_recomputed_from_the_journal_is_the_tier_it_recorded(
        sequence: list[tuple[object, ...]]) -> None:
    books = Books()
    for event in sequence:
        books.apply(event)
    recomputed, recorded = replay(books.journal)
    assert recomputed == recorded == books.tier


@given(st.lists(kinds, max_size=12), st.randoms())
def test_the_tier_depends_on_which_signals_stand_not_their_order(
        signals: list[SignalKind], random: object) -> None:
    shuffled = list(signals)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert computed_tier(signals, RULES) == computed_tier(shuffled, RULES)


@given(st.sets(kinds))
def test_a_hard_block_or_the_run_away_pattern_is_always_red_and_no_signal_is_blue(
        signals: set[SignalKind]) -> None:
    tier, causes = computed_tier(signals, RULES)
    if signals & set(RULES.red_any):
        assert tier == Tier.red and set(causes) <= signals
    if not signals:
        assert (tier, causes) == (Tier.blue, ())
    assert tier == Tier.blue or causes  # a yellow or red tier names what caused it


@given(tiers, st.integers(1, 30), st.integers(0, 60))
def test_an_override_stands_until_its_day_then_the_signals_decide(
        tier: Tier, days: int, later: int) -> None:
    override = Override(1, tier, D0 + timedelta(days=days))
    verdict = judge({SignalKind.sales_spike_day}, RULES, [override], D0 + timedelta(days=later))
    expected = tier if later < days else Tier.yellow
    assert verdict.tier == expected and verdict.computed == Tier.yellow
