from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.support.db import open_account


def test_a_transaction_posts_and_moves_both_balances(
        app_client: TestClient, engine: Engine, operator: dict[str, str]) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    response = app_client.post("/v1/transactions", headers=operator, json={
        "postings": [{"account_id": cash, "amount_fen": 500},
                     {"account_id": card, "amount_fen": -500}]})
    assert response.status_code == 201, response.text
    assert app_client.get(f"/v1/accounts/{card}", headers=operator).json()[
        "normal_balance_fen"] == 500
