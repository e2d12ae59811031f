"""Complaints (12345 / 12315 工单) through the HTTP API: intake, routing to the merchant's
department and street, 退单 and re-routes, each step journaled with its deadlines (Beijing's
shipped ones: accept within 1 working day, the merchant answers within 3, closure within 15),
a department's rates computed exactly, file imports, scopes, and a hold on a card."""

from __future__ import annotations

import io
import itertools
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from tests.support.db import journal_payloads, nothing_written
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer

SPORTS, DINING = "体育健身", "餐饮"  # seed 000: 区文旅体局, 区商务局
CULTURE, COMMERCE, MARKET = "区文旅体局", "区商务局", "区市监局"
MON = date(2026, 3, 2)  # a Monday
streets = itertools.count()


def street() -> str:
    return f"投诉街道{next(streets)}"


def regulator(client: TestClient, operator: Headers, **scope: str) -> Headers:
    response = client.post("/v1/keys", headers=operator, json={"role": "regulator", **scope})
    assert response.status_code == 201, response.text
    return bearer(response.json()["key"])


def day(d: date) -> str:
    return d.isoformat()


def intake(custody: Driver, key: Headers, merchant_id: str, received: str, status: int = 201,
           **body: Any) -> Any:
    order = {"channel": "12345", "received_at": received, "merchant_id": merchant_id,
             "category": "退费纠纷", "amount_fen": 120_000, **body}
    return custody.ok("POST", "/v1/complaints", key, order, status)


def step(custody: Driver, key: Headers, complaint_id: int, on: date, name: str,
         status: int = 200, **body: Any) -> Any:
    custody.set_today(on)
    return custody.ok("POST", f"/v1/complaints/{complaint_id}/steps", key,
                      {"step": name, **body}, status)


