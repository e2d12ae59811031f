"""The pure matching rules, line by line (no database): the order of the keys, amount and date
as the last resort, our own references never guessed at, one item for one line."""

from __future__ import annotations

from datetime import date, timedelta

from ledger.bank.matching import Line, Match, OpenItems, decide, spent
from ledger.bank.model import Direction, TxDetail

SOLD = date(2026, 11, 1)


def items() -> OpenItems:
    found = OpenItems(lookback_days=3)
    found.add_deposit("YFS000000000001", "YFD20261101m_a", 10_000, 10_000, SOLD)
    found.add_deposit("YFS000000000002", "YFD20261101m_a", 20_000, 5_000, SOLD)  # part by hand
    found.add_deposit("YFS000000000003", "YFD20261102m_a", 30_000, 30_000,
                      SOLD + timedelta(days=1))
    found.add_instruction("YFR000000000009", 7_000)
    return found


def credit(amount_fen: int, *, cref: str | None = None, e2e: str | None = None,
           bank_ref: str | None = None, day: date = SOLD, booked: bool = True,
           direction: Direction = Direction.credit) -> Line:
    detail = TxDetail(amount_fen, end_to_end_id=e2e, creditor_reference=cref,
                      bank_reference=bank_ref)
    return Line("Stmt[1]/Ntry[1]", direction, booked, False, amount_fen, day, detail)


def test_the_creditor_reference_comes_before_the_end_to_end_id_and_the_bank_reference() -> None:
    decision = decide(credit(10_000, cref="YFS000000000001", e2e="YFS000000000003",
                             bank_ref="YFS000000000002"), items())
    assert (decision.match, decision.refs, decision.amounts) == (
        Match.deposit, ("YFS000000000001",), (10_000,))
    by_e2e = decide(credit(30_000, cref="PAYER-REF", e2e="YFS000000000003"), items())
    assert (by_e2e.match, by_e2e.refs) == (Match.deposit, ("YFS000000000003",))
    by_bank = decide(credit(30_000, bank_ref="YFS000000000003"), items())
    assert (by_bank.match, by_bank.refs) == (Match.deposit, ("YFS000000000003",))


def test_a_day_batch_clears_every_open_sale_of_that_day_and_what_is_left_in_transit() -> None:
    decision = decide(credit(30_000, cref="YFD20261101m_a"), items())
    assert (decision.match, decision.refs, decision.amounts) == (
        Match.deposit_batch, ("YFS000000000001", "YFS000000000002"), (10_000, 5_000))
    short = decide(credit(29_999, cref="YFD20261101m_a"), items())
    assert (short.match, short.refs, short.reason) == (
        Match.unmatched, ("YFD20261101m_a",),
        "YFD20261101m_a expects 30000 fen, the bank booked 29999")


def test_amount_and_date_match_only_one_sale_in_the_days_before_and_never_our_reference(
        ) -> None:
    open_items = items()
    three_days_on = decide(credit(30_000, day=SOLD + timedelta(days=4)), open_items)
    assert (three_days_on.match, three_days_on.refs) == (Match.deposit, ("YFS000000000003",))
    too_late = decide(credit(30_000, day=SOLD + timedelta(days=5)), open_items)
    assert too_late.match is Match.unmatched
    before_sale = decide(credit(30_000, day=SOLD), open_items)
    assert before_sale.match is Match.unmatched
    open_items.add_deposit("YFS000000000004", "YFD20261101m_a", 10_000, 10_000, SOLD)
    two = decide(credit(10_000, cref="PAYER-REF"), open_items)
    assert (two.match, two.reason) == (
        Match.unmatched, "2 sales of that amount in the days before: no reference to tell "
                         "them apart")
    ours = decide(credit(30_000, cref="YFS999999999999", day=SOLD + timedelta(days=1)),
                  open_items)
    assert (ours.match, ours.reason) == (
        Match.unmatched, "YFS999999999999 names no open sale, day batch or instruction of "
                         "this custody account")


def test_one_item_matches_one_line_and_a_batch_loses_what_was_cleared_alone() -> None:
    open_items = items()
    first = decide(credit(10_000, cref="YFS000000000001"), open_items)
    open_items.forget(spent(first))
    again = decide(credit(10_000, cref="YFS000000000001"), open_items)
    assert again.match is Match.unmatched
    rest = decide(credit(20_000, cref="YFD20261101m_a"), open_items)
    assert (rest.match, rest.refs) == (Match.deposit_batch, ("YFS000000000002",))
    open_items.forget(spent(rest))
    assert decide(credit(1, cref="YFD20261101m_a"), open_items).match is Match.unmatched


def test_debits_pay_instructions_credits_naming_one_return_it_and_pending_lines_wait() -> None:
    open_items = items()
    paid = decide(credit(7_000, e2e="YFR000000000009", direction=Direction.debit), open_items)
    assert (paid.match, paid.refs) == (Match.payment, ("YFR000000000009",))
    wrong = decide(credit(7_001, e2e="YFR000000000009", direction=Direction.debit), open_items)
    assert wrong.match is Match.unmatched
    returned = decide(credit(7_000, e2e="YFR000000000009"), open_items)
    assert returned.match is Match.payment_returned
    assert decide(credit(10_000, cref="YFS000000000001", booked=False),
                  open_items).match is Match.not_booked
    assert spent(decide(credit(10_000, cref="YFS000000000001", booked=False),
                        open_items)) == ()
