"""Property: a statement written from the ledger reconciles with no break and a matching
cross-verification; one perturbed line gives exactly the break it should, and no other.

Each example is a fresh merchant (美容美发: 40% in custody, no consumer confirmation) with a
day of sales, consumptions, a release run and refunds made through the API, the release and
refunds accepted by the bank. The statement is rendered (camt.053 .02 to .08, or our CSV)
from what the ledger expects: its pending deposits (one credit per sale, or one per day batch),
its pending instructions (as the bank's instruction file lists them) and the expected closing
balance. A cushion sale, confirmed by hand beforehand, keeps enough custody cash for the
debits when a credit goes astray, so one perturbation never causes a second break.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.support.custody import check_custody_identity
from tests.support.db import rows
from tests.support.driver import Banking, Merchant
from tests.support.statements import Entry, Stmt, camt053, entry, statement_csv

BANK = "BANK-PROPERTY"
SALE_DAY = date(2026, 11, 1)  # a Sunday: the weekly release period ends on Monday 11-02
STATEMENT_DAY = date(2026, 11, 2)  # every deposit is expected by 11-04 (T+3)
LATER_DAY = date(2026, 11, 5)  # past every deposit's expected date
cushion_price_fen = 500_000  # its custodied 200,000 fen cover every debit of a day
cushion_custody_fen = 200_000
prices_fen = (10_000, 25_000, 33_333, 50_000, 99_999)

sales = st.lists(st.fixed_dictionaries({
    "price": st.sampled_from(prices_fen),
    "consumed": st.sampled_from([0, 0, 1_234, 5_000]),
    "refund": st.booleans()}), min_size=1, max_size=4)
formats = st.sampled_from([f"camt.053.001.{v:02d}" for v in range(2, 9)] + ["csv"])
perturbations = st.one_of(
    st.tuples(st.just("amount"), st.integers(0, 50),
              st.integers(1, 500) | st.integers(-500, -1)),
    st.tuples(st.just("reference"), st.integers(0, 50)),
    st.tuples(st.just("missing"), st.integers(0, 50)),
    st.tuples(st.just("extra"), st.sampled_from(["CRDT", "DBIT"]), st.integers(1, 99_999)),
)


@dataclass
class Line:
    entry: Entry
    kind: str  # "deposit", "payment" or "extra"
    refs: tuple[str, ...]  # deposit references, or the instruction's end-to-end id

    @property
    def sign(self) -> int:
        return 1 if self.entry.direction == "CRDT" else -1


@dataclass
class Day:
    merchant: Merchant
    opening_fen: int
    lines: list[Line]
    deposits: dict[str, tuple[str, int]]  # reference -> (batch reference, open fen)
    instructions: list[str]


@dataclass
class Expected:
    """What the import must leave: the one break (kind, amount, words of its reason), the
    cross-verification's difference, and the items the bank has not shown."""

    break_: tuple[str, int, str] | None = None
    difference_fen: int = 0
    pending: set[str] = field(default_factory=set)  # deposit refs and end-to-end ids
    missing_later: list[tuple[str, int]] = field(default_factory=list)


def make_day(banking: Banking, sold: list[dict[str, Any]]) -> Merchant:
    """The ledger side: a merchant's day of sales, consumptions, a release run and refunds;
    the bank accepts every instruction it is sent."""
    banking.set_today(SALE_DAY)
    m = banking.merchant(BANK, industry="美容美发")
    banking.sell_at(m, cushion_price_fen)
    banking.deposit(m.id, banking.operator, cushion_custody_fen)
    cards = []
    for s in sold:
        card = banking.sell_at(m, s["price"])["card_id"]
        if s["consumed"]:
            banking.consume(card, m.key, amount_fen=s["consumed"])
        cards.append(card)
    banking.run_releases(STATEMENT_DAY, m.id)
    for s, card in zip(sold, cards, strict=True):
        if s["refund"]:
            banking.refund(m, card, "balance" if s["consumed"] else "cooling_off")
    for instruction in pending_instructions(banking, m):
        banking.answer(BANK, instruction["end_to_end_id"], "accept")
    return m


def pending_instructions(banking: Banking, m: Merchant) -> list[dict[str, Any]]:
    listed = banking.ok("GET", f"/v1/banks/{BANK}/instructions", banking.bank(BANK),
                        params={"format": "json"})["items"]
    return [i for i in listed if i["debtor_account"] == m.account]


