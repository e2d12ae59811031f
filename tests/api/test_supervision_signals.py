"""The four checks (四查) as signals, tiers (红黄蓝) and their controls, and the alerts inbox,
through the HTTP API on real PostgreSQL."""

from __future__ import annotations

import io
import json
import random
from datetime import date, timedelta
from importlib import resources
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.cli import main as yufu
from api.context import china_today
from ledger.custody.merchants import Tier
from ledger.supervision.signals import SignalKind
from ledger.supervision.thresholds import SupervisionRules, parse_shipped
from ledger.supervision.tiers import computed_tier
from tests.support.custody import credit_code, id_number
from tests.support.db import journal_payloads, nothing_written
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer

rng = random.Random(1515)
D0 = date(2026, 6, 1)  # a Monday
SPORTS, CULTURE = "体育健身", "区文旅体局"  # seed 000: the sports department
BEAUTY, COMMERCE = "美容美发", "区商务局"


def regulator(client: TestClient, operator: Headers, **scope: str) -> Headers:
    response = client.post("/v1/keys", headers=operator, json={"role": "regulator", **scope})
    assert response.status_code == 201, response.text
    return bearer(response.json()["key"])


def legal_representative() -> list[dict[str, str]]:
    return [{"role": "legal_representative", "id_number": id_number(rng)}]


def sweep(custody: Driver, as_of: date) -> dict[str, dict[str, Any]]:
    """The sweep's assessments by merchant (those whose signals or tier changed)."""
    answer = custody.ok("POST", "/v1/supervision/sweep", custody.operator,
                        {"as_of": as_of.isoformat()})
    return {a["merchant_id"]: a for a in answer["assessed"]}


def shipped_rules() -> SupervisionRules:
    text = resources.files("ledger.supervision.shipped").joinpath("beijing.json").read_text()
    return {industry: rules for _, industry, rules in parse_shipped(json.loads(text))}["*"]


def standing_signals(engine: Engine, merchant_id: str) -> set[SignalKind]:
    """A merchant's signals as the journal leaves them: raised, less cleared, in order."""
    standing: set[SignalKind] = set()
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT kind, body FROM journal_entries WHERE kind IN "
            "('signal.raised', 'signal.cleared') ORDER BY seq")).all()
    for kind, body in rows:
        payload = json.loads(bytes(body))["payload"]
        if payload["merchant_id"] == merchant_id:
            signal = SignalKind(payload["kind"])
            (standing.add if kind == "signal.raised" else standing.discard)(signal)
    return standing


