"""The register (备案台账): a filing's street, premises and people, and its amendments."""

from __future__ import annotations

import random

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from ledger.auth import Role
from ledger.supervision.register import premises_of
from tests.support.custody import credit_code, id_number
from tests.support.db import issue_key, journal_payloads, nothing_written
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer

rng = random.Random(15)


def people(*roles: str) -> tuple[list[dict[str, str]], list[str]]:
    numbers = [id_number(rng) for _ in roles]
    return [{"role": r, "id_number": n} for r, n in zip(roles, numbers, strict=True)], numbers


def test_a_filing_keeps_street_premises_and_people_as_pseudonyms_only(
        custody: Driver, engine: Engine) -> None:
    given, numbers = people("legal_representative", "director")
    m = custody.file("体育健身", street="望京街道", address="北京市朝阳区 望京街 8 号",
                     people=given)
    assert m["street"] == "望京街道"
    assert m["premises"] == premises_of("北京市朝阳区望京街8号") == "北京市朝阳区望京街8号"
    roles = sorted(p["role"] for p in m["people"])
    assert roles == ["director", "legal_representative"]
    assert all(len(p["person_id"]) == 64 for p in m["people"])
    with engine.connect() as conn:
        journal = b" ".join(bytes(b) for b in conn.execute(
            text("SELECT body FROM journal_entries")).scalars())
    assert not any(n.encode() in journal for n in numbers)  # no identity number is kept
    filed = journal_payloads(engine, "merchant.filed")[-1]
    assert filed["people"] == m["people"] and filed["premises"] == m["premises"]
    seen = custody.ok("GET", f"/v1/merchants/{m['id']}", custody.operator)
    assert seen["people"] == m["people"] and seen["street"] == "望京街道"


def test_the_same_person_is_the_same_pseudonym_at_every_merchant(custody: Driver) -> None:
    given, _ = people("legal_representative")
    a = custody.file("餐饮", people=given)
    b = custody.file("餐饮", people=[{**given[0], "role": "manager"}])
    assert a["people"][0]["person_id"] == b["people"][0]["person_id"]


def test_an_invalid_identity_number_is_422_naming_it_and_files_nothing(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    given, _ = people("legal_representative")
    body = {"name": "x", "industry": "餐饮", "credit_code": "91110105MA01XXXXX0",
            "bank_id": "ICBC-BJ", "custody_account": "1",
            "people": [{"role": "director", "id_number": given[0]["id_number"][:-1] + "0"}]}
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/merchants", headers=custody.operator, json=body)
    assert_problem(response, 422, field="people[0].id_number")


def test_two_legal_representatives_are_refused(custody: Driver, app_client: TestClient,
                                               engine: Engine) -> None:
    given, _ = people("legal_representative", "legal_representative")
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/merchants", headers=custody.operator, json={
            "name": "x", "industry": "餐饮", "credit_code": credit_code(rng),
            "bank_id": "ICBC-BJ", "custody_account": "77", "people": given})
    assert_problem(response, 422, field="people", detail_has="one legal representative")


def test_an_amendment_is_journaled_field_by_field_and_listed(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    first, _ = people("legal_representative")
    m = custody.file("美容美发", street="望京街道", address="望京街1号", people=first)
    second, _ = people("legal_representative")
    answer = custody.ok("POST", f"/v1/merchants/{m['id']}/amendments", custody.operator, {
        "reason": "法定代表人变更", "people": second, "address": "望京街 2 号"}, 201)
    assert set(answer["changes"]) == {"people", "address"}
    assert answer["changes"]["address"] == {"before": "望京街1号", "after": "望京街 2 号"}
    before_id = answer["changes"]["people"]["before"][0]["person_id"]
    after_id = answer["changes"]["people"]["after"][0]["person_id"]
    assert before_id == m["people"][0]["person_id"] and after_id != before_id
    assert answer["registered"]["premises"] == "望京街2号"
    journaled = journal_payloads(engine, "merchant.amended")[-1]
    assert journaled["changes"] == answer["changes"] and journaled["reason"] == "法定代表人变更"
    regulator = bearer(issue_key(engine, Role.regulator))
    listed = custody.ok("GET", f"/v1/merchants/{m['id']}/amendments", regulator)
    assert [a["journal_seq"] for a in listed["items"]] == [answer["journal_seq"]]
    seen = custody.ok("GET", f"/v1/merchants/{m['id']}", regulator)
    assert seen["people"][0]["person_id"] == after_id and seen["address"] == "望京街 2 号"


def test_an_amendment_that_changes_nothing_is_422_and_writes_nothing(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    m = custody.file("美容美发", street="望京街道")
    with nothing_written(app_client, engine):
        response = app_client.post(f"/v1/merchants/{m['id']}/amendments",
                                   headers=custody.operator,
                                   json={"reason": "x", "street": "望京街道"})
    assert_problem(response, 422, field="amendment")


def test_an_amendment_to_another_merchants_custody_account_is_409(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    a = custody.file("餐饮", custody_account="6222 0000 1111")
    b = custody.file("餐饮")
    with nothing_written(app_client, engine):
        response = app_client.post(f"/v1/merchants/{b['id']}/amendments",
                                   headers=custody.operator,
                                   json={"reason": "换户", "custody_account": "622200001111"})
    assert_problem(response, 409, field="custody_account")
    assert a["custody_account"] == "622200001111"


def test_only_the_operator_amends_a_filing(custody: Driver, app_client: TestClient,
                                          engine: Engine) -> None:
    m = custody.file("餐饮")
    keys: list[Headers] = [custody.merchant_key(m["id"]),
                           bearer(issue_key(engine, Role.regulator))]
    for key in keys:
        with nothing_written(app_client, engine):
            response = app_client.post(f"/v1/merchants/{m['id']}/amendments", headers=key,
                                       json={"reason": "x", "street": "别处"})
        assert response.status_code == 403, response.text
