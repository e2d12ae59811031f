"""The public merchant lookup (issue 15 item 8): no key, rate-limited, no personal data."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.context import china_today
from api.ratelimit import RateLimits
from tests.support.custody import credit_code, id_number
from tests.support.driver import Driver
from tests.support.http import assert_problem

rng = random.Random(8)


def test_anyone_finds_a_filed_merchant_by_credit_code_or_name_without_a_key(
        custody: Driver, app_client: TestClient) -> None:
    person = id_number(rng)
    m = custody.file("体育健身", name="查询健身房", street="望京街道", address="望京街 9 号",
                     people=[{"role": "legal_representative", "id_number": person}])
    by_code = app_client.get("/v1/public/merchants", params={"q": m["credit_code"].lower()})
    assert by_code.status_code == 200, by_code.text
    found = by_code.json()
    assert found["filed"] is True and [x["name"] for x in found["matches"]] == ["查询健身房"]
    shown = found["matches"][0]
    assert shown["department"] == m["department"] and shown["status"] == "active"
    assert shown["custody"] == {"bank_id": m["bank_id"], "in_place": True,
                                "bank_confirmed_on": None, "coverage_band": "no_prepaid"}
    assert shown["tier_published"] is True and shown["tier"] == "blue"  # beijing publishes
    assert shown["complaints_90_days"] == 0 and shown["banned"] is False
    by_name = app_client.get("/v1/public/merchants", params={"q": "查询健身"}).json()
    assert m["credit_code"] in {x["credit_code"] for x in by_name["matches"]}
    # Nothing personal, nothing of its books: no people, address, premises, account, id.
    text = by_code.text + app_client.get("/v1/public/merchants", params={"q": "查询"}).text
    for secret in (person, m["people"][0]["person_id"], "望京街", m["custody_account"], m["id"]):
        assert secret not in text


def test_an_unfiled_credit_code_answers_not_filed(app_client: TestClient) -> None:
    answer = app_client.get("/v1/public/merchants", params={"q": credit_code(rng)}).json()
    assert answer == {"filed": False, "matches": [], "more": False}


def test_a_name_with_wildcards_matches_them_literally(custody: Driver,
                                                      app_client: TestClient) -> None:
    custody.file("餐饮", name="百分百_餐厅")
    custody.file("餐饮", name="百分百X餐厅")
    names = [x["name"] for x in app_client.get(
        "/v1/public/merchants", params={"q": "百分百_"}).json()["matches"]]
    assert names == ["百分百_餐厅"]
    assert app_client.get("/v1/public/merchants", params={"q": "%%"}).json()["matches"] == []


@pytest.mark.parametrize("q", ["x", " ", "名" * 51])
def test_a_query_too_short_or_too_long_is_422_naming_q(app_client: TestClient, q: str) -> None:
    assert_problem(app_client.get("/v1/public/merchants", params={"q": q}), 422, field="q")


@pytest.fixture
def strict_client(engine: Engine) -> Iterator[TestClient]:
    app = create_app(engine, rate_limits=RateLimits(lookup_rate_per_s=0.001, lookup_burst=3))
    with TestClient(app) as client:
        yield client


def test_lookups_are_rate_limited_per_address(strict_client: TestClient) -> None:
    answers = [strict_client.get("/v1/public/merchants", params={"q": "任何商户"})
               for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1


def test_a_merchants_recent_complaints_and_a_ban_on_its_people_show(
        custody: Driver, app_client: TestClient) -> None:
    person = id_number(rng)
    m = custody.file("美容美发", name="投诉美发店",
                     people=[{"role": "legal_representative", "id_number": person}])
    today = china_today()
    for number, days_ago in ((1, 0), (2, 89), (3, 90)):  # the last is out of the window
        received = (today - timedelta(days=days_ago)).isoformat() + "T09:00:00"
        custody.ok("POST", "/v1/complaints", custody.operator, {
            "channel": "12345", "external_id": f"LOOKUP-{number}", "category": "退费纠纷",
            "received_at": received, "merchant_id": m["id"]}, 201)
    custody.ok("POST", "/v1/bans", custody.operator, {
        "kind": "person", "id_number": person, "reason": "跑路", "source": "市场监管局"}, 201)
    shown = app_client.get("/v1/public/merchants", params={"q": m["credit_code"]}).json()
    assert shown["matches"][0]["complaints_90_days"] == 2
    assert shown["matches"][0]["banned"] is True
    assert person not in str(shown)