def test_a_discount_drive_then_a_new_legal_representative_turns_a_merchant_yellow_then_red(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    custody.set_today(D0)
    culture = regulator(app_client, custody.operator, department=CULTURE)
    other = regulator(app_client, custody.operator, department=COMMERCE)
    drive = custody.file(SPORTS, street="望京街道", people=legal_representative())
    healthy = custody.file(SPORTS, street="望京街道", people=legal_representative())
    key, calm_key = custody.merchant_key(drive["id"]), custody.merchant_key(healthy["id"])
    card = custody.product(drive["id"], key, kind="sessions", price_fen=100_000, sessions=20,
                           validity_months=3)
    calm_card = custody.product(healthy["id"], calm_key, kind="sessions", price_fen=50_000,
                                sessions=10, validity_months=3)
    # The discount drive (打折促销): 3,000 yuan of cards in a day against nothing before.
    for _ in range(3):
        custody.sell(card["id"], key)
    custody.sell(calm_card["id"], calm_key)

    first = sweep(custody, D0)
    assert first[drive["id"]]["tier"] == "yellow"
    assert set(first[drive["id"]]["raised"]) == {"sales_spike_day", "sales_spike_week"}
    assert healthy["id"] not in first  # nothing changed: it stays blue
    assert custody.ok("GET", f"/v1/merchants/{healthy['id']}/risk", culture)["tier"] == "blue"

    # 频繁变更法人: the legal representative changes while the drive goes on. The amendment is
    # an event: the merchant is assessed in the same command, and the run-away pattern shows.
    custody.ok("POST", f"/v1/merchants/{drive['id']}/amendments", custody.operator,
               {"reason": "法定代表人变更", "people": legal_representative()}, 201)
    risk = custody.ok("GET", f"/v1/merchants/{drive['id']}/risk", culture)
    assert (risk["tier"], risk["releases_held"]) == ("red", True)
    assert {s["kind"] for s in risk["signals"]} == {
        "sales_spike_day", "sales_spike_week", "legal_representative_changed",
        "run_away_pattern"}
    # The complaints come (12345 work orders), and the public's voice (舆情): a sentiment flag
    # a regulator records with its source, an event that assesses the merchant at once.
    for n in range(3):
        custody.ok("POST", "/v1/complaints", culture, {
            "channel": "12345", "external_id": f"GD-{drive['id']}-{n}", "category": "退费",
            "received_at": f"{D0.isoformat()}T09:00:00", "merchant_id": drive["id"]}, 201)
    flagged = custody.ok("POST", "/v1/supervision/records", culture, {
        "credit_code": drive["credit_code"], "kind": "舆情", "source": "微博 @望京生活",
        "note": "会员反映门店将关闭"}, 201)
    assessed = flagged["assessed"][0]
    assert (assessed["raised"], assessed["tier"]) == (["complaint_surge", "public_sentiment"],
                                                      "red")
    assert drive["id"] not in sweep(custody, D0)  # the sweep finds nothing new

    # Red: no new cards and no renewals.
    refused = app_client.post("/v1/cards", headers=key, json={
        "product_id": card["id"], "consumer": {"phone": custody.next_phone()}, "named": True})
    assert_problem(refused, 422, code="refused", detail_has="red-tier")
    custody.sell(calm_card["id"], calm_key)  # the healthy merchant sells on

    # The department's inbox holds the alerts; another department's does not.
    inbox = custody.ok("GET", "/v1/alerts?unacknowledged=true", culture)["items"]
    mine = [a for a in inbox if a["merchant_id"] == drive["id"]]
    assert [a["kind"] for a in mine] == ["tier_yellow", "tier_red", "run_away"]
    assert all(a["department"] == CULTURE and a["street"] == "望京街道" for a in mine)
    run_away = mine[2]
    assert run_away["severity"] == "critical"
    assert {s["kind"] for s in run_away["signals"]} == {"run_away_pattern"}
    assert not [a for a in custody.ok("GET", "/v1/alerts", other)["items"]
                if a["merchant_id"] == drive["id"]]
    warned = custody.ok("GET", "/v1/alerts", key)["items"]  # the merchant's own warning
    assert {a["kind"] for a in warned} == {"tier_yellow", "run_away", "tier_red"}
    assert not any(a["merchant_id"] == healthy["id"] for a in inbox)

    # The journal names every signal, and the tier changes with the signals that caused them.
    raised = [p for p in journal_payloads(engine, "signal.raised")
              if p["merchant_id"] == drive["id"]]
    assert {p["kind"] for p in raised} == {
        "sales_spike_day", "sales_spike_week", "legal_representative_changed",
        "complaint_surge", "public_sentiment", "run_away_pattern"}
    assert all({"value", "threshold", "source", "check"} <= set(p) for p in raised)
    changes = [p for p in journal_payloads(engine, "merchant.tier_changed")
               if p["merchant_id"] == drive["id"]]
    assert [(c["previous_tier"], c["tier"]) for c in changes] == [("blue", "yellow"),
                                                                  ("yellow", "red")]
    assert changes[0]["reasons"] == ["sales_spike_day", "sales_spike_week"]
    assert changes[1]["reasons"] == ["run_away_pattern"]
    assert changes[1]["signals"][0]["source"].startswith("legal_representative_changed+")
    # Recomputed from the journal's signals, the tier is the one stored.
    tier, _ = computed_tier(standing_signals(engine, drive["id"]), shipped_rules())
    assert tier == Tier.red
    assert custody.ok("GET", f"/v1/merchants/{drive['id']}/risk", culture)["tier"] == "red"


def test_a_yellow_merchant_s_sales_are_capped_per_day_by_the_rules_of_its_industry(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    custody.set_today(D0)
    version = custody.ok("POST", "/v1/supervision/rules", custody.operator, {
        "jurisdiction": "beijing", "industry": BEAUTY,
        "rules": {"yellow_daily_sales_fen_max": 100_000}}, 201)
    assert version["rules"]["yellow_daily_sales_fen_max"] == 100_000
    assert version["rules"]["yellow_reserve_share_bp"] == 3_000  # the rest as the '*' rules
    commerce = regulator(app_client, custody.operator, department=COMMERCE)
    m = custody.file(BEAUTY)
    key = custody.merchant_key(m["id"])
    product = custody.product(m["id"], key, kind="stored_value", price_fen=40_000)
    custody.sell(product["id"], key)
    custody.ok("POST", f"/v1/merchants/{m['id']}/tier-overrides", commerce,
               {"tier": "yellow", "reason": "约谈后警示 (中风险)"}, 201)
    custody.sell(product["id"], key)  # 80,000 today: under the cap
    sale = {"product_id": product["id"], "consumer": {"phone": custody.next_phone()},
            "named": True}
    with nothing_written(app_client, engine):
        refused = app_client.post("/v1/cards", headers=key, json=sale)
    assert_problem(refused, 422, code="refused", field="product_id",
                   detail_has="capped at 100000 fen a day (控增量); 80000 fen sold today")
    custody.set_today(D0 + timedelta(days=1))  # a new day: the cap starts again
    custody.sell(product["id"], key)


def test_a_run_away_pattern_holds_releases_until_a_regulator_in_scope_clears_it(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    custody.set_today(D0)
    commerce = regulator(app_client, custody.operator, department=COMMERCE)
    culture = regulator(app_client, custody.operator, department=CULTURE)
    m = custody.file(BEAUTY, people=legal_representative())
    key = custody.merchant_key(m["id"])
    product = custody.product(m["id"], key, kind="sessions", price_fen=100_000, sessions=10)
    cards = [custody.sell(product["id"], key) for _ in range(3)]
    custody.consume(cards[0]["card_id"], key, sessions=5)  # earned at once (美容美发)
    custody.ok("POST", f"/v1/merchants/{m['id']}/amendments", custody.operator,
               {"reason": "法定代表人变更", "people": legal_representative()}, 201)
    # The amendment is an event: the run-away pattern shows, and releases are held.
    assert custody.ok("GET", f"/v1/merchants/{m['id']}/risk", commerce)["releases_held"]
    assert [h for h in journal_payloads(engine, "releases.held") if h["merchant_id"] == m["id"]]

    week = D0 + timedelta(days=7)
    custody.set_today(week)
    run = custody.ok("POST", "/v1/releases/run", custody.operator,
                     {"as_of": week.isoformat(), "merchant_id": m["id"]})
    assert (run["releases"], run["held"]) == ([], [m["id"]])
    path = f"/v1/merchants/{m['id']}/release-hold/clear"
    with nothing_written(app_client, engine):
        assert_problem(app_client.post(path, headers=culture, json={"reason": "看过"}), 404,
                       field="merchant_id")  # outside its scope: as if missing
    cleared = custody.ok("POST", path, commerce, {"reason": "现场检查: 门店正常经营"})
    assert cleared["releases_held"] is False
    with nothing_written(app_client, engine):
        assert_problem(app_client.post(path, headers=commerce, json={"reason": "again"}), 409,
                       field="merchant_id")
    run = custody.ok("POST", "/v1/releases/run", custody.operator,
                     {"as_of": week.isoformat(), "merchant_id": m["id"]})
    assert run["held"] == [] and len(run["releases"]) == 1
    # A red merchant's releases keep the rule set's reserve; 20,000 of custody earned.
    assert run["releases"][0]["amount_fen"] + run["releases"][0]["holdback_fen"] == 20_000
    done = journal_payloads(engine, "releases.hold_cleared")[-1]
    assert done["merchant_id"] == m["id"] and done["reason"] == "现场检查: 门店正常经营"


def test_an_override_stands_until_its_day_and_a_review_ends_another(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    custody.set_today(D0)
    district = regulator(app_client, custody.operator)
    m = custody.file(SPORTS)
    path = f"/v1/merchants/{m['id']}/tier-overrides"
    with nothing_written(app_client, engine):
        past = app_client.post(path, headers=district, json={
            "tier": "red", "reason": "x", "expires_on": D0.isoformat()})
        assert_problem(past, 422, field="expires_on")
    until = D0 + timedelta(days=3)
    overridden = custody.ok("POST", path, district, {
        "tier": "red", "reason": "联合约谈: 高风险", "expires_on": until.isoformat()}, 201)
    assert (overridden["tier"], overridden["computed_tier"]) == ("red", "blue")
    assert custody.ok("GET", f"/v1/merchants/{m['id']}/risk", district)["tier"] == "red"
    custody.set_today(until - timedelta(days=1))
    assert sweep(custody, until - timedelta(days=1)).get(m["id"]) is None  # it stands
    custody.set_today(until)
    back = sweep(custody, until)[m["id"]]
    assert (back["previous_tier"], back["tier"]) == ("red", "blue")
    change = journal_payloads(engine, "merchant.tier_changed")[-1]
    assert (change["merchant_id"], change["tier"], change["override_seq"]) == (
        m["id"], "blue", None)

    second = custody.ok("POST", path, district, {"tier": "yellow", "reason": "待复查"}, 201)
    assert second["tier"] == "yellow"
    review = f"/v1/tier-overrides/{second['override_id']}/review"
    reviewed = custody.ok("POST", review, district, {"reason": "复查: 已整改"})
    assert (reviewed["previous_tier"], reviewed["tier"]) == ("yellow", "blue")
    with nothing_written(app_client, engine):
        assert_problem(app_client.post(review, headers=district, json={"reason": "x"}), 409,
                       field="override_id")


def test_an_operating_status_file_records_each_row_or_refuses_it_by_number(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    custody.set_today(D0)
    district = regulator(app_client, custody.operator)
    m = custody.file(SPORTS)
    unfiled = credit_code(rng)
    csv = ("统一社会信用代码,类型,状态,来源,备注\n"
           f"{m['credit_code']},失信被执行人,列入,北京市朝阳区人民法院,(2026)京0105执123号\n"
           f"{m['credit_code']},吊销,列入,区市监局,\n"
           f"{unfiled},经营异常名录,列入,区市监局,\n")
    response = app_client.post("/v1/supervision/records/import?name=court-2026-06.csv",
                               headers={**district, "content-type": "text/csv"},
                               content=csv.encode())
    assert response.status_code == 201, response.text
    body = response.json()
    assert [(r["row"], r["kind"]) for r in body["recorded"]] == [(2, "court_listed_defaulter")]
    assert [(r["row"], r["field"]) for r in body["refused"]] == [(3, "kind"),
                                                                 (4, "credit_code")]
    assert body["assessed"][0]["tier"] == "red"
    risk = custody.ok("GET", f"/v1/merchants/{m['id']}/risk", district)
    assert risk["hard_blocks"] == ["court_listed_defaulter"]
    refusal = journal_payloads(engine, "status_record.refused")[-1]
    assert refusal["file"] == "court-2026-06.csv"
    assert [r["row"] for r in refusal["refused"]] == [3, 4]

    # The court lifts the listing (移出), in an Excel file: the merchant is blue again.
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["credit_code", "kind", "listed", "source"])
    sheet.append([m["credit_code"], "court_listed_defaulter", "移出", "北京市朝阳区人民法院"])
    data = io.BytesIO()
    book.save(data)
    lifted = custody.ok("POST", "/v1/supervision/records/import", {
        **district, "content-type": "application/octet-stream"}, content=data.getvalue(),
        status=201)
    assert lifted["refused"] == [] and lifted["assessed"][0]["tier"] == "blue"
    assert custody.ok("GET", f"/v1/merchants/{m['id']}/risk", district)["hard_blocks"] == []


def test_a_file_without_the_columns_is_refused_whole_and_changes_nothing(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    district = regulator(app_client, custody.operator)
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/supervision/records/import",
                                   headers={**district, "content-type": "text/csv"},
                                   content="名称,类型\nx,欠税\n".encode())
    assert_problem(response, 422, field="file", detail_has="credit_code")


def test_prepaid_over_prior_year_revenue_is_a_signal(custody: Driver, app_client: TestClient
                                                     ) -> None:
    custody.set_today(D0)
    commerce = regulator(app_client, custody.operator, department=COMMERCE)
    m = custody.file(BEAUTY)
    key = custody.merchant_key(m["id"])
    product = custody.product(m["id"], key, kind="stored_value", price_fen=100_000)
    custody.sell(product["id"], key)
    recorded = custody.ok("POST", f"/v1/merchants/{m['id']}/revenues", commerce,
                          {"year": D0.year - 1, "revenue_fen": 200_000}, 201)
    # 100,000 outstanding against 200,000 of revenue is 50%: over the 40% the rules allow.
    assert recorded["assessed"]["raised"] == ["prepaid_over_revenue"]
    signal = custody.ok("GET", f"/v1/merchants/{m['id']}/risk", commerce)["signals"][0]
    assert (signal["value"], signal["threshold"]) == (5_000, 4_000)


def test_an_alert_is_acknowledged_once_by_a_regulator_in_scope(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    custody.set_today(D0)
    culture = regulator(app_client, custody.operator, department=CULTURE)
    commerce = regulator(app_client, custody.operator, department=COMMERCE)
    m = custody.file(SPORTS)
    custody.ok("POST", "/v1/supervision/records", culture, {
        "credit_code": m["credit_code"], "kind": "tax_arrears", "source": "区税务局"}, 201)
    alert = next(a for a in custody.ok("GET", "/v1/alerts", culture)["items"]
             if a["merchant_id"] == m["id"])
    path = f"/v1/alerts/{alert['id']}/acknowledge"
    with nothing_written(app_client, engine):
        assert_problem(app_client.post(path, headers=commerce), 404, field="alert_id")
    seen = custody.ok("POST", path, culture)
    assert seen["alert_id"] == alert["id"]
    with nothing_written(app_client, engine):
        assert_problem(app_client.post(path, headers=culture), 409, field="alert_id")
    unseen = custody.ok("GET", "/v1/alerts?unacknowledged=true", culture)["items"]
    assert alert["id"] not in [a["id"] for a in unseen]


def test_yufu_supervision_sweep_assesses_from_the_shell(
        custody: Driver, app_client: TestClient, engine: Engine, database_env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in database_env.items():
        monkeypatch.setenv(name, value)
    custody.set_today(china_today())
    m = custody.file(SPORTS)
    key = custody.merchant_key(m["id"])
    product = custody.product(m["id"], key, kind="stored_value", price_fen=150_000,
                              validity_months=3)
    for _ in range(2):
        custody.sell(product["id"], key)  # 3,000 yuan in a day: a spike
    assert yufu(["supervision", "sweep"]) == 0
    assert m["id"] in capsys.readouterr().out
    assert custody.ok("GET", f"/v1/merchants/{m['id']}/risk", custody.operator)["tier"] == \
        "yellow"


def test_a_yellow_merchant_s_releases_keep_the_higher_reserve_share(
        custody: Driver, app_client: TestClient) -> None:
    custody.set_today(D0)
    commerce = regulator(app_client, custody.operator, department=COMMERCE)
    calm, watched = custody.file(BEAUTY), custody.file(BEAUTY)
    for m in (calm, watched):
        key = custody.merchant_key(m["id"])
        product = custody.product(m["id"], key, kind="sessions", price_fen=100_000,
                                  sessions=10)
        card = custody.sell(product["id"], key)
        custody.consume(card["card_id"], key, sessions=5)  # 20,000 of custody earned
    custody.ok("POST", f"/v1/merchants/{watched['id']}/tier-overrides", commerce,
               {"tier": "yellow", "reason": "中风险: 警示"}, 201)
    week = D0 + timedelta(days=7)
    custody.set_today(week)
    held_back = {m["id"]: [(r["amount_fen"], r["holdback_fen"])
                           for r in custody.run_releases(week, m["id"])]
                 for m in (calm, watched)}
    # The rule set's 10% for a blue merchant; the supervision rules' 30% for a yellow one.
    assert held_back == {calm["id"]: [(18_000, 2_000)], watched["id"]: [(14_000, 6_000)]}


def test_a_jurisdiction_without_supervision_rules_is_not_assessed_and_says_so(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    custody.set_today(D0)
    rules = custody.ok("GET", "/v1/rule-sets?limit=1", custody.operator)["items"][0]["rules"]
    custody.ok("POST", "/v1/rule-sets", custody.operator,
               {"jurisdiction": "tianjin", "industry": "*", "rules": rules}, 201)
    m = custody.file(SPORTS, jurisdiction="tianjin", people=legal_representative())
    custody.ok("POST", f"/v1/merchants/{m['id']}/amendments", custody.operator,
               {"reason": "法定代表人变更", "people": legal_representative()}, 201)
    assert m["id"] not in sweep(custody, D0)
    assert custody.ok("GET", f"/v1/merchants/{m['id']}/risk", custody.operator)["tier"] == "blue"
    with nothing_written(app_client, engine):
        refused = app_client.post(f"/v1/merchants/{m['id']}/assessments",
                                  headers=custody.operator, json={})
    assert_problem(refused, 409, field="merchant_id", detail_has="no supervision rules")


def test_a_sales_spike_with_a_complaint_surge_is_the_run_away_pattern_too(
        custody: Driver, app_client: TestClient) -> None:
    custody.set_today(D0)
    culture = regulator(app_client, custody.operator, department=CULTURE)
    m = custody.file(SPORTS)
    key = custody.merchant_key(m["id"])
    product = custody.product(m["id"], key, kind="stored_value", price_fen=150_000,
                              validity_months=3)
    for _ in range(2):
        custody.sell(product["id"], key)
    for n in range(3):  # 12345 work orders, counted through the complaints' own table
        custody.ok("POST", "/v1/complaints", culture, {
            "channel": "12345", "external_id": f"SURGE-{m['id']}-{n}", "category": "退费",
            "received_at": f"{D0.isoformat()}T10:00:00", "merchant_id": m["id"]}, 201)
    assessed = custody.ok("POST", f"/v1/merchants/{m['id']}/assessments", culture)
    assert {"complaint_surge", "run_away_pattern"} <= set(assessed["raised"])
    assert (assessed["tier"], assessed["releases_held"]) == ("red", True)
    signals = {s["kind"]: s for s in custody.ok("GET", f"/v1/merchants/{m['id']}/risk",
                                                culture)["signals"]}
    assert (signals["complaint_surge"]["value"], signals["complaint_surge"]["threshold"]) == (3, 3)
    assert "complaint_surge" in signals["run_away_pattern"]["source"]
