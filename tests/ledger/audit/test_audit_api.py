"""The audit API over HTTP: who may read what, tree heads, proofs for a real journal, receipts,
the regulators' views and the journal export."""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.cli import main as yufu
from ledger import audit, merkle
from ledger.auth import Role
from tests.support.audit import doc_key, memory_tree, post_transfers
from tests.support.custody import credit_code
from tests.support.db import file_merchant, head_seq, issue_key, register_bank
from tests.support.http import Headers, bearer

SIZES_MAX = 64


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    app = create_app(engine, audit_key=doc_key(), tree_head_interval_s=None)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass(frozen=True)
class Keys:
    operator: Headers
    regulator: Headers
    bank: Headers  # holds the custody of the first merchant only
    merchant: Headers

    def by_role(self, role: str) -> Headers:
        return {} if role == "none" else dict(getattr(self, role))


@dataclass(frozen=True)
class World:
    merchants: list[dict[str, Any]]
    cards: list[dict[str, Any]]


@pytest.fixture(scope="module")
def keys(engine: Engine) -> Keys:
    return Keys(bearer(issue_key(engine, Role.operator)),
                bearer(issue_key(engine, Role.regulator)),
                bearer(issue_key(engine, Role.bank, bank_id="ICBC-BJ")),
                bearer(issue_key(engine, Role.merchant, file_merchant(engine, "OTHER-BANK"))))


@pytest.fixture(scope="module")
def world(client: TestClient, engine: Engine, keys: Keys) -> World:
    """Two merchants of two industries at two banks, with cards sold; then plain transfers,
    so the journal has more than SIZES_MAX entries."""
    rng = random.Random(9162)
    merchants, cards = [], []
    for industry, bank, sold in (("体育健身", "ICBC-BJ", 2), ("餐饮", "CCB-BJ", 1)):
        register_bank(engine, bank)
        r = client.post("/v1/merchants", headers=keys.operator, json={
            "name": f"{industry}商户", "credit_code": credit_code(rng), "industry": industry,
            "bank_id": bank, "custody_account": "0200001234567"})
        assert r.status_code == 201, r.text
        merchant = r.json()
        merchants.append(merchant)
        mkey = bearer(issue_key(engine, Role.merchant, merchant["id"]))
        r = client.post(f"/v1/merchants/{merchant['id']}/products", headers=mkey, json={
            "kind": "stored_value", "name": "储值卡", "price_fen": 100_000,
            "validity_months": 3})
        assert r.status_code == 201, r.text
        product_id = r.json()["id"]
        for n in range(sold):
            r = client.post("/v1/cards", headers=mkey, json={
                "product_id": product_id, "consumer": {"external_id": f"c-{industry}-{n}"}})
            assert r.status_code == 201, r.text
            cards.append(r.json())
    post_transfers(engine, SIZES_MAX)
    return World(merchants, cards)


def test_no_tree_head_before_the_first_is_signed(client: TestClient) -> None:
    r = client.get("/v1/audit/tree-head")
    assert r.status_code == 404, r.text
    assert client.get("/v1/audit/tree-heads").json() == {"items": [], "next_after": None}


def test_the_public_key_needs_no_api_key(client: TestClient) -> None:
    r = client.get("/v1/audit/public-key")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["algorithm"] == "Ed25519"
    assert body["key_id"] == audit.key_id(doc_key().public_key())
    served = audit.load_public_key_pem(body["public_key_pem"].encode())
    assert audit.key_id(served) == body["key_id"]


def test_a_receipt_has_no_proof_until_a_head_covers_the_sale(client: TestClient,
                                                            world: World) -> None:
    card = world.cards[0]
    r = client.get(f"/v1/cards/{card['card_id']}/receipt",
                   headers={"X-Receipt-Code": card["receipt_code"]})
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert receipt["journal_seq"] == card["journal_seq"]
    assert receipt["entry_hash"] == card["entry_hash"]
    assert receipt["tree_head"] is None and receipt["inclusion"] is None


