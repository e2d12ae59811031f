"""The database away (ledger/db/outage.py, and its answers in api/problems.py): requests answer
503 with Retry-After and say whether a write may have been recorded, the log says so once per
outage, and the same writer serves again when the database is back (docs/reliability.md)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.runtime import Database, ensure_default_rule_sets, migrate
from ledger import limits
from ledger.auth import Role
from ledger.db.engine import make_engine
from ledger.db.outage import connection_lost
from ledger.db.script import Script
from ledger.db.writer import WriteRequest
from ledger.errors import DatabaseUnavailable, Recorded
from ledger.service import OpenAccount
from tests.support import testdb
from tests.support.db import issue_key, open_account, rows
from tests.support.http import ONE_ADDRESS_LIMITS, Headers, assert_problem, bearer

request_wait_s = 30
writes_during_outage = 12


@pytest.fixture
def own_cluster() -> Iterator[tuple[Path, Engine]]:
    """A cluster of this test's own, migrated, to stop and start: the suite's shared one is
    never stopped. Stopped and removed afterwards, whatever the test did to it."""
    home = Path(tempfile.mkdtemp(prefix="yufu-outage-"))
    engine = None
    try:
        server = testdb.start(home)
        testdb.create_database(server.owner_url, "outage")
        migrate(Database(service_url=server.service("outage"), owner_url=server.owner("outage")))
        engine = make_engine(server.service("outage"))
        ensure_default_rule_sets(engine)
        yield home, engine
    finally:
        if engine is not None:
            engine.dispose()
        testdb.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def _open(client: TestClient, key: Headers, name: str) -> Any:
    return client.post("/v1/accounts", headers=key, json={"kind": "asset", "name": name})


def _pay(client: TestClient, key: Headers, debit: int, credit: int, idempotency: str) -> Any:
    return client.post("/v1/transactions", headers={**key, "Idempotency-Key": idempotency},
                       json={"postings": [{"account_id": debit, "amount_fen": 100},
                                          {"account_id": credit, "amount_fen": -100}]})


def _refused_unrecorded(answer: Any) -> None:
    body = assert_problem(answer, 503, "database_unavailable")
    assert answer.headers["Retry-After"] == str(limits.database_retry_after_s)
    assert body["recorded"] == "no"
    assert body["retry_safe_with_same_idempotency_key"] is True


def test_writes_and_reads_answer_503_while_the_database_is_down_and_the_writer_comes_back(
        own_cluster: tuple[Path, Engine], caplog: pytest.LogCaptureFixture) -> None:
    home, engine = own_cluster
    key = bearer(issue_key(engine, Role.operator))
    app = create_app(engine, rate_limits=ONE_ADDRESS_LIMITS)
    with TestClient(app, raise_server_exceptions=False) as client:
        writer = app.state.ctx.writer
        appender = writer._thread  # the very thread must live on
        debit, credit = (_open(client, key, name).json()["id"] for name in ("till", "cash"))
        assert _pay(client, key, debit, credit, "before").status_code == 201
        caplog.clear()
        with caplog.at_level(logging.INFO):
            testdb.stop(home)
            answers = [_pay(client, key, debit, credit, f"during-{n}")
                       for n in range(writes_during_outage)]
            answers += [_open(client, key, "during"), client.get("/v1/health"),
                        client.get(f"/v1/accounts/{debit}", headers=key)]
            # The writer's own answer, under the HTTP's authentication (which reads the key
            # from the database, and so refuses first while it is away).
            direct = writer.submit(WriteRequest(OpenAccount.parse(
                {"kind": "asset", "name": "direct"})))
            with pytest.raises(DatabaseUnavailable) as refused:
                direct.result(timeout=request_wait_s)
            testdb.start(home)
            after = _pay(client, key, debit, credit, "after")
            served = writer.submit(WriteRequest(OpenAccount.parse(
                {"kind": "asset", "name": "served"}))).result(timeout=request_wait_s)
        assert writer._thread is appender
    for answer in answers:
        _refused_unrecorded(answer)
    assert refused.value.recorded is Recorded.NO
    assert after.status_code == 201, after.text
    assert served.status_code == 201
    outage = [r for r in caplog.records if r.name == "yufu.database"]
    assert [r.getMessage().split(" ")[:2] for r in outage] == [
        ["database", "unreachable"], ["database", "reachable"]]
    assert f"{len(answers) + 1} requests refused" in outage[1].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"
    paid = rows(engine, "SELECT count(*) AS n FROM transactions")[0]["n"]
    assert paid == 2  # "before" and "after": nothing of the outage was recorded


def test_a_write_whose_commit_was_sent_answers_unknown_and_its_retry_the_first_answer(
        engine: Engine, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The connection dies right after the flush script carrying the COMMIT ran: the write is
    recorded, but the service cannot know. It answers 503 `unknown`, never 500, and the retry
    with the same Idempotency-Key answers the first result without recording it again."""
    key = bearer(issue_key(engine, Role.operator))
    debit, credit = open_account(engine), open_account(engine)
    run = Script.run
    armed = [True]

    def commit_then_lose_the_connection(self: Script, conn: Any = None) -> Any:
        statements = self._rendered or ";".join(self._statements)
        head = run(self, conn)
        if armed[0] and "COMMIT" in statements:
            armed[0] = False
            self.conn.connection.dbapi_connection.close()  # type: ignore[union-attr]
            raise psycopg2.OperationalError("server closed the connection unexpectedly")
        return head

    monkeypatch.setattr(Script, "run", commit_then_lose_the_connection)
    app = create_app(engine, rate_limits=ONE_ADDRESS_LIMITS)
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.INFO):
        first = _pay(client, key, debit, credit, "lost-commit")
        retry = _pay(client, key, debit, credit, "lost-commit")
        other = _pay(client, key, debit, credit, "next")  # the writer reconnected
    body = assert_problem(first, 503, "database_unavailable")
    assert first.headers["Retry-After"] == str(limits.database_retry_after_s)
    assert body["recorded"] == "unknown"
    assert body["retry_safe_with_same_idempotency_key"] is True
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 201, other.text
    recorded = rows(engine, "SELECT count(*) AS n FROM idempotency_records "
                            "WHERE key = 'lost-commit'")[0]["n"]
    assert recorded == 1
    outage = [r.getMessage() for r in caplog.records if r.name == "yufu.database"]
    assert len(outage) == 2 and "1 requests refused" in outage[1]
    assert not [r for r in caplog.records if r.exc_info]


def _raised(engine: Engine, sql: str) -> DBAPIError:
    with engine.connect() as conn, pytest.raises(DBAPIError) as caught:
        conn.execute(text(sql))
    return caught.value


@pytest.mark.parametrize(("sqlstate", "lost"), [
    ("57P01", True), ("57P02", True), ("57P03", True), ("08006", True),  # the server goes
    ("40001", False), ("40P01", False), ("57014", False), ("55P03", False),  # it refuses
    ("23505", False), ("P0001", False)])
def test_only_a_server_going_away_counts_as_the_database_unavailable(
        engine: Engine, sqlstate: str, lost: bool) -> None:
    """A serialization failure, a deadlock, a timeout or a lock not had are the server's
    answers, with their own handling; only its going away is an outage."""
    raised = _raised(engine, f"DO $$ BEGIN RAISE EXCEPTION 'as told' USING ERRCODE = '{sqlstate}'; "
                             "END $$")
    assert connection_lost(raised) is lost


def test_a_connection_terminated_under_a_statement_is_the_database_unavailable(
        engine: Engine) -> None:
    assert connection_lost(_raised(engine, "SELECT pg_terminate_backend(pg_backend_pid())"))
