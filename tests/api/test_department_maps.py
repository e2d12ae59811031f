"""The industry -> supervising-department maps as data per jurisdiction (行业主管部门): shipped
for Beijing (seed 000) and Tianjin (seed 002), written at first start, versioned and
journaled; filing follows the merchant's jurisdiction's latest map; an industry nobody
supervises goes to the pending department until the district government designates one
(区政府指定), which moves the merchants waiting for it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ledger.auth import Role
from ledger.custody.rules import BEIJING_COMMERCE
from tests.support.custody import credit_code
from tests.support.db import WRITTEN_TABLES, issue_key, nothing_written, register_bank
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer, every_page

MAP_TABLES = (*WRITTEN_TABLES, "department_maps")
BANK = "DM-BANK"


@pytest.fixture(scope="module")
def tianjin_rules(custody: Driver) -> None:
    """Tianjin's merchants need a rule set to be filed under: the operator publishes one."""
    custody.ok("POST", "/v1/rule-sets", custody.operator,
               {"jurisdiction": "tianjin", "industry": "*", "rules": BEIJING_COMMERCE.as_dict()},
               201)


def file(custody: Driver, industry: str, jurisdiction: str = "beijing") -> dict[str, Any]:
    register_bank(custody.engine, BANK)
    body = {"name": f"商户{custody.rng.randrange(10**6)}", "industry": industry,
            "credit_code": credit_code(custody.rng), "bank_id": BANK,
            "custody_account": f"03{custody.rng.randrange(10**11):011d}",
            "jurisdiction": jurisdiction}
    return dict(custody.ok("POST", "/v1/merchants", custody.operator, body, 201))


def maps(client: TestClient, key: Headers, jurisdiction: str) -> list[dict[str, Any]]:
    return every_page(client, "/v1/department-maps", key, 2, jurisdiction=jurisdiction)


def entry(client: TestClient, operator: Headers, seq: int) -> dict[str, Any]:
    response = client.get(f"/v1/journal/{seq}", headers=operator)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_shipped_maps_are_written_at_first_start_and_journaled(
        app_client: TestClient, operator: Headers) -> None:
    for jurisdiction, pending, sports in (("beijing", "区市监局", "区文旅体局"),
                                          ("tianjin", "区市场监管局", None)):
        first = maps(app_client, operator, jurisdiction)[0]
        assert (first["version"], first["pending_department"], first["created_key_id"]) == (
            1, pending, None)
        assert first["departments"].get("体育健身") == sports
        written = entry(app_client, operator, first["created_seq"])
        assert written["kind"] == "department_map.published"
        assert {pair["industry"]: pair["department"]
                for pair in written["payload"]["departments"]} == first["departments"]
        assert written["payload"]["actor"] == {"role": "system"}


def test_filing_in_beijing_and_in_tianjin_follows_each_one_s_map(
        custody: Driver, tianjin_rules: None) -> None:
    expected = {("beijing", "体育健身"): ("区文旅体局", False),
                ("tianjin", "体育健身"): ("区市场监管局", True),  # seed 002 names no one
                ("beijing", "餐饮"): ("区商务局", False),
                ("tianjin", "餐饮"): ("区商务局", False),
                ("beijing", "机动车维修租赁"): ("区住交局", False),
                ("tianjin", "机动车维修租赁"): ("区交通局", False),
                ("beijing", "驾驶员培训"): ("区市监局", True),
                ("tianjin", "驾驶员培训"): ("区交通局", False)}
    for (jurisdiction, industry), (department, pending) in expected.items():
        filed = file(custody, industry, jurisdiction)
        assert (filed["department"], filed["department_pending"],
                filed["department_map_version"]) == (department, pending, 1), filed
        read = custody.ok("GET", f"/v1/merchants/{filed['id']}", custody.operator)
        assert (read["department"], read["department_pending"]) == (department, pending)


def test_an_unknown_industry_goes_pending_then_moves_on_designation_journaled(
        custody: Driver, app_client: TestClient, tianjin_rules: None) -> None:
    industry = f"星际旅行{custody.rng.randrange(10**6)}"
    waiting = sorted(file(custody, industry)["id"] for _ in range(2))
    elsewhere = file(custody, industry, "tianjin")
    culture = bearer(app_client.post("/v1/keys", headers=custody.operator, json={
        "role": "regulator", "department": "区文旅体局"}).json()["key"])
    assert app_client.get(f"/v1/merchants/{waiting[0]}", headers=culture).status_code == 404
    designated = custody.ok("POST", "/v1/industries/designations", custody.operator, {
        "jurisdiction": "beijing", "industry": industry, "department": "区文旅体局",
        "reason": "区政府指定"}, 201)
    assert (designated["merchants"], designated["department"], designated["reason"]) == (
        waiting, "区文旅体局", "区政府指定")
    latest = maps(app_client, custody.operator, "beijing")[-1]
    assert (latest["version"], latest["departments"][industry], latest["reason"]) == (
        designated["version"], "区文旅体局", "区政府指定")
    assert entry(app_client, custody.operator, designated["journal_seq"])["kind"] == \
        "department.designated"
    for offset, merchant_id in enumerate(waiting, start=1):
        moved = entry(app_client, custody.operator, designated["journal_seq"] + offset)
        assert moved["kind"] == "merchant.department_changed"
        assert {k: moved["payload"][k] for k in (
            "merchant_id", "department", "previous_department", "department_pending",
            "designation_seq")} == {
            "merchant_id": merchant_id, "department": "区文旅体局",
            "previous_department": "区市监局", "department_pending": False,
            "designation_seq": designated["journal_seq"]}
        read = custody.ok("GET", f"/v1/merchants/{merchant_id}", culture)  # now in its scope
        assert (read["department"], read["department_pending"]) == ("区文旅体局", False)
    other = custody.ok("GET", f"/v1/merchants/{elsewhere['id']}", custody.operator)
    assert (other["department"], other["department_pending"]) == ("区市场监管局", True)
    after = file(custody, industry)
    assert (after["department"], after["department_pending"],
            after["department_map_version"]) == ("区文旅体局", False, designated["version"])


