"""The routines' reports (日管控、周排查、月调度, 季度报告) through the HTTP API: each names a
signed tree head, its figures are what the ledger said at that head (and stay so as the
ledger moves on), the downloads carry the same figures, a department key's report holds its
department only, and the scheduler makes each period's reports once."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from api.cli import main as yufu
from api.reports import cell_text
from ledger import audit
from ledger.books import normal_sign
from ledger.journal import canonical_json
from ledger.supervision.routines import CHINA_TIME, ReportKind, china_date, period_containing
from tests.support.db import journal_payloads
from tests.support.driver import Banking, Merchant
from tests.support.http import Headers, assert_problem, bearer, regulator_key

BANK = "RPT-BANK"
CULTURE, COMMERCE = "区文旅体局", "区商务局"  # seed 000: 体育健身, 美容美发 (and 餐饮)
DINING = "餐饮"


@dataclass
class World:
    a: Merchant  # 体育健身: two cards, a consumption, a statement with a difference
    b: Merchant  # 美容美发: one card
    today: date  # China time
    sales: list[dict[str, Any]]


def statement(m: Merchant, day: date, references: list[str], extra_fen: int, total_fen: int
              ) -> bytes:
    """A day's statement of the custody account: the sales' deposits, one line the ledger
    does not know (a break), and a closing balance."""
    d = day.isoformat()
    lines = ["account,currency,booking_date,value_date,direction,amount,status,end_to_end_id,"
             "creditor_reference,bank_reference,counterparty_name,counterparty_account,"
             "remittance,reversal",
             f"{m.account},CNY,{d},,OPBD,0.00,,,,,,,,"]
    for i, ref in enumerate(references):
        lines.append(f"{m.account},CNY,{d},{d},CRDT,1000.00,BOOK,,{ref},BK{i},,,,false")
    lines.append(f"{m.account},CNY,{d},{d},CRDT,{extra_fen / 100:.2f},BOOK,,NOPE,BKX,,,,false")
    lines.append(f"{m.account},CNY,{d},,CLBD,{total_fen / 100:.2f},,,,,,,,")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def world(banking: Banking) -> World:
    today = china_date(datetime.now(UTC))
    banking.set_today(today)
    a = banking.merchant(BANK, "体育健身")
    b = banking.merchant(BANK, "美容美发")
    sales = [banking.sell_at(a, 100_000), banking.sell_at(a, 100_000)]
    used = banking.consume(sales[0]["card_id"], a.key, amount_fen=30_000)
    banking.confirm(used["consumption_id"], sales[0])
    banking.sell_at(b, 50_000)
    banking.import_file(BANK, statement(a, today, [s["reference"] for s in sales], 500,
                                        200_500), filename="day.csv")
    return World(a, b, today, sales)


def make(client: TestClient, key: Headers, status: int = 201, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/reports", headers=key, json=body)
    assert response.status_code == status, response.text
    return dict(response.json())


def fetch(client: TestClient, key: Headers, report_id: int) -> dict[str, Any]:
    response = client.get(f"/v1/reports/{report_id}", headers=key)
    assert response.status_code == 200, response.text
    return dict(response.json())


def section(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A section's rows as dicts by column name."""
    found = next(s for s in report["figures"]["sections"] if s["name"] == name)
    names = [c["name"] for c in found["columns"]]
    return [dict(zip(names, row, strict=True)) for row in found["rows"]]


def ledger_at(engine: Engine, merchant_id: str, size: int) -> dict[str, int]:
    """What the ledger's postings say of a merchant after the journal's first `size` entries:
    its cards' outstanding balances and its custody (cash and in transit)."""
    with engine.connect() as conn:
        cards = conn.execute(text(
            "SELECT coalesce(sum(-p.amount_fen), 0) FROM postings p JOIN cards c "
            "ON c.account_id = p.account_id WHERE c.merchant_id = :m "
            "AND p.transaction_id <= :n"), {"m": merchant_id, "n": size}).scalar_one()
        rows = conn.execute(text(
            "SELECT a.kind, coalesce(sum(p.amount_fen), 0) FROM merchant_accounts ma "
            "JOIN accounts a ON a.id = ma.account_id LEFT JOIN postings p "
            "ON p.account_id = a.id AND p.transaction_id <= :n WHERE ma.merchant_id = :m "
            "AND ma.purpose IN ('custody_cash', 'custody_in_transit') GROUP BY a.id, a.kind"),
            {"m": merchant_id, "n": size}).all()
    custody = sum(int(total) * normal_sign(kind) for kind, total in rows)
    return {"card_liability_fen": int(cards), "custody_balance_fen": custody}


