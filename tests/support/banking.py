"""A driver for the partner-bank tests: merchants, sales and instructions through the API, a
bank's imports, and what the database holds afterwards."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ledger.auth import Role
from tests.support.custody import credit_code
from tests.support.db import issue_key, register_bank
from tests.support.http import Headers, bearer


@dataclass
class Merchant:
    id: str
    account: str
    bank_id: str
    key: Headers
    products: dict[int, str] = field(default_factory=dict)  # price -> product id


class Banking:
    """Drives the API as the operator, merchants and banks do."""

    def __init__(self, client: TestClient, engine: Engine, operator: Headers) -> None:
        self.client, self.engine, self.operator = client, engine, operator
        self.rng = random.Random(uuid.uuid4().int)
        self.phones = 0
        self._bank_keys: dict[str, Headers] = {}

    def set_today(self, day: date) -> None:
        self.client.app.state.ctx.clock = lambda: day  # type: ignore[attr-defined]

    def ok(self, method: str, path: str, headers: Headers | None = None, json: Any = None,
           status: int = 200, **more: Any) -> Any:
        response = self.client.request(method, path, headers=headers, json=json, **more)
        assert response.status_code == status, response.text
        return response.json()

    # -- the operator and merchants ---------------------------------------------------------
    def merchant(self, bank_id: str, industry: str = "体育健身") -> Merchant:
        """体育健身 keeps 100% in custody (a sale's deposit is its price); 美容美发 40%."""
        account = f"62{self.rng.randrange(10**14):014d}"
        register_bank(self.engine, bank_id)
        body = {"name": f"商户{self.rng.randrange(10**6)}", "industry": industry,
                "credit_code": credit_code(self.rng), "bank_id": bank_id,
                "custody_account": account}
        m = self.ok("POST", "/v1/merchants", self.operator, body, 201)
        self.bank(bank_id)  # its key now, so it is not journaled in the middle of a test
        return Merchant(m["id"], account, bank_id,
                        bearer(issue_key(self.engine, Role.merchant, m["id"])))

    def sell(self, m: Merchant, price_fen: int) -> dict[str, Any]:
        """A stored-value card at this price; the answer with its deposit `reference`."""
        if price_fen not in m.products:
            m.products[price_fen] = self.ok(
                "POST", f"/v1/merchants/{m.id}/products", m.key,
                {"kind": "stored_value", "name": "卡", "price_fen": price_fen,
                 "validity_months": 3}, 201)["id"]
        self.phones += 1
        sale = self.ok("POST", "/v1/cards", m.key, {
            "product_id": m.products[price_fen],
            "consumer": {"phone": f"1380{self.phones:07d}"}}, 201)
        return {**sale, "reference": f"YFS{sale['journal_seq']:012d}"}

    def refund(self, m: Merchant, card_id: str, reason: str = "cooling_off") -> dict[str, Any]:
        return dict(self.ok("POST", f"/v1/cards/{card_id}/refunds", m.key, {"reason": reason},
                            201))

    def consume(self, m: Merchant, card_id: str, amount_fen: int) -> dict[str, Any]:
        return dict(self.ok("POST", f"/v1/cards/{card_id}/consumptions", m.key,
                            {"amount_fen": amount_fen}, 201))

    def run_release(self, m: Merchant, as_of: date) -> list[dict[str, Any]]:
        return list(self.ok("POST", "/v1/releases/run", self.operator,
                            {"as_of": as_of.isoformat(), "merchant_id": m.id})["releases"])

    def confirm_deposit(self, m: Merchant, amount_fen: int) -> None:
        self.ok("POST", f"/v1/merchants/{m.id}/deposits", self.operator,
                {"amount_fen": amount_fen}, 201)

    def balances(self, m: Merchant) -> dict[str, int]:
        return dict(self.ok("GET", f"/v1/merchants/{m.id}", self.operator)["balances_fen"])

    # -- banks -------------------------------------------------------------------------------
    def bank(self, bank_id: str) -> Headers:
        if bank_id not in self._bank_keys:
            self._bank_keys[bank_id] = bearer(issue_key(self.engine, Role.bank, bank_id=bank_id))
        return self._bank_keys[bank_id]

    def post_statement(self, bank_id: str, data: bytes, headers: Headers | None = None,
                       filename: str = "statement.xml") -> Any:
        return self.client.post(f"/v1/banks/{bank_id}/statements",
                                headers=headers or self.bank(bank_id),
                                params={"filename": filename}, content=data)

    def import_file(self, bank_id: str, data: bytes, filename: str = "statement.xml"
                    ) -> dict[str, Any]:
        response = self.post_statement(bank_id, data, filename=filename)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def answer(self, bank_id: str, e2e: str, verb: str, status: int = 200,
               headers: Headers | None = None, reason: str = "") -> Any:
        return self.ok("POST", f"/v1/banks/{bank_id}/instructions/{e2e}/{verb}",
                       headers or self.bank(bank_id), {"reason": reason}, status)

    def breaks(self, headers: Headers | None = None, **params: str) -> dict[str, Any]:
        return dict(self.ok("GET", "/v1/breaks", headers or self.operator, params=params))

    def open_breaks(self, merchant: Merchant) -> list[dict[str, Any]]:
        return list(self.breaks(merchant_id=merchant.id, status="open")["items"])

    def last_verification(self, m: Merchant) -> dict[str, Any]:
        items = self.ok("GET", "/v1/cross-verifications", self.operator,
                        params={"merchant_id": m.id})["items"]
        assert len(items) == 1, items
        return dict(items[0])


