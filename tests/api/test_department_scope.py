"""Department-scoped regulators (分级监管): a regulator key may be issued for one department
(行业主管部门) or one street (属地), or neither (a district key); it is stored with the key,
named in the journal, and a scoped key reads only its own merchants."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from ledger.access import MerchantBooks, may_read_merchant, supervises
from ledger.auth import Principal, Role
from ledger.custody.lifecycle import Merchant
from ledger.custody.merchants import MerchantStatus, Tier
from tests.support.custody import credit_code
from tests.support.db import nothing_written, register_bank
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer, every_page

SPORTS, BEAUTY = "体育健身", "美容美发"  # seed 000: 区文旅体局, 区商务局
CULTURE, COMMERCE = "区文旅体局", "区商务局"
SCOPE_BANK = "SCOPE-BANK"


def issue(client: TestClient, operator: Headers, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/keys", headers=operator, json={"role": "regulator", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_regulator_key_is_issued_for_a_department_and_the_journal_names_it(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    issued = issue(app_client, operator, department=CULTURE, label="文旅体局 科室")
    assert (issued["department"], issued["street"]) == (CULTURE, None)
    entry = app_client.get(f"/v1/journal/{issued['issued_seq']}", headers=operator).json()
    payload = entry["payload"]
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT department, street FROM api_keys WHERE id = :id"),
                              {"id": issued["key_id"]}).one()
    assert payload["department"] == CULTURE and "street" not in payload
    assert tuple(stored) == (CULTURE, None)
    listed = app_client.get("/v1/keys", headers=operator, params={"role": "regulator"}).json()
    mine = next(k for k in listed["items"] if k["key_id"] == issued["key_id"])
    assert (mine["department"], mine["street"]) == (CULTURE, None)


def test_a_street_key_and_a_district_key_are_issued(app_client: TestClient,
                                                    operator: Headers) -> None:
    street = issue(app_client, operator, street="望京街道")
    district = issue(app_client, operator)
    assert (street["department"], street["street"]) == (None, "望京街道")
    assert (district["department"], district["street"]) == (None, None)


@pytest.mark.parametrize(("body", "field"), [
    ({"role": "operator", "department": CULTURE}, "department"),
    ({"role": "merchant", "merchant_id": "m_0000000000000000", "street": "望京街道"},
     "street"),
    ({"role": "regulator", "department": CULTURE, "street": "望京街道"}, "street"),
    ({"role": "regulator", "department": " "}, "department"),
])
def test_a_scope_is_refused_on_any_key_but_a_regulator_s_naming_the_field(
        app_client: TestClient, engine: Engine, operator: Headers, body: dict[str, Any],
        field: str) -> None:
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/keys", headers=operator, json=body)
    assert_problem(response, 422, field=field)


def test_a_department_key_reads_its_department_s_merchant_and_not_another_s(
        custody: Driver, app_client: TestClient, operator: Headers) -> None:
    sports, beauty = custody.file(SPORTS), custody.file(BEAUTY)
    culture = bearer(issue(app_client, operator, department=CULTURE)["key"])
    district = bearer(issue(app_client, operator)["key"])
    assert custody.ok("GET", f"/v1/merchants/{sports['id']}", culture)["department"] == CULTURE
    hidden = app_client.get(f"/v1/merchants/{beauty['id']}", headers=culture)
    missing = app_client.get("/v1/merchants/m_0000000000000000", headers=culture)
    assert_problem(hidden, 404, "not_found", "merchant_id")
    assert hidden.json()["detail"].replace(beauty["id"], "?") == \
        missing.json()["detail"].replace("m_0000000000000000", "?")
    for merchant in (sports, beauty):
        custody.ok("GET", f"/v1/merchants/{merchant['id']}", district)


def test_a_regulator_key_loads_with_its_scope_and_is_named_by_it(
        app_client: TestClient, operator: Headers) -> None:
    issued = issue(app_client, operator, department=CULTURE)
    principal = app_client.app.state.ctx.keys.authenticate(issued["key"])  # type: ignore[attr-defined]
    assert principal == Principal(issued["key_id"], Role.regulator, department=CULTURE)
    assert principal.actor == {"key_id": issued["key_id"], "role": "regulator",
                               "department": CULTURE}


def merchant(department: str, street: str | None) -> Merchant:
    return Merchant("m_1", "商户", SPORTS, department, "beijing", "B", MerchantStatus.active,
                    Tier.blue, frozenset(), {}, street)


@pytest.mark.parametrize(("key", "sees"), [
    (Principal(1, Role.operator), {"own", "other department", "other street"}),
    (Principal(1, Role.regulator), {"own", "other department", "other street"}),
    (Principal(1, Role.regulator, department=CULTURE), {"own", "other street"}),
    (Principal(1, Role.regulator, street="望京街道"), {"own", "other department"}),
    (Principal(1, Role.merchant, merchant_id="m_1"), set()),
    (Principal(1, Role.bank, bank_id="B"), set()),
    (Principal(1, Role.consumer, consumer_id="c"), set()),
])
def test_who_supervises_which_merchant(key: Principal, sees: set[str]) -> None:
    merchants = {"own": merchant(CULTURE, "望京街道"),
                 "other department": merchant(COMMERCE, "望京街道"),
                 "other street": merchant(CULTURE, "酒仙桥街道")}
    assert {name for name, m in merchants.items() if supervises(key, m)} == sees
    if key.role == Role.regulator:  # the books a regulator reads follow the same scope
        assert {name for name, m in merchants.items() if may_read_merchant(
            key, MerchantBooks(m.id, m.bank_id, m.department, m.street))} == sees


def file_on(custody: Driver, industry: str, street: str) -> dict[str, Any]:
    register_bank(custody.engine, SCOPE_BANK)
    body = {"name": f"商户{custody.rng.randrange(10**6)}", "industry": industry,
            "credit_code": credit_code(custody.rng), "bank_id": SCOPE_BANK,
            "custody_account": f"04{custody.rng.randrange(10**11):011d}", "street": street}
    return dict(custody.ok("POST", "/v1/merchants", custody.operator, body, 201))


def listed(client: TestClient, key: Headers, path: str, **params: Any) -> set[str]:
    """The merchant ids a list names: every page of it."""
    items = every_page(client, path, key, 50, **params)
    return {item.get("merchant_id") or item.get("id") for item in items}


def test_a_street_key_reads_its_street_s_merchants_and_not_another_street_s(
        custody: Driver, app_client: TestClient, operator: Headers) -> None:
    wangjing, jiuxianqiao = file_on(custody, SPORTS, "望京街道"), \
        file_on(custody, SPORTS, "酒仙桥街道")
    street = bearer(issue(app_client, operator, street="望京街道")["key"])
    assert custody.ok("GET", f"/v1/merchants/{wangjing['id']}", street)["id"] == wangjing["id"]
    assert_problem(app_client.get(f"/v1/merchants/{jiuxianqiao['id']}", headers=street), 404,
                   "not_found", "merchant_id")
    seen = listed(app_client, street, "/v1/exposure")
    assert wangjing["id"] in seen and jiuxianqiao["id"] not in seen
    # The journal: the entries that name one of its merchants (merchant_id), a product each.
    for merchant in (wangjing, jiuxianqiao):
        custody.product(merchant["id"], custody.merchant_key(merchant["id"]),
                        kind="stored_value", price_fen=1_000)
    journal = every_page(app_client, "/v1/journal", street, 200)
    assert {e["payload"]["merchant_id"] for e in journal} == {wangjing["id"]}


def test_every_list_a_department_key_reads_holds_its_department_s_merchants_only(
        custody: Driver, app_client: TestClient, operator: Headers) -> None:
    sports, beauty = file_on(custody, SPORTS, "望京街道"), file_on(custody, BEAUTY, "望京街道")
    culture = bearer(issue(app_client, operator, department=CULTURE)["key"])
    district = bearer(issue(app_client, operator)["key"])
    for path in ("/v1/exposure", "/v1/audit/merchants"):
        by_culture, by_district = listed(app_client, culture, path), \
            listed(app_client, district, path)
        assert sports["id"] in by_culture and beauty["id"] not in by_culture, path
        assert {sports["id"], beauty["id"]} <= by_district, path
    with custody.engine.connect() as conn:  # what the database holds, to compare with
        in_culture = set(conn.execute(text(
            "SELECT id FROM merchants WHERE department = :d"), {"d": CULTURE}).scalars())
    assert listed(app_client, culture, "/v1/exposure") == in_culture
    totals = custody.ok("GET", "/v1/audit/totals", culture)
    assert [d["department"] for d in totals["by_department"]] == [CULTURE]


def test_a_bank_s_payment_file_shows_a_department_key_its_merchants_instructions_only(
        custody: Driver, app_client: TestClient, operator: Headers) -> None:
    sports = file_on(custody, SPORTS, "望京街道")
    till = custody.merchant_key(sports["id"])
    product = custody.product(sports["id"], till, kind="sessions", price_fen=6_000, sessions=6,
                              validity_months=3)
    card = custody.sell(product["id"], till)
    refund = custody.ok("POST", f"/v1/cards/{card['card_id']}/refunds", till,
                        {"reason": "balance"}, 201)
    path = f"/v1/banks/{SCOPE_BANK}/instructions"
    answers = {department: {i["end_to_end_id"] for i in every_page(
        app_client, path, bearer(issue(app_client, operator, department=department)["key"]),
        50, format="json")} for department in (CULTURE, COMMERCE)}
    assert refund["end_to_end_id"] in answers[CULTURE]
    assert refund["end_to_end_id"] not in answers[COMMERCE]
