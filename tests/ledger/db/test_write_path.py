"""The write path against real PostgreSQL: concurrent writers keep one gapless, unforked chain
and exact balances; the database itself refuses what the domain refuses; random transfers
move balances exactly or not at all."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from api.runtime import run_command
from ledger import journal
from ledger.books import normal_sign
from ledger.db import queries
from ledger.db.writer import Writer, WriteRequest, execute_resilient
from ledger.errors import Conflict, InsufficientFunds, InvalidInput, LedgerError, NotFound
from ledger.service import PostTransaction, ReverseTransaction
from tests.support.db import (
    assert_journal_sound,
    balances,
    head_seq,
    open_account,
    pg_error,
    rolled_back,
    transfer,
)

THREADS = 16
WRITER_PER_THREAD = 100  # group commit makes these cheap
OWN_TRANSACTION_PER_THREAD = 40  # one database transaction each, all behind one lock
POOL_FUNDING_FEN = 40_000


# --- helpers ------------------------------------------------------------------------------
def footprint(engine: Engine) -> tuple[Any, ...]:
    """Cheap summary of everything a refused statement must leave as it was."""
    with engine.connect() as conn:
        return (queries.chain_head(conn), *conn.execute(text(
            "SELECT (SELECT count(*) FROM journal_entries), (SELECT count(*) FROM transactions),"
            " (SELECT count(*) FROM postings), (SELECT sum(balance_fen) FROM accounts),"
            " (SELECT string_agg(md5(body), '' ORDER BY seq) FROM journal_entries)")).one())


@dataclass(frozen=True)
class Book:
    assets: list[int]  # non-negative, only ever debited
    cards: list[int]  # non-negative liabilities, only ever credited
    capital: int  # equity, may go either way
    dry: int  # non-negative asset that never receives a fen
    pool: int  # non-negative asset, funded once, drained by competing withdrawals


def open_book(engine: Engine) -> Book:
    book = Book(assets=[open_account(engine, "asset", non_negative=True) for _ in range(4)],
                cards=[open_account(engine, "liability", non_negative=True) for _ in range(2)],
                capital=open_account(engine, "equity"),
                dry=open_account(engine, "asset", non_negative=True),
                pool=open_account(engine, "asset", non_negative=True))
    run_command(engine, transfer((book.pool, POOL_FUNDING_FEN),
                                 (book.capital, -POOL_FUNDING_FEN)))
    return book


@dataclass(frozen=True)
class Planned:
    command: PostTransaction
    legs: tuple[tuple[int, int], ...]
    kind: str  # "always" accepted, "never" accepted, or "race" for the pool


def plan(book: Book, thread: int, per_thread: int) -> list[Planned]:
    """Deterministic per thread; whether a "race" is accepted depends on the interleaving."""
    planned = []
    for j in range(per_thread):
        amount = 1 + thread * 1000 + j
        if j % 10 == 8:
            legs: tuple[tuple[int, int], ...] = ((book.dry, -amount), (book.capital, amount))
            kind = "never"
        elif j % 10 == 9:
            legs = ((book.pool, -amount), (book.capital, amount))
            kind = "race"
        else:
            legs = ((book.assets[(thread + j) % 4], 2 * amount),
                    (book.cards[(thread * j) % 2], -amount), (book.capital, -amount))
            kind = "always"
        planned.append(Planned(transfer(*legs, memo=f"t{thread}-{j}"), legs, kind))
    return planned


def run_concurrently(book: Book, per_thread: int,
                     submit_all: Callable[[list[Planned]], list[Any]]
                     ) -> list[tuple[Planned, Any]]:
    barrier = threading.Barrier(THREADS)

    def worker(thread: int) -> list[tuple[Planned, Any]]:
        planned = plan(book, thread, per_thread)
        barrier.wait()
        return list(zip(planned, submit_all(planned), strict=True))

    with ThreadPoolExecutor(THREADS) as pool:
        return [pair for done in pool.map(worker, range(THREADS)) for pair in done]


def check_outcomes(engine: Engine, book: Book, start_seq: int, per_thread: int,
                   outcomes: list[tuple[Planned, Any]]) -> tuple[int, int]:
    """Check everything; returns (entries appended, database transactions that wrote them)."""
    accepted = [(p, r) for p, r in outcomes if not isinstance(r, LedgerError)]
    refused = [(p, r) for p, r in outcomes if isinstance(r, LedgerError)]
    assert Counter(p.kind for p, _ in accepted if p.kind != "race") == {
        "always": THREADS * per_thread * 8 // 10}
    assert all(p.kind != "always" for p, _ in refused)
    assert Counter(p.kind for p, _ in refused if p.kind != "race") == {
        "never": THREADS * per_thread // 10}
    for p, error in refused:
        assert isinstance(error, InsufficientFunds)
        account, amount = p.legs[0]
        if p.kind == "never":
            assert error.detail == f"account {account} must not go negative (it would be " \
                                   f"{amount} fen)"
        else:
            assert error.detail.startswith(f"account {account} must not go negative")
    # Every accepted transaction took exactly one sequence number, with no gap between them.
    seqs = sorted(body["journal_seq"] for _, body in accepted)
    assert seqs == list(range(start_seq + 1, start_seq + 1 + len(accepted)))
    for p, body in accepted:
        assert body["id"] == body["journal_seq"]
        assert [(q["account_id"], q["amount_fen"]) for q in body["postings"]] == list(p.legs)
    # Balances: exactly the sum of what was accepted.
    expected: Counter[int] = Counter({book.pool: POOL_FUNDING_FEN,
                                      book.capital: -POOL_FUNDING_FEN})
    for p, _ in accepted:
        for account, amount in p.legs:
            expected[account] += amount
    ids = [*book.assets, *book.cards, book.capital, book.dry, book.pool]
    assert balances(engine, ids) == {i: expected[i] for i in ids}
    assert expected[book.dry] == 0
    # The pool was drained by whichever withdrawals came first, never below zero, and each
    # refused one asked for more than was left then (so more than is left now).
    race_refused = [p for p, _ in refused if p.kind == "race"]
    assert 0 <= expected[book.pool] < min(-p.legs[0][1] for p in race_refused)
    assert head_seq(engine) == start_seq + len(accepted)
    assert_journal_sound(engine)
    with engine.connect() as conn:  # rows written by one transaction share its xmin
        writers = conn.execute(text("SELECT count(DISTINCT xmin::text) FROM journal_entries "
                                    "WHERE seq > :start"), {"start": start_seq}).scalar_one()
    return len(accepted), writers


# --- 16 writers at once --------------------------------------------------------------------
def test_sixteen_threads_through_the_writer_keep_a_gapless_chain_and_exact_balances(
        engine: Engine) -> None:
    book = open_book(engine)
    start_seq = head_seq(engine)
    writer = Writer(engine)
    writer.start()

    def submit_all(planned: list[Planned]) -> list[Any]:
        futures = [writer.submit(WriteRequest(p.command)) for p in planned]
        results: list[Any] = []
        for future in futures:
            try:
                results.append(future.result(timeout=60).body)
            except LedgerError as error:
                results.append(error)
        return results

    try:
        outcomes = run_concurrently(book, WRITER_PER_THREAD, submit_all)
    finally:
        writer.stop()
    appended, transactions = check_outcomes(engine, book, start_seq, WRITER_PER_THREAD, outcomes)
    assert transactions < appended  # group commit: many requests per database transaction


def test_sixteen_threads_each_in_its_own_transaction_keep_a_gapless_chain_and_exact_balances(
        engine: Engine) -> None:
    book = open_book(engine)
    start_seq = head_seq(engine)

    def submit_all(planned: list[Planned]) -> list[Any]:
        results: list[Any] = []
        for p in planned:  # one run_command = one connection, one database transaction
            try:
                results.append(run_command(engine, p.command))
            except LedgerError as error:
                results.append(error)
        return results

    outcomes = run_concurrently(book, OWN_TRANSACTION_PER_THREAD, submit_all)
    appended, transactions = check_outcomes(engine, book, start_seq, OWN_TRANSACTION_PER_THREAD,
                                            outcomes)
    assert transactions == appended  # really one competing database transaction per entry


# --- the database refuses what the domain refuses -------------------------------------------
@pytest.fixture(scope="module")
def posted(engine: Engine) -> dict[str, int]:
    """Two accounts and one transaction between them, for the raw-SQL tests."""
    cash = open_account(engine, "asset", non_negative=True)
    card = open_account(engine, "liability", non_negative=True)
    body = run_command(engine, transfer((cash, 300), (card, -300)))
    return {"cash": cash, "card": card, "tx": int(body["id"])}  # type: ignore[call-overload]


@pytest.mark.parametrize(("statement", "refused"), [
    ("UPDATE journal_entries SET kind = kind", "UPDATE on journal_entries"),
    ("DELETE FROM journal_entries WHERE seq = (SELECT max(seq) FROM journal_entries)",
     "DELETE on journal_entries"),
    ("TRUNCATE journal_entries CASCADE", "TRUNCATE on "),
    ("UPDATE postings SET amount_fen = amount_fen", "UPDATE on postings"),
    ("DELETE FROM postings", "DELETE on postings"),
    ("TRUNCATE postings", "TRUNCATE on postings"),
    ("UPDATE transactions SET memo = 'edited'", "UPDATE on transactions"),
])
def test_journal_and_postings_refuse_update_delete_and_truncate_even_to_their_owner(
        engine: Engine, owner_engine: Engine, posted: dict[str, int], statement: str,
        refused: str) -> None:
    # The owner holds every privilege, so this is the triggers' refusal; the service's role
    # is refused earlier, by privileges it lacks (test_database_roles.py).
    before = footprint(engine)
    with rolled_back(owner_engine) as conn, pytest.raises(ProgrammingError) as caught:
        conn.execute(text(statement))
    code, message = pg_error(caught)
    assert code == "42501"
    assert message.startswith(f"yufu: {refused}")
    assert message.endswith(" is refused: the table is append-only")
    assert footprint(engine) == before


@pytest.mark.parametrize("change", [
    "name = 'renamed'", "kind = 'liability'", "currency = 'USD'", "non_negative = false",
    "merchant_id = 'm_other'", "bank_id = 'OTHER-BANK'", "opened_seq = opened_seq + 1",
])
def test_an_account_keeps_its_identity(engine: Engine, posted: dict[str, int],
                                       change: str) -> None:
    before = footprint(engine)
    with rolled_back(engine) as conn, pytest.raises(ProgrammingError) as caught:
        conn.execute(text(f"UPDATE accounts SET {change} WHERE id = :id"), {"id": posted["cash"]})
    assert pg_error(caught) == ("42501", "yufu: only an account's cached balance may change")
    assert footprint(engine) == before


def test_only_an_accounts_balance_may_change(engine: Engine, posted: dict[str, int]) -> None:
    with rolled_back(engine) as conn:
        changed = conn.execute(text("UPDATE accounts SET balance_fen = balance_fen + 1 "
                                    "WHERE id = :id"), {"id": posted["cash"]})
        assert changed.rowcount == 1


def append_raw(conn: Connection, payload: dict[str, Any], *, seq_shift: int = 0,
               prev: bytes | None = None, kind: str = "transaction",
               hash_flip: bool = False) -> int:
    """Insert a journal row by hand after the head, built right unless told otherwise."""
    seq, head_hash = queries.chain_head(conn)
    seq += 1 + seq_shift
    prev = head_hash if prev is None else prev
    body = journal.encode_entry(seq, journal.format_ts(datetime.now(UTC)), kind, payload, prev)
    digest = journal.entry_hash(body)
    if hash_flip:
        digest = bytes([digest[0] ^ 1]) + digest[1:]
    conn.execute(text("INSERT INTO journal_entries (seq, ts, kind, prev_hash, entry_hash, body) "
                      "VALUES (:seq, now(), :kind, :prev, :hash, :body)"),
                 {"seq": seq, "kind": kind, "prev": prev, "hash": digest,
                  "body": body})
    return seq


def insert_transaction(conn: Connection, legs: list[tuple[int, int]], postings_count: int
                       ) -> int:
    payload = {"memo": "raw", "reverses": None, "postings": [
        {"account_id": a, "amount_fen": f, "currency": "CNY"} for a, f in legs]}
    seq = append_raw(conn, payload)
    conn.execute(text("INSERT INTO transactions (id, memo, postings_count, reverses_id, ts) "
                      "VALUES (:id, 'raw', :count, NULL, now())"),
                 {"id": seq, "count": postings_count})
    for idx, (account, amount) in enumerate(legs):
        conn.execute(text("INSERT INTO postings (transaction_id, idx, postings_count, account_id, "
                          "currency, amount_fen) VALUES (:tx, :idx, :count, :account, 'CNY', "
                          ":amount)"),
                     {"tx": seq, "idx": idx, "count": postings_count, "account": account,
                      "amount": amount})
    return seq


@pytest.mark.parametrize(("legs", "problem"), [
    ([("cash", 100), ("card", -99)], "does not balance in CNY (off by 1)"),
    ([("cash", 100)], "has 1 postings, not 2"),
])
def test_unbalanced_transaction_inserted_by_hand_fails_at_commit(
        engine: Engine, posted: dict[str, int], legs: list[tuple[str, int]],
        problem: str) -> None:
    before = footprint(engine)
    with engine.connect() as conn:
        tx = conn.begin()
        seq = insert_transaction(conn, [(posted[name], amount) for name, amount in legs], 2)
        # Every statement succeeded: the check is deferred to COMMIT.
        with pytest.raises(IntegrityError) as caught:
            tx.commit()
    assert pg_error(caught) == ("23514", f"yufu: transaction {seq} {problem}")
    assert footprint(engine) == before


@pytest.mark.parametrize(("posting", "refused"), [
    ({"account": 10**9}, "a posting names an account that does not exist in its currency"),
    ({"currency": "USD"}, "a posting names an account that does not exist in its currency"),
    ({"transaction": 10**9}, "a posting names a transaction that does not exist with its count"),
    ({"count": 3}, "a posting names a transaction that does not exist with its count"),
])
def test_a_posting_names_an_existing_account_and_transaction(
        engine: Engine, posted: dict[str, int], posting: dict[str, Any], refused: str) -> None:
    """Checked once per statement (migration 0009), with a foreign key's SQLSTATE."""
    before = footprint(engine)
    with rolled_back(engine) as conn:
        seq = append_raw(conn, {"memo": "raw", "reverses": None, "postings": []})
        conn.execute(text("INSERT INTO transactions (id, memo, postings_count, reverses_id, ts) "
                          "VALUES (:id, 'raw', 2, NULL, now())"), {"id": seq})
        values = {"tx": posting.get("transaction", seq), "count": posting.get("count", 2),
                  "account": posting.get("account", posted["cash"]),
                  "currency": posting.get("currency", "CNY")}
        with pytest.raises(IntegrityError) as caught:
            conn.execute(text("INSERT INTO postings (transaction_id, idx, postings_count, "
                              "account_id, currency, amount_fen) VALUES (:tx, 0, :count, "
                              ":account, :currency, 7)"), values)
    assert pg_error(caught) == ("23503", f"yufu: {refused}")
    assert footprint(engine) == before


