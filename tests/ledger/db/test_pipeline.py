"""Pipelined batches: the next batch runs while the one before it commits, and lands only if
nothing moved underneath it.

`Batch.following` runs a batch's commands on what the batch in flight leaves, with no
connection; `Batch.rebase` binds it to the connection under the lock, and refuses when the
flight did not commit what it ran on, or when anyone else wrote since. These tests drive the
two steps by hand, as the writer does, and then the writer itself under load.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, create_engine, text

from api.runtime import run_command
from ledger.auth import SYSTEM_ACTOR, Role
from ledger.books import Posting, TransactionDraft
from ledger.commands import Command
from ledger.db import tables as t
from ledger.db.batch import BEGIN_HEAD_SQL, Batch, LockedHead, Offline
from ledger.db.door import Door
from ledger.db.engine import make_engine
from ledger.db.script import Script
from ledger.db.writer import (
    Writer,
    WriteRequest,
    release_lock,
    request_fingerprint,
)
from ledger.db.writer_state import default_state
from ledger.errors import DatabaseUnavailable, InsufficientFunds
from ledger.service import IssueKey, OpenAccount
from tests.support.db import assert_journal_sound, balances, head_seq, open_account, transfer

request_wait_s = 60


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """The appender's kind of connection: autocommit, batches open and commit themselves."""
    with engine.connect() as raw:
        appender = raw.execution_options(isolation_level="AUTOCOMMIT")
        yield appender
        release_lock(appender)


@pytest.fixture
def till(engine: Engine) -> tuple[int, int]:
    """A cash account with 1,000 fen and a card account it paid into."""
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    run_command(engine, transfer((cash, 1_000), (card, -1_000)))
    return cash, card


def pay(batch: Batch, card: int, cash: int, fen: int) -> None:
    batch.start_command(SYSTEM_ACTOR)
    batch.post(TransactionDraft((Posting(card, fen, "CNY"), Posting(cash, -fen, "CNY")),
                                memo="session"))


def fly(conn: Connection, batch: Batch) -> None:
    """What the writer does with a batch in flight: flush, commit, relock, carry on."""
    batch.flushed(batch.flush_script(commit=True, relock=True).run(), commit=True, relock=True)
    conn.commit()
    assert batch.next_head is not None
    batch.state.hold_lock(conn, batch.next_head)
    batch.committed()


def land(conn: Connection, batch: Batch) -> bool:
    locked = batch.state.take_lock(conn) or LockedHead(
        *conn.exec_driver_sql(BEGIN_HEAD_SQL).one())
    if batch.rebase(conn, locked):
        fly(conn, batch)
        return True
    batch.state.hold_lock(conn, locked)
    return False


def first_batch(conn: Connection, till: tuple[int, int], fen: int) -> Batch:
    cash, card = till
    batch = Batch(conn, begin=True, head=default_state(conn.engine).take_lock(conn))
    pay(batch, card, cash, fen)
    return batch


def test_a_following_batch_sees_the_flight_and_lands_when_nobody_wrote(
        engine: Engine, conn: Connection, till: tuple[int, int]) -> None:
    cash, card = till
    flight = first_batch(conn, till, 300)
    following = Batch.following(flight)
    pay(following, card, cash, 700)  # the whole rest of the card: 300 already spent above
    with pytest.raises(InsufficientFunds):
        pay(following, card, cash, 1)  # the card is empty on what the flight leaves
    following.undo_command()
    fly(conn, flight)
    assert land(conn, following)
    assert balances(engine, [card]) == {card: 0}
    assert head_seq(engine) == following.seq
    assert_journal_sound(engine)


