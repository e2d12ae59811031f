"""Every department's complaint figures in one answer (GET /v1/complaints/stats/departments,
the dashboard's complaints panel): one row per department in the key's scope, each exactly
what GET /v1/complaints/stats answers for that department, with hand-computed rates."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer

SPORTS, DINING = "体育健身", "餐饮"  # seed 000: 区文旅体局, 区商务局
CULTURE, COMMERCE, MARKET = "区文旅体局", "区商务局", "区市监局"
MON = date(2026, 3, 2)  # a Monday
WINDOW = {"from": "2026-03-01", "to": "2026-03-31"}
streets = itertools.count()


def regulator(client: TestClient, operator: Headers, **scope: str) -> Headers:
    response = client.post("/v1/keys", headers=operator, json={"role": "regulator", **scope})
    assert response.status_code == 201, response.text
    return bearer(response.json()["key"])


def intake(custody: Driver, operator: Headers, merchant_id: str, received: str,
           **body: Any) -> Any:
    order = {"channel": "12345", "received_at": received, "merchant_id": merchant_id,
             "category": "退费纠纷", "amount_fen": 50_000, **body}
    return custody.ok("POST", "/v1/complaints", operator, order, 201)


def step(custody: Driver, key: Headers, complaint_id: int, on: date, name: str,
         **body: Any) -> None:
    custody.set_today(on)
    custody.ok("POST", f"/v1/complaints/{complaint_id}/steps", key, {"step": name, **body},
               200)


def test_every_department_of_a_street_gets_its_row_with_exact_rates(
        custody: Driver, operator: Headers, app_client: TestClient) -> None:
    where = f"部门统计街道{next(streets)}"
    gym = custody.file(SPORTS, street=where)
    salon = custody.file(DINING, street=where)
    district = regulator(app_client, operator)
    street_key = regulator(app_client, operator, street=where)
    custody.set_today(MON)
    # 区文旅体局: three orders; one accepted and closed on time, one accepted and left open
    # past its closure deadline (23 March), one never accepted.
    done = intake(custody, operator, gym["id"], "2026-03-02T09:00:00", external_id=f"{where}-1")
    late = intake(custody, operator, gym["id"], "2026-03-02T10:00:00", external_id=f"{where}-2")
    intake(custody, operator, gym["id"], "2026-03-02T11:00:00", channel="direct")
    step(custody, operator, done["id"], MON, "accept")
    step(custody, custody.merchant_key(gym["id"]), done["id"], MON + timedelta(days=2),
         "respond", note="已退费")
    step(custody, operator, done["id"], MON + timedelta(days=4), "resolve")
    step(custody, operator, late["id"], MON + timedelta(days=1), "accept")
    # 区商务局 sends its only order back; the district re-routes it to 区市监局.
    order = intake(custody, operator, salon["id"], "2026-03-03T09:00:00",
                   external_id=f"{where}-3")
    step(custody, operator, order["id"], MON + timedelta(days=1), "return", note="非本部门")
    step(custody, district, order["id"], MON + timedelta(days=2), "reroute",
         department=MARKET, note="改派")

    answer = custody.ok("GET", "/v1/complaints/stats/departments", street_key,
                        params=WINDOW)
    assert (answer["street"], answer["from"], answer["to"], answer["as_of"]) == (
        where, "2026-03-01", "2026-03-31", "2026-03-31")
    rows = {row["department"]: row for row in answer["items"]}
    assert list(rows) == sorted([CULTURE, COMMERCE, MARKET])
    culture = rows[CULTURE]
    assert culture["received"] == 3
    assert culture["acceptance_rate"] == {"numerator": 2, "denominator": 3, "rate_bp": 6666}
    # Due by 31 March: the one closed, and the two still open past 23 March.
    assert culture["on_time_closure_rate"] == {"numerator": 1, "denominator": 3,
                                               "rate_bp": 3333}
    assert culture["register"] == {"routed": {"received": 2, "open": 1},
                                   "direct": {"received": 1, "open": 1}}
    assert [b["open"] for b in culture["open_by_age_days"]] == [0, 0, 2, 0]
    assert (rows[COMMERCE]["received"], rows[COMMERCE]["returned"],
            rows[COMMERCE]["rerouted_away"]) == (0, 1, 1)
    assert rows[COMMERCE]["acceptance_rate"] == {"numerator": 0, "denominator": 0,
                                                 "rate_bp": None}
    assert (rows[MARKET]["received"], rows[MARKET]["rerouted_in"]) == (1, 1)
    # Each row is what the one-department figures answer, for the same street and window.
    for name, row in rows.items():
        one = custody.ok("GET", "/v1/complaints/stats", street_key,
                         params={**WINDOW, "department": name})
        assert {k: v for k, v in one.items() if k not in ("from", "to", "as_of", "street")} \
            == row
    # Without a window: the 90 days to today.
    custody.set_today(date(2026, 3, 31))
    default = custody.ok("GET", "/v1/complaints/stats/departments", street_key)
    assert (default["from"], default["to"], default["as_of"]) == (
        "2026-01-01", "2026-03-31", "2026-03-31")
    assert default["items"] == answer["items"]
    # As of 10 March nothing was due to close but the one closed on the 6th.
    earlier = custody.ok("GET", "/v1/complaints/stats/departments", street_key,
                         params={**WINDOW, "as_of": "2026-03-10"})
    assert {r["department"]: r["on_time_closure_rate"] for r in earlier["items"]}[CULTURE] \
        == {"numerator": 1, "denominator": 1, "rate_bp": 10000}


def test_a_department_key_gets_its_own_row_only_even_with_nothing_received(
        custody: Driver, operator: Headers, app_client: TestClient) -> None:
    where = f"部门统计街道{next(streets)}"
    gym = custody.file(SPORTS, street=where)
    custody.set_today(MON)
    intake(custody, operator, gym["id"], "2026-03-02T09:00:00", external_id=f"{where}-1")
    idle = regulator(app_client, operator, department="区文旅体局-无此部门")
    answer = custody.ok("GET", "/v1/complaints/stats/departments", idle,
                        params=WINDOW)
    assert [(r["department"], r["received"]) for r in answer["items"]] == [
        ("区文旅体局-无此部门", 0)]
    culture = regulator(app_client, operator, department=CULTURE)
    mine = custody.ok("GET", "/v1/complaints/stats/departments", culture, params=WINDOW)
    assert [r["department"] for r in mine["items"]] == [CULTURE]


def test_a_window_ending_before_it_starts_is_refused_and_a_merchant_may_not_ask(
        custody: Driver, operator: Headers, app_client: TestClient) -> None:
    assert_problem(app_client.get("/v1/complaints/stats/departments", headers=operator,
                                  params={"from": "2026-03-31", "to": "2026-03-01"}),
                   422, "invalid_input", "to")
    assert_problem(app_client.get("/v1/complaints/stats/departments", headers=operator,
                                  params={"from": "2999-01-01"}), 422, "invalid_input", "to")
    assert_problem(app_client.get("/v1/complaints/stats/departments", headers=operator,
                                  params={"as_of": "0"}), 422, "invalid_input", "as_of")
    merchant = custody.file(SPORTS)
    mkey = custody.merchant_key(merchant["id"])
    assert_problem(app_client.get("/v1/complaints/stats/departments", headers=mkey,
                                  params=WINDOW), 403, "forbidden")