def test_only_an_operator_signs_a_head_on_demand(client: TestClient, engine: Engine,
                                                keys: Keys, world: World) -> None:
    for role, status in (("none", 401), ("merchant", 403), ("regulator", 403), ("bank", 403)):
        assert client.post("/v1/audit/tree-heads", headers=keys.by_role(role)).status_code \
            == status, role
    r = client.post("/v1/audit/tree-heads", headers=keys.operator)
    assert r.status_code == 200, r.text
    head = r.json()
    size = head_seq(engine)
    assert head["created"] is True and head["tree_size"] == size
    assert head["root_hash"] == merkle.root(size, memory_tree(engine)).hex()
    again = client.post("/v1/audit/tree-heads", headers=keys.operator)
    assert again.json() == {**head, "created": False}


def test_heads_are_listed_and_signed_by_the_served_key(client: TestClient, engine: Engine,
                                                       keys: Keys, world: World) -> None:
    for _ in range(3):
        post_transfers(engine, 3)
        assert client.post("/v1/audit/tree-heads", headers=keys.operator).json()["created"]
    listed = client.get("/v1/audit/tree-heads").json()
    heads = listed["items"]
    assert len(heads) >= 4 and listed["next_after"] is None
    assert [h["tree_size"] for h in heads] == sorted({h["tree_size"] for h in heads})
    assert client.get("/v1/audit/tree-head").json() == heads[-1]
    key = doc_key().public_key()
    tree = memory_tree(engine)
    for view in heads:
        signed = audit.SignedTreeHead(audit.TreeHead(
            view["tree_size"], bytes.fromhex(view["root_hash"]), view["timestamp"],
            view["key_id"]), bytes.fromhex(view["signature"]))
        assert audit.verify_tree_head(key, signed)
        assert view["root_hash"] == merkle.root(view["tree_size"], tree).hex()
    page = client.get("/v1/audit/tree-heads", params={"limit": 1}).json()
    assert page["items"] == heads[:1] and page["next_after"] == heads[0]["tree_size"]
    rest = client.get("/v1/audit/tree-heads", params={"after": heads[0]["tree_size"]}).json()
    assert rest["items"] == heads[1:]


def test_api_proofs_verify_for_every_size(client: TestClient, engine: Engine, keys: Keys,
                                         world: World) -> None:
    tree = memory_tree(engine)
    assert tree.size >= SIZES_MAX
    for size in range(1, SIZES_MAX + 1):
        root = merkle.root(size, tree)
        for seq in range(1, size + 1):
            r = client.get("/v1/audit/proofs/inclusion", headers=keys.regulator,
                           params={"seq": seq, "tree_size": size})
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["seq"], body["leaf_index"], body["tree_size"]) == (seq, seq - 1, size)
            path = [bytes.fromhex(p) for p in body["audit_path"]]
            assert all(p == p.lower() for p in body["audit_path"])
            assert merkle.verify_inclusion(tree.node(0, seq - 1), seq - 1, size, path, root)
        for first in range(size + 1):
            r = client.get("/v1/audit/proofs/consistency", headers=keys.bank,
                           params={"first": first, "second": size})
            assert r.status_code == 200, r.text
            proof = [bytes.fromhex(p) for p in r.json()["proof"]]
            assert merkle.verify_consistency(first, size, merkle.root(first, tree), root, proof)


def test_a_proof_built_from_the_api_entry_bytes_verifies(client: TestClient, keys: Keys,
                                                         world: World) -> None:
    head = client.get("/v1/audit/tree-head").json()
    seq = head["tree_size"] // 2
    entry = client.get(f"/v1/journal/{seq}", headers=keys.regulator).json()
    leaf = merkle.leaf_hash(base64.b64decode(entry["canonical_b64"]))
    proof = client.get("/v1/audit/proofs/inclusion", headers=keys.regulator,
                       params={"seq": seq, "tree_size": head["tree_size"]}).json()
    assert merkle.verify_inclusion(leaf, seq - 1, head["tree_size"],
                                   [bytes.fromhex(p) for p in proof["audit_path"]],
                                   bytes.fromhex(head["root_hash"]))


@pytest.mark.parametrize(("params", "field"), [
    ({"seq": 0, "tree_size": 3}, "seq"), ({"seq": 4, "tree_size": 3}, "seq"),
    ({"seq": 1, "tree_size": 10**9}, "tree_size"), ({"tree_size": 3}, "seq")])
