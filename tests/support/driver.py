"""The driver: the custody API as the operator, merchants, banks and consumers use it."""

from __future__ import annotations

import random
import uuid
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.messages import OutboxSender
from ledger.auth import Role
from tests.support.custody import credit_code
from tests.support.db import issue_key, register_bank
from tests.support.http import Headers, bearer, consumer_key


class Custody:
    """Drives the custody API as the operator, merchants, banks and consumers do."""

    def __init__(self, client: TestClient, engine: Engine, operator: Headers,
                 outbox: OutboxSender) -> None:
        self.client, self.engine, self.operator = client, engine, operator
        self.outbox = outbox
        self.rng = random.Random(uuid.uuid4().int)
        self.phones = 0
        self._consumers: dict[str, Headers] = {}

    def set_today(self, day: date) -> None:
        self.client.app.state.ctx.clock = lambda: day  # type: ignore[attr-defined]

    def ok(self, method: str, path: str, headers: Headers | None = None,
           json: Any = None, status: int = 200) -> Any:
        response = self.client.request(method, path, headers=headers, json=json)
        assert response.status_code == status, response.text
        return response.json()

    def file(self, industry: str, bank_id: str = "ICBC-BJ", name: str | None = None
             ) -> dict[str, Any]:
        register_bank(self.engine, bank_id)
        body = {"name": name or f"商户{self.rng.randrange(10**6)}", "industry": industry,
                "credit_code": credit_code(self.rng), "bank_id": bank_id,
                "custody_account": f"02{self.rng.randrange(10**11):011d}"}
        return dict(self.ok("POST", "/v1/merchants", self.operator, body, 201))

    def merchant_key(self, merchant_id: str) -> Headers:
        return bearer(issue_key(self.engine, Role.merchant, merchant_id))

    def bank_key(self, bank_id: str) -> Headers:
        return bearer(issue_key(self.engine, Role.bank, bank_id=bank_id))

    def product(self, merchant_id: str, key: Headers, **body: Any) -> dict[str, Any]:
        body.setdefault("name", "卡")
        return dict(self.ok("POST", f"/v1/merchants/{merchant_id}/products", key, body, 201))

    def sell(self, product_id: str, key: Headers, named: bool = True) -> dict[str, Any]:
        self.phones += 1
        phone = f"1390000{self.phones:04d}"
        body = {"product_id": product_id, "consumer": {"phone": phone}, "named": named}
        return {**self.ok("POST", "/v1/cards", key, body, 201), "phone": phone}

    def consumer(self, sale: dict[str, Any]) -> Headers:
        """The cardholder's own key (one per phone, by one-time code)."""
        phone = sale["phone"]
        if phone not in self._consumers:
            self._consumers[phone] = consumer_key(self.client, self.outbox, phone)
        return self._consumers[phone]

    def consume(self, card_id: str, key: Headers, **body: Any) -> dict[str, Any]:
        return dict(self.ok("POST", f"/v1/cards/{card_id}/consumptions", key, body, 201))

    def confirm(self, consumption_id: int, sale: dict[str, Any]) -> dict[str, Any]:
        return dict(self.ok("POST", f"/v1/consumptions/{consumption_id}/confirm",
                            self.consumer(sale)))

    def deposit(self, merchant_id: str, key: Headers, amount_fen: int) -> dict[str, Any]:
        return dict(self.ok("POST", f"/v1/merchants/{merchant_id}/deposits", key,
                            {"amount_fen": amount_fen}, 201))

    def run_releases(self, as_of: date, merchant_id: str | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"as_of": as_of.isoformat()}
        if merchant_id:
            body["merchant_id"] = merchant_id
        return list(self.ok("POST", "/v1/releases/run", self.operator, body)["releases"])

    def balances(self, merchant_id: str) -> dict[str, int]:
        view = self.ok("GET", f"/v1/merchants/{merchant_id}", self.operator)
        return dict(view["balances_fen"])