def test_an_account_a_posting_names_is_never_deleted(engine: Engine,
                                                     posted: dict[str, int]) -> None:
    with rolled_back(engine) as conn, pytest.raises(ProgrammingError) as caught:
        conn.execute(text("DELETE FROM accounts WHERE id = :id"), {"id": posted["cash"]})
    assert pg_error(caught)[0] == "42501"


def test_balanced_transaction_inserted_by_hand_passes_the_deferred_check(
        engine: Engine, posted: dict[str, int]) -> None:
    with rolled_back(engine) as conn:  # checked at COMMIT, so force the check now
        insert_transaction(conn, [(posted["cash"], 100), (posted["card"], -100)], 2)
        conn.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))


@pytest.mark.parametrize(("change", "problem"), [
    ({"prev": bytes(32)}, "entry {seq} does not link to entry {before}"),
    ({"prev": b"\xff" * 32}, "entry {seq} does not link to entry {before}"),
    ({"seq_shift": 1}, "entry {seq} would leave a gap"),
    ({"hash_flip": True}, "entry {seq} hash is not SHA-256 of its bytes"),
])
def test_journal_row_that_does_not_extend_the_chain_is_refused(
        engine: Engine, posted: dict[str, int], change: dict[str, Any], problem: str) -> None:
    before = footprint(engine)
    seq = head_seq(engine) + 1 + change.get("seq_shift", 0)
    with rolled_back(engine) as conn, pytest.raises(IntegrityError) as caught:
        append_raw(conn, {"memo": "raw"}, **change)
    assert pg_error(caught) == ("23514", "yufu: " + problem.format(seq=seq, before=seq - 1))
    assert footprint(engine) == before