def test_impossible_inclusion_requests_are_refused(client: TestClient, keys: Keys,
                                                   world: World, params: dict[str, int],
                                                   field: str) -> None:
    r = client.get("/v1/audit/proofs/inclusion", headers=keys.regulator, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


@pytest.mark.parametrize(("params", "field"), [
    ({"first": 5, "second": 4}, "first"), ({"first": 1, "second": 10**9}, "second"),
    ({"first": -1, "second": 4}, "first")])
def test_impossible_consistency_requests_are_refused(client: TestClient, keys: Keys,
                                                     world: World, params: dict[str, int],
                                                     field: str) -> None:
    r = client.get("/v1/audit/proofs/consistency", headers=keys.regulator, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


PUBLIC = ["/v1/audit/public-key", "/v1/audit/tree-head", "/v1/audit/tree-heads"]
READERS_ONLY = ["/v1/audit/proofs/inclusion?seq=1&tree_size=1",
                "/v1/audit/proofs/consistency?first=1&second=2", "/v1/audit/merchants",
                "/v1/audit/totals", "/v1/audit/journal/export"]
BANKS_NOT = {"/v1/audit/proofs/inclusion?seq=1&tree_size=1": 404,
             "/v1/audit/journal/export": 403}


def test_a_bank_proves_its_own_merchants_entries(client: TestClient, keys: Keys,
                                                  world: World) -> None:
    client.post("/v1/audit/tree-heads", headers=keys.operator)
    head = client.get("/v1/audit/tree-head").json()
    own, other = world.cards[0], world.cards[-1]  # at ICBC-BJ, and at CCB-BJ
    path = "/v1/audit/proofs/inclusion"
    r = client.get(path, headers=keys.bank,
                   params={"seq": own["journal_seq"], "tree_size": head["tree_size"]})
    assert r.status_code == 200, r.text
    assert r.json()["leaf_index"] == own["journal_seq"] - 1
    r = client.get(path, headers=keys.bank,
                   params={"seq": other["journal_seq"], "tree_size": head["tree_size"]})
    assert r.status_code == 404, r.text
    missing = client.get(path, headers=keys.bank,
                         params={"seq": head["tree_size"] + 10**6, "tree_size": head["tree_size"]})
    assert missing.status_code in (404, 422)


@pytest.mark.parametrize("path", PUBLIC + READERS_ONLY)
@pytest.mark.parametrize("role", ["none", "merchant", "regulator", "bank", "operator"])
def test_who_may_read_what(client: TestClient, keys: Keys, world: World, path: str,
                           role: str) -> None:
    client.post("/v1/audit/tree-heads", headers=keys.operator)
    r = client.get(path, headers=keys.by_role(role))
    if role == "bank" and path in BANKS_NOT:
        # A bank reads its own merchants' entries only: entry 1 is not one of them, and the
        # whole export is every bank's.
        assert r.status_code == BANKS_NOT[path], (role, path, r.text)
    elif path in PUBLIC or role in ("regulator", "bank", "operator"):
        assert r.status_code == 200, (role, path, r.text)
    else:
        assert r.status_code == (401 if role == "none" else 403), (role, path, r.text)


def test_regulators_see_every_merchants_exposure(client: TestClient, keys: Keys,
                                                 world: World) -> None:
    r = client.get("/v1/audit/merchants", headers=keys.regulator)
    assert r.status_code == 200, r.text
    assert r.json() == client.get("/v1/exposure", headers=keys.regulator).json()
    items = {i["merchant_id"]: i for i in r.json()["items"]}
    for merchant in world.merchants:
        item = items[merchant["id"]]
        assert {"coverage_ratio_bp", "tier", "complaint_count", "cards",
                "card_liability_fen", "custody_balance_fen"} <= item.keys()


def test_a_bank_sees_only_the_merchants_it_holds_custody_for(client: TestClient, keys: Keys,
                                                             world: World) -> None:
    items = client.get("/v1/audit/merchants", headers=keys.bank).json()["items"]
    assert [i["merchant_id"] for i in items] == [world.merchants[0]["id"]]
    totals = client.get("/v1/audit/totals", headers=keys.bank).json()
    assert totals["all"]["merchants"] == 1


def test_totals_by_industry_and_department_add_up(client: TestClient, keys: Keys,
                                                  world: World) -> None:
    items = client.get("/v1/audit/merchants", headers=keys.regulator).json()["items"]
    totals = client.get("/v1/audit/totals", headers=keys.regulator).json()
    for key, groups in (("industry", totals["by_industry"]),
                        ("department", totals["by_department"])):
        assert [g[key] for g in groups] == sorted({i[key] for i in items})
        for group in groups:
            members = [i for i in items if i[key] == group[key]]
            liability = sum(i["card_liability_fen"] for i in members)
            custody = sum(i["custody_balance_fen"] for i in members)
            assert group["merchants"] == len(members)
            assert group["cards"] == sum(i["cards"] for i in members)
            assert group["card_liability_fen"] == liability
            assert group["custody_balance_fen"] == custody
            assert group["coverage_ratio_bp"] == (custody * 10_000 // liability
                                                  if liability else None)
    assert totals["all"]["merchants"] == len(items)
    assert totals["all"]["cards"] == sum(i["cards"] for i in items) >= 3


def test_the_export_is_the_yufu_export_file(client: TestClient, keys: Keys, world: World,
                                            database_url: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    r = client.get("/v1/audit/journal/export", headers=keys.regulator)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    monkeypatch.setenv("YUFU_DATABASE_URL", database_url)
    out = tmp_path / "journal.jsonl"
    assert yufu(["export", "--out", str(out)]) == 0
    assert r.content == out.read_bytes()
    assert yufu(["verify", "--file", str(out)]) == 0


def test_a_receipt_proves_the_sale_once_a_head_covers_it(client: TestClient, keys: Keys,
                                                         world: World) -> None:
    client.post("/v1/audit/tree-heads", headers=keys.operator)
    for card in world.cards:
        r = client.get(f"/v1/cards/{card['card_id']}/receipt",
                       headers={"X-Receipt-Code": card["receipt_code"]})
        assert r.status_code == 200, r.text
        receipt = r.json()
        head, proof = receipt["tree_head"], receipt["inclusion"]
        body = base64.b64decode(receipt["canonical_b64"])
        assert receipt["entry_hash"] == card["entry_hash"]
        assert merkle.leaf_hash(body).hex() == receipt["leaf_hash"]
        assert proof["leaf_index"] == card["journal_seq"] - 1
        assert proof["tree_size"] == head["tree_size"]
        assert merkle.verify_inclusion(merkle.leaf_hash(body), proof["leaf_index"],
                                       head["tree_size"],
                                       [bytes.fromhex(p) for p in proof["audit_path"]],
                                       bytes.fromhex(head["root_hash"]))


def test_a_receipt_needs_the_cards_receipt_code(client: TestClient, world: World) -> None:
    card = world.cards[0]
    path = f"/v1/cards/{card['card_id']}/receipt"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"X-Receipt-Code": "wrong"}).status_code == 404
    other = world.cards[1]["receipt_code"]
    assert client.get(path, headers={"X-Receipt-Code": other}).status_code == 404
    assert client.get("/v1/cards/card_nope/receipt",
                      headers={"X-Receipt-Code": card["receipt_code"]}).status_code == 404


def test_the_interval_signer_signs_only_when_the_journal_grew(engine: Engine,
                                                              world: World) -> None:
    interval_s = 0.05
    app = create_app(engine, audit_key=doc_key(), tree_head_interval_s=interval_s)
    with TestClient(app) as live:
        post_transfers(engine, 3)
        size = head_seq(engine)
        deadline = time.monotonic() + 10
        while live.get("/v1/audit/tree-head").json().get("tree_size") != size:
            assert time.monotonic() < deadline, "no head was signed on the interval"
            time.sleep(interval_s)
        count = len(live.get("/v1/audit/tree-heads", params={"limit": 1000}).json()["items"])
        time.sleep(interval_s * 6)
        again = live.get("/v1/audit/tree-heads", params={"limit": 1000}).json()["items"]
        assert len(again) == count


def test_merchants_are_forbidden_even_their_own_figures(client: TestClient, engine: Engine,
                                                        world: World) -> None:
    own = bearer(issue_key(engine, Role.merchant, world.merchants[0]["id"]))
    assert client.get("/v1/audit/merchants", headers=own).status_code == 403
    assert client.get("/v1/audit/journal/export", headers=own).status_code == 403