def test_a_following_batch_does_not_land_after_another_writer_appended(
        engine: Engine, database_url: str, conn: Connection, till: tuple[int, int]) -> None:
    cash, card = till
    flight = first_batch(conn, till, 300)
    following = Batch.following(flight)
    pay(following, card, cash, 700)
    fly(conn, flight)
    release_lock(conn)  # as a writer that had no batch waiting at its commit
    other = create_engine(database_url)  # another process: a carry of its own
    try:
        run_command(other, transfer((cash, -500), (card, 500)))  # a refund, say
    finally:
        other.dispose()
    assert not land(conn, following)
    release_lock(conn)
    assert balances(engine, [card]) == {card: -200}  # 1,000 - 300 + 500 - nothing more
    assert_journal_sound(engine)


def test_a_following_batch_does_not_land_after_a_write_outside_the_journal(
        engine: Engine, conn: Connection, till: tuple[int, int]) -> None:
    """A write that appends nothing (an operator in psql) still moves the write generation,
    and with it, every assumption the following batch made."""
    cash, card = till
    flight = first_batch(conn, till, 300)
    following = Batch.following(flight)
    pay(following, card, cash, 100)
    fly(conn, flight)
    seq = head_seq(engine)
    release_lock(conn)
    with engine.begin() as other:
        other.execute(text("UPDATE accounts SET balance_fen = balance_fen WHERE id = :id"),
                      {"id": card})
    assert head_seq(engine) == seq  # nothing appended, yet the generation moved
    assert not land(conn, following)
    release_lock(conn)
    assert balances(engine, [card]) == {card: -700}


def test_a_following_batch_is_refused_the_database_it_has_not_got(
        engine: Engine, database_url: str, conn: Connection, till: tuple[int, int]) -> None:
    """A row nobody carried (an account the flight never touched) would need a read while
    the connection is busy: the batch stops, and the writer runs its requests plainly."""
    cash, card = till
    other = create_engine(database_url)  # opened elsewhere: this process never carried it
    try:
        untouched = open_account(other, "asset")
    finally:
        other.dispose()
    flight = first_batch(conn, till, 100)
    following = Batch.following(flight)
    with pytest.raises(Offline):
        pay(following, untouched, cash, 1)
    with pytest.raises(Offline):
        following.writing_directly().execute(text("SELECT 1"))
    fly(conn, flight)
    release_lock(conn)
    assert balances(engine, [card]) == {card: -900}


def test_a_following_batch_does_not_land_when_the_flight_failed(
        engine: Engine, conn: Connection, till: tuple[int, int]) -> None:
    cash, card = till
    flight = first_batch(conn, till, 300)
    flight.posting_rows.pop()  # only the deferred check at COMMIT can see this
    following = Batch.following(flight)
    pay(following, card, cash, 100)
    with pytest.raises(Exception, match="postings"):
        flight.flush_script(commit=True, relock=True).run()
    conn.exec_driver_sql("ROLLBACK")
    flight.rolled_back()
    assert not land(conn, following)
    release_lock(conn)
    assert balances(engine, [card]) == {card: -1_000}
    assert_journal_sound(engine)


class _FailsAtCommit(Command):
    def __init__(self, cash: int, card: int) -> None:
        self.cash, self.card = cash, card

    def run(self, books: Door) -> dict[str, Any]:  # type: ignore[override]
        batch = books.batch  # a fault of the write path's own, below the doorway
        pay(batch, self.card, self.cash, 1)
        batch.posting_rows.pop()
        return {}


def test_the_pipelined_writer_fails_only_what_fails_and_keeps_the_books_exact(
        engine: Engine, till: tuple[int, int]) -> None:
    """Many tills at once through one writer: batches run ahead of each other's commits,
    some requests are refused, one batch fails at COMMIT; every answer is right and the
    balances are exactly the accepted payments."""
    cash, card = till
    writer = Writer(engine)
    writer.start()

    def till_session(n: int) -> str:
        if n == 40:
            request = WriteRequest(_FailsAtCommit(cash, card))
        else:
            request = WriteRequest(transfer((card, 3), (cash, -3)))
        try:
            writer.submit(request).result(timeout=request_wait_s)
        except InsufficientFunds:
            return "refused"
        except Exception as error:  # the one failing at commit
            assert "postings" in str(error)
            return "failed"
        return "paid"

    try:
        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(till_session, range(400)))
    finally:
        writer.stop()
    assert outcomes.count("failed") == 1
    assert outcomes.count("paid") == 1_000 // 3  # the card's 1,000 fen, 3 at a time
    assert balances(engine, [card]) == {card: -(1_000 - 3 * outcomes.count("paid"))}
    assert writer.counts["ran_ahead"] > 0  # the pipeline was really used
    assert_journal_sound(engine)


