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
from tests.support.db import nothing_written
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer

SPORTS, BEAUTY = "体育健身", "美容美发"  # seed 000: 区文旅体局, 区商务局
CULTURE, COMMERCE = "区文旅体局", "区商务局"


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
