"""The database helpers: commands run straight on the module's database (not over HTTP), for
tests that only need something to exist; what the database holds; a transaction rolled back
and the error PostgreSQL answered; a database dropped."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from stdnum.cn import uscc

from api.runtime import run_command
from ledger import journal
from ledger.auth import LOCAL_OPERATOR, Role
from ledger.commands import Command
from ledger.custody.merchants import parse_filing
from ledger.custody.rules import DEFAULT_JURISDICTION
from ledger.db import queries
from ledger.db.engine import normalise_url
from ledger.db.writer import Outcome, WriteRequest, execute_resilient
from ledger.errors import Conflict
from ledger.flows.filing import FileMerchant
from ledger.journal import ChainBreak
from ledger.service import IssueKey, OpenAccount, PostTransaction
from ledger.trust_service import RegisterBank

# Every table a write can touch: if none changes, nothing was written.
WRITTEN_TABLES = ("journal_entries", "transactions", "postings", "accounts", "api_keys",
                  "idempotency_records", "rule_sets", "merchants", "merchant_accounts",
                  "products", "cards", "consumptions", "release_instructions",
                  "refund_instructions")
# Tables an import writes: if none changes (and the head stays), nothing was imported.
IMPORT_TABLES = ("journal_entries", "statement_files", "bank_statements", "statement_lines",
                 "reconciliation_breaks", "cross_verifications", "postings")
ORDER = {"journal_entries": "seq", "transactions": "id", "postings": "transaction_id, idx",
         "merchant_accounts": "merchant_id, purpose", "idempotency_records": "api_key_id, key",
         "department_maps": "jurisdiction, version"}


def drop_database(server_url: str, name: str) -> None:
    admin = create_engine(make_url(normalise_url(server_url)), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def bank_code(bank_id: str) -> str:
    """A made-up but well-formed CNAPS code (12 digits), one per bank id."""
    return f"{int.from_bytes(hashlib.sha256(bank_id.encode()).digest()[:8], 'big'):012d}"[-12:]


def register_bank(engine: Engine, bank_id: str) -> None:
    """Register the custodian bank a test files merchants with (once per database)."""
    with contextlib.suppress(Conflict):  # registered by an earlier test of the module
        run_command(engine, RegisterBank(bank_id, f"{bank_id} 银行", bank_code(bank_id)))


def issue_key(engine: Engine, role: Role, merchant_id: str | None = None,
              bank_id: str | None = None) -> str:
    if bank_id is not None:
        register_bank(engine, bank_id)
    return str(run_command(engine, IssueKey(role, merchant_id, bank_id))["key"])


def file_merchant(engine: Engine, bank_id: str, industry: str = "体育健身") -> str:
    """A merchant filed directly (not over HTTP), for tests that only need one to exist."""
    register_bank(engine, bank_id)
    base = f"91110105{uuid.uuid4().int % 10**9:09d}"
    filing = parse_filing({"name": "测试商户", "credit_code": base + uscc.calc_check_digit(base),
                           "industry": industry, "bank_id": bank_id,
                           "custody_account": f"02{uuid.uuid4().int % 10**11:011d}"},
                          DEFAULT_JURISDICTION)  # one merchant per custody account at a bank
    return str(run_command(engine, FileMerchant(LOCAL_OPERATOR, filing))["id"])


def open_account(engine: Engine, kind: str = "asset", **extra: Any) -> int:
    body = run_command(engine, OpenAccount.parse({"kind": kind, "name": f"{kind} account",
                                                  **extra}))
    return int(body["id"])  # type: ignore[call-overload]


def run_together(engine: Engine, *commands: object) -> list[Outcome | BaseException]:
    """Commands in one group commit, as the writer runs a batch of requests: each one's
    answer, or what it raised."""
    requests = [WriteRequest(command) for command in commands]  # type: ignore[arg-type]
    with engine.connect() as conn:
        execute_resilient(conn.execution_options(isolation_level="AUTOCOMMIT"), requests)
    return [r.future.exception() or r.future.result() for r in requests]


def run_one(engine: Engine) -> Callable[[Command], dict[str, Any]]:
    """A runner of commands, each in a group commit of its own (a long job's slices, as
    `ledger.jobs.run_steps` takes them): its answer, or what it raised, raised."""
    def run(command: Command) -> dict[str, Any]:
        [outcome] = run_together(engine, command)
        if not isinstance(outcome, Outcome):
            raise outcome
        return dict(outcome.body)
    return run


def transfer(*legs: tuple[int, int], memo: str = "") -> PostTransaction:
    return PostTransaction.parse({"memo": memo, "postings": [
        {"account_id": account, "amount_fen": amount, "currency": "CNY"}
        for account, amount in legs]})


def balances(engine: Engine, ids: list[int]) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, balance_fen FROM accounts WHERE id = ANY(:ids)"),
                            {"ids": ids}).all()
    return {r.id: r.balance_fen for r in rows}


def head_seq(source: httpx.Client | Engine) -> int:
    """The journal's last seq (its size): as /v1/health tells a client (a TestClient, or an
    httpx.Client on a live server), or as the database's chain head holds it."""
    if isinstance(source, Engine):
        with source.connect() as conn:
            return queries.chain_head(conn)[0]
    response = source.get("/v1/health")
    assert response.status_code == 200, response.text
    return int(response.json()["journal_head_seq"])