def stats(custody: Driver, key: Headers, **params: str) -> Any:
    response = custody.client.get("/v1/complaints/stats", headers=key, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_complaints_whole_life_crosses_its_deadlines_and_the_department_rates_are_exact(
        custody: Driver, operator: Headers, engine: Engine) -> None:
    where = street()
    m = custody.file(SPORTS, street=where)
    mkey = custody.merchant_key(m["id"])
    custody.set_today(MON + timedelta(days=2))
    a = intake(custody, operator, m["id"], "2026-03-02T09:00:00", external_id="A-1")
    b = intake(custody, operator, m["id"], "2026-03-02T10:00:00+08:00", channel="12315",
               external_id="B-1")
    c = intake(custody, operator, m["id"], "2026-03-04 15:00", channel="direct")
    d = intake(custody, operator, m["id"], "2026-03-02T11:00:00", external_id="D-1")
    # Routed to the merchant's department and street, with Beijing's deadlines.
    assert (a["department"], a["street"], a["status"]) == (CULTURE, where, "received")
    assert (a["received_on"], a["accept_by"], a["close_by"]) == (
        "2026-03-02", "2026-03-03", "2026-03-23")
    assert (c["accept_by"], c["close_by"]) == ("2026-03-05", "2026-03-25")

    step(custody, operator, a["id"], MON + timedelta(days=1), "accept")
    answered = step(custody, mkey, a["id"], MON + timedelta(days=7), "respond",
                    note="已联系消费者")  # Monday 9 March: after its deadline, Friday 6
    assert answered["complaint"]["respond_by"] == "2026-03-06"
    step(custody, operator, a["id"], MON + timedelta(days=8), "mediate")
    done = step(custody, operator, a["id"], MON + timedelta(days=9), "resolve")
    assert (done["to_status"], done["complaint"]["closed_on"]) == ("resolved", "2026-03-11")
    late = step(custody, operator, b["id"], MON + timedelta(days=3), "accept")
    assert late["complaint"]["respond_by"] == "2026-03-10"
    step(custody, operator, d["id"], MON + timedelta(days=1), "accept")
    step(custody, mkey, d["id"], MON + timedelta(days=2), "respond")
    step(custody, operator, d["id"], MON + timedelta(days=3), "escalate")
    step(custody, operator, d["id"], MON + timedelta(days=28), "open_case", note="诉转案")

    # As of 31 March: A closed on time; D closed late (诉转案 on the 30th, due the 23rd);
    # B accepted, never answered, past its closure; C never accepted.
    figures = stats(custody, operator, department=CULTURE, street=where,
                    **{"from": "2026-03-01", "to": "2026-03-31"})
    assert figures["received"] == 4
    assert figures["acceptance_rate"] == {"numerator": 3, "denominator": 4, "rate_bp": 7500}
    assert figures["on_time_closure_rate"] == {"numerator": 1, "denominator": 4,
                                               "rate_bp": 2500}
    assert figures["overdue"] == 2
    assert figures["open_by_age_days"] == [{"bucket": "0-1", "open": 0},
                                           {"bucket": "2-7", "open": 0},
                                           {"bucket": "8-30", "open": 2},
                                           {"bucket": "31+", "open": 0}]
    assert figures["register"] == {"routed": {"received": 3, "open": 1},
                                   "direct": {"received": 1, "open": 1}}
    # As of 10 March: nothing was due to close yet; only C had crossed a deadline.
    earlier = stats(custody, operator, department=CULTURE, street=where, as_of="2026-03-10",
                    **{"from": "2026-03-01", "to": "2026-03-31"})
    assert earlier["acceptance_rate"] == {"numerator": 3, "denominator": 4, "rate_bp": 7500}
    assert earlier["on_time_closure_rate"] == {"numerator": 0, "denominator": 0,
                                               "rate_bp": None}
    assert earlier["overdue"] == 1

    overdue = custody.ok("GET", "/v1/complaints", operator,
                         params={"street": where, "overdue_as_of": "2026-03-31"})["items"]
    assert {(i["id"], tuple(i["overdue"])) for i in overdue} == {
        (b["id"], ("merchant_response", "closure")), (c["id"], ("acceptance", "closure"))}
    # Each step journaled and attributed; the merchant's count in its exposure.
    accepted = [p for p in journal_payloads(engine, "complaint.accepted")
                if p["complaint_id"] == a["id"]]
    assert accepted[0]["actor"]["role"] == "operator"
    assert [p["actor"]["role"] for p in journal_payloads(engine, "complaint.merchant_responded")
            if p["complaint_id"] == a["id"]] == ["merchant"]
    view = custody.ok("GET", f"/v1/merchants/{m['id']}", operator)
    assert view["exposure"]["complaint_count"] == 4
    # The list pages by id and filters by status, department, merchant.
    first = custody.ok("GET", "/v1/complaints", operator, params={"street": where, "limit": 2})
    rest = custody.ok("GET", "/v1/complaints", operator, params={
        "street": where, "after": first["next_after"]})
    assert [i["id"] for i in first["items"] + rest["items"]] == sorted(
        o["id"] for o in (a, b, c, d))
    assert rest["next_after"] is None
    resolved = custody.ok("GET", "/v1/complaints", operator, params={
        "street": where, "status": "resolved", "department": CULTURE, "merchant_id": m["id"]})
    assert [i["id"] for i in resolved["items"]] == [a["id"]]
    assert custody.ok("GET", "/v1/complaints", operator, params={
        "street": where, "department": COMMERCE})["items"] == []
    detail = custody.ok("GET", f"/v1/complaints/{a['id']}", operator)
    assert [s["step"] for s in detail["steps"]] == ["accept", "respond", "mediate", "resolve"]


def test_a_returned_order_is_rerouted_and_both_are_counted_per_department(
        custody: Driver, operator: Headers, app_client: TestClient) -> None:
    where = street()
    m = custody.file(DINING, street=where)
    commerce = regulator(app_client, operator, department=COMMERCE)
    culture = regulator(app_client, operator, department=CULTURE)
    district = regulator(app_client, operator)
    custody.set_today(MON)
    order = intake(custody, operator, m["id"], "2026-03-02T09:00:00", external_id="R-1")
    assert order["department"] == COMMERCE
    path = f"/v1/complaints/{order['id']}/steps"
    # Another department cannot send it back (it is not its own: missing); a reason is due.
    assert_problem(app_client.post(path, headers=culture, json={"step": "return",
                                                                "note": "非本部门"}),
                   404, "not_found", "complaint_id")
    assert_problem(app_client.post(path, headers=commerce, json={"step": "return"}),
                   422, "invalid_input", "note")
    sent_back = step(custody, commerce, order["id"], MON, "return", note="属区市监局职责")
    assert (sent_back["to_status"], sent_back["department"]) == ("returned", COMMERCE)
    # Only the operator or a district key re-routes.
    assert_problem(app_client.post(path, headers=commerce, json={
        "step": "reroute", "department": MARKET, "note": "改派"}), 403, "forbidden")
    moved = step(custody, district, order["id"], MON + timedelta(days=1), "reroute",
                 department=MARKET, note="改派区市监局")
    assert (moved["to_status"], moved["department"], moved["from_department"]) == (
        "received", MARKET, COMMERCE)
    assert moved["complaint"]["accept_by"] == "2026-03-04"  # a working day from the re-route
    assert_problem(app_client.get(f"/v1/complaints/{order['id']}", headers=commerce),
                   404, "not_found", "complaint_id")
    window = {"from": "2026-03-01", "to": "2026-03-31", "street": where}
    left = stats(custody, operator, department=COMMERCE, **window)
    got = stats(custody, operator, department=MARKET, **window)
    assert (left["received"], left["returned"], left["rerouted_away"]) == (0, 1, 1)
    assert (got["received"], got["returned"], got["rerouted_in"]) == (1, 0, 1)
    assert stats(custody, commerce, **window)["returned"] == 1  # its own, without asking
    assert_problem(app_client.get("/v1/complaints/stats", headers=commerce,
                                  params={**window, "department": MARKET}), 403, "forbidden")


def test_a_file_of_work_orders_records_each_row_names_a_duplicate_and_refuses_a_bad_row(
        custody: Driver, operator: Headers, app_client: TestClient, engine: Engine) -> None:
    where = street()
    m = custody.file(SPORTS, street=where)
    with engine.connect() as conn:
        code = conn.execute(text("SELECT credit_code FROM merchants WHERE id = :m"),
                            {"m": m["id"]}).scalar_one()
    custody.set_today(MON + timedelta(days=1))
    csv_text = (
        "渠道,工单编号,受理时间,统一社会信用代码,诉求类别,涉及金额(分),来电号码\n"
        f"12345,F-{where}-1,2026-03-02 09:00,{code},退费纠纷,50000,13800000001\n"
        f"12345,F-{where}-1,2026-03-02 09:05,{code},退费纠纷,50000,13800000001\n"
        f"12315,F-{where}-2,2026-03-02 10:00,{code},虚假宣传,12.5,\n"
        f"12345,F-{where}-3,2026-03-02 11:00,91110000000000000X,退费纠纷,100,\n"
        f"直接受理,F-{where}-4,2026-03-02 12:00,{code},服务质量,0,138 0000 0002\n")
    sent = app_client.post("/v1/complaints/import", headers=operator,
                           params={"filename": "工单.csv"}, content=csv_text.encode())
    assert sent.status_code == 201, sent.text
    answer = sent.json()
    assert answer["rows"] == 5
    assert [r["row"] for r in answer["recorded"]] == [2, 6]
    assert [(r["row"], r["complaint_id"]) for r in answer["duplicates"]] == [
        (3, answer["recorded"][0]["complaint_id"])]
    assert [(r["row"], r["field"]) for r in answer["refused"]] == [(4, "amount_fen"),
                                                                     (5, "credit_code")]
    listed = custody.ok("GET", "/v1/complaints", operator, params={"street": where})["items"]
    assert [i["channel"] for i in listed] == ["12345", "direct"]
    assert all(i["consumer_id"] and "1380" not in i["consumer_id"] for i in listed)
    # Sent again: every order is named a duplicate, nothing recorded twice.
    again = app_client.post("/v1/complaints/import", headers=operator, content=csv_text.encode())
    assert again.status_code == 201, again.text
    assert (len(again.json()["recorded"]), len(again.json()["duplicates"])) == (0, 3)
    # A file with nothing importable is refused whole, each row named, nothing written.
    bad = (f"channel,external_id,received_at,credit_code,category\n"
           f"99999,X,2026-03-02,{code},x\n12345,,2026-03-02,{code},x\n")
    with nothing_written(app_client, engine):
        refused = app_client.post("/v1/complaints/import", headers=operator,
                                  content=bad.encode())
    body = assert_problem(refused, 422, "invalid_input", "file", detail_has="row 2 (channel)")
    assert "row 3 (external_id)" in body["detail"]


def test_a_workbook_of_work_orders_is_read_like_a_csv(
        custody: Driver, operator: Headers, app_client: TestClient) -> None:
    import openpyxl

    where = street()
    m = custody.file(SPORTS, street=where)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["channel", "external_id", "received_at", "merchant_id", "category",
                  "amount_fen"])
    sheet.append(["12315", f"X-{where}", "2026-03-02 09:00", m["id"], "退费纠纷", 30000])
    sheet.append(["12315", f"Y-{where}", "yesterday", m["id"], "退费纠纷", 1])
    out = io.BytesIO()
    book.save(out)
    custody.set_today(MON + timedelta(days=1))
    sent = app_client.post("/v1/complaints/import", headers=operator, content=out.getvalue())
    assert sent.status_code == 201, sent.text
    assert [r["row"] for r in sent.json()["recorded"]] == [2]
    assert sent.json()["refused"] == [{"row": 3, "field": "received_at",
                                      "reason": sent.json()["refused"][0]["reason"]}]


