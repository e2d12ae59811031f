"""The appender survives a database that is away, and an app that starts twice."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from ledger.books import Posting, TransactionDraft
from ledger.commands import Books, Command
from ledger.db import queries
from ledger.db.door import Door
from ledger.db.writer import Writer, WriteRequest, execute_resilient, release_lock
from ledger.db.writer_state import default_state
from ledger.errors import Busy, DatabaseUnavailable, Recorded
from ledger.service import OpenAccount
from tests.support.db import open_account

request_wait_s = 30


def _open() -> WriteRequest:
    return WriteRequest(OpenAccount.parse({"kind": "asset", "name": "lifecycle"}))


def test_a_writer_restarts_after_stop_and_refuses_writes_while_stopped(engine: Engine) -> None:
    writer = Writer(engine)
    writer.start()
    first = writer.submit(_open()).result(timeout=request_wait_s)
    writer.stop()
    with pytest.raises(Busy, match="not accepting writes"):
        writer.submit(_open()).result(timeout=request_wait_s)
    writer.start()
    second = writer.submit(_open()).result(timeout=request_wait_s)
    writer.stop()
    assert second.body["id"] > first.body["id"]


def test_an_unreachable_database_fails_requests_without_killing_the_appender() -> None:
    unreachable = create_engine("postgresql+psycopg2://nobody@/none?host=/nonexistent-yufu")
    writer = Writer(unreachable)
    writer.start()
    try:
        for _ in range(2):  # the second request is answered too: the thread lives on
            future = writer.submit(_open())
            with pytest.raises(DatabaseUnavailable) as refused:
                future.result(timeout=request_wait_s)
            assert refused.value.recorded is Recorded.NO
            assert "nonexistent-yufu" in refused.value.cause
    finally:
        writer.stop()
    unreachable.dispose()


class _Crashes(Command):
    """A command with a bug: it appends, then fails with an unexpected error."""

    def run(self, books: Books) -> dict[str, Any]:
        books.append("test.crash", {"note": "about to fail"})
        raise RuntimeError("a bug in a command")


class _FailsAtCommit(Command):
    """Posts a balanced transfer, then loses a posting: only the deferred check (at COMMIT)
    can see it."""

    def __init__(self, accounts: tuple[int, int]) -> None:
        self.accounts = accounts

    def run(self, books: Door) -> dict[str, Any]:  # type: ignore[override]
        batch = books.batch  # a fault of the write path's own, below the doorway
        debit, credit = self.accounts
        batch.post(TransactionDraft((Posting(debit, 5, "CNY"), Posting(credit, -5, "CNY")),
                                    memo="loses a posting"))
        batch.posting_rows.pop()
        return {}


def test_the_appenders_own_transactions_survive_a_bug_and_a_failed_commit(
        engine: Engine) -> None:
    """The appender's connection is in autocommit and opens and commits its transactions
    itself; a crashing command and a commit the database refuses each fail alone, and the
    connection goes on working."""
    accounts = (open_account(engine, "asset"), open_account(engine, "asset"))
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        head_before = queries.chain_head(conn)[0]
        requests = [_open(), WriteRequest(_Crashes()), _open(),
                    WriteRequest(_FailsAtCommit(accounts)), _open()]
        execute_resilient(conn, requests)
        outcomes = [r.future.exception(timeout=request_wait_s) or r.future.result()
                    for r in requests]
        assert isinstance(outcomes[1], RuntimeError)
        assert "postings" in str(outcomes[3])
        opened = [o.body["id"] for o in (outcomes[0], outcomes[2], outcomes[4])]
        assert len(set(opened)) == 3
        after = [_open()]
        execute_resilient(conn, after)
        assert after[0].future.result(timeout=request_wait_s).body["id"] > max(opened)
        assert queries.chain_head(conn)[0] == head_before + 4  # four accounts, nothing else


def test_a_commit_with_requests_waiting_takes_the_next_lock_in_the_same_round_trip(
        engine: Engine) -> None:
    """With requests queued, the commit's round trip opens the next batch's transaction and
    locks the chain head for it; the next batch uses that lock, a failing one gives it up,
    and a writer going idle releases it, so other writers are never held up by it."""
    with engine.connect() as raw:
        conn = raw.execution_options(isolation_level="AUTOCOMMIT")
        first = [_open()]
        execute_resilient(conn, first, lambda: True)
        held = default_state(engine).held_lock
        assert held(conn).seq == queries.chain_head(conn)[0]
        crashing = [_open(), WriteRequest(_Crashes())]
        execute_resilient(conn, crashing, lambda: True)  # the crash gives the lock up
        assert isinstance(crashing[1].future.exception(timeout=request_wait_s), RuntimeError)
        assert crashing[0].future.result(timeout=request_wait_s).body["id"] > \
            first[0].future.result(timeout=request_wait_s).body["id"]
        assert held(conn) is not None  # the retry without the culprit relocked
        release_lock(conn)
        assert held(conn) is None
        # Nothing is left locked: another connection's writer goes straight through.
        other = [_open()]
        with engine.connect() as second:
            execute_resilient(second.execution_options(isolation_level="AUTOCOMMIT"), other)
        assert other[0].future.result(timeout=request_wait_s).body["id"] > \
            crashing[0].future.result(timeout=request_wait_s).body["id"]