def statement_from_ledger(banking: Banking, engine: Engine, m: Merchant, by_day_batch: bool
                          ) -> Day:
    """Credits for the pending deposits, debits for the pending instructions, and a closing
    balance that must be the one the ledger expects once all of them are seen."""
    balances = banking.balances(m.id)
    deposits = {r["reference"]: (r["batch_reference"], r["open_fen"]) for r in rows(
        engine, "SELECT reference, batch_reference, open_fen FROM expected_deposits "
                "WHERE merchant_id = :m AND status = 'pending' ORDER BY id", m=m.id)}
    lines: list[Line] = []
    if by_day_batch:
        batches: dict[str, list[str]] = {}
        for ref, (batch_ref, _) in deposits.items():
            batches.setdefault(batch_ref, []).append(ref)
        for batch_ref, refs in batches.items():
            total = sum(deposits[r][1] for r in refs)
            lines.append(Line(entry("CRDT", total, STATEMENT_DAY, cref=batch_ref), "deposit",
                              tuple(refs)))
    else:
        lines += [Line(entry("CRDT", fen, STATEMENT_DAY, cref=ref), "deposit", (ref,))
                  for ref, (_, fen) in deposits.items()]
    instructions = pending_instructions(banking, m)
    lines += [Line(entry("DBIT", i["amount_fen"], STATEMENT_DAY, e2e=i["end_to_end_id"]),
                   "payment", (i["end_to_end_id"],)) for i in instructions]
    day = Day(m, balances["custody_cash"], lines, deposits,
              [i["end_to_end_id"] for i in instructions])
    expected_closing = (balances["custody_cash"] + balances["custody_in_transit"]
                        - balances["release_pending"] - balances["refunds_payable"])
    assert day.opening_fen + sum(line.sign * line.entry.amount_fen for line in lines) \
        == expected_closing
    return day


def render(day: Day, lines: list[Line], fmt: str, statement_id: str = "S-1",
           closing: date = STATEMENT_DAY, opening_fen: int | None = None) -> bytes:
    statement = Stmt(day.merchant.account, statement_id,
                     day.opening_fen if opening_fen is None else opening_fen, closing,
                     tuple(line.entry for line in lines))
    if fmt == "csv":
        return statement_csv([statement])
    return camt053([statement], version=int(fmt[-2:]), message_id=f"M-{statement_id}")


def bogus(prefix: str, seed: int) -> str:
    return f"{prefix}9{seed:011d}"  # our shape, so never guessed at by amount


def perturb(day: Day, change: tuple[Any, ...]) -> tuple[list[Line], Expected]:
    lines = list(day.lines)
    what = change[0]
    if what == "extra":
        direction, amount = change[1], change[2]
        ref = bogus("YFS" if direction == "CRDT" else "YFR", amount)
        extra = Line(entry(direction, amount, STATEMENT_DAY, cref=ref), "extra", (ref,))
        lines.insert(amount % (len(lines) + 1), extra)
        return lines, Expected(("unmatched_line", amount, ""), extra.sign * amount)
    index = change[1] % len(lines)
    line = lines[index]
    old = line.entry
    detail = old.details[0]
    if what == "missing":
        del lines[index]
        later = [(ref, day.deposits[ref][1]) for ref in line.refs] if line.kind == "deposit" \
            else []
        return lines, Expected(pending=set(line.refs), missing_later=later)
    if what == "amount":
        delta = change[2] if old.amount_fen + change[2] > 0 else -change[2]
        fen = old.amount_fen + delta
        lines[index] = replace(line, entry=replace(
            old, amount_fen=fen, details=(replace(detail, amount_fen=fen),)))
        reason = f"expects {old.amount_fen} fen, the bank booked {fen}"
        return lines, Expected(("unmatched_line", fen, reason), line.sign * fen,
                               set(line.refs))
    # "reference": a reference of our shape that names nothing
    if line.kind == "deposit":
        wrong = replace(detail, creditor_reference=bogus("YFS", index))
        reason = "names no open sale, day batch or instruction"
    else:
        wrong = replace(detail, end_to_end_id=bogus("YFR", index))
        reason = "no pending release or refund has this end-to-end id"
    lines[index] = replace(line, entry=replace(old, details=(wrong,)))
    return lines, Expected(("unmatched_line", old.amount_fen, reason),
                           line.sign * old.amount_fen, set(line.refs))


