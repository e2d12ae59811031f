"""An import costs what its file costs, not what the tables hold (issue 14, item 9): once
statement_lines has been analysed while small, importing many lines that each open a break
must not read the whole of statement_lines for each break (a foreign key's check, planned
once per connection while the table was small, did: 130 million tuples read)."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, text

from ledger.auth import Principal, Role
from ledger.bank.statements import read_file
from ledger.commands import Command
from ledger.db.writer import Outcome, WriteRequest, execute_resilient
from ledger.flows.imports import StageImport, import_steps
from ledger.jobs import run_steps
from tests.support.driver import Banking
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 11, 3)
BANK = "BANK-SCALE"
OPERATOR = Principal(key_id=0, role=Role.operator)
BIG_TABLES = ("statement_lines", "expected_deposits", "journal_entries")
stats_wait_s_max = 5.0


def unmatched_file(account: str, statement_id: str, lines: int, start_fen: int) -> bytes:
    """A statement of credits nobody expects: each line a break naming it."""
    entries = tuple(entry("CRDT", start_fen + n, DAY) for n in range(lines))
    return camt053([Stmt(account, statement_id, 0, DAY, entries)], message_id=statement_id)


def import_on(conn: Connection, data: bytes, slice_lines_max: int) -> dict[str, Any]:
    """The import's slices one after the other on one connection, as the writer's own long-
    lived connection runs them (a plan cached on it lives as long)."""
    def run(command: Command) -> dict[str, Any]:
        request = WriteRequest(command)
        execute_resilient(conn, [request])
        outcome = request.future.result()
        assert isinstance(outcome, Outcome)
        return dict(outcome.body)
    stage = StageImport(OPERATOR, BANK, "s.xml", data, DAY,
                        read_file(data, "s.xml"))
    return run_steps(import_steps(stage, slice_lines_max), run)


def seq_reads(engine: Engine, conn: Connection) -> dict[str, tuple[int, int]]:
    """(sequential scans, tuples they read) of each big table, once `conn`'s counts have
    reached the statistics (a backend sends them when idle, at most once a second)."""
    conn.execute(text("SELECT pg_stat_force_next_flush()"))
    conn.commit()
    with engine.connect() as reader:
        reader.execute(text("SELECT pg_stat_clear_snapshot()"))
        rows = reader.execute(text(
            "SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables "
            "WHERE relname = ANY(:tables)"), {"tables": list(BIG_TABLES)}).all()
    return {r.relname: (r.seq_scan, r.seq_tup_read) for r in rows}


def settled_reads(engine: Engine, conn: Connection) -> dict[str, tuple[int, int]]:
    """`seq_reads` once it stops moving (the flush is asynchronous)."""
    deadline = time.monotonic() + stats_wait_s_max
    last = seq_reads(engine, conn)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = seq_reads(engine, conn)
        if now == last:
            return now
        last = now
    return last


def test_breaks_do_not_scan_statement_lines_once_analysed_small(
        banking: Banking, engine: Engine, owner_engine: Engine) -> None:
    banking.set_today(DAY)
    m = banking.merchant(BANK)
    lines, few, slice_lines = 2_000, 20, 50
    with engine.connect() as conn:
        import_on(conn, unmatched_file(m.account, "SMALL", few, 1_000_000), 50)
        with owner_engine.connect() as owner:  # the table analysed while small
            owner.execute(text("ANALYZE statement_lines, reconciliation_breaks, "
                               "expected_deposits, journal_entries"))
            owner.commit()
        # Warm the connection's plans on the small table, as a writer's would be.
        import_on(conn, unmatched_file(m.account, "WARM", few, 2_000_000), 5)
        before = settled_reads(engine, conn)
        answer = import_on(conn, unmatched_file(m.account, "BIG", lines, 3_000_000),
                           slice_lines)
        after = settled_reads(engine, conn)
    assert answer["statements"][0]["outcome"] == {"break": lines}
    slices = lines // slice_lines
    for table in BIG_TABLES:
        scans = after[table][0] - before[table][0]
        # A scan per slice at most (a query planned afresh may read a small table whole);
        # a scan per line, each of the whole table, is the bug.
        assert scans <= slices + 2, (table, scans, after[table][1] - before[table][1])