def test_retries_with_the_same_idempotency_key_pay_once_however_the_batches_fall(
        engine: Engine, till: tuple[int, int]) -> None:
    """Each payment is sent three times at once with one key: whether its copies land in the
    same batch, in a batch running ahead of the first copy's commit, or later, it is paid
    once and every copy gets the first answer."""
    cash, card = till
    key_id = int(run_command(engine, IssueKey(Role.operator))["key_id"])  # type: ignore[call-overload]
    writer = Writer(engine)
    writer.start()

    def send(n: int) -> tuple[int, Any, bool]:
        body = f"pay {n // 3}".encode()
        request = WriteRequest(transfer((card, 2), (cash, -2)), 201, key_id, f"k{n // 3}",
                               request_fingerprint("POST", "/v1/transactions", body))
        outcome = writer.submit(request).result(timeout=request_wait_s)
        return n // 3, outcome.body["id"], outcome.replayed

    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, range(300)))
    finally:
        writer.stop()
    by_payment: dict[int, set[Any]] = {}
    for payment, transaction_id, _ in answers:
        by_payment.setdefault(payment, set()).add(transaction_id)
    assert all(len(ids) == 1 for ids in by_payment.values())  # one transaction per key
    assert sum(replayed for *_, replayed in answers) == 200
    assert writer.counts["ran_ahead"] > 0
    assert balances(engine, [card]) == {card: -(1_000 - 2 * 100)}
    assert_journal_sound(engine)


def test_a_script_rendered_on_another_connection_sends_the_same_values(
        engine: Engine, conn: Connection) -> None:
    """The helper renders the next batch's script on its own connection while the
    appender's is busy; the values must arrive exactly as if bound on the appender's."""
    awkward = ["it's", 'say "hi"', "back\\slash", "预付 卡", "%(not_a_param)s", "", "\n\t", None,
               "NULL", "{a,b}", " padded "]
    blobs = [b"\x00\x01'\\", bytes(range(256)), b""]

    def script_on(target: Connection) -> Script:
        script = Script(target)
        script.add("SELECT CAST(%(texts)s AS text[]), CAST(%(blobs)s AS bytea[]), "
                   "CAST(%(fen)s AS bigint)", texts=awkward, blobs=blobs, fen=-(2**62))
        return script

    with engine.connect() as helper:
        rendered = script_on(helper)
        rendered.render(helper.connection.dbapi_connection)
    texts, sent_blobs, fen = rendered.run(conn)
    assert texts == awkward
    assert [bytes(b) for b in sent_blobs] == blobs
    assert fen == -(2**62)
    assert tuple(script_on(conn).run()) == (texts, sent_blobs, fen)


def test_a_batch_run_ahead_draws_ids_on_the_helpers_connection(
        engine: Engine, conn: Connection, till: tuple[int, int]) -> None:
    """Sequences are outside transactions: with a connection of its own for them, a batch
    run ahead whose id pool is dry does not have to wait for its turn."""
    flight = first_batch(conn, till, 1)
    flight.state.ids.clear()
    with pytest.raises(Offline):
        Batch.following(flight).next_id(t.ApiKey)
    flight.state.ids.clear()
    with engine.connect() as helper:
        drawn = Batch.following(flight, helper).next_id(t.ApiKey)
    fly(conn, flight)
    release_lock(conn)
    with engine.connect() as other:
        last = other.execute(text("SELECT last_value FROM api_keys_id_seq")).scalar_one()
    assert drawn <= last


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
# Text PostgreSQL can hold: no NUL, no lone surrogates (the domain refuses both before any
# write; see journal._text_problem).
@given(texts=st.lists(st.none() | st.text(alphabet=st.characters(
           blacklist_categories=("Cs",), blacklist_characters="\x00"))),
       blobs=st.lists(st.none() | st.binary(max_size=64)),
       fen=st.lists(st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)),
       moments=st.lists(st.none() | st.datetimes(timezones=st.just(UTC))))