def check(banking: Banking, engine: Engine, day: Day, statement: dict[str, Any],
          expected: Expected) -> None:
    m = day.merchant
    opened = [(b["kind"], b["amount_fen"], b["reason"]) for b in banking.open_breaks(m)]
    if expected.break_ is None:
        assert opened == []
        assert "break" not in statement["outcome"]
    else:
        kind, amount, says = expected.break_
        [(found_kind, found_amount, reason)] = opened
        assert (found_kind, found_amount) == (kind, amount)
        assert says in reason
        assert statement["outcome"]["break"] == 1
    verified = statement["cross_verification"]
    assert verified["difference_fen"] == expected.difference_fen
    assert verified["result"] == ("match" if expected.difference_fen == 0 else "difference")
    assert verified["bank_balance_fen"] - verified["ledger_balance_fen"] \
        == expected.difference_fen
    assert banking.last_verification(m)["difference_fen"] == expected.difference_fen
    deposits = {r["reference"]: r["status"] for r in rows(
        engine, "SELECT reference, status FROM expected_deposits WHERE merchant_id = :m",
        m=m.id)}
    for ref in day.deposits:
        assert deposits[ref] == ("pending" if ref in expected.pending else "cleared"), ref
    instructions = {r["end_to_end_id"]: r["status"] for r in rows(
        engine, "SELECT end_to_end_id, status FROM release_instructions WHERE merchant_id = :m "
                "UNION ALL SELECT end_to_end_id, status FROM refund_instructions "
                "WHERE merchant_id = :m", m=m.id)}
    for e2e in day.instructions:
        assert instructions[e2e] == ("pending" if e2e in expected.pending else "settled"), e2e
    with engine.connect() as conn:
        balances = check_custody_identity(conn, m.id)
    assert balances["custody_cash"] == verified["ledger_balance_fen"]


@settings(max_examples=12, deadline=None)
@given(sold=sales, by_day_batch=st.booleans(), fmt=formats)
def test_a_statement_from_the_ledger_reconciles_with_no_break(
        banking: Banking, engine: Engine, sold: list[dict[str, Any]], by_day_batch: bool,
        fmt: str) -> None:
    m = make_day(banking, sold)
    day = statement_from_ledger(banking, engine, m, by_day_batch)
    banking.set_today(STATEMENT_DAY)

    body = banking.import_file(BANK, render(day, day.lines, fmt),
                               filename="day.csv" if fmt == "csv" else "day.xml")

    [statement] = body["statements"]
    check(banking, engine, day, statement, Expected())
    assert statement["cross_verification"]["bank_balance_fen"] == (
        day.opening_fen + sum(line.sign * line.entry.amount_fen for line in day.lines))
    balances = banking.balances(m.id)
    assert (balances["custody_in_transit"], balances["release_pending"],
            balances["refunds_payable"]) == (0, 0, 0)


@settings(max_examples=30, deadline=None)
@given(sold=sales, by_day_batch=st.booleans(), fmt=formats, change=perturbations)
def test_one_perturbed_line_gives_exactly_the_break_it_should(
        banking: Banking, engine: Engine, sold: list[dict[str, Any]], by_day_batch: bool,
        fmt: str, change: tuple[Any, ...]) -> None:
    m = make_day(banking, sold)
    day = statement_from_ledger(banking, engine, m, by_day_batch)
    lines, expected = perturb(day, change)
    event(change[0])
    banking.set_today(STATEMENT_DAY)
    filename = "day.csv" if fmt == "csv" else "day.xml"

    body = banking.import_file(BANK, render(day, lines, fmt), filename=filename)

    [statement] = body["statements"]
    check(banking, engine, day, statement, expected)
    if change[0] != "missing":
        return
    # A missing credit becomes a break once a later statement's closing date passes the
    # sale's expected date, once; a missing debit leaves its instruction pending, no break.
    closing = statement["cross_verification"]["bank_balance_fen"]
    banking.set_today(LATER_DAY)
    for n, later in enumerate((LATER_DAY, LATER_DAY + timedelta(days=1)), start=2):
        body = banking.import_file(BANK, render(day, [], fmt, f"S-{n}", later, closing),
                                   filename=filename)
        opened = sorted((b["kind"], b["item_ref"], b["amount_fen"])
                        for b in banking.open_breaks(m))
        assert opened == sorted(("missing_line", ref, fen) for ref, fen in expected.missing_later)
        assert body["statements"][0]["cross_verification"]["difference_fen"] == 0