def test_an_operator_publishes_a_new_version_and_later_filings_follow_it(
        custody: Driver, app_client: TestClient, tianjin_rules: None) -> None:
    before = file(custody, "健身会所", "tianjin")
    current = maps(app_client, custody.operator, "tianjin")[-1]
    published = custody.ok("POST", "/v1/department-maps", custody.operator, {
        "jurisdiction": "tianjin", "pending_department": "区市场监管局",
        "departments": {**current["departments"], "健身会所": "区体育局"},
        "reason": "区体育局 成立"}, 201)
    assert published["version"] == current["version"] + 1
    assert published["created_key_id"] is not None
    assert entry(app_client, custody.operator, published["journal_seq"])["kind"] == \
        "department_map.published"
    assert file(custody, "健身会所", "tianjin")["department"] == "区体育局"
    kept = custody.ok("GET", f"/v1/merchants/{before['id']}", custody.operator)
    assert (kept["department"], kept["department_pending"]) == ("区市场监管局", True)


def test_designation_and_publication_retried_with_one_idempotency_key_write_once(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    tag = custody.rng.randrange(10**6)
    industry = f"密室逃脱{tag}"
    file(custody, industry)
    writes = {"/v1/industries/designations": {
        "jurisdiction": "beijing", "industry": industry, "department": "区文旅体局",
        "reason": "区政府指定"},
        "/v1/department-maps": {"jurisdiction": "beijing", "pending_department": "区市监局",
                                "departments": {"餐饮": "区商务局"}}}
    for path, body in writes.items():
        headers = {**custody.operator, "Idempotency-Key": f"once-{path}-{tag}"}
        first = app_client.post(path, headers=headers, json=body)
        assert first.status_code == 201, first.text
        with nothing_written(app_client, engine, MAP_TABLES):
            again = app_client.post(path, headers=headers, json=body)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()


def test_refusals_name_the_field_and_write_nothing(custody: Driver, app_client: TestClient,
                                                   engine: Engine) -> None:
    op = custody.operator
    regulator = bearer(issue_key(engine, Role.regulator))
    merchant = custody.merchant_key(file(custody, "餐饮")["id"])
    good_map = {"jurisdiction": "beijing", "pending_department": "区市监局",
                "departments": {"餐饮": "区商务局"}}
    designation = {"jurisdiction": "beijing", "industry": "餐饮", "department": "区商务局",
                   "reason": "区政府指定"}
    refused: list[tuple[str, Headers, dict[str, Any], int, str | None]] = [
        ("/v1/department-maps", regulator, good_map, 403, None),
        ("/v1/department-maps", merchant, good_map, 403, None),
        ("/v1/industries/designations", regulator, designation, 403, None),
        ("/v1/department-maps", op, {**good_map, "departments": {"餐饮": " "}}, 422,
         "departments.餐饮"),
        ("/v1/department-maps", op, {**good_map, "pending_department": ""}, 422,
         "pending_department"),
        ("/v1/industries/designations", op, {**designation, "jurisdiction": "atlantis"}, 404,
         "jurisdiction"),
        ("/v1/industries/designations", op, {**designation, "reason": " "}, 422, "reason"),
        # already the industry's department: nothing to designate
        ("/v1/industries/designations", op, designation, 409, "department"),
    ]
    with nothing_written(app_client, engine, MAP_TABLES):
        for path, key, body, status, field in refused:
            response = app_client.post(path, headers=key, json=body)
            assert_problem(response, status, field=field)
        register_bank(engine, BANK)
        unmapped = app_client.post("/v1/merchants", headers=op, json={
            "name": "无图商户", "industry": "餐饮", "credit_code": credit_code(custody.rng),
            "bank_id": BANK, "custody_account": "0399999999999", "jurisdiction": "atlantis"})
    assert_problem(unmapped, 404, field="jurisdiction")


def test_regulators_read_the_maps_and_merchants_do_not(custody: Driver,
                                                       app_client: TestClient,
                                                       engine: Engine) -> None:
    street = bearer(app_client.post("/v1/keys", headers=custody.operator, json={
        "role": "regulator", "street": "望京街道"}).json()["key"])
    jurisdictions = {m["jurisdiction"] for m in every_page(app_client, "/v1/department-maps",
                                                           street, 1)}
    assert {"beijing", "tianjin"} <= jurisdictions
    merchant = custody.merchant_key(file(custody, "餐饮")["id"])
    assert_problem(app_client.get("/v1/department-maps", headers=merchant), 403, "forbidden")