def test_a_daily_report_shows_the_ledger_at_the_head_it_names_after_the_ledger_moves_on(
        app_client: TestClient, engine: Engine, operator: Headers, banking: Banking,
        world: World) -> None:
    made = make(app_client, operator, kind="daily", period=world.today.isoformat())
    assert made["tree_size"] == made["journal_size"]  # a quiet service: the head covers all
    first = fetch(app_client, operator, made["id"])
    rows = {r["merchant_id"]: r for r in section(first, "merchants")}
    a = rows[world.a.id]
    assert (a["cards"], a["card_liability_fen"], a["custody_balance_fen"]) == (
        2, 170_000, 200_000)
    assert (a["cross_verification"], a["bank_balance_fen"], a["ledger_balance_fen"],
            a["difference_fen"]) == ("difference", 200_500, 200_000, 500)
    assert (a["open_breaks"], a["open_breaks_fen"], a["department"]) == (1, 500, CULTURE)
    assert (a["coverage_ratio_bp"], a["uncovered_fen"]) == (200_000 * 10_000 // 170_000, 0)
    b = rows[world.b.id]
    assert (b["card_liability_fen"], b["cross_verification"], b["department"]) == (
        50_000, "none", COMMERCE)

    # More is written: another sale at A, a freeze of B.
    banking.sell_at(world.a, 100_000)
    banking.ok("POST", f"/v1/merchants/{world.b.id}/freeze", operator, {"reason": "查"})

    again = fetch(app_client, operator, made["id"])
    assert again == first  # stored, never recomputed
    size = first["tree_head"]["tree_size"]
    for merchant_id, row in rows.items():
        then = ledger_at(engine, merchant_id, size)
        assert (row["card_liability_fen"], row["custody_balance_fen"]) == (
            then["card_liability_fen"], then["custody_balance_fen"])
    assert ledger_at(engine, world.a.id, 10**9)["card_liability_fen"] == 270_000  # moved on
    # The row, the answer and the journal agree on the figures' hash.
    digest = hashlib.sha256(canonical_json(first["figures"])).hexdigest()
    assert first["figures_sha256"] == digest
    entry = next(p for p in journal_payloads(engine, "report.made")
                 if p["figures_sha256"] == digest)
    assert (entry["kind"], entry["period"], entry["tree_size"]) == (
        "daily", world.today.isoformat(), size)
    assert first["figures"]["tree_head"] == first["tree_head"]


def test_a_report_names_a_head_whose_signature_verifies_with_the_service_s_key(
        app_client: TestClient, operator: Headers, world: World) -> None:
    report = fetch(app_client, operator, make(app_client, operator, kind="weekly")["id"])
    head = report["tree_head"]
    pem = app_client.get("/v1/audit/public-key").json()["public_key_pem"]
    signed = audit.SignedTreeHead(
        audit.TreeHead(head["tree_size"], bytes.fromhex(head["root_hash"]), head["timestamp"],
                       head["key_id"]), bytes.fromhex(head["signature"]))
    assert audit.verify_tree_head(audit.load_public_key_pem(pem.encode()), signed)
    published = app_client.get("/v1/audit/tree-heads",
                               params={"after": head["tree_size"] - 1, "limit": 1}).json()
    assert published["items"][0] == {k: head[k] for k in published["items"][0]}


def test_the_weekly_sweep_ranks_merchants_with_why(
        app_client: TestClient, operator: Headers, world: World) -> None:
    week = period_containing(ReportKind.weekly, world.today).label
    report = fetch(app_client, operator,
                   make(app_client, operator, kind="weekly", period=week)["id"])
    listed = {r["merchant_id"]: r for r in section(report, "sweep")}
    a, b = listed[world.a.id], listed[world.b.id]
    assert {"cross_verification_difference", "open_breaks", "prepaid_growth"} <= set(
        a["reasons"].split(","))
    assert "对账差异、未结差错、预收款快速增长" in a["reasons_zh"]
    assert (a["difference_fen"], a["open_breaks"], a["liability_start_fen"]) == (500, 1, 0)
    assert a["rank"] < b["rank"]  # b's only reason is growth
    assert [r["rank"] for r in section(report, "sweep")] == list(
        range(1, len(listed) + 1))


def test_the_monthly_and_quarterly_reports_count_by_department_and_list_the_actions(
        app_client: TestClient, engine: Engine, operator: Headers, banking: Banking,
        world: World) -> None:
    banking.ok("POST", f"/v1/merchants/{world.a.id}/tier", operator,
               {"tier": "yellow", "reasons": ["对账差异"]})
    now = datetime.now(UTC)
    month = period_containing(ReportKind.monthly, china_date(now)).label
    monthly = fetch(app_client, operator,
                    make(app_client, operator, kind="monthly", period=month)["id"])
    departments = {r["department"]: r for r in section(monthly, "departments")}
    culture = departments[CULTURE]
    assert (culture["yellow"], culture["tier_changes"], culture["filed"]) == (1, 1, 1)
    size = monthly["journal_size"]
    assert culture["card_liability_fen"] == ledger_at(engine, world.a.id, size)[
        "card_liability_fen"]
    actions = [r for r in section(monthly, "actions") if r["merchant_id"] == world.a.id]
    assert [(r["action"], r["detail"], r["department"]) for r in actions] == [
        ("merchant.tier_changed", "blue -> yellow", CULTURE)]

    quarter = period_containing(ReportKind.quarterly, china_date(now)).label
    quarterly = fetch(app_client, operator,
                      make(app_client, operator, kind="quarterly", period=quarter)["id"])
    names = [s["name"] for s in quarterly["figures"]["sections"]]
    assert names == ["departments", "industries", "totals", "tiers", "complaints", "actions"]
    industries = {r["industry"]: r for r in section(quarterly, "industries")}
    total = section(quarterly, "totals")[0]
    for column in ("merchants", "cards", "card_liability_fen", "custody_balance_fen",
                   "freezes", "tier_changes"):
        assert total[column] == sum(r[column] for r in industries.values()) == sum(
            r[column] for r in section(quarterly, "departments"))
    tiers = section(quarterly, "tiers")
    for column in ("merchants", "blue", "yellow", "red"):
        assert sum(r[column] for r in tiers) == total[column]
    assert sum(r["to_yellow"] for r in tiers if r["department"] == CULTURE) >= 1


def test_a_daily_report_lists_the_day_s_new_signals_and_alerts_and_not_another_day_s(
        app_client: TestClient, operator: Headers, banking: Banking, world: World) -> None:
    district = regulator_key(app_client, operator)
    m = banking.file(DINING, bank_id=BANK)
    # 欠税: a regulator records tax arrears; the merchant is assessed at once (a signal, a
    # tier, an alert to its department).
    banking.ok("POST", "/v1/supervision/records", district, {
        "credit_code": m["credit_code"], "kind": "tax_arrears", "source": "区税务局"}, 201)
    signals = banking.ok("GET", f"/v1/merchants/{m['id']}/signals", district)["items"]
    alerts = banking.ok("GET", "/v1/alerts", district,
                        params={"merchant_id": m["id"]})["items"]
    assert [s["kind"] for s in signals] == ["tax_arrears"] and len(alerts) == 1
    day = china_date(datetime.fromisoformat(alerts[0]["created_at"]))
    report = fetch(app_client, operator,
                   make(app_client, operator, kind="daily", period=day.isoformat())["id"])
    listed = [r for r in section(report, "signals") if r["merchant_id"] == m["id"]]
    assert [(r["journal_seq"], r["check"], r["check_zh"], r["kind"], r["state"], r["value"],
             r["threshold"], r["source"], r["day"], r["department"]) for r in listed] == [
        (s["journal_seq"], "operating_status", "查经营状态", s["kind"], "raised", s["value"],
         s["threshold"], s["source"], s["observed_on"], COMMERCE) for s in signals]
    assert all(r["time"].startswith(day.isoformat()) for r in section(report, "signals"))
    raised = [r for r in section(report, "alerts") if r["merchant_id"] == m["id"]]
    alert = alerts[0]
    assert [(r["alert_id"], r["kind"], r["severity"], r["signals"], r["acknowledged"],
             r["journal_seq"]) for r in raised] == [
        (alert["id"], alert["kind"], alert["severity"], "tax_arrears", False,
         alert["created_seq"])]
    # A department key's report holds its department's only: commerce's has them.
    for department, holds in ((COMMERCE, True), (CULTURE, False)):
        key = regulator_key(app_client, operator, department=department)
        own = fetch(app_client, key, make(app_client, key, kind="daily",
                                          period=day.isoformat())["id"])
        for name in ("signals", "alerts"):
            rows = section(own, name)
            assert {r["department"] for r in rows} <= {department}
            assert (m["id"] in {r["merchant_id"] for r in rows}) is holds
    # The day before holds none of them.
    before = fetch(app_client, operator, make(app_client, operator, kind="daily", period=(
        day - timedelta(days=1)).isoformat())["id"])
    assert m["id"] not in {r["merchant_id"] for r in section(before, "signals")}
    assert m["id"] not in {r["merchant_id"] for r in section(before, "alerts")}
    # Acknowledged later: the stored report keeps what its snapshot saw; a new one says so.
    banking.ok("POST", f"/v1/alerts/{alert['id']}/acknowledge", district)
    assert fetch(app_client, operator, report["id"]) == report
    again = fetch(app_client, operator,
                  make(app_client, operator, kind="daily", period=day.isoformat())["id"])
    assert [r["acknowledged"] for r in section(again, "alerts")
            if r["alert_id"] == alert["id"]] == [True]
    # The week's sweep lists the merchant for its unseen alerts and standing signal, until
    # the alert is seen: then for the signal (and its tier) only.
    week = period_containing(ReportKind.weekly, day).label
    swept = {r["merchant_id"]: r for r in section(fetch(app_client, operator, make(
        app_client, operator, kind="weekly", period=week)["id"]), "sweep")}
    assert (swept[m["id"]]["signals"], swept[m["id"]]["open_alerts"]) == ("tax_arrears", 0)
    assert swept[m["id"]]["reasons"] == "yellow_tier,active_signals"


def test_the_weekly_sweep_gives_an_unseen_alert_and_a_standing_signal_as_reasons(
        app_client: TestClient, operator: Headers, banking: Banking, world: World) -> None:
    commerce = regulator_key(app_client, operator, department=COMMERCE)
    m = banking.file(DINING, bank_id=BANK)
    banking.ok("POST", "/v1/supervision/records", commerce, {
        "credit_code": m["credit_code"], "kind": "litigation", "source": "区人民法院"}, 201)
    risk = banking.ok("GET", f"/v1/merchants/{m['id']}/risk", commerce)
    unseen = banking.ok("GET", "/v1/alerts", commerce,
                        params={"merchant_id": m["id"], "unacknowledged": "true"})["items"]
    week = period_containing(ReportKind.weekly, world.today).label
    swept = {r["merchant_id"]: r for r in section(fetch(app_client, operator, make(
        app_client, operator, kind="weekly", period=week)["id"]), "sweep")}
    row = swept[m["id"]]
    assert row["signals"] == ",".join(sorted(s["kind"] for s in risk["signals"]))
    assert row["open_alerts"] == len(unseen) >= 1
    # 涉诉 is a yellow signal (Beijing's rules): the tier, the unseen alert, the signal.
    assert (row["tier"], row["reasons"]) == ("yellow", "yellow_tier,open_alerts,active_signals")
    assert row["reasons_zh"] == "黄色标签、未处理预警、存在风险信号"
    # Every blue merchant listed ranks after it, whatever its fund-flow reasons.
    assert all(row["rank"] < r["rank"] for r in swept.values() if r["tier"] == "blue")


def complaint_stats(client: TestClient, key: Headers, **params: str) -> dict[str, Any]:
    response = client.get("/v1/complaints/stats", headers=key, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def as_row(department: str, figures: dict[str, Any]) -> dict[str, Any]:
    """The stats route's answer in the complaints section's columns."""
    accepted, on_time = figures["acceptance_rate"], figures["on_time_closure_rate"]
    return {"department": department, "received": figures["received"],
            "accepted": accepted["numerator"],
            "acceptance_rate_numerator": accepted["numerator"],
            "acceptance_rate_denominator": accepted["denominator"],
            "acceptance_rate_bp": accepted["rate_bp"],
            "on_time_closure_rate_numerator": on_time["numerator"],
            "on_time_closure_rate_denominator": on_time["denominator"],
            "on_time_closure_rate_bp": on_time["rate_bp"], "overdue": figures["overdue"],
            "routed": figures["register"]["routed"]["received"],
            "routed_open": figures["register"]["routed"]["open"],
            "direct": figures["register"]["direct"]["received"],
            "direct_open": figures["register"]["direct"]["open"],
            "returned": figures["returned"], "rerouted_in": figures["rerouted_in"],
            "rerouted_away": figures["rerouted_away"], "as_of": figures["as_of"]}


def test_the_monthly_and_quarterly_complaint_figures_are_the_stats_route_s_per_department(
        app_client: TestClient, operator: Headers, banking: Banking, world: World) -> None:
    where = "投诉报告街道"
    sports = banking.file("体育健身", bank_id=BANK, street=where)["id"]
    dining = banking.file(DINING, bank_id=BANK, street=where)["id"]
    commerce = regulator_key(app_client, operator, department=COMMERCE)
    received = datetime.now(CHINA_TIME).replace(microsecond=0).isoformat()
    orders = [banking.ok("POST", "/v1/complaints", operator, {
        "channel": channel, "received_at": received, "merchant_id": merchant,
        "category": "退费纠纷", "amount_fen": 50_000, **extra}, 201)
        for channel, merchant, extra in [
            ("12345", sports, {"external_id": f"RPT-{sports}-1"}),
            ("direct", sports, {}),
            ("12315", dining, {"external_id": f"RPT-{dining}-1"})]]
    banking.ok("POST", f"/v1/complaints/{orders[0]['id']}/steps", operator, {"step": "accept"})
    # 退单: the commerce department sends its order back; the operator re-routes it to culture.
    banking.ok("POST", f"/v1/complaints/{orders[2]['id']}/steps", commerce,
               {"step": "return", "note": "属文旅体局职责"})
    banking.ok("POST", f"/v1/complaints/{orders[2]['id']}/steps", operator,
               {"step": "reroute", "department": CULTURE, "note": "改派"})

    month = period_containing(ReportKind.monthly, world.today)
    on_street = fetch(app_client, operator, make(
        app_client, operator, kind="monthly", period=month.label, street=where)["id"])
    names = [s["name"] for s in on_street["figures"]["sections"]]
    assert names == ["departments", "complaints", "actions"]
    rows = {r["department"]: r for r in section(on_street, "complaints")}
    assert list(rows) == [COMMERCE, CULTURE, "合计 total"]
    as_of = rows[CULTURE]["as_of"]
    window = {"from": month.start.isoformat(),
              "to": (month.end - timedelta(days=1)).isoformat(), "as_of": as_of,
              "street": where}
    for department in (CULTURE, COMMERCE):
        assert rows[department] == as_row(department, complaint_stats(
            app_client, operator, department=department, **window))
    assert rows["合计 total"] == as_row("合计 total", complaint_stats(
        app_client, operator, **window))
    # By hand: culture received three (one re-routed to it), accepted one: 1/3 is 3333 bp
    # (rounded down); two came by the hotlines, one directly; commerce sent one back.
    culture = rows[CULTURE]
    assert (culture["received"], culture["acceptance_rate_numerator"],
            culture["acceptance_rate_denominator"], culture["acceptance_rate_bp"]) == (
        3, 1, 3, 3333)
    assert (culture["routed"], culture["direct"], culture["rerouted_in"]) == (2, 1, 1)
    assert (rows[COMMERCE]["received"], rows[COMMERCE]["returned"],
            rows[COMMERCE]["rerouted_away"]) == (0, 1, 1)
    assert culture["on_time_closure_rate_denominator"] == 0  # nothing due before its day
    assert culture["on_time_closure_rate_bp"] is None

    # The department's own key: its department's row only, equal to the route's for it.
    culture_key = regulator_key(app_client, operator, department=CULTURE)
    own = fetch(app_client, culture_key, make(
        app_client, culture_key, kind="monthly", period=month.label)["id"])
    only = section(own, "complaints")
    assert [r["department"] for r in only] == [CULTURE]
    assert only[0] == as_row(CULTURE, complaint_stats(
        app_client, culture_key, **{k: v for k, v in window.items() if k != "street"}))

    quarter = period_containing(ReportKind.quarterly, world.today)
    quarterly = fetch(app_client, operator, make(
        app_client, operator, kind="quarterly", period=quarter.label, street=where)["id"])
    per_quarter = {r["department"]: r for r in section(quarterly, "complaints")}
    q_window = {**window, "from": quarter.start.isoformat(),
                "to": (quarter.end - timedelta(days=1)).isoformat()}
    assert per_quarter[CULTURE] == as_row(CULTURE, complaint_stats(
        app_client, operator, department=CULTURE, **q_window))
    tiers = {r["department"]: r for r in section(quarterly, "tiers")}
    assert (tiers[CULTURE]["merchants"], tiers[CULTURE]["blue"]) == (1, 1)
    assert (tiers[COMMERCE]["merchants"], tiers[COMMERCE]["blue"]) == (1, 1)


def rows_of_csv(data: bytes) -> Iterator[list[str]]:
    assert data.startswith("\ufeff".encode())
    yield from csv.reader(io.StringIO(data.decode("utf-8-sig")))


def csv_sections(data: bytes) -> dict[str, list[list[str]]]:
    """Title -> [header, rows...], from the CSV's blank-line-separated blocks."""
    blocks: list[list[list[str]]] = [[]]
    for row in rows_of_csv(data):
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    return {block[0][0]: block[1:] for block in blocks[1:] if block}


@pytest.mark.parametrize(("lang", "kind"), [("zh", "daily"), ("en", "daily"),
                                            ("zh", "quarterly"), ("en", "weekly")])
def test_the_xlsx_and_csv_downloads_carry_the_json_s_figures(
        app_client: TestClient, operator: Headers, banking: Banking, world: World, lang: str,
        kind: str) -> None:
    # A name that a spreadsheet would take for a formula stays a name.
    odd = banking.file(DINING, bank_id=BANK, name=f"=HYPERLINK(\"http://x\",\"{lang}{kind}\")")
    # A signal and an alert on it, so the daily report's every section has rows.
    banking.ok("POST", "/v1/supervision/records", operator, {
        "credit_code": odd["credit_code"], "kind": "public_sentiment", "source": "微博"}, 201)
    period = period_containing(ReportKind(kind), world.today).label
    report_id = make(app_client, operator, kind=kind, period=period)["id"]
    report = fetch(app_client, operator, report_id)
    params = {} if lang == "zh" else {"lang": "en"}
    xlsx = app_client.get(f"/v1/reports/{report_id}.xlsx", headers=operator, params=params)
    assert xlsx.status_code == 200, xlsx.text
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet_names = book.sheetnames
    assert sheet_names[0] == ("报告" if lang == "zh" else "Report")
    heading = dict(book[sheet_names[0]].iter_rows(values_only=True))
    signed = "签名树头大小" if lang == "zh" else "Signed tree head: size"
    assert heading[signed] == str(report["tree_head"]["tree_size"])
    downloaded = app_client.get(f"/v1/reports/{report_id}.csv", headers=operator, params=params)
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"].startswith("text/csv")
    in_csv = csv_sections(downloaded.content)
    for s in report["figures"]["sections"]:
        title = s["title"][lang]
        header = [c[lang] for c in s["columns"]]
        sheet = list(book[title].iter_rows(values_only=True))
        assert list(sheet[0]) == header
        assert [list(row) for row in sheet[1:]] == s["rows"]
        formulas = [c for row in book[title].iter_rows() for c in row if c.data_type == "f"]
        assert formulas == []
        assert in_csv[title][0] == header
        assert in_csv[title][1:] == [[cell_text(v) for v in row] for row in s["rows"]]
        assert s["rows"] or s["name"] == "actions"
    names = [s["name"] for s in report["figures"]["sections"]]
    assert set(names) >= {"daily": {"merchants", "signals", "alerts"},
                          "weekly": {"sweep"},
                          "quarterly": {"tiers", "complaints"}}[kind]


def test_a_department_key_makes_and_reads_its_department_s_reports_only(
        app_client: TestClient, operator: Headers, world: World) -> None:
    culture = bearer(app_client.post("/v1/keys", headers=operator, json={
        "role": "regulator", "department": CULTURE}).json()["key"])
    made = make(app_client, culture, kind="daily", period=world.today.isoformat())
    assert made["scope"] == {"kind": "department", "name": CULTURE}
    own = fetch(app_client, culture, made["id"])
    assert {r["department"] for r in section(own, "merchants")} == {CULTURE}
    assert world.a.id in {r["merchant_id"] for r in section(own, "merchants")}
    refused = app_client.post("/v1/reports", headers=culture,
                              json={"kind": "daily", "department": COMMERCE})
    assert_problem(refused, 403, "forbidden")
    district = make(app_client, operator, kind="daily", period=world.today.isoformat())
    for suffix in ("", ".csv", ".xlsx"):
        assert_problem(app_client.get(f"/v1/reports/{district['id']}{suffix}",
                                      headers=culture), 404, field="report_id")
    listed = app_client.get("/v1/reports", headers=culture, params={"limit": 100}).json()
    assert listed["items"] and {i["scope"]["name"] for i in listed["items"]} == {CULTURE}
    everything = app_client.get("/v1/reports", headers=operator, params={"limit": 100}).json()
    assert district["id"] in {i["id"] for i in everything["items"]}
    commerce = make(app_client, operator, kind="daily", period=world.today.isoformat(),
                    department=COMMERCE)
    rows = section(fetch(app_client, operator, commerce["id"]), "merchants")
    assert {r["department"] for r in rows} == {COMMERCE}


def test_a_street_key_s_report_holds_its_street_s_merchants_only(
        app_client: TestClient, operator: Headers, banking: Banking, world: World) -> None:
    on_the_street = banking.file("体育健身", bank_id=BANK, street="望京街道")["id"]
    street = bearer(app_client.post("/v1/keys", headers=operator, json={
        "role": "regulator", "street": "望京街道"}).json()["key"])
    made = make(app_client, street, kind="daily", period=world.today.isoformat())
    assert made["scope"] == {"kind": "street", "name": "望京街道"}
    rows = section(fetch(app_client, street, made["id"]), "merchants")
    assert [(r["merchant_id"], r["street"]) for r in rows] == [(on_the_street, "望京街道")]


def test_a_stored_report_cannot_be_changed_even_by_the_schema_s_owner_nor_name_no_head(
        app_client: TestClient, engine: Engine, owner_engine: Engine, operator: Headers,
        world: World) -> None:
    report_id = make(app_client, operator, kind="daily")["id"]
    for who in (engine, owner_engine):  # the service lacks the privilege; the owner, a trigger
        with pytest.raises(DBAPIError), who.begin() as conn:
            conn.execute(text("UPDATE reports SET figures = '{}' WHERE created_seq = :id"),
                         {"id": report_id})
        with pytest.raises(DBAPIError), who.begin() as conn:
            conn.execute(text("DELETE FROM reports WHERE created_seq = :id"), {"id": report_id})
    assert fetch(app_client, operator, report_id)["figures"]["sections"]
    with pytest.raises(DBAPIError, match="no signed tree head"), owner_engine.begin() as conn:
        conn.execute(text(  # a report naming a head never signed
            "INSERT INTO reports SELECT :seq, kind, period, period_start, period_end, "
            "scope_kind, scope_name, false, 10000000, 10000000, made_at, figures, "
            "figures_sha256, created_key_id FROM reports WHERE created_seq = :id"),
            {"id": report_id, "seq": 10**9})


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "daily", "period": "2026-13-01"}, "period"),
    ({"kind": "weekly", "period": "2026-12"}, "period"),
    ({"kind": "monthly", "period": "2999-01"}, "period"),
    ({"kind": "yearly"}, "kind"),
    ({"kind": "daily", "department": "x", "street": "y"}, "body"),
])
def test_a_report_asked_wrongly_is_refused_naming_the_field(
        app_client: TestClient, operator: Headers, world: World, body: dict[str, Any],
        field: str) -> None:
    before = app_client.get("/v1/reports", headers=operator, params={"limit": 100}).json()
    response = app_client.post("/v1/reports", headers=operator, json=body)
    problem = assert_problem(response, 422, field=problem_field(response))
    assert field in str(problem.get("field", "")) + problem["detail"]
    assert app_client.get("/v1/reports", headers=operator,
                          params={"limit": 100}).json() == before


