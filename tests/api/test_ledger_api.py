"""The ledger core over HTTP: every endpoint, every bad input, idempotency, the journal."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.runtime import run_command
from ledger import limits
from ledger.auth import Role
from ledger.service import PostTransaction
from tests.support.db import head_seq, issue_key, nothing_written, open_account
from tests.support.http import PROBLEM_JSON, Headers, acted_by, assert_problem, balance, bearer

MAX = limits.amount_fen_max  # 2**53 - 1


def post_tx(client: TestClient, headers: Headers, postings: list[dict[str, Any]],
            **extra: Any) -> Any:
    return client.post("/v1/transactions", headers=headers, json={"postings": postings, **extra})


def leg(account_id: int, amount_fen: object, currency: str | None = None) -> dict[str, Any]:
    posting: dict[str, Any] = {"account_id": account_id, "amount_fen": amount_fen}
    if currency is not None:
        posting["currency"] = currency
    return posting


def posted(client: TestClient, headers: Headers, postings: list[dict[str, Any]],
           **extra: Any) -> dict[str, Any]:
    response = post_tx(client, headers, postings, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def journal_entry(client: TestClient, headers: Headers, seq: int) -> dict[str, Any]:
    response = client.get(f"/v1/journal/{seq}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def whole_journal(client: TestClient, headers: Headers) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        response = client.get("/v1/journal", headers=headers,
                              params={"after": after, "limit": limits.journal_page_entries_max})
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        after = response.json()["next_after"]
    return items


# --- health, docs ----------------------------------------------------------------------


def test_health_needs_no_key_and_reports_the_journal_head(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    open_account(engine, "asset")
    response = app_client.get("/v1/health")
    assert response.status_code == 200
    last = whole_journal(app_client, operator)[-1]
    assert response.json() == {"status": "ok", "journal_head_seq": last["seq"],
                               "journal_head_hash": last["entry_hash"]}


def test_docs_and_openapi_are_served(app_client: TestClient) -> None:
    docs = app_client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in docs.text
    spec = app_client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["info"]["title"] == "Yufu custody ledger"
    paths = spec.json()["paths"]
    assert {"/v1/health", "/v1/keys", "/v1/accounts", "/v1/accounts/{account_id}",
            "/v1/accounts/{account_id}/postings", "/v1/transactions",
            "/v1/transactions/batch", "/v1/transactions/{transaction_id}/reverse",
            "/v1/journal", "/v1/journal/{seq}"} <= set(paths)
    assert set(paths["/v1/transactions"]) == {"post"}


def test_an_unknown_route_is_a_404_problem(app_client: TestClient, operator: Headers) -> None:
    response = app_client.get("/v1/nowhere", headers=operator)
    assert_problem(response, 404, "not_found", "path")


# --- accounts --------------------------------------------------------------------------


def test_opening_an_account_returns_it_and_journals_it(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    before = head_seq(app_client)
    response = app_client.post("/v1/accounts", headers=operator, json={
        "kind": "liability", "name": "Card float", "currency": "CNY", "merchant_id": "M9",
        "bank_id": "B9", "non_negative": True})
    assert response.status_code == 201, response.text
    body = response.json()
    account_id = body["id"]
    assert isinstance(account_id, int)
    view = {"id": account_id, "kind": "liability", "currency": "CNY", "name": "Card float",
            "merchant_id": "M9", "bank_id": "B9", "non_negative": True}
    assert body == {**view, "balance_fen": 0, "opened_seq": before + 1}
    assert head_seq(app_client) == before + 1
    entry = journal_entry(app_client, operator, before + 1)
    assert entry["kind"] == "account.opened"
    assert acted_by(entry["payload"], "operator") == view
    read = app_client.get(f"/v1/accounts/{account_id}", headers=operator)
    assert read.status_code == 200
    assert read.json() == {**view, "opened_seq": before + 1, "as_of": None, "balance_fen": 0,
                           "normal_balance_fen": 0}


def test_an_account_defaults_to_cny_and_may_go_negative(
        app_client: TestClient, operator: Headers) -> None:
    response = app_client.post("/v1/accounts", headers=operator,
                               json={"kind": "expense", "name": "Fees"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["currency"], body["non_negative"], body["merchant_id"], body["bank_id"]) == (
        "CNY", False, None, None)


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "cash", "name": "x"}, "kind"),
    ({"name": "no kind"}, "kind"),
    ({"kind": "asset"}, "name"),
    ({"kind": "asset", "name": ""}, "name"),
    ({"kind": "asset", "name": "   "}, "name"),
    ({"kind": "asset", "name": "x" * (limits.name_chars_max + 1)}, "name"),
    ({"kind": "asset", "name": "x", "currency": "cny"}, "currency"),
    ({"kind": "asset", "name": "x", "currency": "YUAN"}, "currency"),
    ({"kind": "asset", "name": "x", "non_negative": "yes"}, "non_negative"),
    ({"kind": "asset", "name": "x", "merchant_id": ""}, "merchant_id"),
    ({"kind": "asset", "name": "x", "bank_id": 7}, "bank_id"),
    ({"kind": "asset", "name": "x", "colour": "red"}, "colour"),
    ({"kind": "asset", "name": "nul\u0000inside"}, "name"),
])
def test_opening_an_account_with_bad_input_is_refused_and_nothing_is_written(
        app_client: TestClient, engine: Engine, operator: Headers, body: dict[str, Any],
        field: str) -> None:
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/accounts", headers=operator, json=body)
    assert_problem(response, 422, "invalid_input", field)


def test_reading_an_unknown_account_is_404(app_client: TestClient, operator: Headers) -> None:
    response = app_client.get("/v1/accounts/999999999", headers=operator)
    assert_problem(response, 404, "not_found", "id")


@pytest.mark.parametrize(("path", "field"), [
    ("/v1/accounts/0", "account_id"),
    ("/v1/accounts/abc", "account_id"),
    (f"/v1/accounts/{2**63}", "account_id"),
])
def test_a_bad_account_id_in_the_path_is_422(app_client: TestClient, operator: Headers,
                                               path: str, field: str) -> None:
    assert_problem(app_client.get(path, headers=operator), 422, "invalid_input", field)


def test_normal_balance_flips_the_sign_for_credit_normal_kinds(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    equity = open_account(engine, "equity")
    income = open_account(engine, "income")
    fees = open_account(engine, "expense")
    posted(app_client, operator, [leg(cash, 1000), leg(card, -600), leg(equity, -300),
                                  leg(income, -150), leg(fees, 50)])
    expected = {cash: (1000, 1000), card: (-600, 600), equity: (-300, 300),
                income: (-150, 150), fees: (50, 50)}
    for account_id, (plain, normal) in expected.items():
        body = app_client.get(f"/v1/accounts/{account_id}", headers=operator).json()
        assert (body["balance_fen"], body["normal_balance_fen"]) == (plain, normal)


def test_as_of_returns_the_balance_as_of_a_journal_sequence_number(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    opened = app_client.get(f"/v1/accounts/{card}", headers=operator).json()["opened_seq"]
    first = posted(app_client, operator, [leg(cash, 300), leg(card, -300)])["id"]
    open_account(engine, "asset")  # an unrelated entry between the two transactions
    second = posted(app_client, operator, [leg(cash, 200), leg(card, -200)])["id"]
    assert second > first + 1

    def as_of(seq: int) -> tuple[int, int, int]:
        response = app_client.get(f"/v1/accounts/{card}", headers=operator,
                                  params={"as_of": seq})
        assert response.status_code == 200, response.text
        body = response.json()
        return body["as_of"], body["balance_fen"], body["normal_balance_fen"]

    assert as_of(opened) == (opened, 0, 0)
    assert as_of(first - 1) == (first - 1, 0, 0)
    assert as_of(first) == (first, -300, 300)
    assert as_of(second - 1) == (second - 1, -300, 300)
    assert as_of(second) == (second, -500, 500)
    assert as_of(second + 1000) == (second + 1000, -500, 500)
    now = app_client.get(f"/v1/accounts/{card}", headers=operator).json()
    assert (now["as_of"], now["balance_fen"], now["normal_balance_fen"]) == (None, -500, 500)
    # Before the account was opened, it did not exist.
    before = app_client.get(f"/v1/accounts/{card}", headers=operator,
                            params={"as_of": opened - 1})
    assert_problem(before, 404, "not_found", "id")


@pytest.mark.parametrize("value", ["-1", "x", "1.5", str(2**63)])
def test_as_of_must_be_a_sequence_number(app_client: TestClient, engine: Engine,
                                         operator: Headers, value: str) -> None:
    cash = open_account(engine, "asset")
    response = app_client.get(f"/v1/accounts/{cash}", headers=operator,
                              params={"as_of": value})
    assert_problem(response, 422, "invalid_input", "as_of")


# --- postings of an account ------------------------------------------------------------


def test_postings_are_listed_in_order_and_paged_with_after_and_next_after(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    txs = [posted(app_client, operator, [leg(cash, 100 * n), leg(card, -100 * n)],
                  memo=f"load {n}") for n in range(1, 6)]
    expected = [{"transaction_id": tx["id"], "idx": 1, "amount_fen": -100 * n,
                 "currency": "CNY", "memo": f"load {n}", "ts": tx["ts"]}
                for n, tx in enumerate(txs, start=1)]

    everything = app_client.get(f"/v1/accounts/{card}/postings", headers=operator)
    assert everything.status_code == 200
    assert everything.json() == {"account_id": card, "items": expected, "next_after": None}

    pages, after = [], 0
    while True:
        response = app_client.get(f"/v1/accounts/{card}/postings", headers=operator,
                                  params={"after": after, "limit": 2})
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["items"])
        if page["next_after"] is None:
            break
        assert page["next_after"] == page["items"][-1]["transaction_id"]
        after = page["next_after"]
    assert pages == [expected[0:2], expected[2:4], expected[4:5]]

    later = app_client.get(f"/v1/accounts/{card}/postings", headers=operator,
                           params={"after": txs[2]["id"]})
    assert later.json()["items"] == expected[3:]
    none_left = app_client.get(f"/v1/accounts/{card}/postings", headers=operator,
                               params={"after": txs[4]["id"]})
    assert none_left.json() == {"account_id": card, "items": [], "next_after": None}


def test_paging_keeps_every_posting_of_a_transaction_that_names_the_account_twice(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    first = posted(app_client, operator, [leg(card, -500), leg(card, 200), leg(cash, 300)])
    second = posted(app_client, operator, [leg(card, -50), leg(cash, 50)])
    seen: list[tuple[int, int, int]] = []
    after = 0
    for _ in range(10):
        page = app_client.get(f"/v1/accounts/{card}/postings", headers=operator,
                              params={"after": after, "limit": 1}).json()
        seen += [(i["transaction_id"], i["idx"], i["amount_fen"]) for i in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == [(first["id"], 0, -500), (first["id"], 1, 200), (second["id"], 0, -50)]
    assert balance(app_client, operator, card) == -350


def test_postings_of_an_unknown_account_is_404(app_client: TestClient,
                                                operator: Headers) -> None:
    response = app_client.get("/v1/accounts/999999999/postings", headers=operator)
    assert_problem(response, 404, "not_found", "id")


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"),
    ({"limit": limits.postings_page_max + 1}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"after": -1}, "after"),
])
def test_postings_paging_parameters_are_checked(
        app_client: TestClient, engine: Engine, operator: Headers, params: dict[str, Any],
        field: str) -> None:
    cash = open_account(engine, "asset")
    response = app_client.get(f"/v1/accounts/{cash}/postings", headers=operator,
                              params=params)
    assert_problem(response, 422, "invalid_input", field)


# --- transactions ----------------------------------------------------------------------


def test_a_balanced_transaction_posts_moves_balances_and_is_journaled(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    before = head_seq(app_client)
    response = post_tx(app_client, operator, [leg(cash, 500), leg(card, -500, "CNY")],
                       memo="card load")
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    body = response.json()
    postings = [{"account_id": cash, "amount_fen": 500, "currency": "CNY"},
                {"account_id": card, "amount_fen": -500, "currency": "CNY"}]
    entry = journal_entry(app_client, operator, before + 1)
    assert body == {"id": before + 1, "journal_seq": before + 1,
                    "entry_hash": entry["entry_hash"], "ts": entry["ts"], "memo": "card load",
                    "reverses": None, "postings": postings}
    assert entry["kind"] == "transaction"
    assert acted_by(entry["payload"], "operator") == {"memo": "card load", "reverses": None,
                                                      "postings": postings}
    assert head_seq(app_client) == before + 1
    assert balance(app_client, operator, cash) == 500
    card_view = app_client.get(f"/v1/accounts/{card}", headers=operator).json()
    assert (card_view["balance_fen"], card_view["normal_balance_fen"]) == (-500, 500)


def test_the_largest_exact_amount_posts(app_client: TestClient, engine: Engine,
                                        operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    body = posted(app_client, operator, [leg(cash, MAX), leg(card, -MAX)])
    assert [p["amount_fen"] for p in body["postings"]] == [MAX, -MAX]
    assert balance(app_client, operator, cash) == MAX
    assert balance(app_client, operator, card) == -MAX


def test_a_non_negative_account_may_fall_to_exactly_zero(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    posted(app_client, operator, [leg(cash, 300), leg(card, -300)])
    posted(app_client, operator, [leg(card, 300), leg(cash, -300)])
    assert balance(app_client, operator, card) == 0


@pytest.fixture(scope="module")
def books(engine: Engine) -> dict[str, int]:
    """Accounts for the bad-input cases; the card (never negative) holds 1000 fen."""
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    run_command(engine, PostTransaction.parse(
        {"postings": [leg(cash, 1000), leg(card, -1000)]}))
    return {"cash": cash, "card": card, "usd": open_account(engine, "asset", currency="USD"),
            "usd_float": open_account(engine, "liability", currency="USD")}


BadCase = Callable[[dict[str, int]], object]

BAD_TRANSACTIONS: list[tuple[str, BadCase, int, str, str]] = [
    ("unbalanced", lambda a: {"postings": [leg(a["cash"], 100), leg(a["card"], -99)]},
     422, "invalid_input", "postings"),
    ("zero amount", lambda a: {"postings": [leg(a["cash"], 0), leg(a["card"], 0)]},
     422, "invalid_input", "postings[0].amount_fen"),
    ("float amount", lambda a: {"postings": [leg(a["cash"], 100.0), leg(a["card"], -100)]},
     422, "invalid_input", "postings[0].amount_fen"),
    ("fractional amount", lambda a: {"postings": [leg(a["cash"], 100), leg(a["card"], -99.5)]},
     422, "invalid_input", "postings[1].amount_fen"),
    ("string amount", lambda a: {"postings": [leg(a["cash"], "100"), leg(a["card"], -100)]},
     422, "invalid_input", "postings[0].amount_fen"),
    ("boolean amount", lambda a: {"postings": [leg(a["cash"], True), leg(a["card"], -1)]},
     422, "invalid_input", "postings[0].amount_fen"),
    ("null amount", lambda a: {"postings": [leg(a["cash"], None), leg(a["card"], -1)]},
     422, "invalid_input", "postings[0].amount_fen"),
    ("amount past BIGINT", lambda a: {"postings": [leg(a["cash"], 2**63),
                                                   leg(a["card"], -(2**63))]},
     422, "invalid_input", "postings[0].amount_fen"),
    ("amount past 2**53-1", lambda a: {"postings": [leg(a["cash"], MAX + 1),
                                                    leg(a["card"], -(MAX + 1))]},
     422, "invalid_input", "postings[0].amount_fen"),
    ("negative amount past 2**53-1", lambda a: {"postings": [leg(a["cash"], -(MAX + 1)),
                                                             leg(a["card"], MAX + 1)]},
     422, "invalid_input", "postings[0].amount_fen"),
    ("unknown account", lambda a: {"postings": [leg(a["cash"], 100), leg(999_999_999, -100)]},
     404, "not_found", "postings[1].account_id"),
    ("account id zero", lambda a: {"postings": [leg(0, 100), leg(a["card"], -100)]},
     422, "invalid_input", "postings[0].account_id"),
    ("account id as string", lambda a: {"postings": [leg(str(a["cash"]), 100),
                                                     leg(a["card"], -100)]},
     422, "invalid_input", "postings[0].account_id"),
    ("CNY account posted in USD", lambda a: {"postings": [leg(a["cash"], 100, "USD"),
                                                          leg(a["usd_float"], -100, "USD")]},
     422, "invalid_input", "postings[0].currency"),
    ("USD account posted in CNY", lambda a: {"postings": [leg(a["cash"], 100, "CNY"),
                                                          leg(a["usd_float"], -100, "CNY")]},
     422, "invalid_input", "postings[1].currency"),
    ("currencies mixed and unbalanced", lambda a: {"postings": [leg(a["cash"], 100, "CNY"),
                                                                leg(a["usd_float"], -100, "USD")]},
     422, "invalid_input", "postings"),
    ("lower-case currency", lambda a: {"postings": [leg(a["cash"], 100, "cny"),
                                                    leg(a["card"], -100)]},
     422, "invalid_input", "postings[0].currency"),
    ("overdraft of a non-negative account", lambda a: {"postings": [leg(a["card"], 1001),
                                                                     leg(a["cash"], -1001)]},
     422, "insufficient_funds", "postings"),
    ("single posting", lambda a: {"postings": [leg(a["cash"], 100)]},
     422, "invalid_input", "postings"),
    ("no postings", lambda a: {"postings": []}, 422, "invalid_input", "postings"),
    ("postings missing", lambda a: {"memo": "nothing"}, 422, "invalid_input", "postings"),
    ("too many postings", lambda a: {"postings": [leg(a["cash"], 1)] * 64 + [leg(a["card"], -64)]},
     422, "invalid_input", "postings"),
    ("extra field", lambda a: {"postings": [leg(a["cash"], 1), leg(a["card"], -1)],
                               "colour": "red"},
     422, "invalid_input", "colour"),
    ("extra field in a posting", lambda a: {"postings": [{**leg(a["cash"], 1), "note": "x"},
                                                         leg(a["card"], -1)]},
     422, "invalid_input", "postings[0].note"),
    ("memo too long", lambda a: {"postings": [leg(a["cash"], 1), leg(a["card"], -1)],
                                 "memo": "m" * (limits.memo_chars_max + 1)},
     422, "invalid_input", "memo"),
    ("memo not a string", lambda a: {"postings": [leg(a["cash"], 1), leg(a["card"], -1)],
                                     "memo": 5},
     422, "invalid_input", "memo"),
    ("memo with a NUL character", lambda a: {"postings": [leg(a["cash"], 1), leg(a["card"], -1)],
                                             "memo": "a\u0000b"},
     422, "invalid_input", "memo"),
    ("memo with a lone surrogate", lambda a: {"postings": [leg(a["cash"], 1), leg(a["card"], -1)],
                                              "memo": "a\ud800b"},
     422, "invalid_input", "memo"),
    ("body is a list", lambda a: [leg(a["cash"], 1), leg(a["card"], -1)],
     422, "invalid_input", "body"),
]


@pytest.mark.parametrize(("make", "status", "code", "field"),
                         [case[1:] for case in BAD_TRANSACTIONS],
                         ids=[case[0] for case in BAD_TRANSACTIONS])
def test_a_bad_transaction_is_refused_with_its_field_and_nothing_is_written(
        app_client: TestClient, engine: Engine, operator: Headers, books: dict[str, int],
        make: BadCase, status: int, code: str, field: str) -> None:
    balances = {name: balance(app_client, operator, i) for name, i in books.items()}
    # json.dumps escapes what is not ASCII, so even a lone surrogate can be sent.
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/transactions", content=json.dumps(make(books)),
                                   headers={**operator, "content-type": "application/json"})
    assert_problem(response, status, code, field)
    assert {name: balance(app_client, operator, i) for name, i in books.items()} == balances
    assert balances == {"cash": 1000, "card": -1000, "usd": 0, "usd_float": 0}


def test_malformed_json_is_400_and_nothing_is_written(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/transactions", content=b'{"postings": [',
                                   headers={**operator, "content-type": "application/json"})
    assert_problem(response, 400, "malformed_json", "body")


def test_a_body_over_the_size_limit_is_413_and_nothing_is_written(
        app_client: TestClient, engine: Engine, operator: Headers, books: dict[str, int]) -> None:
    body = json.dumps({"postings": [leg(books["cash"], 1), leg(books["card"], -1)],
                       "memo": ""}).encode()
    padded = body[:-1] + b" " * (limits.request_body_bytes_max - len(body) + 1) + b"}"
    assert len(padded) == limits.request_body_bytes_max + 1
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/transactions", content=padded,
                                   headers={**operator, "content-type": "application/json"})
    assert_problem(response, 413, "body_too_large", "body")


def test_a_chunked_body_over_the_size_limit_is_413_and_nothing_is_written(
        app_client: TestClient, engine: Engine, operator: Headers, books: dict[str, int]) -> None:
    body = json.dumps({"postings": [leg(books["cash"], 1), leg(books["card"], -1)],
                       "memo": ""}).encode()
    padding = limits.request_body_bytes_max - len(body) + 1

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known as it comes
        yield body[:-1]
        for _ in range(padding // 65536):
            yield b" " * 65536
        yield b" " * (padding % 65536) + b"}"

    with nothing_written(app_client, engine):
        response = app_client.post("/v1/transactions", content=chunks(),
                                   headers={**operator, "content-type": "application/json"})
    assert_problem(response, 413, "body_too_large", "body")


def test_a_body_exactly_at_the_size_limit_is_accepted(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    body = json.dumps({"postings": [leg(cash, 1), leg(card, -1)]}).encode()
    padded = body[:-1] + b" " * (limits.request_body_bytes_max - len(body)) + b"}"
    assert len(padded) == limits.request_body_bytes_max
    response = app_client.post("/v1/transactions", content=padded,
                               headers={**operator, "content-type": "application/json"})
    assert response.status_code == 201, response.text
    assert balance(app_client, operator, card) == -1


# --- idempotency -----------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_replays_the_first_answer_and_writes_nothing(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    headers = {**operator, "Idempotency-Key": "load-0001"}
    body = {"postings": [leg(cash, 700), leg(card, -700)], "memo": "retry me"}
    first = app_client.post("/v1/transactions", headers=headers, json=body)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    with nothing_written(app_client, engine):
        again = app_client.post("/v1/transactions", headers=headers, json=body)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert balance(app_client, operator, cash) == 700


def test_the_same_idempotency_key_with_a_different_body_is_409_and_writes_nothing(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    headers = {**operator, "Idempotency-Key": "load-0002"}
    first = app_client.post("/v1/transactions", headers=headers,
                            json={"postings": [leg(cash, 1), leg(card, -1)]})
    assert first.status_code == 201, first.text
    with nothing_written(app_client, engine):
        changed = app_client.post("/v1/transactions", headers=headers,
                                  json={"postings": [leg(cash, 2), leg(card, -2)]})
        elsewhere = app_client.post("/v1/accounts", headers=headers,
                                    json={"kind": "asset", "name": "reused key"})
    assert_problem(changed, 409, "idempotency_conflict", "Idempotency-Key")
    assert_problem(elsewhere, 409, "idempotency_conflict", "Idempotency-Key")
    assert balance(app_client, operator, cash) == 1


def test_idempotency_keys_belong_to_one_api_key(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    other = bearer(issue_key(engine, Role.operator))
    body = {"postings": [leg(cash, 40), leg(card, -40)]}
    mine = app_client.post("/v1/transactions", json=body,
                           headers={**operator, "Idempotency-Key": "shared"})
    theirs = app_client.post("/v1/transactions", json=body,
                             headers={**other, "Idempotency-Key": "shared"})
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] > mine.json()["id"]
    assert balance(app_client, operator, cash) == 80
    # Each key still replays its own first answer.
    replay = app_client.post("/v1/transactions", json=body,
                             headers={**other, "Idempotency-Key": "shared"})
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == theirs.json()


def test_a_refused_request_does_not_use_up_its_idempotency_key(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    headers = {**operator, "Idempotency-Key": "overdraft-then-fixed"}
    with nothing_written(app_client, engine):
        refused = app_client.post("/v1/transactions", headers=headers,
                                  json={"postings": [leg(card, 5), leg(cash, -5)]})
    assert_problem(refused, 422, "insufficient_funds", "postings")
    fixed = app_client.post("/v1/transactions", headers=headers,
                            json={"postings": [leg(cash, 5), leg(card, -5)]})
    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers


def test_opening_an_account_is_idempotent_too(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    headers = {**operator, "Idempotency-Key": "open-savings"}
    body = {"kind": "asset", "name": "Savings"}
    first = app_client.post("/v1/accounts", headers=headers, json=body)
    assert first.status_code == 201, first.text
    with nothing_written(app_client, engine):
        again = app_client.post("/v1/accounts", headers=headers, json=body)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()


@pytest.mark.parametrize("key", ["", "k" * (limits.idempotency_key_chars_max + 1)])
def test_a_bad_idempotency_key_is_422_and_nothing_is_written(
        app_client: TestClient, engine: Engine, operator: Headers, books: dict[str, int],
        key: str) -> None:
    with nothing_written(app_client, engine):
        response = app_client.post(
            "/v1/transactions", headers={**operator, "Idempotency-Key": key},
            json={"postings": [leg(books["cash"], 1), leg(books["card"], -1)]})
    assert_problem(response, 422, "invalid_input", "Idempotency-Key")


# --- batches ---------------------------------------------------------------------------


def test_a_batch_posts_each_item_on_its_own_with_a_status_per_item(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    before = head_seq(app_client)
    response = app_client.post("/v1/transactions/batch", headers=operator, json={
        "transactions": [
            {"postings": [leg(cash, 100), leg(card, -100)], "memo": "load"},
            {"postings": [leg(card, 150), leg(cash, -150)], "memo": "overspend"},
            {"postings": [leg(cash, 10), leg(999_999_999, -10)]},
            {"postings": [leg(cash, 10), leg(card, -9)]},
            {"postings": [leg(card, 60), leg(cash, -60)], "memo": "spend"},
        ]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["atomic"] is False
    assert body["posted"] == 2
    results = body["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, 201), (1, 422), (2, 404),
                                                           (3, 422), (4, 201)]
    assert results[0]["transaction"]["id"] == before + 1
    assert results[0]["transaction"]["memo"] == "load"
    assert results[4]["transaction"]["id"] == before + 2
    assert results[4]["transaction"]["postings"] == [
        {"account_id": card, "amount_fen": 60, "currency": "CNY"},
        {"account_id": cash, "amount_fen": -60, "currency": "CNY"}]
    errors = [(r["error"]["code"], r["error"]["field"]) for r in results if "error" in r]
    assert errors == [("insufficient_funds", "postings"),
                      ("not_found", "postings[1].account_id"),
                      ("invalid_input", "postings")]
    assert all(isinstance(r["error"]["detail"], str) for r in results if "error" in r)
    assert head_seq(app_client) == before + 2
    assert balance(app_client, operator, cash) == 40
    assert balance(app_client, operator, card) == -40
    assert journal_entry(app_client, operator, before + 2)["payload"]["memo"] == "spend"


def test_an_atomic_batch_posts_every_item(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    before = head_seq(app_client)
    response = app_client.post("/v1/transactions/batch", headers=operator, json={
        "atomic": True, "transactions": [
            {"postings": [leg(cash, 100), leg(card, -100)]},
            {"postings": [leg(card, 100), leg(cash, -100)]}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["atomic"], body["posted"]) == (True, 2)
    assert [(r["index"], r["status"], r["transaction"]["id"]) for r in body["results"]] == [
        (0, 201, before + 1), (1, 201, before + 2)]
    assert balance(app_client, operator, card) == 0


@pytest.mark.parametrize(("bad_item", "status", "code", "field"), [
    (lambda cash, card: {"postings": [leg(cash, 10), leg(999_999_999, -10)]},
     404, "not_found", "transactions[1].postings[1].account_id"),
    (lambda cash, card: {"postings": [leg(card, 500), leg(cash, -500)]},
     422, "insufficient_funds", "transactions[1].postings"),
    (lambda cash, card: {"postings": [leg(cash, 10), leg(card, -11)]},
     422, "invalid_input", "transactions[1].postings"),
    (lambda cash, card: {"postings": [leg(cash, 10, "USD"), leg(card, -10, "USD")]},
     422, "invalid_input", "transactions[1].postings[0].currency"),
], ids=["unknown account", "overdraft", "unbalanced", "wrong currency"])
def test_an_atomic_batch_with_one_bad_item_fails_whole_and_writes_nothing(
        app_client: TestClient, engine: Engine, operator: Headers,
        bad_item: Callable[[int, int], dict[str, Any]], status: int, code: str,
        field: str) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/transactions/batch", headers=operator, json={
            "atomic": True, "transactions": [
                {"postings": [leg(cash, 100), leg(card, -100)]},
                bad_item(cash, card),
                {"postings": [leg(cash, 1), leg(card, -1)]}]})
    body = assert_problem(response, status, code, field)
    assert body["detail"].startswith("transactions[1]: ")
    assert balance(app_client, operator, cash) == 0
    assert balance(app_client, operator, card) == 0


@pytest.mark.parametrize("atomic", [False, True])
def test_a_malformed_item_refuses_the_whole_batch(
        app_client: TestClient, engine: Engine, operator: Headers, books: dict[str, int],
        atomic: bool) -> None:
    good = {"postings": [leg(books["cash"], 1), leg(books["card"], -1)]}
    with nothing_written(app_client, engine):
        zero = app_client.post("/v1/transactions/batch", headers=operator, json={
            "atomic": atomic, "transactions": [
                good, {"postings": [leg(books["cash"], 0), leg(books["card"], 0)]}]})
        text_amount = app_client.post("/v1/transactions/batch", headers=operator, json={
            "atomic": atomic, "transactions": [
                good, good, {"postings": [leg(books["cash"], "1"), leg(books["card"], -1)]}]})
    assert_problem(zero, 422, "invalid_input", "transactions[1].postings[0].amount_fen")
    assert_problem(text_amount, 422, "invalid_input", "transactions[2].postings[0].amount_fen")


@pytest.mark.parametrize(("body", "field"), [
    ({"transactions": []}, "transactions"),
    ({}, "transactions"),
    ({"transactions": [{"postings": []}]}, "transactions[0].postings"),
    ({"transactions": "all"}, "transactions"),
    ({"transactions": [], "atomic": "yes"}, "transactions"),
    ({"transactions": [{"postings": []}], "atomic": "yes"}, "transactions[0].postings"),
    ({"atomic": 1, "transactions": None}, "transactions"),
    ({"transactions": [], "colour": "red"}, "transactions"),
])
def test_a_malformed_batch_is_422_and_nothing_is_written(
        app_client: TestClient, engine: Engine, operator: Headers, body: dict[str, Any],
        field: str) -> None:
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/transactions/batch", headers=operator, json=body)
    assert_problem(response, 422, "invalid_input", field)


def test_a_batch_over_the_item_limit_is_422_and_nothing_is_written(
        app_client: TestClient, engine: Engine, operator: Headers, books: dict[str, int]) -> None:
    item = {"postings": [leg(books["cash"], 1), leg(books["card"], -1)]}
    over = {"transactions": [item] * (limits.batch_transactions_max + 1)}
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/transactions/batch", headers=operator, json=over)
        atomic = app_client.post("/v1/transactions/batch", headers=operator,
                                 json={**over, "atomic": True})
    assert_problem(response, 422, "invalid_input", "transactions")
    assert_problem(atomic, 422, "invalid_input", "transactions")


def test_a_batch_at_the_item_limit_posts_every_item(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    before = head_seq(app_client)
    full = {"transactions": [{"postings": [leg(cash, 1), leg(card, -1)]}]
            * limits.batch_transactions_max}
    response = app_client.post("/v1/transactions/batch", headers=operator, json=full)
    assert response.status_code == 200, response.text
    assert response.json()["posted"] == limits.batch_transactions_max
    assert head_seq(app_client) == before + limits.batch_transactions_max
    assert balance(app_client, operator, cash) == limits.batch_transactions_max


def test_a_batch_is_idempotent(app_client: TestClient, engine: Engine,
                               operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    headers = {**operator, "Idempotency-Key": "batch-1"}
    body = {"transactions": [{"postings": [leg(cash, 5), leg(card, -5)]}]}
    first = app_client.post("/v1/transactions/batch", headers=headers, json=body)
    assert first.status_code == 200, first.text
    with nothing_written(app_client, engine):
        again = app_client.post("/v1/transactions/batch", headers=headers, json=body)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (200, "true")
    assert again.json() == first.json()


# --- reversals -------------------------------------------------------------------------


def test_a_reversal_names_the_original_and_restores_the_balances(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    fees = open_account(engine, "income")
    original = posted(app_client, operator, [leg(cash, 1000), leg(card, -990), leg(fees, -10)])
    response = app_client.post(f"/v1/transactions/{original['id']}/reverse", headers=operator)
    assert response.status_code == 201, response.text
    reversal = response.json()
    postings = [{"account_id": cash, "amount_fen": -1000, "currency": "CNY"},
                {"account_id": card, "amount_fen": 990, "currency": "CNY"},
                {"account_id": fees, "amount_fen": 10, "currency": "CNY"}]
    memo = f"reversal of transaction {original['id']}"
    entry = journal_entry(app_client, operator, reversal["id"])
    assert reversal == {"id": original["id"] + 1, "journal_seq": original["id"] + 1,
                        "entry_hash": entry["entry_hash"], "ts": entry["ts"], "memo": memo,
                        "reverses": original["id"], "postings": postings}
    assert acted_by(entry["payload"], "operator") == {"memo": memo, "reverses": original["id"],
                                                      "postings": postings}
    assert [balance(app_client, operator, a) for a in (cash, card, fees)] == [0, 0, 0]


def test_a_reversal_takes_a_memo(app_client: TestClient, engine: Engine,
                                 operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    original = posted(app_client, operator, [leg(cash, 5), leg(card, -5)])
    response = app_client.post(f"/v1/transactions/{original['id']}/reverse", headers=operator,
                               json={"memo": "entered twice"})
    assert response.status_code == 201, response.text
    assert (response.json()["memo"], response.json()["reverses"]) == (
        "entered twice", original["id"])


def test_reversing_twice_is_409_and_writes_nothing(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    original = posted(app_client, operator, [leg(cash, 5), leg(card, -5)])
    first = app_client.post(f"/v1/transactions/{original['id']}/reverse", headers=operator)
    assert first.status_code == 201, first.text
    with nothing_written(app_client, engine):
        second = app_client.post(f"/v1/transactions/{original['id']}/reverse", headers=operator)
        of_reversal = app_client.post(f"/v1/transactions/{first.json()['id']}/reverse",
                                      headers=operator)
    assert_problem(second, 409, "conflict", "id")
    assert_problem(of_reversal, 409, "conflict", "id")
    assert balance(app_client, operator, cash) == 0


def test_reversing_an_unknown_transaction_is_404_and_writes_nothing(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    opened_seq = app_client.post("/v1/accounts", headers=operator, json={
        "kind": "asset", "name": "not a transaction"}).json()["opened_seq"]
    with nothing_written(app_client, engine):
        unknown = app_client.post("/v1/transactions/999999999/reverse", headers=operator)
        not_a_transaction = app_client.post(f"/v1/transactions/{opened_seq}/reverse",
                                            headers=operator)
    assert_problem(unknown, 404, "not_found", "id")
    assert_problem(not_a_transaction, 404, "not_found", "id")


def test_a_reversal_that_would_overdraw_a_non_negative_account_is_422_and_writes_nothing(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    merchant = open_account(engine, "liability")
    load = posted(app_client, operator, [leg(cash, 500), leg(card, -500)])
    posted(app_client, operator, [leg(card, 300), leg(merchant, -300)])
    with nothing_written(app_client, engine):
        response = app_client.post(f"/v1/transactions/{load['id']}/reverse", headers=operator)
    assert_problem(response, 422, "insufficient_funds", "postings")
    assert balance(app_client, operator, card) == -200


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/transactions/0/reverse", None, "transaction_id"),
    ("/v1/transactions/x/reverse", None, "transaction_id"),
    ("/v1/transactions/1/reverse", {"memo": 3}, "memo"),
    ("/v1/transactions/1/reverse", {"why": "typo"}, "why"),
])
def test_a_bad_reversal_request_is_422_and_writes_nothing(
        app_client: TestClient, engine: Engine, operator: Headers, path: str,
        body: dict[str, Any] | None, field: str) -> None:
    with nothing_written(app_client, engine):
        response = app_client.post(path, headers=operator, json=body)
    assert_problem(response, 422, "invalid_input", field)


# --- the journal -----------------------------------------------------------------------


def test_the_journal_lists_entries_in_order_as_a_hash_chain(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    posted(app_client, operator, [leg(cash, 12), leg(card, -12)], memo="chain \u4e2d")
    entries = whole_journal(app_client, operator)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0]["prev_hash"] == "00" * 32
    for before, entry in itertools.pairwise(entries):
        assert entry["prev_hash"] == before["entry_hash"]
    for entry in entries:
        assert set(entry) == {"seq", "ts", "kind", "payload", "prev_hash", "entry_hash",
                              "canonical_b64"}
        canonical = base64.b64decode(entry["canonical_b64"])
        assert hashlib.sha256(canonical).hexdigest() == entry["entry_hash"]
        assert json.loads(canonical) == {"kind": entry["kind"], "payload": entry["payload"],
                                         "prev": entry["prev_hash"], "seq": entry["seq"],
                                         "ts": entry["ts"]}
        assert canonical == json.dumps(json.loads(canonical), ensure_ascii=False,
                                       sort_keys=True, separators=(",", ":")).encode()
    assert [e["ts"] for e in entries] == sorted(e["ts"] for e in entries)
    assert entries[-1]["payload"]["memo"] == "chain \u4e2d"
    assert entries[-1]["seq"] == head_seq(app_client)


def test_the_journal_pages_with_after_and_limit(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    for _ in range(3):
        open_account(engine, "asset")
    entries = whole_journal(app_client, operator)
    head = head_seq(app_client)
    assert len(entries) == head >= 5
    page = app_client.get("/v1/journal", headers=operator, params={"after": 1, "limit": 2})
    assert page.status_code == 200
    assert page.json() == {"items": entries[1:3], "head_seq": head, "next_after": 3}
    collected, after = [], 0
    while after is not None:
        body = app_client.get("/v1/journal", headers=operator,
                              params={"after": after, "limit": 3}).json()
        collected += body["items"]
        after = body["next_after"]
    assert collected == entries
    last = app_client.get("/v1/journal", headers=operator,
                          params={"after": head - 1, "limit": 5}).json()
    assert last == {"items": entries[-1:], "head_seq": head, "next_after": None}
    past = app_client.get("/v1/journal", headers=operator, params={"after": head}).json()
    assert past == {"items": [], "head_seq": head, "next_after": None}


def test_a_journal_entry_is_read_by_its_sequence_number(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    open_account(engine, "asset")
    entries = whole_journal(app_client, operator)
    for entry in (entries[0], entries[-1]):
        assert journal_entry(app_client, operator, entry["seq"]) == entry
    unknown = app_client.get(f"/v1/journal/{entries[-1]['seq'] + 1000}", headers=operator)
    assert_problem(unknown, 404, "not_found", "seq")


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/v1/journal/0", {}, "seq"),
    ("/v1/journal/abc", {}, "seq"),
    ("/v1/journal", {"limit": 0}, "limit"),
    ("/v1/journal", {"limit": limits.journal_page_entries_max + 1}, "limit"),
    ("/v1/journal", {"after": -1}, "after"),
    ("/v1/journal", {"after": "start"}, "after"),
])
def test_bad_journal_parameters_are_422(app_client: TestClient, operator: Headers, path: str,
                                        params: dict[str, Any], field: str) -> None:
    response = app_client.get(path, headers=operator, params=params)
    assert_problem(response, 422, "invalid_input", field)


def test_problem_bodies_are_problem_json(app_client: TestClient, operator: Headers) -> None:
    response = app_client.get("/v1/journal/999999999", headers=operator)
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body == {"type": "urn:yufu:problem:not_found", "title": "Not found", "status": 404,
                    "detail": "journal entry 999999999 does not exist", "code": "not_found",
                    "field": "seq", "request_id": response.headers["x-request-id"]}


# --- many writers at once (group commit) -----------------------------------------------


def test_concurrent_spends_never_overdraw_a_non_negative_account(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability", non_negative=True)
    shop = open_account(engine, "liability")
    posted(app_client, operator, [leg(cash, 1000), leg(card, -1000)])
    before = head_seq(app_client)

    def spend(_: int) -> int:
        return int(post_tx(app_client, operator, [leg(card, 100), leg(shop, -100)]).status_code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(spend, range(16)))
    assert sorted(statuses) == [201] * 10 + [422] * 6
    assert head_seq(app_client) == before + 10
    assert balance(app_client, operator, card) == 0
    assert balance(app_client, operator, shop) == -1000
    entries = whole_journal(app_client, operator)
    for earlier, entry in itertools.pairwise(entries):
        assert entry["prev_hash"] == earlier["entry_hash"]


def test_concurrent_retries_with_one_idempotency_key_post_once(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    headers = {**operator, "Idempotency-Key": "storm"}
    body = {"postings": [leg(cash, 30), leg(card, -30)]}
    before = head_seq(app_client)

    def send(_: int) -> tuple[int, bool, int]:
        response = app_client.post("/v1/transactions", headers=headers, json=body)
        return (response.status_code, "idempotent-replayed" in response.headers,
                response.json()["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(12)))
    assert {status for status, _, _ in answers} == {201}
    assert sorted(replayed for _, replayed, _ in answers) == [False] + [True] * 11
    assert {tx_id for _, _, tx_id in answers} == {before + 1}
    assert head_seq(app_client) == before + 1
    assert balance(app_client, operator, cash) == 30


def test_a_balance_that_would_leave_bigint_is_refused_per_item(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    big = open_account(engine, "asset")
    other = open_account(engine, "liability")
    item = {"postings": [leg(big, MAX)] * 32 + [leg(other, -MAX)] * 32}
    response = app_client.post("/v1/transactions/batch", headers=operator,
                               json={"transactions": [item] * 33})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201] * 32 + [422]
    assert results[32]["error"]["code"] == "invalid_input"
    assert results[32]["error"]["field"] == "postings"
    assert balance(app_client, operator, big) == 1024 * MAX
    assert 1024 * MAX <= 2**63 - 1 < 1056 * MAX


@pytest.mark.parametrize("memo", ["tab\there", "line\nbreak\r\n", "back\\slash \\N \\.",
                                  "\\", "引号 \"quoted\" 'single'", "\u2028\u00e9\U0001f600"])
def test_a_memo_is_stored_exactly_as_sent(app_client: TestClient, engine: Engine,
                                          operator: Headers, memo: str) -> None:
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    tx = posted(app_client, operator, [leg(cash, 1), leg(card, -1)], memo=memo)
    assert tx["memo"] == memo
    assert journal_entry(app_client, operator, tx["id"])["payload"]["memo"] == memo
    items = app_client.get(f"/v1/accounts/{card}/postings", headers=operator).json()["items"]
    assert [i["memo"] for i in items] == [memo]