def test_the_merchant_answers_only_its_own_complaints(
        custody: Driver, operator: Headers, app_client: TestClient) -> None:
    own, other = custody.file(SPORTS, street=street()), custody.file(SPORTS, street=street())
    own_key, other_key = custody.merchant_key(own["id"]), custody.merchant_key(other["id"])
    custody.set_today(MON)
    order = intake(custody, operator, own["id"], "2026-03-02T09:00:00",
                   external_id=f"M-{own['id']}")
    path = f"/v1/complaints/{order['id']}/steps"
    assert_problem(app_client.post(path, headers=own_key, json={"step": "respond"}),
                   409, "conflict", "step")  # not accepted yet
    step(custody, operator, order["id"], MON, "accept")
    assert_problem(app_client.post(path, headers=other_key, json={"step": "respond"}),
                   404, "not_found", "complaint_id")
    assert_problem(app_client.get(f"/v1/complaints/{order['id']}", headers=other_key),
                   404, "not_found", "complaint_id")
    assert_problem(app_client.post(path, headers=own_key, json={"step": "resolve"}),
                   403, "forbidden")
    assert custody.ok("GET", "/v1/complaints", other_key)["items"] == []
    step(custody, own_key, order["id"], MON, "respond", note="同意退费")
    mine = custody.ok("GET", "/v1/complaints", own_key)["items"]
    assert [(i["id"], i["status"]) for i in mine] == [(order["id"], "merchant_responded")]


