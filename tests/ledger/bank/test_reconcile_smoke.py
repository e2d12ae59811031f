from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ledger.auth import Role
from tests.support.db import issue_key, register_bank
from tests.support.http import bearer


def test_a_statement_clears_a_sale_and_cross_verifies(app_client: TestClient, engine: Engine,
                                                       operator: dict[str, str]) -> None:
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    ctx.clock = lambda: date(2026, 11, 2)
    register_bank(engine, "B1")
    r = app_client.post("/v1/merchants", headers=operator, json={
        "name": "游泳馆", "credit_code": "91110105MA01XYHW2E", "industry": "体育健身",
        "bank_id": "B1", "custody_account": "6226090000000048"})
    assert r.status_code == 201, r.text
    m = r.json()
    mkey = bearer(issue_key(engine, Role.merchant, m["id"]))
    bkey = bearer(issue_key(engine, Role.bank, bank_id="B1"))
    p = app_client.post(f"/v1/merchants/{m['id']}/products", headers=mkey, json={
        "kind": "sessions", "name": "课", "price_fen": 100_000, "sessions": 10,
        "validity_months": 3}).json()
    sale = app_client.post("/v1/cards", headers=mkey, json={
        "product_id": p["id"], "consumer": {"phone": "13800000000"}}).json()
    ref = f"YFS{sale['journal_seq']:012d}"
    csv = ("account,currency,booking_date,value_date,direction,amount,status,end_to_end_id,"
           "creditor_reference,bank_reference,counterparty_name,counterparty_account,"
           "remittance,reversal\n"
           "6226090000000048,CNY,2026-11-02,,OPBD,0.00,,,,,,,,\n"
           f"6226090000000048,CNY,2026-11-02,2026-11-02,CRDT,1000.00,BOOK,,{ref},BK1,,,,false\n"
           "6226090000000048,CNY,2026-11-02,2026-11-02,CRDT,5.00,BOOK,,NOPE,BK2,,,,false\n"
           "6226090000000048,CNY,2026-11-02,,CLBD,1005.00,,,,,,,,\n")
    r = app_client.post("/v1/banks/B1/statements?filename=day.csv", headers=bkey,
                        content=csv.encode())
    assert r.status_code == 201, r.text
    body = r.json()
    statement = body["statements"][0]
    assert statement["deposits_cleared_fen"] == 100_000
    assert statement["outcome"] == {"deposit": 1, "break": 1}
    assert statement["cross_verification"]["difference_fen"] == 500
    exposure = app_client.get(f"/v1/merchants/{m['id']}", headers=operator).json()["exposure"]
    assert exposure["last_cross_verification"]["difference_fen"] == 500
    assert "custody_balance_differs_from_bank" in exposure["risk_signals"]
    again = app_client.post("/v1/banks/B1/statements?filename=day.csv", headers=bkey,
                            content=csv.encode())
    assert again.status_code == 201 and again.json()["duplicate"] is True
    breaks = app_client.get("/v1/breaks", headers=bkey).json()
    assert breaks["open"] == 1
    assert app_client.get("/v1/banks/B1/instructions", headers=bkey).status_code == 204
    sale2 = app_client.post("/v1/cards", headers=mkey, json={
        "product_id": p["id"], "consumer": {"phone": "13900000000"}}).json()
    refund = app_client.post(f"/v1/cards/{sale2['card_id']}/refunds", headers=mkey,
                             json={"reason": "cooling_off"})
    assert refund.status_code == 201, refund.text
    pain = app_client.get("/v1/banks/B1/instructions", headers=bkey)
    assert pain.status_code == 200, pain.text
    assert b"pain.001.001.09" in pain.content
    assert refund.json()["end_to_end_id"].encode() in pain.content