def test_a_well_linked_journal_row_is_accepted_by_the_trigger(engine: Engine,
                                                              posted: dict[str, int]) -> None:
    with rolled_back(engine) as conn:
        assert append_raw(conn, {"memo": "raw"}) == queries.chain_head(conn)[0] + 1


@pytest.mark.parametrize(("account", "balance"), [("cash", -1), ("card", 1)])
def test_overdrawing_a_non_negative_account_by_update_fails_the_check(
        engine: Engine, posted: dict[str, int], account: str, balance: int) -> None:
    with rolled_back(engine) as conn, pytest.raises(IntegrityError) as caught:
        conn.execute(text("UPDATE accounts SET balance_fen = :b WHERE id = :id"),
                     {"b": balance, "id": posted[account]})
    assert caught.value.orig.diag.constraint_name == (  # type: ignore[union-attr]
        "ck_accounts_non_negative_balance")
    assert pg_error(caught)[0] == "23514"
    assert balances(engine, [posted[account]])[posted[account]] == (
        300 if account == "cash" else -300)


def test_the_chain_head_never_moves_back(engine: Engine, posted: dict[str, int]) -> None:
    with rolled_back(engine) as conn, pytest.raises(IntegrityError) as caught:
        conn.execute(text("UPDATE chain_head SET seq = seq - 1"))
    assert pg_error(caught) == ("23514", "yufu: the chain head never moves back")


