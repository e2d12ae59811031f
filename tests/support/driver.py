"""The driver: the API as the operator, merchants, banks and consumers use it. The custody
tests drive it as it is; the reconciliation tests extend it (`Banking`) with merchants that
remember their custody account and key, cards sold at a price, and a bank's files."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.messages import OutboxSender
from ledger.auth import Role
from tests.support.custody import credit_code
from tests.support.db import issue_key, register_bank
from tests.support.http import Headers, bearer, consumer_key


class Driver:
    """Files merchants, makes products, sells cards, consumes, deposits and releases through
    the API, with the keys each party holds; and moves the service's clock."""

    phone_prefix = "1390000"  # a consumer's phone: this, then the sale's number

    def __init__(self, client: TestClient, engine: Engine, operator: Headers,
                 outbox: OutboxSender) -> None:
        self.client, self.engine, self.operator = client, engine, operator
        self.outbox = outbox
        self.rng = random.Random(uuid.uuid4().int)
        self.phones = 0
        self._consumers: dict[str, Headers] = {}

    def set_today(self, day: date) -> None:
        self.client.app.state.ctx.clock = lambda: day  # type: ignore[attr-defined]

    def ok(self, method: str, path: str, headers: Headers | None = None, json: Any = None,
           status: int = 200, **more: Any) -> Any:
        response = self.client.request(method, path, headers=headers, json=json, **more)
        assert response.status_code == status, response.text
        return response.json()

    def file(self, industry: str, bank_id: str = "ICBC-BJ", name: str | None = None,
             custody_account: str | None = None, **register: Any) -> dict[str, Any]:
        """`register`: street, address, people ([{"role", "id_number"}]), jurisdiction."""
        register_bank(self.engine, bank_id)
        body = {"name": name or f"商户{self.rng.randrange(10**6)}", "industry": industry,
                "credit_code": credit_code(self.rng), "bank_id": bank_id,
                "custody_account": custody_account or f"02{self.rng.randrange(10**11):011d}",
                **register}
        return dict(self.ok("POST", "/v1/merchants", self.operator, body, 201))

    def merchant_key(self, merchant_id: str) -> Headers:
        return bearer(issue_key(self.engine, Role.merchant, merchant_id))

    def bank_key(self, bank_id: str) -> Headers:
        return bearer(issue_key(self.engine, Role.bank, bank_id=bank_id))

    def product(self, merchant_id: str, key: Headers, **body: Any) -> dict[str, Any]:
        body.setdefault("name", "卡")
        return dict(self.ok("POST", f"/v1/merchants/{merchant_id}/products", key, body, 201))

    def next_phone(self) -> str:
        self.phones += 1
        return f"{self.phone_prefix}{self.phones:0{11 - len(self.phone_prefix)}d}"

    def sell(self, product_id: str, key: Headers, named: bool = True) -> dict[str, Any]:
        """A card sold to a phone of its own; the answer with that `phone`."""
        phone = self.next_phone()
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


@dataclass
class Merchant:
    id: str
    account: str
    bank_id: str
    key: Headers
    products: dict[int, str] = field(default_factory=dict)  # price -> product id


class Banking(Driver):
    """The driver as the partner-bank tests use it: merchants with their custody account and
    key, cards sold at a price (with the deposit's reference), refunds, and a bank's files,
    answers and breaks."""

    phone_prefix = "1380"

    def __init__(self, client: TestClient, engine: Engine, operator: Headers,
                 outbox: OutboxSender) -> None:
        super().__init__(client, engine, operator, outbox)
        self._bank_keys: dict[str, Headers] = {}

    # -- the operator and merchants ---------------------------------------------------------
    def merchant(self, bank_id: str, industry: str = "体育健身") -> Merchant:
        """体育健身 keeps 100% in custody (a sale's deposit is its price); 美容美发 40%."""
        account = f"62{self.rng.randrange(10**14):014d}"
        m = self.file(industry, bank_id, custody_account=account)
        self.bank(bank_id)  # its key now, so it is not journaled in the middle of a test
        return Merchant(m["id"], account, bank_id, self.merchant_key(m["id"]))

    def sell_at(self, m: Merchant, price_fen: int) -> dict[str, Any]:
        """A stored-value card at this price; the answer with its deposit `reference`."""
        if price_fen not in m.products:
            m.products[price_fen] = self.product(m.id, m.key, kind="stored_value",
                                                 price_fen=price_fen, validity_months=3)["id"]
        sale = self.sell(m.products[price_fen], m.key)
        return {**sale, "reference": f"YFS{sale['journal_seq']:012d}"}

    def refund(self, m: Merchant, card_id: str, reason: str = "cooling_off") -> dict[str, Any]:
        return dict(self.ok("POST", f"/v1/cards/{card_id}/refunds", m.key, {"reason": reason},
                            201))

    # -- banks -------------------------------------------------------------------------------
    def bank(self, bank_id: str) -> Headers:
        """The bank's key: one per bank and driver."""
        if bank_id not in self._bank_keys:
            self._bank_keys[bank_id] = self.bank_key(bank_id)
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
