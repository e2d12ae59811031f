"""Exact splitting of fen, and the double-entry rules, as properties."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.books import (
    Account,
    AccountKind,
    Posting,
    apply_postings,
    check_balanced,
    normal_sign,
    reversal_of,
)
from ledger.errors import InsufficientFunds, InvalidInput, InvariantViolation, NotFound
from ledger.money import split_by_weights, split_even

MAX_SAFE = 2**53 - 1
TOTALS = st.integers(0, MAX_SAFE)
WEIGHTS = st.lists(st.integers(0, 10**6), min_size=1, max_size=20).filter(lambda w: sum(w) > 0)


# --- split_by_weights ------------------------------------------------------------------------
@given(total=TOTALS, weights=WEIGHTS)
def test_weighted_parts_add_up_to_the_total_exactly(total: int, weights: list[int]) -> None:
    parts = split_by_weights(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total


@given(total=TOTALS, weights=WEIGHTS)
def test_each_weighted_part_is_within_one_fen_of_its_exact_share(total: int,
                                                                 weights: list[int]) -> None:
    weight_sum = sum(weights)
    for part, weight in zip(split_by_weights(total, weights), weights, strict=True):
        # |part - total * weight / weight_sum| < 1, in exact integers
        assert abs(part * weight_sum - total * weight) < weight_sum
        # and never rounded away from the share: it is its floor or its ceiling
        assert total * weight // weight_sum <= part <= -(-total * weight // weight_sum)


@given(total=TOTALS, weights=WEIGHTS)
def test_leftover_fen_go_to_the_largest_remainders_ties_to_the_earlier(
        total: int, weights: list[int]) -> None:
    weight_sum = sum(weights)
    parts = split_by_weights(total, weights)
    got_extra = [part * weight_sum > total * w for part, w in zip(parts, weights, strict=True)]
    remainders = [total * w % weight_sum for w in weights]
    for i in range(len(weights)):
        for j in range(len(weights)):
            if got_extra[i] and not got_extra[j]:
                assert (remainders[i], -i) > (remainders[j], -j)


@given(total=TOTALS, weights=WEIGHTS)
def test_weighted_split_is_deterministic(total: int, weights: list[int]) -> None:
    assert split_by_weights(total, weights) == split_by_weights(total, list(weights))


@given(total=TOTALS, weights=WEIGHTS)
def test_a_zero_weight_gets_nothing(total: int, weights: list[int]) -> None:
    for part, weight in zip(split_by_weights(total, weights), weights, strict=True):
        if weight == 0:
            assert part == 0


def test_weighted_split_examples() -> None:
    assert split_by_weights(100, [1, 1, 1]) == [34, 33, 33]
    assert split_by_weights(100, [1, 2]) == [33, 67]
    assert split_by_weights(1, [1, 1]) == [1, 0]
    assert split_by_weights(5, [0, 3, 0, 2]) == [0, 3, 0, 2]
    assert split_by_weights(0, [0, 0]) == [0, 0]
    assert split_by_weights(MAX_SAFE, [1, 1]) == [2**52, 2**52 - 1]


@pytest.mark.parametrize(("total", "weights"), [(1, [0, 0]), (-1, [1]), (5, []), (5, [1, -1])])
def test_weighted_split_refuses_what_it_cannot_split(total: int, weights: list[int]) -> None:
    with pytest.raises(InvariantViolation):
        split_by_weights(total, weights)


# --- split_even -----------------------------------------------------------------------------
@given(total=st.integers(-MAX_SAFE, MAX_SAFE), parts=st.integers(1, 50))
def test_even_split_adds_up_and_the_last_part_takes_the_remainder(total: int,
                                                                  parts: int) -> None:
    shares = split_even(total, parts)
    base, rest = divmod(total, parts)
    assert sum(shares) == total
    assert shares == [base] * (parts - 1) + [base + rest]
    assert 0 <= shares[-1] - shares[0] < parts


def test_even_split_examples() -> None:
    assert split_even(100, 3) == [33, 33, 34]
    assert split_even(2, 3) == [0, 0, 2]
    assert split_even(9, 1) == [9]
    with pytest.raises(InvariantViolation):
        split_even(9, 0)


# --- check_balanced -------------------------------------------------------------------------
CURRENCIES = st.sampled_from(["CNY", "USD", "HKD"])
POSTINGS = st.lists(
    st.builds(Posting, account_id=st.integers(1, 9), amount_fen=st.integers(-10**6, 10**6),
              currency=CURRENCIES), max_size=8)


def sums_by_currency(postings: list[Posting]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        sums[p.currency] += p.amount_fen
    return sums


@given(postings=POSTINGS)
def test_balanced_means_zero_per_currency(postings: list[Posting]) -> None:
    off = {c: s for c, s in sums_by_currency(postings).items() if s != 0}
    if not off:
        check_balanced(postings)
        return
    with pytest.raises(InvalidInput) as caught:
        check_balanced(postings)
    detail = ", ".join(f"{c} off by {s} fen" for c, s in sorted(off.items()))
    assert caught.value.detail == f"postings must sum to zero per currency ({detail})"
    assert caught.value.field == "postings"


@given(postings=POSTINGS, data=st.data())
def test_closing_each_currency_balances_and_any_change_unbalances(postings: list[Posting],
                                                                 data: st.DataObject) -> None:
    closing = [Posting(1, -s, c) for c, s in sorted(sums_by_currency(postings).items())]
    balanced = postings + closing
    check_balanced(balanced)
    check_balanced(list(reversal_of(balanced)))
    if balanced:
        i = data.draw(st.integers(0, len(balanced) - 1))
        delta = data.draw(st.integers(-1000, 1000).filter(bool))
        p = balanced[i]
        balanced[i] = Posting(p.account_id, p.amount_fen + delta, p.currency)
        with pytest.raises(InvalidInput, match=f"{p.currency} off by {delta} fen"):
            check_balanced(balanced)


# --- apply_postings -------------------------------------------------------------------------
KINDS = st.sampled_from(list(AccountKind))


@st.composite
def books(draw: st.DrawFn) -> tuple[dict[int, Account], list[Posting]]:
    count = draw(st.integers(1, 5))
    accounts = {}
    for account_id in range(1, count + 1):
        kind = draw(KINDS)
        non_negative = draw(st.booleans())
        normal = draw(st.integers(0 if non_negative else -10**6, 10**6))
        accounts[account_id] = Account(account_id, kind, "CNY", non_negative,
                                       normal * normal_sign(kind))
    postings = draw(st.lists(
        st.builds(Posting, account_id=st.integers(1, count),
                  amount_fen=st.integers(-10**6, 10**6).filter(bool), currency=st.just("CNY")),
        min_size=1, max_size=8))
    return accounts, postings


@given(book=books())
def test_postings_move_balances_exactly_or_are_refused_for_insufficient_funds(
        book: tuple[dict[int, Account], list[Posting]]) -> None:
    accounts, postings = book
    before = dict(accounts)
    expected = {a: accounts[a].balance_fen for a in {p.account_id for p in postings}}
    for p in postings:
        expected[p.account_id] += p.amount_fen
    overdrawn = sorted(a for a, balance in expected.items()
                       if accounts[a].non_negative and balance * normal_sign(accounts[a].kind) < 0)
    if overdrawn:
        with pytest.raises(InsufficientFunds, match="must not go negative") as caught:
            apply_postings(accounts, postings)
        assert caught.value.field == "postings"
    else:
        updated = apply_postings(accounts, postings)
        assert {a: acc.balance_fen for a, acc in updated.items()} == expected
        for a, acc in updated.items():
            assert (acc.id, acc.kind, acc.currency, acc.non_negative) == (
                a, accounts[a].kind, "CNY", accounts[a].non_negative)
            if acc.non_negative:
                assert acc.normal_balance_fen >= 0
    assert accounts == before  # pure: the caller's accounts are untouched


def test_non_negative_liability_may_not_be_debited_below_zero() -> None:
    card = Account(1, AccountKind.liability, "CNY", True, -500)  # owes the consumer 500 fen
    cash = Account(2, AccountKind.asset, "CNY", True, 500)
    assert card.normal_balance_fen == 500
    spent = apply_postings({1: card, 2: cash}, [Posting(1, 500, "CNY"), Posting(2, -500, "CNY")])
    assert (spent[1].balance_fen, spent[2].balance_fen) == (0, 0)
    with pytest.raises(InsufficientFunds,
                       match=r"account 1 must not go negative \(it would be -1 fen\)"):
        apply_postings({1: card, 2: cash}, [Posting(1, 501, "CNY"), Posting(2, -501, "CNY")])


def test_an_account_may_dip_within_a_transaction_if_it_ends_non_negative() -> None:
    cash = Account(1, AccountKind.asset, "CNY", True, 0)
    other = Account(2, AccountKind.equity, "CNY", False, 0)
    updated = apply_postings({1: cash, 2: other}, [Posting(1, -7, "CNY"), Posting(2, 7, "CNY"),
                                                   Posting(1, 7, "CNY"), Posting(2, -7, "CNY")])
    assert (updated[1].balance_fen, updated[2].balance_fen) == (0, 0)


def test_unknown_account_and_foreign_currency_are_refused_naming_the_posting() -> None:
    cash = Account(1, AccountKind.asset, "CNY", False, 0)
    with pytest.raises(NotFound, match="account 3 does not exist") as missing:
        apply_postings({1: cash}, [Posting(1, 5, "CNY"), Posting(3, -5, "CNY")])
    assert missing.value.field == "postings[1].account_id"
    with pytest.raises(InvalidInput, match="account 1 holds CNY, not USD") as foreign:
        apply_postings({1: cash}, [Posting(1, 5, "USD")])
    assert foreign.value.field == "postings[0].currency"
