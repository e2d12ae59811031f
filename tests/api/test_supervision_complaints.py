"""Complaints feed the four checks (查投诉记录): the complaints recorded (12345/12315 and
direct) are counted at the merchant's assessment, raise their signals, turn it yellow and put
the warning in its department's inbox; a surge joined with a sales spike is the run-away
pattern."""

from __future__ import annotations

import random
from datetime import timedelta

from fastapi.testclient import TestClient

from api.context import china_today
from tests.support.custody import id_number
from tests.support.db import journal_payloads
from tests.support.driver import Driver
from tests.support.http import Headers, bearer

rng = random.Random(4)


def regulator(client: TestClient, operator: Headers, **scope: str) -> Headers:
    response = client.post("/v1/keys", headers=operator, json={"role": "regulator", **scope})
    assert response.status_code == 201, response.text
    return bearer(response.json()["key"])


def complain(custody: Driver, merchant_id: str, days_ago: int, number: int) -> None:
    received = (china_today() - timedelta(days=days_ago)).isoformat() + "T10:00:00"
    custody.ok("POST", "/v1/complaints", custody.operator, {
        "channel": "12345", "external_id": f"{merchant_id}-{number}", "category": "退费纠纷",
        "received_at": received, "merchant_id": merchant_id}, 201)


def test_complaints_recorded_raise_their_signals_and_a_warning_in_the_departments_inbox(
        custody: Driver, app_client: TestClient) -> None:
    m = custody.file("美容美发", street="望京街道",
                     people=[{"role": "legal_representative", "id_number": id_number(rng)}])
    quiet = custody.file("美容美发")
    complain(custody, quiet["id"], 3, 0)  # one complaint: below every threshold
    for number in range(6):  # six in the last 30 days: over complaints_max (5), and a surge
        complain(custody, m["id"], number, number)
    commerce = regulator(app_client, custody.operator, department="区商务局")
    assessed = custody.ok("POST", f"/v1/merchants/{m['id']}/assessments", commerce)
    assert {"complaints_many", "complaint_surge"} <= set(assessed["raised"])
    risk = custody.ok("GET", f"/v1/merchants/{m['id']}/risk", commerce)
    many = next(s for s in risk["signals"] if s["kind"] == "complaints_many")
    assert (many["value"], many["threshold"]) == (6, 5)
    assert risk["tier"] == "yellow"
    custody.ok("POST", f"/v1/merchants/{quiet['id']}/assessments", commerce)
    assert custody.ok("GET", f"/v1/merchants/{quiet['id']}/risk", commerce)["tier"] == "blue"
    inbox = custody.ok("GET", "/v1/alerts", commerce, params={"merchant_id": m["id"]})
    assert [a["kind"] for a in inbox["items"]] == ["tier_yellow"]
    changed = [p for p in journal_payloads(custody.engine, "merchant.tier_changed")
               if p["merchant_id"] == m["id"]]
    assert changed[-1]["tier"] == "yellow"
    assert {"complaints_many", "complaint_surge"} <= set(changed[-1]["reasons"])
    # Another department's key sees none of it.
    culture = regulator(app_client, custody.operator, department="区文旅体局")
    assert custody.ok("GET", "/v1/alerts", culture,
                      params={"merchant_id": m["id"]})["items"] == []
