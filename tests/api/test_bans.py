"""Bans and the blacklist (黑名单, 市场禁入; seed 003): listing and lifting, the screens of
filing, amendments and sales, the churn flag of a premises, a run-away merchant's people
listed automatically, and the export."""

from __future__ import annotations

import csv
import io
import random
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ledger.auth import Role
from ledger.service import IssueKey
from ledger.supervision.register import premises_of
from tests.support.custody import credit_code, id_number
from tests.support.db import (
    issue_key,
    journal_payloads,
    nothing_written,
    pg_error,
    rolled_back,
    rows,
    run_command,
)
from tests.support.driver import Driver
from tests.support.http import Headers, acted_by, assert_problem, bearer

rng = random.Random(18)
# Its own addresses: the module's database is shared by its tests, and the churn counts every
# merchant that ever arrived at a premises.
_street = iter(range(1, 10_000))


def address() -> str:
    return f"北京市朝阳区望京街{next(_street)}号"


def person(role: str = "legal_representative") -> dict[str, str]:
    return {"role": role, "id_number": id_number(rng)}


def ban(custody: Driver, headers: Headers | None = None, status: int = 201,
        **body: Any) -> dict[str, Any]:
    body.setdefault("reason", "卷款跑路")
    body.setdefault("source", "法院")
    return dict(custody.ok("POST", "/v1/bans", headers or custody.operator, body, status))


def district(custody: Driver) -> Headers:
    return bearer(issue_key(custody.engine, Role.regulator))