def database_state(engine: Engine, tables: Sequence[str] = WRITTEN_TABLES) -> dict[str, Any]:
    """Every row of these tables, and the chain head."""
    with engine.connect() as conn:
        state: dict[str, Any] = {
            table: [tuple(r) for r in conn.execute(
                text(f"SELECT * FROM {table} ORDER BY {ORDER.get(table, 'id')}"))]
            for table in tables}
        state["head"] = tuple(conn.execute(text("SELECT seq, entry_hash FROM chain_head")).one())
    return state


@contextlib.contextmanager
def nothing_written(client: TestClient, engine: Engine,
                    tables: Sequence[str] = WRITTEN_TABLES) -> Iterator[None]:
    """The block leaves the journal head (as /v1/health tells it), every row of every table
    a write can touch, and so every balance, as they were."""
    seq_before, state_before = head_seq(client), database_state(engine, tables)
    yield
    assert head_seq(client) == seq_before
    assert database_state(engine, tables) == state_before


def import_state(engine: Engine) -> dict[str, Any]:
    """How many rows each table an import writes holds, and the chain head."""
    with engine.connect() as conn:
        state: dict[str, Any] = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                                 for t in IMPORT_TABLES}
        state["head"] = tuple(conn.execute(text("SELECT seq, entry_hash FROM chain_head")).one())
    return state


def nothing_imported(client: TestClient, engine: Engine) -> contextlib.AbstractContextManager[None]:
    """The block leaves the journal head and every table an import writes as they were: no
    file, no line, no break, no cross-verification, no posting."""
    return nothing_written(client, engine, IMPORT_TABLES)


def row(engine: Engine, sql: str, **params: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        found = conn.execute(text(sql), params).mappings().one()
    return dict(found)


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def assert_journal_sound(engine: Engine) -> int:
    """Gapless, unforked, hashes right, head on the last entry, balances equal postings."""
    with engine.connect() as conn:
        count, first, last = conn.execute(
            text("SELECT count(*), min(seq), max(seq) FROM journal_entries")).one()
        unlinked = conn.execute(text(
            "SELECT count(*) FROM journal_entries e JOIN journal_entries p ON p.seq = e.seq - 1 "
            "WHERE e.prev_hash <> p.entry_hash")).scalar_one()
        backwards = conn.execute(text(
            "SELECT count(*) FROM journal_entries e JOIN journal_entries p ON p.seq = e.seq - 1 "
            "WHERE e.ts < p.ts")).scalar_one()
        results = list(journal.check_chain(queries.stored_entries(conn)))
        head = queries.chain_head(conn)
        mismatches = queries.account_balance_mismatches(conn)
    assert (first, last) == (1, count)
    assert unlinked == 0
    assert backwards == 0
    assert not [r for r in results if isinstance(r, ChainBreak)]
    assert len(results) == count
    assert head == (count, results[-1])
    assert mismatches == []
    return int(count)


def pg_error(caught: pytest.ExceptionInfo[DBAPIError]) -> tuple[str, str]:
    orig: Any = caught.value.orig
    return orig.pgcode, orig.diag.message_primary


@contextlib.contextmanager
def rolled_back(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            yield conn
        finally:
            if tx.is_active:
                tx.rollback()


def journal_payloads(engine: Engine, kind: str) -> list[dict[str, Any]]:
    """The payloads of every journal entry of this kind, oldest first, read off its bytes."""
    with engine.connect() as conn:
        bodies = conn.execute(text("SELECT body FROM journal_entries WHERE kind = :k "
                                   "ORDER BY seq"), {"k": kind}).scalars()
        return [json.loads(bytes(b))["payload"] for b in bodies]
