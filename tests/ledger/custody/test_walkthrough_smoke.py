from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.messages import OutboxSender
from ledger.auth import Role
from tests.support.db import issue_key, register_bank
from tests.support.http import bearer, consumer_key


def test_a_card_goes_from_sale_to_release_and_closure(app_client: TestClient, engine: Engine,
                                                      operator: dict[str, str],
                                                      outbox: OutboxSender) -> None:
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    ctx.clock = lambda: date(2026, 11, 2)
    register_bank(engine, "ICBC-BJ")
    r = app_client.post("/v1/merchants", headers=operator, json={
        "name": "朝阳少儿游泳馆", "credit_code": "91110000600037341L", "industry": "体育健身",
        "bank_id": "ICBC-BJ", "custody_account": "0200001234567"})
    assert r.status_code == 201, r.text
    merchant = r.json()
    assert merchant["department"] == "区文旅体局"
    mkey = bearer(issue_key(engine, Role.merchant, merchant["id"]))
    bkey = bearer(issue_key(engine, Role.bank, bank_id="ICBC-BJ"))
    r = app_client.post(f"/v1/merchants/{merchant['id']}/products", headers=mkey, json={
        "kind": "sessions", "name": "10节游泳课", "price_fen": 100_000, "sessions": 10,
        "validity_months": 3})
    assert r.status_code == 201, r.text
    product = r.json()
    r = app_client.post("/v1/cards", headers=mkey, json={
        "product_id": product["id"], "consumer": {"phone": "13800138000"}})
    assert r.status_code == 201, r.text
    card = r.json()
    token = consumer_key(app_client, outbox, "13800138000")
    r = app_client.post(f"/v1/cards/{card['card_id']}/consumptions", headers=mkey,
                        json={"sessions": 3})
    assert r.status_code == 201, r.text
    consumption = r.json()
    assert consumption["status"] == "pending" and consumption["paid_fen"] == 30_000
    r = app_client.post(f"/v1/consumptions/{consumption['consumption_id']}/confirm",
                        headers=token)
    assert r.status_code == 200, r.text
    r = app_client.post(f"/v1/merchants/{merchant['id']}/deposits", headers=bkey,
                        json={"amount_fen": 100_000})
    assert r.status_code == 201, r.text
    r = app_client.post("/v1/releases/run", headers=operator,
                        json={"as_of": (date(2026, 11, 2) + timedelta(days=14)).isoformat()})
    assert r.status_code == 200, r.text
    releases = r.json()["releases"]
    assert [x["amount_fen"] for x in releases] == [27_000]
    r = app_client.post(f"/v1/releases/{releases[0]['release_id']}/resolve", headers=bkey,
                        json={"outcome": "settled"})
    assert r.status_code == 200, r.text
    r = app_client.get(f"/v1/cards/{card['card_id']}", headers=token)
    assert r.status_code == 200, r.text
    assert r.json()["remaining_paid_fen"] == 70_000
    r = app_client.post(f"/v1/merchants/{merchant['id']}/freeze", headers=operator,
                        json={"reason": "关门跑路"})
    assert r.status_code == 200, r.text
    r = app_client.post(f"/v1/merchants/{merchant['id']}/close", headers=operator)
    assert r.status_code == 200, r.text
    assert r.json()["payout_fen"] == 70_000
    r = app_client.get(f"/v1/merchants/{merchant['id']}/payouts.csv", headers=bkey)
    assert r.status_code == 200 and "70000" in r.text
    r = app_client.get(f"/v1/merchants/{merchant['id']}", headers=operator)
    assert r.status_code == 200, r.text
    print(r.json())
