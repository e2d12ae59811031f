"""Importing twice changes nothing; the last cross-verification per account; the
`yufu reconcile import` command."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from tests.support import ROOT
from tests.support.bank import deposit, sample
from tests.support.db import import_state, nothing_imported, rows
from tests.support.driver import Banking
from tests.support.statements import Stmt, camt053, entry, statement_csv

DAY = date(2026, 11, 2)
NEXT_DAY = date(2026, 11, 3)


def test_the_same_file_twice_is_a_duplicate_and_changes_nothing(banking: Banking,
                                                                 engine: Engine) -> None:
    banking.set_today(DAY)
    m = banking.merchant("BANK-DUP")
    sale = banking.sell_at(m, 10_000)
    data = camt053([Stmt(m.account, "DUP-1", 0, DAY, (
        entry("CRDT", 10_000, DAY, cref=sale["reference"]),
        entry("CRDT", 55, DAY, cref="UNKNOWN")))])
    first = banking.import_file("BANK-DUP", data)

    with nothing_imported(banking.client, engine):
        again = banking.import_file("BANK-DUP", data, filename="renamed.xml")

    assert {k: v for k, v in again.items() if k != "statements"} == {
        "duplicate": True, "file_id": first["file_id"], "sha256": first["sha256"],
        "journal_seq": first["journal_seq"]}
    assert [(s["statement_id"], s["status"]) for s in again["statements"]] == [
        ("DUP-1", "already_imported")]
    assert len(banking.open_breaks(m)) == 1


def test_the_same_statement_inside_another_file_is_skipped(banking: Banking,
                                                           engine: Engine) -> None:
    banking.set_today(DAY)
    m = banking.merchant("BANK-DUP")
    sale, later = banking.sell_at(m, 10_000), banking.sell_at(m, 20_000)
    day_one = Stmt(m.account, "SAME-1", 0, DAY,
                   (entry("CRDT", 10_000, DAY, cref=sale["reference"]),
                    entry("CRDT", 99, DAY, cref="UNKNOWN")))
    first = banking.import_file("BANK-DUP", camt053([day_one], message_id="FIRST"))
    before = import_state(engine)

    # Another file (another message id, no indentation) carrying the same statement only.
    skipped = banking.import_file("BANK-DUP", camt053([day_one], message_id="RESENT",
                                                      pretty=False))

    [named] = skipped["statements"]
    assert (named["statement_id"], named["status"], named["earlier_file_id"]) == (
        "SAME-1", "already_imported", first["file_id"])
    assert skipped["overdue_breaks"] == []
    after = import_state(engine)
    # The file is kept and journaled as received; nothing in it is matched again.
    assert {k: after[k] - before[k] for k in after if k != "head"} == {
        "journal_entries": 1, "statement_files": 1, "bank_statements": 0,
        "statement_lines": 0, "reconciliation_breaks": 0, "cross_verifications": 0,
        "postings": 0}
    [summary] = json.loads(bytes(rows(engine, "SELECT body FROM journal_entries WHERE seq = :s",
                                      s=skipped["journal_seq"])[0]["body"]))["payload"][
        "statements"]
    assert (summary["statement_id"], summary["status"]) == ("SAME-1", "already_imported")

    # With a new statement beside it, only the new one is reconciled.
    day_two = Stmt(m.account, "SAME-2", day_one.closing_fen, NEXT_DAY,
                   (entry("CRDT", 20_000, NEXT_DAY, cref=later["reference"]),))
    both = banking.import_file("BANK-DUP", camt053([day_one, day_two], message_id="BOTH"))
    assert [(s["statement_id"], s["status"], s.get("outcome")) for s in both["statements"]] == [
        ("SAME-1", "already_imported", None), ("SAME-2", "imported", {"deposit": 1})]
    assert len(banking.open_breaks(m)) == 1
    assert deposit(engine, later["reference"]) == ("cleared", 0)


def test_a_csv_statement_is_the_day_of_its_closing_balance(banking: Banking,
                                                           engine: Engine) -> None:
    banking.set_today(DAY)
    m = banking.merchant("BANK-DUP")
    sale, later = banking.sell_at(m, 10_000), banking.sell_at(m, 20_000)
    day_one = Stmt(m.account, "ignored", 0, DAY,
                   (entry("CRDT", 10_000, DAY, cref=sale["reference"]),))
    first = banking.import_file("BANK-DUP", statement_csv([day_one]), filename="d1.csv")
    assert first["statements"][0]["statement_id"] == f"{m.account}:CNY:2026-11-02"

    resent = statement_csv([day_one]).replace(b"\n", b"\r\n")  # other bytes, same statement
    assert [s["status"] for s in banking.import_file("BANK-DUP", resent, filename="d1.csv")[
        "statements"]] == ["already_imported"]
    day_two = Stmt(m.account, "ignored", 10_000, NEXT_DAY,
                   (entry("CRDT", 20_000, NEXT_DAY, cref=later["reference"]),))
    second = banking.import_file("BANK-DUP", statement_csv([day_two]), filename="d2.csv")
    assert [(s["statement_id"], s["outcome"]) for s in second["statements"]] == [
        (f"{m.account}:CNY:2026-11-03", {"deposit": 1})]


def test_the_view_shows_the_last_cross_verification_of_each_account(banking: Banking) -> None:
    banking.set_today(DAY)
    m, other = banking.merchant("BANK-VIEW"), banking.merchant("BANK-VIEW")
    sale = banking.sell_at(m, 10_000)
    banking.import_file("BANK-VIEW", camt053([
        Stmt(m.account, "V-1", 0, DAY, (entry("CRDT", 500, DAY, cref="STRAY"),)),
        Stmt(other.account, "V-OTHER", 0, DAY)]))
    banking.import_file("BANK-VIEW", camt053([Stmt(m.account, "V-2", 0, NEXT_DAY, (
        entry("CRDT", 10_000, NEXT_DAY, cref=sale["reference"]),))]))

    items = banking.ok("GET", "/v1/cross-verifications", banking.bank("BANK-VIEW"))["items"]

    assert [(i["account"], i["statement_id"], i["closing_date"], i["bank_balance_fen"],
             i["ledger_balance_fen"], i["difference_fen"], i["result"]) for i in items] == [
        (other.account, "V-OTHER", "2026-11-02", 0, 0, 0, "match"),
        (m.account, "V-2", "2026-11-03", 10_000, 10_000, 0, "match")]


def test_yufu_reconcile_import_reads_a_file_into_the_database(
        banking: Banking, engine: Engine, database_env: dict[str, str], tmp_path: Path) -> None:
    banking.set_today(DAY)
    m = banking.merchant("BANK-CLI")
    sale = banking.sell_at(m, 10_000)
    statement = tmp_path / "day.xml"
    statement.write_bytes(camt053([Stmt(m.account, "CLI-1", 0, DAY, (
        entry("CRDT", 10_000, DAY, cref=sale["reference"]),))]))
    env = {**os.environ, **database_env, "YUFU_HOME": str(tmp_path)}

    done = subprocess.run([str(ROOT / ".venv/bin/yufu"), "reconcile", "import", str(statement),
                           "--bank", "BANK-CLI"], env=env, capture_output=True, text=True,
                          check=False, timeout=120)

    assert done.returncode == 0, done.stderr
    # Not a terminal: the progress is a plain line per step on stderr, not a bar.
    assert done.stderr.splitlines()[-1] == "statement_import 1/1 (1 slices)"
    body = json.loads(done.stdout)
    [result] = body["statements"]
    assert (result["merchant_id"], result["outcome"], result["deposits_cleared_fen"],
            result["cross_verification"]["result"]) == (m.id, {"deposit": 1}, 10_000, "match")
    assert deposit(engine, sale["reference"]) == ("cleared", 0)
    assert [r["filename"] for r in rows(engine, "SELECT filename FROM statement_files "
                                                "WHERE id = :f", f=body["file_id"])] == [
        "day.xml"]

    # A refused file: a non-zero exit that says why, and nothing imported.
    hostile = tmp_path / "hostile.xml"
    hostile.write_bytes(sample("hostile_xxe.xml"))
    with nothing_imported(banking.client, engine):
        refused = subprocess.run([str(ROOT / ".venv/bin/yufu"), "reconcile", "import",
                                  str(hostile), "--bank", "BANK-CLI"], env=env,
                                 capture_output=True, text=True, check=False, timeout=120)
    assert refused.returncode != 0
    assert "a DTD (<!DOCTYPE ...>) is not accepted" in refused.stderr + refused.stdout


def test_a_credit_for_a_deposit_confirmed_by_hand_is_its_evidence_not_a_break(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(DAY)
    m = banking.merchant("BANK-HAND")
    whole, part = banking.sell_at(m, 10_000), banking.sell_at(m, 20_000)
    # Confirmed by hand, oldest first: all of the first, 5,000 of the second.
    banking.deposit(m.id, banking.operator, 15_000)
    assert (deposit(engine, whole["reference"]), deposit(engine, part["reference"])) == (
        ("cleared", 0), ("pending", 15_000))

    body = banking.import_file("BANK-HAND", camt053([Stmt(m.account, "HAND-1", 0, DAY, (
        entry("CRDT", 10_000, DAY, cref=whole["reference"]),
        entry("CRDT", 20_000, DAY, cref=part["reference"])))]))

    [statement] = body["statements"]
    assert (statement["outcome"], statement["deposits_cleared_fen"]) == (
        {"deposit_confirmed_by_hand": 1, "deposit": 1}, 15_000)
    verified = statement["cross_verification"]
    assert (verified["bank_balance_fen"], verified["ledger_balance_fen"], verified["result"]) \
        == (30_000, 30_000, "match")
    assert deposit(engine, part["reference"]) == ("cleared", 0)
    assert [r["cleared_line_id"] is not None for r in rows(
        engine, "SELECT cleared_line_id FROM expected_deposits WHERE merchant_id = :m "
                "ORDER BY id", m=m.id)] == [True, True]
    assert banking.open_breaks(m) == []
