"""The sale's screen reads the batch's memo of bans (ledger/db/ban_store.py): a ban listed or
lifted earlier in the same group commit is seen by the sale after it, and a carried memo is
dropped when a ban is written behind the writer's back."""

from __future__ import annotations

import random
from datetime import date

from sqlalchemy import text

from ledger.auth import LOCAL_OPERATOR, Principal, Role
from ledger.errors import Refused
from ledger.flows.bans import LiftBan, ListBan
from ledger.flows.sales import SellCard
from ledger.supervision.bans import BanDraft, BanKind, Banned
from tests.support.custody import id_number
from tests.support.db import run_together
from tests.support.driver import Driver

rng = random.Random(1818)
TODAY = date(2026, 12, 8)


def scene(custody: Driver) -> tuple[str, str, Principal]:
    """A merchant with a legal representative and a product: its person's pseudonym, the
    product, and the merchant's own principal."""
    m = custody.file("体育健身", people=[{"role": "legal_representative",
                                          "id_number": id_number(rng)}])
    key = custody.merchant_key(m["id"])
    product = custody.product(m["id"], key, kind="stored_value", price_fen=1_000,
                              validity_months=3)
    till = Principal(key_id=0, role=Role.merchant, merchant_id=m["id"])
    return m["people"][0]["person_id"], product["id"], till


def sale(till: Principal, product_id: str) -> SellCard:
    return SellCard(till, product_id, f"c{rng.randrange(10**9)}", True, TODAY)


def test_a_ban_listed_earlier_in_the_same_commit_refuses_the_sale_after_it(
        custody: Driver) -> None:
    person, product, till = scene(custody)
    custody.sell(product, custody.merchant_key(till.merchant_id or ""))  # memo carried
    listed = ListBan(LOCAL_OPERATOR, BanDraft(BanKind.person, person, "失信", "法院", TODAY),
                     TODAY)
    before, ban, after = run_together(custody.engine, sale(till, product), listed,
                                      sale(till, product))
    assert not isinstance(before, BaseException) and before.status_code == 201
    assert not isinstance(ban, BaseException) and ban.status_code == 201
    assert isinstance(after, Banned), after
    lifted_then_sold = run_together(custody.engine, LiftBan(
        LOCAL_OPERATOR, ban.body["id"], "解除", TODAY), sale(till, product))
    assert all(not isinstance(o, BaseException) and o.status_code in (200, 201)
               for o in lifted_then_sold), lifted_then_sold


def test_a_ban_written_behind_the_writers_back_is_seen_by_the_next_sale(
        custody: Driver) -> None:
    person, product, till = scene(custody)
    key = custody.merchant_key(till.merchant_id or "")
    custody.sell(product, key)  # the subject's memo is in the writer's carry now
    with custody.engine.begin() as conn:  # as another writer would: the generation moves
        seq = conn.execute(text("SELECT max(seq) FROM journal_entries")).scalar_one()
        conn.execute(text(
            "INSERT INTO bans (id, kind, subject, reason, source, starts_on, listed_by) "
            "VALUES (:seq, 'person', :p, '另一写入者', '法院', :d, 0)"),
            {"seq": seq, "p": person, "d": TODAY})
    refused = custody.client.post("/v1/cards", headers=key, json={
        "product_id": product, "consumer": {"phone": custody.next_phone()}, "named": True})
    assert refused.status_code == Refused.status and refused.json()["code"] == "banned"