# --- random transfers: exact or nothing ------------------------------------------------------
@dataclass(frozen=True)
class Ledger:
    ids: list[int]  # CNY accounts, then the USD account, then an id that does not exist
    kinds: dict[int, str]
    non_negative: dict[int, bool]
    usd: int
    missing: int


@pytest.fixture(scope="module")
def small_ledger(engine: Engine) -> Ledger:
    specs = [("asset", True), ("asset", True), ("liability", True), ("equity", False)]
    ids = [open_account(engine, kind, non_negative=nn) for kind, nn in specs]
    usd = open_account(engine, "asset", currency="USD", non_negative=True)
    missing = 10**12
    kinds = {i: kind for i, (kind, _) in zip(ids, specs, strict=True)}
    non_negative = {i: nn for i, (_, nn) in zip(ids, specs, strict=True)}
    return Ledger([*ids, usd, missing], kinds, non_negative, usd, missing)


def expected_refusal(ledger: Ledger, start: dict[int, int],
                     legs: list[tuple[int, int]]) -> type[LedgerError] | None:
    """What the rules say about these legs, checked in the order the write path checks."""
    after = dict(start)
    for account, amount in legs:
        if account == ledger.missing:
            return NotFound
        if account == ledger.usd:
            return InvalidInput
        after[account] += amount
    for account, balance in after.items():
        if ledger.non_negative[account] and balance * normal_sign(ledger.kinds[account]) < 0:
            return InsufficientFunds
    return None