def test_a_department_key_sees_and_handles_only_its_own_departments_complaints(
        custody: Driver, operator: Headers, app_client: TestClient, engine: Engine) -> None:
    where = street()
    gym, diner = custody.file(SPORTS, street=where), custody.file(DINING, street=where)
    culture = regulator(app_client, operator, department=CULTURE)
    commerce = regulator(app_client, operator, department=COMMERCE)
    custody.set_today(MON)
    mine = intake(custody, culture, gym["id"], "2026-03-02T09:00:00",
                  external_id=f"S-{gym['id']}")
    with nothing_written(app_client, engine):
        refused = app_client.post("/v1/complaints", headers=culture, json={
            "channel": "12345", "external_id": f"S-{diner['id']}", "category": "x",
            "received_at": "2026-03-02T09:00:00", "merchant_id": diner["id"]})
    assert_problem(refused, 404, "not_found", "merchant_id")
    theirs = intake(custody, operator, diner["id"], "2026-03-02T09:00:00",
                    external_id=f"S-{diner['id']}")
    listed = custody.ok("GET", "/v1/complaints", culture, params={"street": where})["items"]
    assert [i["id"] for i in listed] == [mine["id"]]
    assert_problem(app_client.post(f"/v1/complaints/{theirs['id']}/steps", headers=culture,
                                   json={"step": "accept"}), 404, "not_found", "complaint_id")
    accepted = step(custody, culture, mine["id"], MON, "accept")
    assert accepted["to_status"] == "assigned"
    step(custody, commerce, theirs["id"], MON, "accept")
    actors = [p["actor"] for p in journal_payloads(engine, "complaint.accepted")
              if p["complaint_id"] in (mine["id"], theirs["id"])]
    assert [a.get("department") for a in actors] == [CULTURE, COMMERCE]


