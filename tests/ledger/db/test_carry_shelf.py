"""What a committed or rolled-back batch leaves on its writer's shelf (ledger/db/carry.py).

The carry's promises against the database are tests/custody/test_carry.py's; these are the
decisions alone, on values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.books import Account, AccountKind
from ledger.db import carry as carry_module
from ledger.db import custody_tables as c
from ledger.db.carry import Beside, Carry, Shelf, after_commit
from ledger.db.rowcache import RowCache

HEAD = (7, 41, b"h" * 32)
AFTER = (8, 42, b"i" * 32)


def _card_rows() -> RowCache:
    rows = RowCache(None)  # type: ignore[arg-type]  # no read nor flush here
    rows.remember(c.Card, "c_1", {"id": "c_1", "used_units": 1})
    return rows


def _carry() -> Carry:
    return Carry(HEAD, {1: Account(1, AccountKind.asset, "CNY", False, 5)},
                 {(c.Card, "c_0"): {"id": "c_0"}})


def test_a_commit_that_journaled_passes_its_rows_and_balances_on_under_the_new_head() -> None:
    account = Account(2, AccountKind.liability, "CNY", True, -3)
    passed = after_commit(_carry(), AFTER, Beside(False, True), {2: account}, _card_rows())
    assert passed is not None and passed.head == AFTER
    assert set(passed.accounts) == {1, 2} and passed.accounts[2] == account
    assert set(passed.rows) == {(c.Card, "c_0"), (c.Card, "c_1")}


def test_a_commit_that_wrote_nothing_passes_the_carry_on_as_it_was() -> None:
    carry = _carry()
    assert after_commit(carry, None, Beside(False, False), {}, RowCache(None)) is carry  # type: ignore[arg-type]
    assert carry.head == HEAD


def test_nobody_vouches_for_a_carry_after_writes_it_does_not_hold() -> None:
    rows = _card_rows()
    assert after_commit(_carry(), AFTER, Beside(True, False), {}, rows) is None  # SQL of its own
    assert after_commit(_carry(), None, Beside(True, False), {}, rows) is None
    assert after_commit(_carry(), None, Beside(False, True), {}, rows) is None  # rows, no journal


def test_a_carry_past_its_bound_drops_what_no_batch_used_for_longest(monkeypatch: Any) -> None:
    monkeypatch.setattr(carry_module, "carry_rows_max", 2)
    monkeypatch.setattr(carry_module, "carry_accounts_max", 1)
    carry = _carry()
    carry.rows[(c.Card, "c_1")] = {"id": "c_1", "used_units": 0}
    carry.rows[(c.Card, "c_2")] = {"id": "c_2"}
    account = Account(2, AccountKind.liability, "CNY", True, -3)
    passed = after_commit(carry, AFTER, Beside(False, False), {2: account}, _card_rows())
    assert passed is not None and passed.head == AFTER
    assert passed.accounts == {2: account}
    # c_0 is the oldest; c_1, used again by this batch, is now the newest.
    assert list(passed.rows) == [(c.Card, "c_2"), (c.Card, "c_1")]
    assert passed.rows[(c.Card, "c_1")] == {"id": "c_1", "used_units": 1}


@given(st.lists(st.integers(0, 30), max_size=200), st.integers(1, 8))
def test_a_carry_never_holds_more_than_its_bound(used: list[int], bound: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(carry_module, "carry_rows_max", bound)
        carry = Carry(HEAD)
        for card in used:
            rows = RowCache(None)  # type: ignore[arg-type]
            rows.remember(c.Card, card, {"id": card})
            passed = after_commit(carry, AFTER, Beside(False, False), {}, rows)
            assert passed is carry and len(carry.rows) <= bound
            assert list(carry.rows)[-1] == (c.Card, card)  # the one just used is kept


def test_a_shelf_gives_its_carry_once_and_only_for_the_head_it_shows() -> None:
    shelf = Shelf()
    carry = _carry()
    shelf.put(carry)
    assert shelf.take_if(AFTER) is None  # stale: dropped, not kept for later
    assert shelf.take(HEAD) is not carry and shelf.take(HEAD).head == HEAD
    shelf.put(carry)
    assert shelf.take(HEAD) is carry
    assert shelf.take_if(HEAD) is None  # taken: two batches never share one
