"""The database away (ledger/db/outage.py, and its answers in api/problems.py): requests answer
503 with Retry-After and say whether a write may have been recorded, the log says so once per
outage, and the same writer serves again when the database is back (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.jobs import JobAt, run_job
from api.runtime import (
    Database,
    ensure_default_department_maps,
    ensure_default_rule_sets,
    migrate,
)
from ledger import limits
from ledger.auth import Principal, Role
from ledger.db import job_queries
from ledger.db.embedded import EmbeddedPostgres
from ledger.db.engine import make_engine
from ledger.db.outage import connection_lost
from ledger.db.script import Script
from ledger.db.writer import Writer, WriteRequest
from ledger.errors import DatabaseUnavailable, NotFound, Recorded
from ledger.flows.closure import closure_steps
from ledger.jobs import JobStatus
from ledger.service import OpenAccount
from tests.support import testdb
from tests.support.db import issue_key, open_account, rows
from tests.support.http import ONE_ADDRESS_LIMITS, Headers, assert_problem, bearer

request_wait_s = 30
writes_during_outage = 12
# A writer whose database is back serves a write within this, without a restart of anything
# (docs/reliability.md: the crash harness measures 2.4 to 2.8 s from the fault, 2 s of it down).
recovery_s_max = 5
tills_count = 4
# Scheduling on a loaded 2-core machine: how much later than its bound an answer may come.
bound_slack_s = 3


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
        ensure_default_department_maps(engine)
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


def _attempt(writer: Writer, name: str, wait_s: float = recovery_s_max
             ) -> int | DatabaseUnavailable:
    """One write through the writer: the new account's id, or the refusal."""
    request = WriteRequest(OpenAccount.parse({"kind": "asset", "name": name}))
    try:
        return int(writer.submit(request).result(timeout=wait_s).body["id"])
    except DatabaseUnavailable as error:
        return error


def test_the_writer_serves_again_when_postgresql_comes_back_under_load(
        own_cluster: tuple[Path, Engine]) -> None:
    """PostgreSQL stopped and started again under tills that keep writing, as the crash harness
    does: while it is down every write is refused `DatabaseUnavailable` at once (never a driver
    error, never a wait for a time-out), and once it is back the same appender serves every
    till within `recovery_s_max`, with no restart of anything. (The appender once died here:
    a connection it had given up was given up again when the next one could not be made, and
    every write afterwards waited 30 s and answered 500 until the service was restarted.)"""
    home, engine = own_cluster
    writer = Writer(engine)
    writer.start()
    stop = threading.Event()
    answers: list[int | DatabaseUnavailable] = []
    served_after: dict[int, float] = {}  # till: seconds from the restart to its first write
    back: list[float] = []

    def till(n: int) -> None:
        while not stop.is_set() and n not in served_after:
            answer = _attempt(writer, f"till-{n}")
            answers.append(answer)
            if isinstance(answer, int) and back:
                served_after[n] = time.monotonic() - back[0]
            time.sleep(0.01)

    tills = [threading.Thread(target=till, args=(n,)) for n in range(tills_count)]
    try:
        for thread in tills:
            thread.start()
        time.sleep(0.3)
        testdb.stop(home)
        time.sleep(1.0)  # the tills keep writing while it is down
        answered_down = len(answers)
        testdb.start(home)
        back.append(time.monotonic())
        for thread in tills:
            thread.join(timeout=recovery_s_max)
        running = writer.running
    finally:
        stop.set()
        writer.stop()
    refused = [a for a in answers if isinstance(a, DatabaseUnavailable)]
    assert running
    assert refused, "some writes met the database down"
    assert answered_down > 2 * tills_count  # answered while it was down, not left waiting
    assert sorted(served_after) == list(range(tills_count)), served_after
    assert max(served_after.values()) < recovery_s_max
    opened = [a for a in answers if isinstance(a, int)]
    assert len(opened) == len(set(opened))


def _cluster_processes(home: Path) -> list[int]:
    """The cluster's postmaster and every process it forked (backends, background workers)."""
    pgdata = EmbeddedPostgres(home, testdb.TEST_SETTINGS).pgdata
    postmaster = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    children = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if entry.name.isdigit() and int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(entry.name))
    return [postmaster, *children]