TRANSFERS = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 5000)),
                     min_size=1, max_size=8)


@settings(max_examples=25, deadline=None)
@given(transfers=TRANSFERS)
def test_random_transfers_move_balances_exactly_or_not_at_all(
        engine: Engine, small_ledger: Ledger, transfers: list[tuple[int, int, int]]) -> None:
    ledger = small_ledger
    cny = ledger.ids[:4]
    for source, target, amount in transfers:
        start = balances(engine, cny)
        seq = head_seq(engine)
        legs = [(ledger.ids[source], -amount), (ledger.ids[target], amount)]
        refusal = expected_refusal(ledger, start, legs)
        if refusal is None:
            body = run_command(engine, transfer(*legs))
            assert body["journal_seq"] == seq + 1
            moved = Counter(start)
            for account, change in legs:
                moved[account] += change
            assert balances(engine, cny) == dict(moved)
            assert head_seq(engine) == seq + 1
        else:
            with pytest.raises(refusal):
                run_command(engine, transfer(*legs))
            assert balances(engine, cny) == start
            assert head_seq(engine) == seq
        with engine.connect() as conn:
            assert queries.account_balance_mismatches(conn) == []
    assert balances(engine, [ledger.usd]) == {ledger.usd: 0}


def test_a_transaction_is_reversed_in_the_group_commit_that_posts_it(
        engine: Engine, small_ledger: Ledger) -> None:
    """The reversal reads the postings of an earlier command of its own batch, not yet
    written: it finds them, and a second reversal of the same transaction is refused."""
    asset, equity = small_ledger.ids[0], small_ledger.ids[3]
    run_command(engine, transfer((asset, 5000), (equity, -5000)))  # a reversal may then spend
    start, seq = balances(engine, [asset, equity]), head_seq(engine)
    requests = [WriteRequest(transfer((asset, 700), (equity, -700))),
                WriteRequest(ReverseTransaction(seq + 1)),
                WriteRequest(ReverseTransaction(seq + 1))]
    with engine.connect() as conn:
        execute_resilient(conn.execution_options(isolation_level="AUTOCOMMIT"), requests)
    posted, reversed_ = (r.future.result().body for r in requests[:2])
    assert posted["id"] == seq + 1
    assert reversed_["reverses"] == seq + 1
    assert [(p["account_id"], p["amount_fen"]) for p in reversed_["postings"]] == \
        [(asset, -700), (equity, 700)]
    with pytest.raises(Conflict):
        requests[2].future.result()
    assert balances(engine, [asset, equity]) == start
    assert head_seq(engine) == seq + 2


def test_after_everything_the_journal_is_still_sound(engine: Engine) -> None:
    assert assert_journal_sound(engine) == head_seq(engine)