def test_a_report_asked_again_with_its_idempotency_key_is_the_first_one(
        app_client: TestClient, engine: Engine, operator: Headers, world: World) -> None:
    key = {**operator, "Idempotency-Key": f"report-{world.a.id}"}
    first = app_client.post("/v1/reports", headers=key, json={"kind": "monthly"})
    assert first.status_code == 201, first.text
    banking_moves = app_client.post(f"/v1/merchants/{world.b.id}/tier", headers=operator,
                                    json={"tier": "red"})
    assert banking_moves.status_code == 200, banking_moves.text
    again = app_client.post("/v1/reports", headers=key, json={"kind": "monthly"})
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    made = [p for p in journal_payloads(engine, "report.made")
            if p["figures_sha256"] == first.json()["figures_sha256"]]
    assert len(made) == 1


def problem_field(response: Any) -> str | None:
    return response.json().get("field")


def test_merchants_and_banks_make_and_read_no_reports(
        app_client: TestClient, operator: Headers, world: World) -> None:
    report_id = make(app_client, operator, kind="daily")["id"]
    for key in (world.a.key, world.b.key):
        assert_problem(app_client.post("/v1/reports", headers=key, json={"kind": "daily"}),
                       403, "forbidden")
        assert_problem(app_client.get(f"/v1/reports/{report_id}", headers=key), 403,
                       "forbidden")
        assert_problem(app_client.get("/v1/reports", headers=key), 403, "forbidden")


