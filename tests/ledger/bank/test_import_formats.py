"""Every statement format through the API, matched against a real ledger.

The sample files of the parser tests (tests/ledger/bank/samples) are imported here with their
references, accounts and balances swapped for those of sales and refunds made through the API,
so each line has a ledger item to match (or, on purpose, none).
"""

from __future__ import annotations

import hashlib
from datetime import date

from sqlalchemy import Engine

from tests.support.bank import deposit, instruction, line_kinds, sample, swap
from tests.support.custody import check_custody_identity, check_journal
from tests.support.db import nothing_imported, row, rows
from tests.support.driver import Banking
from tests.support.http import assert_problem

MARCH_1 = date(2024, 3, 1)


def journal_kinds(engine: Engine, after_seq: int) -> list[str]:
    return [r["kind"] for r in rows(engine, "SELECT kind FROM journal_entries WHERE seq > :s "
                                            "ORDER BY seq", s=after_seq)]


def test_camt053_v02_clears_a_sale_by_creditor_reference_and_settles_a_refund(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(MARCH_1)
    m = banking.merchant("BANK-V02")
    sale = banking.sell_at(m, 123_456)
    returned = banking.sell_at(m, 50_000)
    refund = banking.refund(m, returned["card_id"])
    data = swap(sample("camt053_v02_statement.xml"), {
        "6226090000000048": m.account, "YF-CARD-000042": sale["reference"],
        "REL-0001": refund["end_to_end_id"], "100000.00": "0.00", "100734.56": "734.56"})

    body = banking.import_file("BANK-V02", data)

    assert body["duplicate"] is False
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    [statement] = body["statements"]
    assert statement["statement_id"] == "STMT-20240301"
    assert statement["outcome"] == {"deposit": 1, "payment_settled": 1}
    assert statement["deposits_cleared_fen"] == 123_456
    verified = statement["cross_verification"]
    assert (verified["bank_balance_fen"], verified["ledger_balance_fen"],
            verified["difference_fen"], verified["result"]) == (73_456, 73_456, 0, "match")
    assert line_kinds(engine, body["file_id"]) == [
        ("Stmt[1]/Ntry[1]", "deposit", sale["reference"]),
        ("Stmt[1]/Ntry[2]", "payment_settled", refund["end_to_end_id"])]
    assert deposit(engine, sale["reference"]) == ("cleared", 0)
    assert deposit(engine, returned["reference"]) == ("pending", 50_000)  # no line for it
    assert instruction(engine, refund["end_to_end_id"]) == ("settled", "pending")
    balances = banking.balances(m.id)
    assert (balances["custody_cash"], balances["custody_in_transit"],
            balances["refunds_payable"]) == (73_456, 50_000, 0)
    assert banking.open_breaks(m) == []
    # The file is kept verbatim under its hash, and the journal names the hash.
    stored = row(engine, "SELECT format, filename, body, sha256, statements, lines "
                         "FROM statement_files WHERE id = :f", f=body["file_id"])
    assert (stored["format"], stored["filename"], bytes(stored["body"]),
            bytes(stored["sha256"]), stored["statements"], stored["lines"]) == (
        "camt.053.001.02", "statement.xml", data, hashlib.sha256(data).digest(), 1, 2)
    entry = row(engine, "SELECT kind, body FROM journal_entries WHERE seq = :s",
                s=body["journal_seq"])
    assert entry["kind"] == "statement.imported"
    assert hashlib.sha256(data).hexdigest().encode() in bytes(entry["body"])
    with engine.connect() as conn:
        check_custody_identity(conn, m.id)
        check_journal(conn)


def test_camt053_v04_two_statements_and_a_batched_entry_of_three_details(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(date(2024, 3, 2))
    first, second = banking.merchant("BANK-V04"), banking.merchant("BANK-V04")
    lone = banking.sell_at(first, 30_000)
    by_e2e, by_e2e_too, by_cref = (banking.sell_at(second, p) for p in (50_000, 70_000, 30_000))
    refund = banking.refund(second, banking.sell_at(second, 100_000)["card_id"])
    data = swap(sample("camt053_v04_two_statements.xml"), {
        "6226090000000048": first.account, "6226090000000055": second.account,
        "YF-CARD-000101": lone["reference"], "SALE-0201": by_e2e["reference"],
        "SALE-0202": by_e2e_too["reference"], "YF-CARD-000203": by_cref["reference"],
        "REL-0201": refund["end_to_end_id"], "5000.00": "0.00", "5500.00": "500.00"})

    body = banking.import_file("BANK-V04", data)

    one, two = body["statements"]
    assert (one["merchant_id"], one["outcome"], one["deposits_cleared_fen"]) == (
        first.id, {"deposit": 1}, 30_000)
    assert (two["merchant_id"], two["outcome"], two["deposits_cleared_fen"]) == (
        second.id, {"deposit": 3, "payment_settled": 1}, 150_000)
    assert [(v["bank_balance_fen"], v["ledger_balance_fen"], v["result"])
            for v in (one["cross_verification"], two["cross_verification"])] == [
        (30_000, 30_000, "match"), (50_000, 50_000, "match")]
    assert line_kinds(engine, body["file_id"]) == [
        ("Stmt[1]/Ntry[1]", "deposit", lone["reference"]),
        ("Stmt[2]/Ntry[1]/TxDtls[1]", "deposit", by_e2e["reference"]),
        ("Stmt[2]/Ntry[1]/TxDtls[2]", "deposit", by_e2e_too["reference"]),
        ("Stmt[2]/Ntry[1]/TxDtls[3]", "deposit", by_cref["reference"]),
        ("Stmt[2]/Ntry[2]", "payment_settled", refund["end_to_end_id"])]
    assert banking.open_breaks(first) == banking.open_breaks(second) == []
    assert banking.balances(second.id)["custody_in_transit"] == 100_000  # the refunded sale's


def test_camt053_v06_a_reversed_credit_goes_back_in_transit_and_a_pending_entry_waits(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(date(2024, 3, 4))
    m = banking.merchant("BANK-V06")
    reversed_sale, pending_sale = banking.sell_at(m, 20_000), banking.sell_at(m, 8_800)
    head = row(engine, "SELECT seq FROM chain_head")["seq"]
    data = swap(sample("camt053_v06_reversal_pending.xml"), {
        "6226090000000048": m.account, "SALE-0301": reversed_sale["reference"],
        "SALE-0302": pending_sale["reference"], "100734.56": "734.56", "100000.00": "0.00"})

    body = banking.import_file("BANK-V06", data)

    [statement] = body["statements"]
    assert statement["outcome"] == {"deposit": 1, "reversal": 1, "not_booked": 1, "break": 1}
    assert statement["deposits_cleared_fen"] == 20_000
    assert (statement["cross_verification"]["difference_fen"],
            statement["cross_verification"]["ledger_balance_fen"]) == (0, 0)
    [line_id] = [r["id"] for r in rows(engine, "SELECT id FROM statement_lines WHERE "
                                                "file_id = :f AND position = 'Stmt[1]/Ntry[4]'",
                                       f=body["file_id"])]
    assert line_kinds(engine, body["file_id"]) == [
        ("Stmt[1]/Ntry[1]", "deposit", reversed_sale["reference"]),
        ("Stmt[1]/Ntry[2]", "reversal", reversed_sale["reference"]),
        ("Stmt[1]/Ntry[3]", "not_booked", None),
        ("Stmt[1]/Ntry[4]", "break", None)]
    assert [r["status"] for r in rows(engine, "SELECT status FROM statement_lines "
                                              "WHERE file_id = :f ORDER BY id",
                                      f=body["file_id"])] == ["BOOK", "BOOK", "NOTB", "BOOK"]
    assert deposit(engine, reversed_sale["reference"]) == ("pending", 20_000)
    assert deposit(engine, pending_sale["reference"]) == ("pending", 8_800)
    [opened] = banking.open_breaks(m)
    assert (opened["kind"], opened["amount_fen"], opened["line_id"], opened["item_ref"],
            opened["reason"]) == ("unmatched_line", 73_456, line_id, f"line:{line_id}",
                                  "no pending release or refund has this end-to-end id")
    assert journal_kinds(engine, head) == [
        "statement.imported", "deposits.cleared", "deposits.reversed",
        "reconciliation.break_opened", "custody.cross_verified"]
    balances = banking.balances(m.id)
    assert (balances["custody_cash"], balances["custody_in_transit"]) == (0, 28_800)


def test_camt053_v08_a_refund_paid_then_returned_fails_and_its_claim_goes_back_on_the_card(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(date(2024, 3, 5))
    m = banking.merchant("BANK-V08")
    first, second = banking.sell_at(m, 120_000), banking.sell_at(m, 80_000)
    card = banking.sell_at(m, 150_000)["card_id"]
    refund = banking.refund(m, card)
    head = row(engine, "SELECT seq FROM chain_head")["seq"]
    data = swap(sample("camt053_v08_batch_reversal.xml"), {
        "6226090000000062": m.account, "YF-CARD-000401": first["reference"],
        "YF-CARD-000402": second["reference"], "REL-0401": refund["end_to_end_id"]})

    body = banking.import_file("BANK-V08", data)

    [statement] = body["statements"]
    assert statement["outcome"] == {"deposit": 2, "payment_settled": 1, "payment_returned": 1}
    # The bank's opening balance was 50.00 overdrawn, which the ledger never was.
    verified = statement["cross_verification"]
    assert (verified["bank_balance_fen"], verified["ledger_balance_fen"],
            verified["difference_fen"], verified["result"]) == (
        195_000, 200_000, -5_000, "difference")
    assert line_kinds(engine, body["file_id"]) == [
        ("Stmt[1]/Ntry[1]/TxDtls[1]", "deposit", first["reference"]),
        ("Stmt[1]/Ntry[1]/TxDtls[2]", "deposit", second["reference"]),
        ("Stmt[1]/Ntry[2]", "payment_settled", refund["end_to_end_id"]),
        ("Stmt[1]/Ntry[3]", "payment_returned", refund["end_to_end_id"])]
    assert instruction(engine, refund["end_to_end_id"])[0] == "failed"
    assert row(engine, "SELECT status FROM cards WHERE id = :c", c=card)["status"] == "active"
    assert journal_kinds(engine, head) == [
        "statement.imported", "deposits.cleared", "refund.settled", "refund.returned",
        "refund.failed", "custody.cross_verified"]
    with engine.connect() as conn:
        balances = check_custody_identity(conn, m.id)
    assert (balances["custody_cash"], balances["refunds_payable"]) == (200_000, 0)
    assert banking.open_breaks(m) == []


def test_camt054_notifications_clear_a_sale_and_settle_a_refund_without_balances(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(date(2024, 3, 7))
    m = banking.merchant("BANK-054")
    sale = banking.sell_at(m, 9_900)
    refund = banking.refund(m, banking.sell_at(m, 9_900)["card_id"])

    credit = banking.import_file("BANK-054", swap(sample("camt054_v08_notification.xml"), {
        "6226090000000048": m.account, "YF-CARD-000501": sale["reference"]}))
    debit = banking.import_file("BANK-054", swap(sample("camt054_v02_notification.xml"), {
        "6226090000000055": m.account, "RFD-0001": refund["end_to_end_id"],
        "420.00": "99.00"}))

    [first], [second] = credit["statements"], debit["statements"]
    assert (first["statement_id"], first["outcome"], first["cross_verification"]) == (
        "NTF-20240307-0003", {"deposit": 1, "not_booked": 1}, None)
    assert (second["statement_id"], second["outcome"], second["cross_verification"]) == (
        "NTF-20240308-0001", {"payment_settled": 1}, None)
    assert row(engine, "SELECT format FROM statement_files WHERE id = :f",
               f=debit["file_id"])["format"] == "camt.054.001.02"
    assert instruction(engine, refund["end_to_end_id"])[0] == "settled"
    assert banking.balances(m.id)["custody_cash"] == 0
    assert banking.open_breaks(m) == []


def test_mt940_two_statements_an_unattributable_reversal_is_a_break(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(date(2024, 3, 2))
    m = banking.merchant("BANK-940")
    by_cref, by_eref = banking.sell_at(m, 123_456), banking.sell_at(m, 20_000)
    first_refund = banking.refund(m, banking.sell_at(m, 50_000)["card_id"])
    second_refund = banking.refund(m, banking.sell_at(m, 73_456)["card_id"])
    data = swap(sample("mt940_two_statements.sta"), {
        "6226090000000048": m.account, "YF-CARD-000042": by_cref["reference"],
        "REL-0001": first_refund["end_to_end_id"], "SALE-0301": by_eref["reference"],
        "RFD-0001": second_refund["end_to_end_id"], "CNY100000,00": "CNY0,00",
        "100734,56": "734,56"})

    body = banking.import_file("BANK-940", data, filename="day.sta")

    one, two = body["statements"]
    assert (one["statement_id"], one["outcome"], one["cross_verification"]["result"]) == (
        "00061/001", {"deposit": 1, "payment_settled": 1}, "match")
    # The bank reversed the 200.00 credit naming only its own reference in free text: the
    # sale stays cleared, the reversal is a break, and the balance differs by it.
    assert two["outcome"] == {"deposit": 1, "break": 1, "payment_settled": 1}
    verified = two["cross_verification"]
    assert (verified["bank_balance_fen"], verified["ledger_balance_fen"],
            verified["difference_fen"]) == (0, 20_000, -20_000)
    [opened] = banking.open_breaks(m)
    assert (opened["kind"], opened["amount_fen"]) == ("unmatched_reversal", 20_000)
    assert line_kinds(engine, body["file_id"]) == [
        ("line 5", "deposit", by_cref["reference"]),
        ("line 8", "payment_settled", first_refund["end_to_end_id"]),
        ("line 17", "deposit", by_eref["reference"]),
        ("line 21", "break", "BK240302000002"),
        ("line 24", "payment_settled", second_refund["end_to_end_id"])]


def test_mt940_in_a_swift_envelope_names_its_account_after_the_bic(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(date(2024, 3, 9))
    m = banking.merchant("BANK-ENV")
    sale = banking.sell_at(m, 1_000)
    data = swap(sample("mt940_swift_envelope.sta"), {
        "6226090000000055": m.account, "YF-CARD-000601": sale["reference"],
        "D240308CNY10,00": "C240308CNY0,00", "C240309CNY0,": "C240309CNY10,00"})

    body = banking.import_file("BANK-ENV", data, filename="day.sta")

    [statement] = body["statements"]
    assert (statement["account"], statement["outcome"],
            statement["cross_verification"]["result"]) == (m.account, {"deposit": 1}, "match")
    assert deposit(engine, sale["reference"]) == ("cleared", 0)


def test_csv_two_accounts_a_pending_row_and_a_reversal(banking: Banking, engine: Engine
                                                        ) -> None:
    banking.set_today(MARCH_1)
    first, second = banking.merchant("BANK-CSV"), banking.merchant("BANK-CSV")
    sale, pending = banking.sell_at(first, 123_456), banking.sell_at(first, 8_800)
    refund = banking.refund(first, banking.sell_at(first, 50_000)["card_id"])
    reversed_sale = banking.sell_at(second, 1_000)
    data = swap(sample("statement.csv"), {
        "6226090000000048": first.account, "6226090000000055": second.account,
        "YF-CARD-000042": sale["reference"], "REL-0001": refund["end_to_end_id"],
        "SALE-0302": pending["reference"], "SALE-0601": reversed_sale["reference"],
        "100000.00": "0.00", "100734.56": "734.56", "-10.00": "0.00",
        "张三": '"张\\三\t(代付)"'})  # a name with a backslash and a tab, quoted

    body = banking.import_file("BANK-CSV", data, filename="day.csv")

    one, two = body["statements"]
    assert (one["statement_id"], one["outcome"]) == (
        f"{first.account}:CNY:2024-03-01",
        {"deposit": 1, "payment_settled": 1, "not_booked": 1})
    assert (two["statement_id"], two["outcome"]) == (
        f"{second.account}:CNY:2024-03-01", {"deposit": 1, "reversal": 1})
    assert [s["cross_verification"]["result"] for s in (one, two)] == ["match", "match"]
    assert deposit(engine, pending["reference"]) == ("pending", 8_800)
    assert deposit(engine, reversed_sale["reference"]) == ("pending", 1_000)
    assert banking.open_breaks(first) == banking.open_breaks(second) == []
    assert [r["counterparty"] for r in rows(
        engine, "SELECT counterparty FROM statement_lines WHERE file_id = :f ORDER BY id",
        f=body["file_id"])] == ["张\\三\t(代付)", "北京某健身有限公司", None, None, None]


def test_an_entry_in_another_currency_refuses_the_whole_file(banking: Banking,
                                                             engine: Engine) -> None:
    banking.set_today(date(2024, 3, 6))
    m = banking.merchant("BANK-USD")
    sale = banking.sell_at(m, 10_000)
    data = swap(sample("camt053_v08_foreign_currency.xml"), {"6226090000000048": m.account})
    with nothing_imported(banking.client, engine):
        response = banking.post_statement("BANK-USD", data)
    assert_problem(response, 422, field="Stmt[1]/Ntry[2]/Amt", code="statement_rejected",
                   detail_has="amount in USD on an account in CNY")
    assert deposit(engine, sale["reference"]) == ("pending", 10_000)