def test_lists_sent_as_array_literals_arrive_exactly(
        conn: Connection, texts: list[str | None], blobs: list[bytes | None],
        fen: list[int | None], moments: list[datetime | None]) -> None:
    script = Script(conn)
    script.add("SELECT CAST(%(texts)s AS text[]), CAST(%(blobs)s AS bytea[]), "
               "CAST(%(fen)s AS bigint[]), CAST(%(moments)s AS timestamptz[])",
               texts=texts, blobs=blobs, fen=fen, moments=moments)
    got_texts, got_blobs, got_fen, got_moments = script.run()
    assert got_texts == texts
    assert [None if b is None else bytes(b) for b in got_blobs] == blobs
    assert got_fen == fen
    assert got_moments == moments


def test_two_pipelined_writers_on_one_database_keep_the_books_exact(
        engine: Engine, database_url: str, till: tuple[int, int]) -> None:
    """Two processes' writers (two engines: two carries, two pipelines) pay from the same
    card at once. Each one's batches run ahead on what its own flight leaves, and the other's
    commits keep invalidating that: whatever lands, the card is never overdrawn and the
    balances are exactly the payments that were accepted."""
    cash, card = till
    other = create_engine(database_url)
    writers = [Writer(engine), Writer(other)]
    for writer in writers:
        writer.start()

    def pay_once(n: int) -> bool:
        request = WriteRequest(transfer((card, 7), (cash, -7)))
        try:
            writers[n % 2].submit(request).result(timeout=request_wait_s)
        except InsufficientFunds:
            return False
        return True

    try:
        with ThreadPoolExecutor(16) as pool:
            paid = sum(pool.map(pay_once, range(300)))
    finally:
        for writer in writers:
            writer.stop()
        other.dispose()
    assert paid == 1_000 // 7
    assert balances(engine, [card]) == {card: -(1_000 - 7 * paid)}
    assert sum(w.counts["batches"] for w in writers) > 0
    assert_journal_sound(engine)


def test_the_pipelined_writer_survives_its_connections_being_killed(
        engine: Engine, database_url: str) -> None:
    """A database restart or a network cut, mid-load: the appender's and the helper's
    connections are terminated while batches are in flight. Every request is answered
    (at worst DatabaseUnavailable, never a raw driver error, for the client to retry with
    its key), the writer reconnects by itself, and nothing half-written is left: the journal
    is sound."""
    own = make_engine(f"{database_url}&application_name=yufu-killed"
                      if "?" in database_url else f"{database_url}?application_name=yufu-killed")
    writer = Writer(own)
    writer.start()

    def open_one(_: int) -> Any:
        request = WriteRequest(OpenAccount.parse({"kind": "asset", "name": "survivor"}))
        try:
            return writer.submit(request).result(timeout=request_wait_s).body["id"]
        except DatabaseUnavailable as error:
            return error

    def cut() -> int:
        with engine.connect() as other:
            return int(other.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'yufu-killed'")).scalar_one())

    try:
        with ThreadPoolExecutor(16) as pool:
            first = pool.map(open_one, range(600))
            time.sleep(0.2)
            killed = cut()
            during = list(first)
            after = list(pool.map(open_one, range(100)))
    finally:
        writer.stop()
        own.dispose()
    opened = [result for result in during + after if isinstance(result, int)]
    assert killed >= 1  # the appender's connection, at least
    assert len(opened) == len(set(opened))
    assert all(isinstance(result, int) for result in after)  # reconnected
    assert len(opened) >= 600  # at most the requests in flight at the cut failed
    assert_journal_sound(engine)
