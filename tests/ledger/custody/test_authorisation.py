"""Who may do what over HTTP: a merchant only its own data, a bank only the custody accounts
it holds, a regulator reads everything and writes nothing. Every refused write writes
nothing: the journal head, every row and every balance stay as they were."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.routes import custody as custody_routes
from api.routes import departments as department_routes
from api.routes import ledger as ledger_routes
from api.routes import register as register_routes
from api.routes import trust as trust_routes
from ledger.auth import Role
from tests.support.db import issue_key, nothing_written
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer

TODAY = date(2026, 3, 2)  # a Monday


@pytest.fixture(scope="module")
def scene(custody: Driver) -> dict[str, Any]:
    """Merchant A (bank ICBC-BJ) and merchant B (bank BOC-BJ), each with a product and a card;
    A has a pending release and a pending refund for its bank to resolve."""
    custody.set_today(TODAY)
    a = custody.file("体育健身", bank_id="ICBC-BJ")
    b = custody.file("餐饮", bank_id="BOC-BJ")
    ka, kb = custody.merchant_key(a["id"]), custody.merchant_key(b["id"])
    icbc, boc = custody.bank_key("ICBC-BJ"), custody.bank_key("BOC-BJ")
    pa = custody.product(a["id"], ka, kind="sessions", price_fen=60_000, sessions=6,
                         validity_months=3)
    pb = custody.product(b["id"], kb, kind="stored_value", price_fen=50_000, bonus_units=5_000)
    card_a, card_a2 = custody.sell(pa["id"], ka), custody.sell(pa["id"], ka)
    card_b = custody.sell(pb["id"], kb)
    use = custody.consume(card_a["card_id"], ka, sessions=2)
    custody.confirm(use["consumption_id"], card_a)
    custody.deposit(a["id"], icbc, 120_000)
    releases = custody.run_releases(date(2026, 3, 16), a["id"])
    assert [r["amount_fen"] for r in releases] == [18_000]
    refund = custody.ok("POST", f"/v1/cards/{card_a2['card_id']}/refunds", ka,
                        {"reason": "cooling_off"}, 201)
    assert refund["amount_fen"] == 60_000
    return {"a": a, "b": b, "ka": ka, "kb": kb, "icbc": icbc, "boc": boc, "pa": pa, "pb": pb,
            "card_a": card_a, "card_b": card_b, "release": releases[0],
            "refund": refund, "use": use,
            "regulator": bearer(issue_key(custody.engine, Role.regulator))}


def test_a_merchant_cannot_sell_another_merchants_product(
        app_client: TestClient, engine: Engine, scene: dict[str, Any]) -> None:
    product = {"kind": "stored_value", "name": "x", "price_fen": 100}
    with nothing_written(app_client, engine):
        # Another merchant's product and merchant answer exactly as missing ones.
        for product_id in (scene["pa"]["id"], "p_0000000000000000"):
            r = app_client.post("/v1/cards", headers=scene["kb"], json={
                "product_id": product_id, "consumer": {"phone": "13800000001"}})
            assert_problem(r, 404, field="product_id", code="not_found",
                           detail_has=f"product {product_id} does not exist")
        for merchant_id in (scene["a"]["id"], "m_0000000000000000"):
            r = app_client.post(f"/v1/merchants/{merchant_id}/products", headers=scene["kb"],
                                json=product)
            assert_problem(r, 404, field="merchant_id", code="not_found",
                           detail_has=f"merchant {merchant_id} does not exist")


def test_only_the_merchant_and_the_operator_create_its_products(
        app_client: TestClient, engine: Engine, scene: dict[str, Any],
        custody: Driver) -> None:
    holder = custody.consumer(scene["card_a"])
    product = {"kind": "stored_value", "name": "x", "price_fen": 100}
    with nothing_written(app_client, engine):
        for key in (holder, scene["icbc"], scene["regulator"]):
            r = app_client.post(f"/v1/merchants/{scene['a']['id']}/products", headers=key,
                                json=product)
            assert_problem(r, 403, code="forbidden")
    r = app_client.post(f"/v1/merchants/{scene['a']['id']}/products", headers=custody.operator,
                        json=product)
    assert r.status_code == 201, r.text


def test_a_merchant_cannot_consume_or_refund_another_merchants_card(
        app_client: TestClient, engine: Engine, scene: dict[str, Any]) -> None:
    card = scene["card_a"]["card_id"]
    with nothing_written(app_client, engine):
        r = app_client.post(f"/v1/cards/{card}/consumptions", headers=scene["kb"],
                            json={"sessions": 1})
        # Another merchant's card is not even admitted to exist.
        assert_problem(r, 404, field="card_id", code="not_found")
        r = app_client.post(f"/v1/cards/{card}/refunds", headers=scene["kb"],
                            json={"reason": "balance"})
        assert_problem(r, 404, field="card_id", code="not_found")
    r = app_client.get(f"/v1/cards/{card}", headers={"X-Receipt-Code": "x"})
    assert r.status_code == 404
    # The card is untouched: 4 of its 6 sessions, 40000 fen left.
    r = app_client.get(f"/v1/cards/{card}",
                       headers={"X-Receipt-Code": scene["card_a"]["receipt_code"]})
    assert r.status_code == 200, r.text
    assert (r.json()["remaining_units"], r.json()["remaining_paid_fen"]) == (4, 40_000)


def _account_ids(client: TestClient, scene: dict[str, Any]) -> list[int]:
    view = client.get(f"/v1/merchants/{scene['a']['id']}", headers=scene["ka"]).json()
    assert view["id"] == scene["a"]["id"]
    return [*scene["a"]["accounts"].values(), scene["card_a"]["card_account_id"]]


def test_a_merchant_cannot_read_another_merchants_books(
        app_client: TestClient, scene: dict[str, Any]) -> None:
    a = scene["a"]["id"]
    for path in (f"/v1/merchants/{a}", f"/v1/merchants/{a}/cards",
                 f"/v1/merchants/{a}/payouts.csv"):
        # Another merchant's books answer as a missing merchant's: nothing is given away.
        assert_problem(app_client.get(path, headers=scene["kb"]), 404, field="merchant_id",
                       code="not_found")
        assert app_client.get(path, headers=scene["ka"]).status_code == 200
    for account in _account_ids(app_client, scene):
        assert_problem(app_client.get(f"/v1/accounts/{account}", headers=scene["kb"]), 404,
                       field="id", code="not_found")
        assert_problem(app_client.get(f"/v1/accounts/{account}/postings",
                                      headers=scene["kb"]), 404, field="id", code="not_found")
        assert app_client.get(f"/v1/accounts/{account}", headers=scene["ka"]).status_code == 200
    # Lists are scoped to the merchant's own instructions.
    for path in ("/v1/releases", "/v1/refunds"):
        r = app_client.get(path, headers=scene["kb"])
        assert r.status_code == 200 and r.json()["items"] == []
        mine = app_client.get(path, headers=scene["ka"]).json()["items"]
        assert {item["merchant_id"] for item in mine} == {a}
    cards = app_client.get(f"/v1/merchants/{a}/cards", headers=scene["ka"]).json()["items"]
    assert len(cards) == 2


def test_a_bank_cannot_settle_or_read_another_banks_instructions(
        app_client: TestClient, engine: Engine, scene: dict[str, Any]) -> None:
    release, refund = scene["release"]["release_id"], scene["refund"]["refund_id"]
    a = scene["a"]["id"]
    with nothing_written(app_client, engine):
        # Another bank's instructions and merchants answer exactly as missing ones.
        for outcome in ("settled", "failed"):
            for kind, number in (("release", release), ("refund", refund)):
                r = app_client.post(f"/v1/{kind}s/{number}/resolve", headers=scene["boc"],
                                    json={"outcome": outcome})
                body = assert_problem(r, 404, field=f"{kind}_id", code="not_found")
                gone = app_client.post(f"/v1/{kind}s/{number + 10**9}/resolve",
                                       headers=scene["boc"], json={"outcome": outcome})
                assert body["detail"].replace(str(number), "N") == \
                    gone.json()["detail"].replace(str(number + 10**9), "N")
        r = app_client.post(f"/v1/merchants/{a}/deposits", headers=scene["boc"],
                            json={"amount_fen": 1})
        assert_problem(r, 404, field="merchant_id", code="not_found")
        # A bank is no merchant: it cannot sell, consume or create products either.
        r = app_client.post("/v1/cards", headers=scene["icbc"], json={
            "product_id": scene["pa"]["id"], "consumer": {"phone": "13800000001"}})
        assert_problem(r, 403, code="forbidden")
        r = app_client.post(f"/v1/cards/{scene['card_a']['card_id']}/consumptions",
                            headers=scene["icbc"], json={"sessions": 1})
        assert_problem(r, 403, code="forbidden")
    for path in (f"/v1/merchants/{a}", f"/v1/merchants/{a}/cards",
                 f"/v1/merchants/{a}/payouts.csv"):
        assert_problem(app_client.get(path, headers=scene["boc"]), 404, code="not_found",
                       field="merchant_id")
        assert app_client.get(path, headers=scene["icbc"]).status_code == 200
    cash = scene["a"]["accounts"]["custody_cash"]
    assert_problem(app_client.get(f"/v1/accounts/{cash}", headers=scene["boc"]), 404,
                   field="id")
    assert app_client.get(f"/v1/accounts/{cash}", headers=scene["icbc"]).json()[
        "balance_fen"] == 120_000
    for path in ("/v1/releases", "/v1/refunds"):
        assert app_client.get(path, headers=scene["boc"]).json()["items"] == []
        assert len(app_client.get(path, headers=scene["icbc"]).json()["items"]) == 1
    # Its own bank can: the release leaves custody.
    r = app_client.post(f"/v1/releases/{release}/resolve", headers=scene["icbc"],
                        json={"outcome": "settled"})
    assert r.status_code == 200 and r.json()["status"] == "settled"
    assert app_client.get(f"/v1/accounts/{cash}", headers=scene["icbc"]).json()[
        "balance_fen"] == 102_000


def _regulator_writes(scene: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """One of every POST that takes an API key, each well formed: only the key can stop it."""
    a, card = scene["a"]["id"], scene["card_a"]["card_id"]
    cash, card_account = scene["a"]["accounts"]["custody_cash"], \
        scene["card_a"]["card_account_id"]
    postings = [{"account_id": cash, "amount_fen": 1}, {"account_id": card_account,
                                                       "amount_fen": -1}]
    return [
        ("/v1/accounts", {"kind": "asset", "name": "x"}),
        ("/v1/transactions", {"postings": postings}),
        ("/v1/transactions/batch", {"transactions": [{"postings": postings}]}),
        (f"/v1/transactions/{scene['refund']['journal_seq']}/reverse", None),
        ("/v1/keys", {"role": "regulator"}),
        ("/v1/rule-sets", {"industry": "餐饮", "rules": {"cooling_off_days": 30}}),
        ("/v1/merchants", {"name": "x", "industry": "餐饮", "credit_code": "91110000600037341L",
                           "bank_id": "ICBC-BJ", "custody_account": "1"}),
        (f"/v1/merchants/{a}/freeze", {"reason": "x"}),
        (f"/v1/merchants/{a}/unfreeze", {"reason": "x"}),
        (f"/v1/merchants/{a}/tier", {"tier": "red"}),
        (f"/v1/merchants/{a}/close", None),
        (f"/v1/merchants/{a}/deposits", {"amount_fen": 1}),
        (f"/v1/merchants/{a}/products", {"kind": "stored_value", "name": "x",
                                         "price_fen": 100}),
        ("/v1/cards", {"product_id": scene["pa"]["id"], "consumer": {"phone": "138"}}),
        (f"/v1/cards/{card}/consumptions", {"sessions": 1}),
        ("/v1/consumptions/auto-confirm", {"as_of": "2030-01-01"}),
        (f"/v1/cards/{card}/refunds", {"reason": "balance"}),
        (f"/v1/cards/{card}/dispute", None),
        (f"/v1/cards/{card}/dispute/resolve", {"outcome": "consumer"}),
        ("/v1/releases/run", {"as_of": "2030-01-01"}),
        (f"/v1/releases/{scene['release']['release_id']}/resolve", {"outcome": "failed"}),
        (f"/v1/refunds/{scene['refund']['refund_id']}/resolve", {"outcome": "settled"}),
        (f"/v1/consumptions/{scene['use']['consumption_id']}/confirm", None),
        (f"/v1/consumptions/{scene['use']['consumption_id']}/reject", None),
        (f"/v1/cards/{card}/consumer-refunds", {"reason": "balance"}),
        ("/v1/banks", {"id": "NEW-BANK", "name": "x", "code": "102100099996"}),
        ("/v1/keys/1/revoke", None),
        (f"/v1/merchants/{a}/amendments", {"reason": "x", "street": "望京街道"}),
        ("/v1/department-maps", {"jurisdiction": "beijing", "pending_department": "区市监局",
                                 "departments": {"餐饮": "区商务局"}}),
        ("/v1/industries/designations", {"jurisdiction": "beijing", "industry": "x",
                                         "department": "区商务局", "reason": "区政府指定"}),
    ]


# POSTs that take no API key: a consumer asks for a one-time code and trades it for a key.
CONSUMER_POSTS = {"/v1/consumer/codes", "/v1/consumer/keys"}
# Supervision's acts, the only writes a regulator key makes (issue 15: a regulator handles
# complaints, lists bans, overrides tiers, acknowledges alerts, makes reports), each journaled
# under its key; which regulator may make which is the authorisation matrix's
# (tests/api/test_authorisation_matrix.py). By path prefix: every other POST is refused.
# (/v1/complaint-deadlines and /v1/supervision/rules|sweep are the operator's alone: the
# matrix sends them a body, which FastAPI reads before the route can refuse the role.)
SUPERVISION_WRITES = ("/v1/bans", "/v1/complaints", "/v1/complaint-deadlines", "/v1/alerts",
                      "/v1/supervision", "/v1/reports", "/v1/webhooks", "/v1/tier-overrides")
MERCHANT_SUPERVISION_WRITES = ("/assessments", "/revenues", "/tier-overrides",
                               "/release-hold/clear")


def _supervision_write(path: str) -> bool:
    return path.startswith(SUPERVISION_WRITES) or (
        path.startswith("/v1/merchants/") and path.endswith(MERCHANT_SUPERVISION_WRITES))


def test_a_regulator_key_writes_nothing_but_supervisions_acts(
        app_client: TestClient, engine: Engine, scene: dict[str, Any]) -> None:
    writes = _regulator_writes(scene)
    # The list covers every keyed POST of the ledger, custody and system routes.
    posts = {route.path for module in (custody_routes, ledger_routes, trust_routes,
                                       department_routes, register_routes)
             for route in module.router.routes
             if isinstance(route, APIRoute) and "POST" in route.methods}
    templates = {_template(path) for path, _ in writes}
    assert posts - CONSUMER_POSTS == templates
    # ... and any other POST the application has (the audit routes, say) is refused too.
    others = {route.path for route in _all_routes(app_client) if "POST" in route.methods
              and not _supervision_write(route.path)}
    writes += [(path, None) for path in sorted(others - posts)]
    with nothing_written(app_client, engine):
        for path, body in writes:
            r = app_client.post(path, headers=scene["regulator"], json=body)
            assert_problem(r, 403, code="forbidden")
    # ... while it reads everything.
    a = scene["a"]["id"]
    for path in (f"/v1/merchants/{a}", f"/v1/merchants/{a}/cards", "/v1/exposure",
                 "/v1/releases", "/v1/refunds", "/v1/rule-sets",
                 f"/v1/accounts/{scene['a']['accounts']['custody_cash']}"):
        assert app_client.get(path, headers=scene["regulator"]).status_code == 200, path


def _all_routes(client: TestClient) -> list[APIRoute]:
    """Every APIRoute the app serves, through included routers too."""
    found: list[APIRoute] = []
    pending: list[Any] = list(client.app.routes)  # type: ignore[attr-defined]
    while pending:
        route = pending.pop()
        if isinstance(route, APIRoute):
            found.append(route)
        for attribute in ("routes", "router", "original_router", "app"):
            inner = getattr(route, attribute, None)
            if isinstance(inner, list):
                pending.extend(inner)
            elif inner is not None and hasattr(inner, "routes") and inner is not route:
                pending.extend(inner.routes)
    return found


def _template(path: str) -> str:
    parts = path.split("/")
    names = {"merchants": "merchant_id", "cards": "card_id", "releases": "release_id",
             "refunds": "refund_id", "transactions": "transaction_id",
             "consumptions": "consumption_id", "keys": "key_id"}
    out = []
    for i, part in enumerate(parts):
        previous = parts[i - 1] if i else ""
        if previous in names and part not in ("run", "batch", "auto-confirm", ""):
            out.append("{" + names[previous] + "}")
        else:
            out.append(part)
    return "/".join(out)


def test_refused_writes_leave_balances_as_they_were(
        app_client: TestClient, scene: dict[str, Any], custody: Driver) -> None:
    a = scene["a"]["id"]
    before = custody.balances(a)
    ka: Headers = scene["ka"]
    for headers in (scene["kb"], scene["regulator"], scene["boc"]):
        app_client.post(f"/v1/merchants/{a}/deposits", headers=headers, json={"amount_fen": 5})
        app_client.post(f"/v1/cards/{scene['card_a']['card_id']}/consumptions",
                        headers=headers, json={"sessions": 1})
    assert custody.balances(a) == before
    assert app_client.get(f"/v1/merchants/{a}", headers=ka).json()["balances_fen"] == before


def test_a_consumer_key_reads_no_instructions_breaks_or_cross_verifications(
        app_client: TestClient, scene: dict[str, Any], custody: Driver) -> None:
    holder = custody.consumer(scene["card_a"])
    for path in ("/v1/releases", "/v1/refunds", "/v1/breaks", "/v1/cross-verifications"):
        # Lists of everybody's money: a cardholder reads its own cards only.
        assert_problem(app_client.get(path, headers=holder), 403, code="forbidden")
        assert app_client.get(path, headers=scene["regulator"]).status_code == 200, path


def test_a_consumer_key_is_refused_merchants_books_before_any_id_is_looked_up(
        app_client: TestClient, scene: dict[str, Any], custody: Driver) -> None:
    holder = custody.consumer(scene["card_a"])
    cash = scene["a"]["accounts"]["custody_cash"]
    for merchant_id in (scene["a"]["id"], "m_0000000000000000"):
        for path in (f"/v1/merchants/{merchant_id}", f"/v1/merchants/{merchant_id}/cards",
                     f"/v1/merchants/{merchant_id}/payouts.csv"):
            assert_problem(app_client.get(path, headers=holder), 403, code="forbidden")
    for account in (cash, 10**12):
        for path in (f"/v1/accounts/{account}", f"/v1/accounts/{account}/postings"):
            assert_problem(app_client.get(path, headers=holder), 403, code="forbidden")
    # ... while the card sold to them is theirs to read.
    r = app_client.get(f"/v1/cards/{scene['card_a']['card_id']}", headers=holder)
    assert r.status_code == 200, r.text
