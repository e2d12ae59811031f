"""A custodian bank reads the journal entries of the merchants it holds custody for, and its
own, and proves them against signed heads; other banks' entries are, to it, missing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger import merkle
from tests.support.driver import Driver
from tests.support.http import assert_problem, every_page


@pytest.fixture(scope="module")
def two_banks(custody: Driver) -> dict[str, Any]:
    shops = {}
    for bank in ("SCOPE-A", "SCOPE-B"):
        m = custody.file("美容美发", bank_id=bank)
        key = custody.merchant_key(m["id"])
        product = custody.product(m["id"], key, kind="stored_value", price_fen=20_000)
        shops[bank] = {"m": m, "sale": custody.sell(product["id"], key),
                       "key": custody.bank_key(bank)}
    return shops


def _all_entries(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    return every_page(client, "/v1/journal", headers, 7)


def test_a_bank_reads_only_its_own_merchants_journal_entries(
        app_client: TestClient, custody: Driver, two_banks: dict[str, Any]) -> None:
    a, b = two_banks["SCOPE-A"], two_banks["SCOPE-B"]
    seen = _all_entries(app_client, a["key"])
    everything = _all_entries(app_client, custody.operator)
    assert len(seen) < len(everything)
    for entry in seen:
        payload = entry["payload"]
        assert payload.get("merchant_id") == a["m"]["id"] or \
            payload.get("bank_id") == "SCOPE-A", entry
    seqs = {e["seq"] for e in seen}
    assert a["sale"]["journal_seq"] in seqs and b["sale"]["journal_seq"] not in seqs
    assert a["m"]["journal_seq"] in seqs  # its merchant's filing
    # Another bank's entry is, to this bank, as missing as one that does not exist.
    r = app_client.get(f"/v1/journal/{b['sale']['journal_seq']}", headers=a["key"])
    body = assert_problem(r, 404, field="seq", code="not_found")
    gone = app_client.get("/v1/journal/999999999", headers=a["key"]).json()
    assert body["detail"].replace(str(b["sale"]["journal_seq"]), "N") == \
        gone["detail"].replace("999999999", "N")


def test_a_bank_proves_its_entries_against_a_signed_head(
        app_client: TestClient, custody: Driver, two_banks: dict[str, Any]) -> None:
    a = two_banks["SCOPE-A"]
    custody.ok("POST", "/v1/audit/tree-heads", custody.operator)
    head = app_client.get("/v1/audit/tree-head").json()
    entry = custody.ok("GET", f"/v1/journal/{a['sale']['journal_seq']}", a["key"])
    proof = app_client.get("/v1/audit/proofs/inclusion", headers=a["key"], params={
        "seq": entry["seq"], "tree_size": head["tree_size"]}).json()
    leaf = merkle.leaf_hash(base64.b64decode(entry["canonical_b64"]))
    assert merkle.verify_inclusion(leaf, proof["leaf_index"], head["tree_size"],
                                   [bytes.fromhex(p) for p in proof["audit_path"]],
                                   bytes.fromhex(head["root_hash"]))
    # Consistency between heads needs no entry at all: every bank may ask for it.
    r = app_client.get("/v1/audit/proofs/consistency", headers=a["key"],
                       params={"first": 1, "second": head["tree_size"]})
    assert r.status_code == 200, r.text
    # The whole export is every bank's data: not for a bank.
    assert_problem(app_client.get("/v1/audit/journal/export", headers=a["key"]), 403,
                   code="forbidden")