def test_a_complaint_holds_its_cards_releases_until_it_is_resolved(
        custody: Driver, operator: Headers, app_client: TestClient, engine: Engine) -> None:
    m = custody.file(SPORTS, street=street())
    mkey = custody.merchant_key(m["id"])
    product = custody.product(m["id"], mkey, kind="sessions", price_fen=60_000, sessions=60,
                              validity_months=3)
    custody.set_today(MON)
    sale = custody.sell(product["id"], mkey)
    other = custody.file(SPORTS, street=street())
    assert_problem(app_client.post("/v1/complaints", headers=operator, json={
        "channel": "direct", "received_at": "2026-03-02T09:00:00", "merchant_id": other["id"],
        "category": "x", "card_id": sale["card_id"], "hold_releases": True}),
        422, "invalid_input", "card_id")
    order = intake(custody, operator, m["id"], "2026-03-02T09:00:00",
                   external_id=f"H-{m['id']}", card_id=sale["card_id"], hold_releases=True)
    assert order["holds_card"] is True
    card = f"/v1/cards/{sale['card_id']}"
    assert custody.ok("GET", card, operator)["disputed"] is True
    [held] = [p for p in journal_payloads(engine, "card.disputed")
              if p.get("complaint_id") == order["id"]]
    assert held["card_id"] == sale["card_id"]
    for name in ("accept", "mediate"):
        step(custody, operator, order["id"], MON, name)
    assert custody.ok("GET", card, operator)["disputed"] is True
    done = step(custody, operator, order["id"], MON + timedelta(days=1), "resolve")
    assert done["complaint"]["holds_card"] is False
    assert custody.ok("GET", card, operator)["disputed"] is False
    assert [p["outcome"] for p in journal_payloads(engine, "card.dispute_resolved")
            if p.get("complaint_id") == order["id"]] == ["merchant"]


def test_a_duplicate_order_and_bad_input_are_refused_by_name_writing_nothing(
        custody: Driver, operator: Headers, app_client: TestClient, engine: Engine) -> None:
    m = custody.file(SPORTS, street=street())
    custody.set_today(MON)
    order = intake(custody, operator, m["id"], "2026-03-02T09:00:00", external_id=f"D-{m['id']}")
    cases = [({"external_id": f"D-{m['id']}"}, 409, "external_id"),
             ({"external_id": None}, 422, "external_id"),
             ({"external_id": "Z-1", "hold_releases": True}, 422, "hold_releases"),
             ({"external_id": "Z-2", "received_at": "2026-03-09T09:00:00"}, 422,
              "received_at"),
             ({"external_id": "Z-3", "phone": "12345"}, 422, "phone")]
    for body, status, field in cases:
        with nothing_written(app_client, engine):
            response = app_client.post("/v1/complaints", headers=operator, json={
                "channel": "12345", "received_at": "2026-03-02T09:00:00",
                "merchant_id": m["id"], "category": "退费纠纷", **body})
        assert_problem(response, status, field=field)
    assert custody.ok("GET", f"/v1/complaints/{order['id']}", operator)["status"] == "received"


def test_the_database_refuses_a_transition_the_life_cycle_does_not_allow(
        custody: Driver, operator: Headers, owner_engine: Engine) -> None:
    m = custody.file(SPORTS, street=street())
    custody.set_today(MON)
    order = intake(custody, operator, m["id"], "2026-03-02T09:00:00", external_id=f"T-{m['id']}")
    with owner_engine.connect() as conn, pytest.raises(
            DBAPIError, match="cannot go from received to resolved"):
        conn.execute(text("UPDATE complaints SET status = 'resolved', closed_on = "
                          "received_on WHERE id = :id"), {"id": order["id"]})


def test_the_migrations_transitions_are_the_life_cycles() -> None:
    import importlib.util
    from pathlib import Path

    from ledger.supervision.complaints import TRANSITIONS

    spec = importlib.util.spec_from_file_location(
        "m0017", Path(__file__).parents[2] / "migrations/versions/0017_complaints.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert {(a, b) for a, b in module.TRANSITIONS} == {(a.value, b.value)
                                                       for a, b in TRANSITIONS}


# -- the rates are a recount of the rows -------------------------------------------------------
STEP_PLANS = st.lists(st.tuples(
    st.integers(0, 9),  # received, days after MON
    st.sampled_from(["12345", "12315", "direct"]),
    st.lists(st.tuples(st.sampled_from(["accept", "respond", "mediate", "escalate", "resolve",
                                        "open_case"]), st.integers(0, 12)), max_size=4)),
    min_size=1, max_size=5)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plans=STEP_PLANS, as_of_days=st.integers(0, 40))
