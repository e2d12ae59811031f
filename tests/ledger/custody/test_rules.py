"""The custody rules' fen arithmetic, as pure functions: every fen is accounted for."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.department_maps import shipped_department_maps
from ledger.custody.cards import (
    CardKind,
    CardMoney,
    consume,
    custody_split,
    refund_remaining,
)
from ledger.custody.settlement import prorate_payouts

paid_fen = st.integers(min_value=1, max_value=10**9)
ratio_bp = st.integers(min_value=0, max_value=10_000)


@settings(max_examples=200)
@given(paid=paid_fen, bp=ratio_bp)
def test_custody_split_distributes_every_fen(paid: int, bp: int) -> None:
    custodied, direct = custody_split(paid, bp)
    assert custodied + direct == paid
    assert 0 <= custodied <= paid and 0 <= direct <= paid
    # Largest remainder between two parts, ties to custody: the custodied share is the exact
    # share rounded half up.
    assert custodied == (paid * bp + 5_000) // 10_000


def test_custody_split_known_values() -> None:
    assert custody_split(100_000, 4_000) == (40_000, 60_000)
    assert custody_split(12_345, 4_000) == (4_938, 7_407)  # 4938.0 exactly
    assert custody_split(1, 4_000) == (0, 1)  # 0.4 rounds down
    assert custody_split(3, 5_000) == (2, 1)  # 1.5: the tie goes to custody
    assert custody_split(99_999, 10_000) == (99_999, 0)
    assert custody_split(99_999, 0) == (0, 99_999)


@st.composite
def cards(draw: st.DrawFn) -> CardMoney:
    kind = draw(st.sampled_from([CardKind.stored_value, CardKind.sessions]))
    paid = draw(st.integers(min_value=1, max_value=2_000_000))
    base = paid if kind == CardKind.stored_value else draw(st.integers(1, 200))
    bonus = draw(st.integers(0, paid if kind == CardKind.stored_value else 50))
    custody, _ = custody_split(paid, draw(ratio_bp))
    return CardMoney(kind, paid, custody, base + bonus, 0, 0, 0)


def _used(card: CardMoney, units: int) -> CardMoney:
    step = consume(card, units)
    assert step.units == units
    assert step.paid_fen >= 0 and 0 <= step.custody_fen <= step.paid_fen
    assert step.direct_fen == step.paid_fen - step.custody_fen
    return CardMoney(card.kind, card.paid_fen, card.custody_fen, card.total_units,
                     card.used_units + units, card.consumed_paid_fen + step.paid_fen,
                     card.consumed_custody_fen + step.custody_fen)


@settings(max_examples=150)
@given(card=cards(), data=st.data())
def test_consuming_in_random_chunks_ends_with_exactly_what_was_paid(card: CardMoney,
                                                                   data: st.DataObject) -> None:
    # Random chunk sizes: cut the card's units at random points, use them chunk by chunk.
    cuts = data.draw(st.lists(st.integers(1, max(1, card.total_units - 1)), max_size=40,
                              unique=True)) if card.total_units > 1 else []
    bounds = [0, *sorted(cuts), card.total_units]
    for start, end in itertools.pairwise(bounds):
        before = card
        card = _used(card, end - start)
        # Cumulative, so the paid money consumed never runs ahead of the value used.
        assert card.consumed_paid_fen * card.total_units <= card.paid_fen * card.used_units
        assert card.consumed_paid_fen >= before.consumed_paid_fen
    assert card.used_units == card.total_units
    assert card.consumed_paid_fen == card.paid_fen
    assert card.consumed_custody_fen == card.custody_fen
    assert card.remaining_paid_fen == 0 and card.remaining_custody_fen == 0


@settings(max_examples=100)
@given(kind=st.sampled_from([CardKind.stored_value, CardKind.sessions]),
       paid=st.integers(1, 100_000), extra=st.integers(0, 30))
def test_consuming_unit_by_unit_ends_exact(kind: CardKind, paid: int, extra: int) -> None:
    total = (paid if kind == CardKind.stored_value else 1 + extra % 30) + extra
    if kind == CardKind.stored_value:
        total = min(total, 400)  # unit by unit: keep the card small
        paid = min(paid, total)
    custody, _ = custody_split(paid, 4_000)
    card = CardMoney(kind, paid, custody, total, 0, 0, 0)
    for _ in range(total):
        card = _used(card, 1)
    assert (card.consumed_paid_fen, card.consumed_custody_fen) == (paid, custody)


def test_session_card_prices_sessions_evenly_and_the_last_takes_the_remainder() -> None:
    card = CardMoney(CardKind.sessions, 100_000, 100_000, 3, 0, 0, 0)
    amounts = []
    for _ in range(3):
        amounts.append(consume(card, 1).paid_fen)
        card = _used(card, 1)
    assert amounts == [33_333, 33_333, 33_334]
    # Bonus value is prorated: 1000.00 paid plus 200.00 bonus, 600.00 of value used.
    stored = CardMoney(CardKind.stored_value, 100_000, 40_000, 120_000, 0, 0, 0)
    step = consume(stored, 60_000)
    assert (step.paid_fen, step.custody_fen, step.direct_fen) == (50_000, 20_000, 30_000)


@settings(max_examples=150)
@given(card=cards(), data=st.data())
def test_refund_after_random_consumption_returns_the_rest(card: CardMoney,
                                                          data: st.DataObject) -> None:
    for _ in range(data.draw(st.integers(0, 5))):
        if card.remaining_units == 0:
            break
        card = _used(card, data.draw(st.integers(1, card.remaining_units)))
    refund = refund_remaining(card)
    assert refund.paid_fen + card.consumed_paid_fen == card.paid_fen
    assert refund.custody_fen + card.consumed_custody_fen == card.custody_fen
    assert refund.merchant_due_fen == refund.paid_fen - refund.custody_fen
    assert 0 <= refund.custody_fen <= refund.paid_fen


claims_lists = st.lists(st.integers(0, 10**7), min_size=1, max_size=30)


@settings(max_examples=200)
@given(amounts=claims_lists, available=st.integers(0, 3 * 10**8))
def test_prorate_payouts_pays_every_available_fen_and_never_more_than_a_claim(
        amounts: list[int], available: int) -> None:
    claims = [(f"card_{i:03d}", amount) for i, amount in enumerate(amounts)]
    payouts = prorate_payouts(claims, available)
    total = sum(amounts)
    assert [p.card_id for p in payouts] == [card for card, _ in claims]
    assert sum(p.payout_fen for p in payouts) == min(available, total)
    for payout, (_, claim) in zip(payouts, claims, strict=True):
        assert payout.claim_fen == claim
        assert 0 <= payout.payout_fen <= claim
        assert payout.shortfall_fen == claim - payout.payout_fen
        if available < total:  # within one fen of the exact pro-rata share
            exact = Fraction(claim * available, total)
            assert exact - 1 < payout.payout_fen < exact + 1


def test_prorate_payouts_known_values() -> None:
    # 100 fen over claims 1:1:1: 33, 33, 33 and the last fen to the earliest largest remainder.
    payouts = prorate_payouts([("a", 50), ("b", 50), ("c", 50)], 100)
    assert [p.payout_fen for p in payouts] == [34, 33, 33]
    payouts = prorate_payouts([("a", 10), ("b", 30), ("c", 60)], 7)
    assert [p.payout_fen for p in payouts] == [1, 2, 4]  # 0.7, 2.1, 4.2
    payouts = prorate_payouts([("a", 10), ("b", 30)], 1_000)
    assert [p.payout_fen for p in payouts] == [10, 30]
    assert prorate_payouts([], 500) == []


@pytest.mark.parametrize(("industry", "department", "pending"), [
    ("美容美发", "区商务局", False),
    ("餐饮", "区商务局", False),
    ("体育健身", "区文旅体局", False),
    ("学科类培训", "区教育局", False),
    ("托育", "区卫健委", False),
    ("医美", "区卫健委", False),
    ("汽车4S店", "区市监局", False),
    (" 餐饮 ", "区商务局", False),
    ("星际旅行", "区市监局", True),
])
def test_department_for_maps_the_seed_examples(industry: str, department: str,
                                               pending: bool) -> None:
    beijing = next(m for m, _ in shipped_department_maps() if m.jurisdiction == "beijing")
    assert beijing.department_for(industry) == (department, pending)