def test_the_scheduler_makes_each_closed_period_s_district_reports_once(
        app_client: TestClient, engine: Engine, world: World) -> None:
    app: Any = app_client.app
    ctx, signer, scheduler = app.state.ctx, app.state.signer, app.state.reports
    now = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)  # 09:00 on 1 October in China
    portal = app_client.portal
    assert portal is not None
    made = portal.call(scheduler.tick, engine, ctx.writer, signer, now)
    assert len(made) == 4
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT kind, period, scheduled, scope_kind, created_key_id FROM reports "
            "WHERE created_seq = ANY(:ids) ORDER BY kind"), {"ids": made}).all()
    assert [tuple(r) for r in stored] == [
        ("daily", "2026-09-30", True, "district", None),
        ("monthly", "2026-09", True, "district", None),
        ("quarterly", "2026-Q3", True, "district", None),
        ("weekly", "2026-W39", True, "district", None)]
    assert portal.call(scheduler.tick, engine, ctx.writer, signer, now) == []


def test_yufu_reports_make_makes_one_from_the_command_line(
        engine: Engine, database_url: str, tmp_path: Path, world: World,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Last in the module: the command signs with a key of its own (the app's is a
    # throwaway), so it rotates, as an operator moving the service would.
    monkeypatch.setenv("YUFU_DATABASE_URL", database_url)
    monkeypatch.setenv("YUFU_HOME", str(tmp_path))
    monkeypatch.setenv("YUFU_AUDIT_KEY_ROTATE", "1")
    month = period_containing(ReportKind.monthly, world.today).label
    assert yufu(["reports", "make", "monthly", "--period", month,
                 "--department", CULTURE]) == 0
    made = json.loads(capsys.readouterr().out)
    assert (made["kind"], made["period"], made["scope"]) == (
        "monthly", month, {"kind": "department", "name": CULTURE})
    assert made["tree_size"] == made["journal_size"]
    with engine.connect() as conn:
        actor = conn.execute(text(
            "SELECT convert_from(body, 'UTF8')::jsonb -> 'payload' -> 'actor' "
            "FROM journal_entries WHERE seq = :s"), {"s": made["id"]}).scalar_one()
    assert actor["via"] == "cli"
    assert yufu(["reports", "make", "weekly", "--period", "2999-W01"]) == 2  # refused