def test_the_rates_numerators_never_exceed_their_denominators_and_equal_a_recount(
        custody: Driver, operator: Headers, plans: list[Any], as_of_days: int) -> None:
    where = street()
    m = custody.file(SPORTS, street=where)
    mkey = custody.merchant_key(m["id"])
    for n, (received, channel, steps) in enumerate(plans):
        on = MON + timedelta(days=received)
        custody.set_today(on)
        order = intake(custody, operator, m["id"], f"{day(on)}T09:00:00", channel=channel,
                       external_id=None if channel == "direct" else f"H-{where}-{n}")
        when = on
        for name, gap in steps:  # a step the life cycle refuses is a 409, and nothing else
            when = when + timedelta(days=gap)
            custody.set_today(when)
            key = mkey if name == "respond" else operator
            response = custody.client.post(f"/v1/complaints/{order['id']}/steps", headers=key,
                                           json={"step": name})
            assert response.status_code in (200, 409), response.text
    as_of = MON + timedelta(days=as_of_days)
    window = {"from": day(MON), "to": day(MON + timedelta(days=9))}
    figures = stats(custody, operator, department=CULTURE, street=where, as_of=day(as_of),
                    **window)
    rows = custody.ok("GET", "/v1/complaints", operator, params={"street": where})["items"]

    def by(value: str | None) -> bool:
        return value is not None and date.fromisoformat(value) <= as_of

    counted = [r for r in rows if date.fromisoformat(r["received_on"]) <= as_of]
    accepted = sum(by(r["accepted_on"]) for r in counted)
    due = [r for r in counted if by(r["closed_on"]) or date.fromisoformat(r["close_by"]) < as_of]
    on_time = sum(by(r["closed_on"]) and r["closed_on"] <= r["close_by"] for r in due)
    for rate in (figures["acceptance_rate"], figures["on_time_closure_rate"]):
        assert 0 <= rate["numerator"] <= rate["denominator"]
    assert figures["acceptance_rate"]["numerator"] == accepted
    assert figures["acceptance_rate"]["denominator"] == len(counted) == figures["received"]
    assert (figures["on_time_closure_rate"]["numerator"],
            figures["on_time_closure_rate"]["denominator"]) == (on_time, len(due))
    assert sum(b["open"] for b in figures["open_by_age_days"]) == sum(
        not by(r["closed_on"]) for r in counted)


def test_deadlines_are_data_stored_and_journaled_per_jurisdiction_version_by_version(
        custody: Driver, operator: Headers, app_client: TestClient, engine: Engine) -> None:
    m = custody.file(SPORTS, street=street())
    custody.set_today(MON)
    intake(custody, operator, m["id"], "2026-03-02T09:00:00", external_id=f"V-{m['id']}")
    stored = custody.ok("GET", "/v1/complaint-deadlines", operator)["items"]
    [beijing] = [d for d in stored if d["jurisdiction"] == "beijing"]  # the shipped, once
    assert (beijing["version"], beijing["deadlines"]) == (1, {
        "acceptance": {"working_days": 1}, "merchant_response": {"working_days": 3},
        "closure": {"working_days": 15}})
    assert beijing["source"].startswith("shipped")
    body = {"jurisdiction": "上海", "acceptance": {"working_days": 7},
            "merchant_response": {"days": 10}, "closure": {"working_days": 45},
            "source": "市场监督管理投诉举报处理暂行办法"}
    first = custody.ok("POST", "/v1/complaint-deadlines", operator, body, 201)
    second = custody.ok("POST", "/v1/complaint-deadlines", operator,
                        {**body, "closure": {"days": 60}}, 201)
    assert (first["version"], second["version"]) == (1, 2)
    assert second["deadlines"]["closure"] == {"days": 60}
    published = [p for p in journal_payloads(engine, "complaint.deadlines_published")
                 if p["jurisdiction"] == "上海"]
    assert [p["version"] for p in published] == [1, 2]
    with nothing_written(app_client, engine):
        both = app_client.post("/v1/complaint-deadlines", headers=operator, json={
            **body, "acceptance": {"working_days": 1, "days": 1}})
    assert_problem(both, 422, "invalid_input", "acceptance")


def test_the_signals_read_complaint_counts_per_merchant_over_a_window(
        custody: Driver, operator: Headers, engine: Engine) -> None:
    from ledger.db.complaint_queries import complaint_counts

    m = custody.file(SPORTS, street=street())
    custody.set_today(MON + timedelta(days=10))
    for n, received in enumerate(("2026-03-02", "2026-03-05", "2026-03-10")):
        intake(custody, operator, m["id"], f"{received}T09:00:00", external_id=f"W-{m['id']}-{n}")
    with engine.connect() as conn:
        assert complaint_counts(conn, date(2026, 3, 1), date(2026, 3, 7), [m["id"]]) == {
            m["id"]: 2}
        assert complaint_counts(conn, date(2026, 3, 8), date(2026, 3, 14), [m["id"]]) == {
            m["id"]: 1}
        assert complaint_counts(conn, date(2026, 4, 1), date(2026, 4, 7), [m["id"]]) == {}