@contextlib.contextmanager
def _frozen(home: Path) -> Iterator[None]:
    """The whole cluster SIGSTOPped, as a hung server or a network that drops packets looks
    to the service: no error, no answer. Always SIGCONTed on the way out."""
    processes = _cluster_processes(home)
    try:
        for pid in processes:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_a_write_to_a_silent_database_answers_503_within_the_bound_and_its_retry_the_first(
        own_cluster: tuple[Path, Engine], caplog: pytest.LogCaptureFixture) -> None:
    """No error ever comes from a silent database: the write answers 503 `recorded: unknown`
    with Retry-After once `write_answer_wait_s` has passed (not 500 after 30 s). When the
    database answers again the writer commits it, and the retry with the same key answers
    that first result: `unknown` was the honest answer. The log says so once."""
    home, engine = own_cluster
    key = bearer(issue_key(engine, Role.operator))
    app = create_app(engine, rate_limits=ONE_ADDRESS_LIMITS)
    with TestClient(app, raise_server_exceptions=False) as client:
        debit, credit = (_open(client, key, name).json()["id"] for name in ("till", "cash"))
        assert _pay(client, key, debit, credit, "before").status_code == 201
        with caplog.at_level(logging.INFO):
            with _frozen(home):
                started = time.monotonic()
                silent = _pay(client, key, debit, credit, "silent")
                waited_s = time.monotonic() - started
            retry = _pay(client, key, debit, credit, "silent")
    body = assert_problem(silent, 503, "database_unavailable")
    assert silent.headers["Retry-After"] == str(limits.database_retry_after_s)
    assert body["recorded"] == "unknown"
    assert body["retry_safe_with_same_idempotency_key"] is True
    assert f"did not answer within {limits.write_answer_wait_s} s" in body["detail"]
    assert limits.write_answer_wait_s <= waited_s < limits.write_answer_wait_s + bound_slack_s
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    recorded = rows(engine, "SELECT count(*) AS n FROM idempotency_records "
                            "WHERE key = 'silent'")[0]["n"]
    assert recorded == 1
    outage = [r.getMessage() for r in caplog.records if r.name == "yufu.database"]
    assert len(outage) == 2, outage
    assert outage[0].startswith(f"database unreachable (no answer from the database within "
                                f"{limits.write_answer_wait_s} s)")
    assert outage[1].startswith("database reachable again after")
    assert "1 requests refused" in outage[1]


def test_the_writers_new_connection_to_a_silent_database_gives_up_within_connect_timeout(
        own_cluster: tuple[Path, Engine]) -> None:
    """The writer's connection is cut and the database is silent when it makes a new one:
    each attempt gives up after `database_connect_timeout_s` (libpq's connect_timeout), the
    writes answer `DatabaseUnavailable`, `recorded: no`, and the writer connects again once
    the database answers."""
    home, engine = own_cluster
    writer = Writer(engine)
    writer.start()
    try:
        assert isinstance(_attempt(writer, "before"), int)
        with engine.connect() as other:  # the writer's connections, cut
            other.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        waits_s = []
        answers = []
        with _frozen(home):
            for name in ("lost", "silent"):  # the cut connection, then a new one
                started = time.monotonic()
                answers.append(_attempt(writer, name, limits.database_connect_timeout_s * 3))
                waits_s.append(time.monotonic() - started)
        after = _attempt(writer, "after")
        running = writer.running
    finally:
        writer.stop()
    for answer in answers:
        assert isinstance(answer, DatabaseUnavailable), answer
        assert answer.recorded is Recorded.NO
        assert "timeout expired" in answer.cause
    assert max(waits_s) < limits.database_connect_timeout_s + bound_slack_s
    assert isinstance(after, int) and running


def test_a_job_whose_slice_meets_the_database_away_stays_running_to_resume(
        own_cluster: tuple[Path, Engine]) -> None:
    """An outage is not a refusal (api/jobs.py `run_job`): the job stays `running`, to resume;
    the same job refused for good once the database is back ends `failed`."""
    home, engine = own_cluster
    with engine.begin() as conn:  # a closure job left running, of a merchant there is not
        job_id = conn.execute(text(
            "INSERT INTO jobs (kind, key, status, done, total, slices, created_by, created_at,"
            " updated_at, state) VALUES ('closure', 'NO-SUCH-MERCHANT', 'running', 0, 1, 0, 0,"
            " now(), now(), '{}') RETURNING id")).scalar_one()
    who = Principal(0, Role.operator)
    writer = Writer(engine)
    writer.start()
    try:
        testdb.stop(home)
        steps = closure_steps(who, "NO-SUCH-MERCHANT")
        with pytest.raises(DatabaseUnavailable):
            asyncio.run(run_job(writer, who, steps, next(steps), JobAt(job_id)))
        testdb.start(home)
        with engine.connect() as conn:
            away = job_queries.job(conn, job_id)
        steps = closure_steps(who, "NO-SUCH-MERCHANT")
        with pytest.raises(NotFound):
            asyncio.run(run_job(writer, who, steps, next(steps), JobAt(job_id)))
    finally:
        writer.stop()
    with engine.connect() as conn:
        refused = job_queries.job(conn, job_id)
    assert away is not None and (away.status, away.result) == (JobStatus.running, None)
    assert refused is not None and refused.status is JobStatus.failed
    assert refused.result is not None and refused.result["problem"]["status"] == 404