def test_a_banned_officers_new_merchant_is_refused_at_filing_naming_the_field(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    officer = person("director")
    listed = ban(custody, district(custody), kind="person", id_number=officer["id_number"],
                 reason="卷款跑路、查无下落", source="市场监管局")
    assert listed["kind"] == "person" and len(listed["subject"]) == 64
    assert listed["active"] is True
    body = {"name": "新店", "industry": "体育健身", "credit_code": credit_code(rng),
            "bank_id": "ICBC-BJ", "custody_account": "0212345678901",
            "people": [person(), officer]}
    custody.file("餐饮")  # the bank is registered
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/merchants", headers=custody.operator, json=body)
    problem = assert_problem(response, 422, "banned", field="people[1].id_number",
                             detail_has="卷款跑路、查无下落")
    assert "市场监管局" in problem["detail"] and officer["id_number"] not in problem["detail"]


def test_a_banned_premises_new_operator_is_refused_though_it_writes_the_address_otherwise(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    written = address()
    ban(custody, kind="premises", address=written, reason="反复更换经营者逃避兑付")
    other_way = "　".join(written[:6]) + written[6:].replace("号", " 号").translate(
        str.maketrans("0123456789", "０１２３４５６７８９"))
    assert other_way != written and premises_of(other_way) == premises_of(written)
    custody.file("餐饮")
    body = {"name": "又一家", "industry": "美容美发", "credit_code": credit_code(rng),
            "bank_id": "ICBC-BJ", "custody_account": "0212345678902", "address": other_way,
            "people": [person()]}
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/merchants", headers=custody.operator, json=body)
    assert_problem(response, 422, "banned", field="address", detail_has="反复更换经营者")


def test_an_amendment_adding_a_banned_person_is_refused_and_one_removing_them_is_not(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    first = person()
    m = custody.file("美容美发", address=address(), people=[first])
    banned = person("manager")
    ban(custody, kind="person", id_number=banned["id_number"])
    path = f"/v1/merchants/{m['id']}/amendments"
    with nothing_written(app_client, engine):
        response = app_client.post(path, headers=custody.operator, json={
            "reason": "新聘经理", "people": [first, person("director"), banned]})
    assert_problem(response, 422, "banned", field="people[2].id_number")
    moved = address()
    ban(custody, kind="premises", address=moved)
    response = app_client.post(path, headers=custody.operator,
                               json={"reason": "搬迁", "address": moved})
    assert_problem(response, 422, "banned", field="address")
    # The person already there (banned after filing) does not block their own removal.
    ban(custody, kind="person", id_number=first["id_number"])
    custody.ok("POST", path, custody.operator, {"reason": "法定代表人变更",
                                                "people": [person()]}, 201)


def test_a_sale_after_the_legal_representative_is_banned_is_refused_until_the_ban_is_lifted(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    representative = person()
    m = custody.file("体育健身", address=address(), people=[representative])
    key = custody.merchant_key(m["id"])
    product = custody.product(m["id"], key, kind="stored_value", price_fen=10_000,
                             validity_months=3)
    custody.sell(product["id"], key)  # before the ban: sold (and its subjects now memoised)
    regulator = district(custody)
    listed = ban(custody, regulator, kind="person", id_number=representative["id_number"],
                 reason="失信被执行人", source="法院")
    sale = {"product_id": product["id"], "consumer": {"phone": custody.next_phone()},
            "named": True}
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/cards", headers=key, json=sale)
    problem = assert_problem(response, 422, "banned", field="product_id",
                             detail_has="失信被执行人")
    assert "legal_representative" in problem["detail"] and "法院" in problem["detail"]
    lifted = custody.ok("POST", f"/v1/bans/{listed['id']}/lift", regulator,
                        {"reason": "已履行判决"})
    assert lifted["ban_id"] == listed["id"]
    custody.sell(product["id"], key)  # let through
    again = app_client.post(f"/v1/bans/{listed['id']}/lift", headers=regulator,
                            json={"reason": "twice"})
    assert_problem(again, 409, field="ban_id")
    seen = custody.ok("GET", f"/v1/bans/{listed['id']}", custody.operator)
    assert seen["active"] is False and seen["lifted"]["reason"] == "已履行判决"
    for kind, wanted in (("ban.listed", listed["journal_seq"]),
                         ("ban.lifted", lifted["journal_seq"])):
        payloads = journal_payloads(engine, kind)
        assert any(p["subject"] == listed["subject"] for p in payloads), kind
        assert acted_by(payloads[-1], "regulator") and wanted > 0


def test_a_ban_with_an_end_date_holds_until_it_and_two_over_the_same_days_are_refused(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    today = date(2026, 12, 8)
    custody.set_today(today)
    try:
        subject = person()
        m = custody.file("餐饮", people=[subject])
        key = custody.merchant_key(m["id"])
        product = custody.product(m["id"], key, kind="stored_value", price_fen=1_000,
                                  validity_months=3)
        body = {"kind": "person", "id_number": subject["id_number"], "reason": "限期禁入",
                "source": "法院", "starts_on": today.isoformat(),
                "ends_on": (today + timedelta(days=30)).isoformat()}
        ban(custody, **body)

        def sale() -> Any:
            return app_client.post("/v1/cards", headers=key, json={
                "product_id": product["id"], "consumer": {"phone": custody.next_phone()},
                "named": True})

        assert_problem(sale(), 422, "banned", field="product_id", detail_has="限期禁入")
        overlapping = {**body, "starts_on": (today + timedelta(days=10)).isoformat(),
                       "ends_on": None}
        with nothing_written(app_client, engine):
            response = app_client.post("/v1/bans", headers=custody.operator, json=overlapping)
        assert_problem(response, 422, field="id_number", detail_has="lift it first")
        backwards = {**body, "ends_on": body["starts_on"], "id_number": id_number(rng)}
        assert_problem(app_client.post("/v1/bans", headers=custody.operator, json=backwards),
                       422, field="ends_on")
        custody.set_today(today + timedelta(days=30))  # its end: the first day it no longer holds
        assert sale().status_code == 201
        later = ban(custody, **{**body, "starts_on": (today + timedelta(days=40)).isoformat(),
                                "ends_on": None, "reason": "再次禁入"})
        assert later["active"] is False  # not yet in force
        assert sale().status_code == 201
        custody.set_today(today + timedelta(days=40))
        assert_problem(sale(), 422, "banned", field="product_id", detail_has="再次禁入")
    finally:
        custody.set_today(date.today())


def test_the_database_refuses_a_second_ban_in_force_and_a_person_that_is_no_pseudonym(
        custody: Driver, engine: Engine) -> None:
    listed = ban(custody, kind="person", id_number=id_number(rng))
    insert = text("INSERT INTO bans (id, kind, subject, reason, source, starts_on, listed_by) "
                  "VALUES (:seq, 'person', :s, 'r', 's', CURRENT_DATE, :k)")
    for subject, pgcode in ((listed["subject"], "23505"), ("not-hex", "23514")):
        with rolled_back(engine) as conn:
            seq = conn.execute(text("SELECT max(seq) FROM journal_entries")).scalar_one()
            key_id = conn.execute(text("SELECT listed_by FROM bans WHERE id = :i"),
                                  {"i": listed["id"]}).scalar_one()
            with pytest.raises(DBAPIError) as caught:
                conn.execute(insert, {"seq": seq, "s": subject, "k": key_id})
            assert pg_error(caught)[0] == pgcode, pg_error(caught)


def test_a_regulator_scoped_to_a_department_or_a_merchant_key_cannot_list_a_ban(
        custody: Driver, app_client: TestClient) -> None:
    m = custody.file("餐饮")
    body = {"kind": "premises", "address": address(), "reason": "x", "source": "y"}
    scoped = bearer(str(run_command(custody.engine, IssueKey(Role.regulator,
                                                             department="区商务局"))["key"]))
    for key in (custody.merchant_key(m["id"]), scoped):
        assert_problem(app_client.post("/v1/bans", headers=key, json=body), 403)
    assert custody.ok("GET", "/v1/bans", scoped)["items"] is not None  # it reads the list


def test_the_churn_flag_is_raised_at_the_threshold_and_not_before(
        custody: Driver, app_client: TestClient, engine: Engine) -> None:
    shop = address()
    first = custody.file("美容美发", address=shop, people=[person()])
    second = custody.file("美容美发", address=shop.replace("号", " 号"), people=[person()])
    assert first["premises_flag"] is None and second["premises_flag"] is None
    view = custody.ok("GET", f"/v1/premises/{shop}", custody.operator)
    assert view["flag"] is None and len(view["arrivals"]) == 2
    before = len(journal_payloads(engine, "premises.flagged"))
    # The third operator arrives by an amendment: a move onto the premises.
    third = custody.file("美容美发", address=address(), people=[person()])
    moved = custody.ok("POST", f"/v1/merchants/{third['id']}/amendments", custody.operator,
                       {"reason": "搬迁", "address": shop}, 201)
    flag = moved["premises_flag"]
    assert flag is not None and flag["premises"] == premises_of(shop)
    assert set(flag["merchants"]) == {first["id"], second["id"], third["id"]}
    assert flag["rule"]["merchants_min"] == 3 and flag["rule"]["window_days"] == 365
    flagged = journal_payloads(engine, "premises.flagged")
    assert len(flagged) == before + 1 and flagged[-1]["premises"] == premises_of(shop)
    view = custody.ok("GET", f"/v1/premises/{shop}", custody.operator)
    assert view["flag"]["journal_seq"] == flag["journal_seq"]
    assert [a["merchant_id"] for a in view["arrivals"]] == [third["id"], second["id"],
                                                           first["id"]]
    fourth = custody.file("美容美发", address=shop, people=[person()])
    assert fourth["premises_flag"] is None  # flagged once
    assert len(journal_payloads(engine, "premises.flagged")) == before + 1


def test_legal_representatives_changing_at_one_merchant_flag_its_premises(
        custody: Driver) -> None:
    shop = address()
    m = custody.file("体育健身", address=shop, people=[person()])
    path = f"/v1/merchants/{m['id']}/amendments"
    second = custody.ok("POST", path, custody.operator,
                        {"reason": "变更", "people": [person()]}, 201)
    assert second["premises_flag"] is None
    third = custody.ok("POST", path, custody.operator,
                       {"reason": "又变更", "people": [person()]}, 201)
    assert third["premises_flag"] is not None
    assert len(third["premises_flag"]["legal_representatives"]) == 3


def test_arrivals_outside_the_window_do_not_count(custody: Driver) -> None:
    shop = address()
    start = date(2026, 1, 1)
    try:
        custody.set_today(start)
        custody.file("餐饮", address=shop, people=[person()])
        custody.set_today(start + timedelta(days=200))
        custody.file("餐饮", address=shop, people=[person()])
        custody.set_today(start + timedelta(days=366))  # the first has left the window
        assert custody.file("餐饮", address=shop, people=[person()])["premises_flag"] is None
        custody.set_today(start + timedelta(days=400))
        assert custody.file("餐饮", address=shop, people=[person()])["premises_flag"]
    finally:
        custody.set_today(date.today())


def test_a_closed_merchants_people_are_listed_automatically(
        custody: Driver, engine: Engine) -> None:
    people = [person(), person("director"), person("supervisor")]
    m = custody.file("体育健身", address=address(), people=people)
    custody.ok("POST", f"/v1/merchants/{m['id']}/freeze", custody.operator, {"reason": "跑路"})
    custody.ok("POST", f"/v1/merchants/{m['id']}/close", custody.operator)
    listed = custody.ok("GET", f"/v1/bans?merchant_id={m['id']}", custody.operator)["items"]
    assert sorted(b["subject"] for b in listed) == sorted(p["person_id"] for p in m["people"])
    assert {b["source"] for b in listed} == {"platform: 关门跑路"}
    assert all(b["active"] and b["merchant_id"] == m["id"] for b in listed)
    payloads = [p for p in journal_payloads(engine, "ban.listed")
                if p["merchant_id"] == m["id"]]
    assert len(payloads) == 3 and all(acted_by(p, "operator") for p in payloads)
    # A department key sees the bans, not the merchant of another department they came from.
    commerce = bearer(str(run_command(custody.engine, IssueKey(Role.regulator,
                                                               department="区商务局"))["key"]))
    assert custody.ok("GET", f"/v1/bans?merchant_id={m['id']}", commerce)["items"] == []
    seen = custody.ok("GET", f"/v1/bans/{listed[0]['id']}", commerce)
    assert seen["subject"] == listed[0]["subject"] and seen["merchant_id"] is None
    # The director, filed again elsewhere, is refused.
    response = custody.client.post("/v1/merchants", headers=custody.operator, json={
        "name": "换个马甲", "industry": "体育健身", "credit_code": credit_code(rng),
        "bank_id": "ICBC-BJ", "custody_account": "0212345678903",
        "people": [people[1]]})
    assert_problem(response, 422, "banned", field="people[0].id_number",
                   detail_has="关门跑路")


def test_the_listing_pages_and_filters_and_the_csv_holds_no_identity_number(
        custody: Driver, app_client: TestClient) -> None:
    numbers = [id_number(rng) for _ in range(3)]
    for number in numbers:
        ban(custody, kind="person", id_number=number)
    ban(custody, kind="premises", address=address())
    regulator = district(custody)
    persons = custody.ok("GET", "/v1/bans?kind=person&limit=2", regulator)
    assert len(persons["items"]) == 2 and persons["next_after"] is not None
    assert all(b["kind"] == "person" for b in persons["items"])
    active = custody.ok("GET", "/v1/bans?active=true&kind=premises", regulator)["items"]
    assert active and all(b["active"] and b["kind"] == "premises" for b in active)
    response = app_client.get("/v1/bans.csv", headers=regulator)
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/csv")
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0][:3] == ["id", "kind", "subject"] and len(table) >= 5
    assert not any(n in response.text or n.lower() in response.text for n in numbers)
    every = rows(custody.engine, "SELECT subject FROM bans")
    assert {r["subject"] for r in every} <= {row[2] for row in table[1:]}
    merchant = custody.file("餐饮")
    refused = app_client.get("/v1/bans.csv", headers=custody.merchant_key(merchant["id"]))
    assert_problem(refused, 403)
