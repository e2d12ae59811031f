"""A statement is its content: a repeated number is a new statement, a true duplicate is
named; a file's statements are each imported, named already imported, or refused with their
reason; a dry run writes nothing; custody accounts are one per merchant at a bank, in any
spelling (issue 14, items 1, 6, 7 and 8)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest
from httpx import Response
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from tests.support import ROOT
from tests.support.bank_exports import Line as ExportLine
from tests.support.bank_exports import generic_rows, to_csv
from tests.support.corpus import CORPUS, needs_corpus
from tests.support.custody import credit_code
from tests.support.db import import_state, nothing_imported, register_bank, rows
from tests.support.driver import Banking, Merchant
from tests.support.statements import Stmt, camt052, camt053, entry

DAYS = [date(2026, 11, d) for d in (2, 3, 4, 5)]


def _mt940_day(account: str, number: str, opening_fen: int, closing_fen: int, day: date,
               lines: Sequence[tuple[str, int, str]]) -> str:
    """One MT940 message, balances as given (so a test can make them not add up)."""
    yymmdd = day.strftime("%y%m%d")

    def amount(fen: int) -> str:
        return f"{abs(fen) // 100},{abs(fen) % 100:02d}"

    def mark(fen: int) -> str:
        return "C" if fen >= 0 else "D"

    body = [f":20:YUFU{yymmdd}", f":25:{account}", f":28C:{number}",
            f":60F:{mark(opening_fen)}{yymmdd}CNY{amount(opening_fen)}"]
    for direction, fen, reference in lines:
        body += [f":61:{yymmdd}{day.strftime('%m%d')}{direction}{amount(fen)}NTRF{reference}",
                 f":86:/EREF/{reference}/REMI/day {yymmdd}"]
    body += [f":62F:{mark(closing_fen)}{yymmdd}CNY{amount(closing_fen)}", "-"]
    return "\r\n".join(body)


def _mt940(*messages: str) -> bytes:
    return ("\r\n".join(messages) + "\r\n").encode()


def _lines_of(engine: Engine, file_id: int) -> list[tuple[str, int, str]]:
    return [(r["statement_id"], r["amount_fen"], r["position"]) for r in rows(
        engine, "SELECT statement_id, amount_fen, position FROM statement_lines "
                "WHERE file_id = :f ORDER BY id", f=file_id)]


def test_a_number_repeated_on_four_days_is_four_statements(banking: Banking,
                                                          engine: Engine) -> None:
    """Rabobank writes `:28C:0` every day: each day is its own statement, every line is
    stored and matched, and every closing balance is cross-verified."""
    banking.set_today(DAYS[-1])
    m = banking.merchant("BANK-RABO")
    sales = [banking.sell_at(m, 10_000 + 100 * i) for i in range(4)]
    messages, balance = [], 0
    for day, sale in zip(DAYS, sales, strict=True):
        fen = 10_000 + 100 * sales.index(sale)
        messages.append(_mt940_day(m.account, "0", balance, balance + fen, day,
                                   [("C", fen, sale["reference"])]))
        balance += fen
    body = banking.import_file("BANK-RABO", _mt940(*messages), filename="rabo.swi")

    assert [(s["status"], s["statement_id"], s["lines"], s["outcome"],
             s["cross_verification"]["bank_balance_fen"],
             s["cross_verification"]["result"]) for s in body["statements"]] == [
        ("imported", "0", 1, {"deposit": 1}, 10_000, "match"),
        ("imported", "0", 1, {"deposit": 1}, 20_100, "match"),
        ("imported", "0", 1, {"deposit": 1}, 30_300, "match"),
        ("imported", "0", 1, {"deposit": 1}, 40_600, "match")]
    assert [amount for _, amount, _ in _lines_of(engine, body["file_id"])] == [
        10_000, 10_100, 10_200, 10_300]
    assert len({s["statement_ref"] for s in body["statements"]}) == 4

    # The third day again, in a file of its own: the same statement, named as such.
    before = import_state(engine)
    again = banking.import_file("BANK-RABO", _mt940(messages[2]), filename="day3.swi")
    [named] = again["statements"]
    assert (named["status"], named["earlier_file_id"], named["earlier_statement"]) == (
        "already_imported", body["file_id"], body["statements"][2]["statement_ref"])
    after = import_state(engine)
    assert (after["statement_lines"], after["cross_verifications"]) == (
        before["statement_lines"], before["cross_verifications"])


def test_the_same_number_with_other_lines_is_imported_not_skipped(banking: Banking,
                                                                  engine: Engine) -> None:
    banking.set_today(DAYS[1])
    m = banking.merchant("BANK-REUSE")
    first, second = banking.sell_at(m, 5_000), banking.sell_at(m, 7_000)
    one = banking.import_file("BANK-REUSE", camt053([Stmt(m.account, "STMT-1", 0, DAYS[0], (
        entry("CRDT", 5_000, DAYS[0], cref=first["reference"]),))]))
    # The bank's next file reuses the statement id, with the next day's line.
    two = banking.import_file("BANK-REUSE", camt053([Stmt(m.account, "STMT-1", 5_000, DAYS[1], (
        entry("CRDT", 7_000, DAYS[1], cref=second["reference"]),))], message_id="NEXT"))

    assert [(s["status"], s["outcome"]) for s in one["statements"] + two["statements"]] == [
        ("imported", {"deposit": 1}), ("imported", {"deposit": 1})]
    assert two["statements"][0]["cross_verification"]["result"] == "match"


def test_a_file_imports_its_good_statements_and_names_each_refused_one(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(DAYS[0])
    m = banking.merchant("BANK-PART")
    sale = banking.sell_at(m, 8_000)
    good = _mt940_day(m.account, "1", 0, 8_000, DAYS[0], [("C", 8_000, sale["reference"])])
    foreign = _mt940_day("9999000011112222", "2", 0, 100, DAYS[0], [("C", 100, "X1")])
    wrong = _mt940_day(m.account, "3", 8_000, 9_999, DAYS[1], [("C", 500, "X2")])
    data = _mt940(good, foreign, wrong)

    with nothing_imported(banking.client, engine):
        refused = banking.client.post("/v1/banks/BANK-PART/statements",
                                      headers=banking.bank("BANK-PART"), content=data,
                                      params={"filename": "part.sta", "all_or_nothing": "true"})
    assert refused.status_code == 422
    whole = banking.post_statement("BANK-PART", data, filename="part.sta")
    assert whole.status_code == 201, whole.text
    problem = refused.json()
    assert "2 of 3 statements refused (all or nothing was asked)" in problem["detail"]

    got = whole.json()["statements"]
    assert [(s["position"], s["status"]) for s in got] == [
        ("line 1", "imported"), ("line 9", "refused"), ("line 17", "refused")]
    assert got[0]["outcome"] == {"deposit": 1}
    assert got[1]["reason"] == "account 9999000011112222 is not a custody account held at " \
                               "BANK-PART"
    assert got[2]["reason"].startswith("balances do not add up: opening 8000 fen + booked "
                                       "entries 500 fen != closing 9999 fen")
    # The journal names every statement of the file, the refused ones with their reason.
    [entry_body] = rows(engine, "SELECT body FROM journal_entries WHERE seq = :s",
                        s=whole.json()["journal_seq"])
    journaled = json.loads(bytes(entry_body["body"]))["payload"]["statements"]
    assert [(s["status"], s.get("reason", "")[:20]) for s in journaled] == [
        ("imported", ""), ("refused", "account 999900001111"), ("refused", "balances do not add ")]


def test_a_file_with_nothing_to_import_is_refused_whole(banking: Banking,
                                                        engine: Engine) -> None:
    banking.set_today(DAYS[0])
    banking.merchant("BANK-NONE")
    data = _mt940(_mt940_day("1234 5678", "1", 0, 100, DAYS[0], [("C", 100, "X")]))
    with nothing_imported(banking.client, engine):
        answer = banking.post_statement("BANK-NONE", data, filename="none.sta")
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("1 of 1 statements refused (no statement can be "
                                              "imported): line 1: account 1234 5678 is not")


def test_a_statement_account_matches_in_any_spelling(banking: Banking) -> None:
    banking.set_today(DAYS[0])
    m = banking.merchant("BANK-SPELL")
    spaced = " ".join(m.account[i:i + 4] for i in range(0, len(m.account), 4))
    sales = [banking.sell_at(m, 1_000 + i) for i in range(3)]
    forms = [f"ICBKCNBJ/{spaced}", f"{m.account}CNY", "-".join(spaced.split())]
    messages, balance = [], 0
    for number, (form, sale) in enumerate(zip(forms, sales, strict=True), 1):
        fen = 1_000 + number - 1
        messages.append(_mt940_day(form, str(number), balance, balance + fen, DAYS[0],
                                   [("C", fen, sale["reference"])]))
        balance += fen
    body = banking.import_file("BANK-SPELL", _mt940(*messages), filename="forms.sta")
    assert [(s["status"], s["account"], s["merchant_id"]) for s in body["statements"]] == [
        ("imported", m.account, m.id)] * 3


def test_a_dry_run_shows_the_file_as_read_and_writes_nothing(banking: Banking,
                                                             engine: Engine) -> None:
    banking.set_today(DAYS[0])
    m = banking.merchant("BANK-DRY")
    sale = banking.sell_at(m, 3_000)
    good = _mt940_day(m.account, "7", 0, 3_000, DAYS[0], [("C", 3_000, sale["reference"])])
    data = _mt940(good, _mt940_day(m.account, "8", 0, 1, DAYS[0], [("C", 2, "X")]))

    with nothing_imported(banking.client, engine):
        answer = banking.client.post("/v1/banks/BANK-DRY/statements", content=data,
                                     headers=banking.bank("BANK-DRY"),
                                     params={"filename": "dry.sta", "dry_run": "true"})
    assert answer.status_code == 200, answer.text
    read = answer.json()
    assert (read["dry_run"], read["format"], read["read"], read["refused"]) == (
        True, "mt940", 1, 1)
    first, second = read["statements"]
    assert (first["account"], first["statement_id"], first["opening_booked_fen"],
            first["closing_booked_fen"], first["opening_date"], first["import"]["status"]) == (
        m.account, "7", 0, 3_000, "2026-11-02", "imported")
    [line] = first["entries"]
    assert (line["amount_fen"], line["amount"], line["direction"], line["booking_date"],
            line["details"][0]["end_to_end_id"]) == (
        3_000, "30.00", "CRDT", "2026-11-02", sale["reference"])
    assert (second["read"], second["import"]["status"], second["field"]) == (
        False, "refused", "line 15")

    # Imported for real, the same file's statement reads as already imported in a dry run.
    banking.import_file("BANK-DRY", _mt940(good), filename="good.sta")
    again = banking.client.post("/v1/banks/BANK-DRY/statements", content=_mt940(good),
                                headers=banking.bank("BANK-DRY"),
                                params={"dry_run": "true"}).json()
    assert again["statements"][0]["import"]["status"] == "already_imported"


def test_a_dry_run_is_for_the_bank_itself(banking: Banking, engine: Engine) -> None:
    banking.set_today(DAYS[0])
    m = banking.merchant("BANK-DRY2")
    data = _mt940(_mt940_day(m.account, "1", 0, 1, DAYS[0], [("C", 1, "X")]))
    other = banking.bank("BANK-OTHER")
    answer = banking.client.post("/v1/banks/BANK-DRY2/statements", content=data,
                                 headers=other, params={"dry_run": "true"})
    assert answer.status_code == 403


def _file(banking: Banking, bank_id: str, account: str) -> Response:
    register_bank(banking.engine, bank_id)
    body = {"name": "商户", "industry": "体育健身", "bank_id": bank_id,
            "credit_code": credit_code(banking.rng), "custody_account": account}
    response: Response = banking.client.post("/v1/merchants", headers=banking.operator,
                                             json=body)
    return response


def test_a_custody_account_held_at_the_bank_is_refused_in_any_spelling(
        banking: Banking, engine: Engine) -> None:
    first = _file(banking, "BANK-HELD", "6222 0210 0104 3300 123")
    assert first.status_code == 201, first.text
    assert first.json()["custody_account"] == "6222021001043300123"
    again = _file(banking, "BANK-HELD", "6222-0210-0104-3300-123")
    assert again.status_code == 409
    assert (again.json()["code"], again.json()["field"]) == ("conflict", "custody_account")
    # The same number at another bank is another account.
    elsewhere = _file(banking, "BANK-HELD-2", "6222021001043300123")
    assert elsewhere.status_code == 201

    # And the database holds to it whatever the code does.
    holder = rows(engine, "SELECT * FROM merchants WHERE custody_account = '6222021001043300123'"
                          " AND bank_id = 'BANK-HELD'")[0]
    with pytest.raises(IntegrityError, match="uq_merchants_custody_account"), \
            engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO merchants (id, name, credit_code, industry, department, "
            "department_pending, jurisdiction, bank_id, custody_account, rule_set_id, status, "
            "tier, hard_blocks, complaint_count, filed_seq) SELECT 'm-copy', name, 'X' || "
            "credit_code, industry, department, department_pending, jurisdiction, bank_id, "
            "custody_account, rule_set_id, status, tier, hard_blocks, complaint_count, "
            "filed_seq FROM merchants WHERE id = :id"), {"id": holder["id"]})


def test_a_line_names_its_statement_in_the_database(banking: Banking, engine: Engine) -> None:
    banking.set_today(DAYS[0])
    m: Merchant = banking.merchant("BANK-REF")
    body = banking.import_file("BANK-REF", _mt940(
        _mt940_day(m.account, "1", 0, 5, DAYS[0], [("C", 5, "X")])), filename="r.sta")
    with pytest.raises(IntegrityError, match="a statement line names a statement"), \
            engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO statement_lines (id, file_id, bank_id, account, statement_id, "
            "position, direction, status, reversal, amount_fen, matched_kind, statement_ref) "
            "VALUES (nextval(pg_get_serial_sequence('statement_lines', 'id')), :f, 'BANK-REF', "
            "'x', 'x', 'line 99', 'CRDT', 'BOOK', false, 1, 'break', -1)"),
            {"f": body["file_id"]})


def test_yufu_statements_parse_prints_the_file_as_read(tmp_path: Path) -> None:
    statement = tmp_path / "two.sta"
    statement.write_bytes(_mt940(
        _mt940_day("NL91ABNA0417164300", "5", 100, 350, DAYS[0], [("C", 250, "REF-A")]),
        _mt940_day("NL91ABNA0417164300", "5", 350, 999, DAYS[1], [("D", 50, "REF-B")])))
    done = subprocess.run([str(ROOT / ".venv/bin/yufu"), "statements", "parse", str(statement),
                           "--json"], env={**os.environ, "YUFU_HOME": str(tmp_path)},
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 1, done.stderr  # one statement of the file is refused
    read = json.loads(done.stdout)
    assert [(s["read"], s.get("closing_booked_fen"), s["position"]) for s in
            read["statements"]] == [(True, 350, "line 1"), (False, None, "line 9")]
    assert read["statements"][0]["entries"][0]["details"][0]["end_to_end_id"] == "REF-A"
    assert "balances do not add up" in read["statements"][1]["reason"]


@needs_corpus
def test_rabobanks_four_days_numbered_zero_are_four_statements_all_cross_verified(
        banking: Banking, engine: Engine) -> None:
    """The real Rabobank file (OCA's test-rabo.swi) numbers every day `:28C:0`. Keyed on the
    number, days two to four were "already imported" and the 34,61 debit of 2014-01-06 was
    lost. Its currency is made CNY here (custody accounts are in CNY); nothing else changes."""
    banking.set_today(date(2014, 1, 7))
    m = banking.file("体育健身", "BANK-RABOBANK", custody_account="NL34 RABO 0142 6233 93")
    banking.bank("BANK-RABOBANK")
    data = (CORPUS / "mt940_oca_test-rabo.swi").read_bytes().replace(b"EUR", b"CNY")

    body = banking.import_file("BANK-RABOBANK", data, filename="test-rabo.swi")

    assert [(s["status"], s["statement_id"], s["merchant_id"], s["lines"],
             s["cross_verification"]["closing_date"],
             s["cross_verification"]["bank_balance_fen"]) for s in body["statements"]] == [
        ("imported", "0", m["id"], 1, "2014-01-02", 483_352),
        ("imported", "0", m["id"], 0, "2014-01-03", 483_352),
        ("imported", "0", m["id"], 1, "2014-01-06", 479_891),
        ("imported", "0", m["id"], 0, "2014-01-07", 479_891)]
    assert [(r["direction"], r["amount_fen"], r["booking_date"].isoformat()) for r in rows(
        engine, "SELECT direction, amount_fen, booking_date FROM statement_lines "
                "WHERE file_id = :f ORDER BY id", f=body["file_id"])] == [
        ("CRDT", 40_000, "2014-01-02"), ("DBIT", 3_461, "2014-01-01")]
    assert len(rows(engine, "SELECT 1 FROM cross_verifications WHERE file_id = :f",
                    f=body["file_id"])) == 4


def test_an_interim_report_is_refused_by_name_and_a_zero_line_kept(banking: Banking,
                                                                   engine: Engine) -> None:
    banking.set_today(DAYS[0])
    m = banking.merchant("BANK-942")
    interim = "\r\n".join([
        ":20:INTRADAY1", f":25:{m.account}", ":28C:1", ":34F:CNY0,", ":13D:2611021200+0800",
        ":61:2611021102C100,NTRFREF-1", ":86:intraday credit", ":90C:1CNY100,", "-"]) + "\r\n"
    with nothing_imported(banking.client, engine):
        refused = banking.post_statement("BANK-942", interim.encode(), filename="day.942")
    assert refused.status_code == 422, refused.text
    assert "an interim report (camt.052, MT942) is not imported" in refused.json()["detail"]

    # A day's statement with a zero-amount line: read as information, stored, moving nothing.
    day = _mt940_day(m.account, "1", 0, 0, DAYS[0], [("C", 0, "FEE-WAIVED")])
    body = banking.import_file("BANK-942", _mt940(day), filename="zero.sta")
    [statement] = body["statements"]
    assert (statement["status"], statement["outcome"],
            statement["cross_verification"]["result"]) == (
        "imported", {"not_booked": 1}, "match")
    assert [(r["amount_fen"], r["status"]) for r in rows(
        engine, "SELECT amount_fen, status FROM statement_lines WHERE file_id = :f",
        f=body["file_id"])] == [(0, "NOTB")]


def test_a_camt052_report_beside_a_day_statement_is_refused_and_the_day_imported(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(DAYS[0])
    m = banking.merchant("BANK-052")
    sale = banking.sell_at(m, 2_500)
    report = Stmt(m.account, "RPT-1", 0, DAYS[0], (
        entry("CRDT", 2_500, DAYS[0], cref=sale["reference"]),))
    with nothing_imported(banking.client, engine):
        refused = banking.post_statement("BANK-052", camt052([report]), filename="rpt.xml")
    assert refused.status_code == 422
    assert "Rpt[1]: an interim report (camt.052, MT942) is not imported" in \
        refused.json()["detail"]

    # The day's camt.053, with a zero-amount entry the bank adds for information.
    day = Stmt(m.account, "DAY-1", 0, DAYS[0], (
        entry("CRDT", 2_500, DAYS[0], cref=sale["reference"]),
        entry("CRDT", 0, DAYS[0], status="INFO", bank_reference="FEE-0")))
    [statement] = banking.import_file("BANK-052", camt053([day]))["statements"]
    assert (statement["outcome"], statement["cross_verification"]["result"]) == (
        {"deposit": 1, "not_booked": 1}, "match")


def test_yufu_statements_parse_reads_a_banks_export_by_its_profile(tmp_path: Path) -> None:
    export = tmp_path / "明细.csv"
    export.write_bytes(to_csv(generic_rows("6222000011112222", 100_000, [
        ExportLine(DAYS[0], 25_000, summary="货款", purpose="YFS000000000042 会员卡")])))
    env = {**os.environ, "YUFU_HOME": str(tmp_path)}
    done = subprocess.run([str(ROOT / ".venv/bin/yufu"), "statements", "parse", str(export),
                           "--profile", "cn-generic", "--json"], env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    [statement] = json.loads(done.stdout)["statements"]
    assert (statement["format"], statement["account"], statement["opening_booked_fen"],
            statement["closing_booked_fen"]) == ("cn-generic", "6222000011112222", 100_000,
                                                 125_000)
    [line] = statement["entries"]
    assert (line["amount_fen"], line["direction"], line["details"][0]["creditor_reference"]) \
        == (25_000, "CRDT", "YFS000000000042")
    unknown = subprocess.run([str(ROOT / ".venv/bin/yufu"), "statements", "parse", str(export),
                              "--profile", "no-such-bank"], env=env, capture_output=True,
                             text=True, check=False, timeout=60)
    assert unknown.returncode == 2 and "no bank profile 'no-such-bank'" in unknown.stderr


def test_a_statement_twice_in_one_file_is_imported_once_and_named(banking: Banking,
                                                                   engine: Engine) -> None:
    banking.set_today(DAYS[0])
    m = banking.merchant("BANK-TWICE")
    day = Stmt(m.account, "T-1", 0, DAYS[0], (entry("CRDT", 400, DAYS[0], cref="STRAY-T"),))
    body = banking.import_file("BANK-TWICE", camt053([day, day]))
    first, second = body["statements"]
    assert (first["status"], second["status"], second["reason"]) == (
        "imported", "already_imported", "the same statement comes earlier in this file")
    assert [r["n"] for r in rows(engine, "SELECT count(*) AS n FROM statement_lines "
                                         "WHERE file_id = :f", f=body["file_id"])] == [1]
