"""The OpenAPI document tells the truth: who needs a key, what each operation answers when
it succeeds and when it fails; and its pages, /docs and /redoc, load from the app alone."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api import context
from api.app import ROUTERS
from api.context import china_today
from api.custody_schemas import Rules
from api.messages import OutboxSender, read_outbox
from ledger.auth import Role
from ledger.custody.rules import RuleSet
from tests.support.custody import credit_code
from tests.support.db import bank_code, issue_key
from tests.support.http import PROBLEM_JSON, bearer
from tests.support.statements import Stmt, entry, statement_csv

KEYLESS = {("GET", "/v1/health"), ("GET", "/v1/ready"), ("GET", "/v1/audit/public-key"),
           ("GET", "/v1/audit/tree-head"), ("GET", "/v1/audit/tree-heads"),
           ("POST", "/v1/consumer/codes"), ("POST", "/v1/consumer/keys"),
           ("GET", "/v1/public/merchants")}
CARD_READS = {("GET", "/v1/cards/{card_id}"), ("GET", "/v1/cards/{card_id}/receipt")}
KEY = [{"bearer": []}, {"apiKey": []}]
KEY_OR_RECEIPT = [*KEY, {"receiptCode": []}]
PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
# Answers that are not JSON, by operation: their media types.
FILES = {("GET", "/v1/merchants/{merchant_id}/payouts.csv"): {"text/csv"},
         ("GET", "/v1/bans.csv"): {"text/csv"},
         ("GET", "/v1/audit/journal/export"): {"application/x-ndjson"},
         ("GET", "/v1/reports/{report_id}.xlsx"): {
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
         ("GET", "/v1/reports/{report_id}.csv"): {"text/csv"},
         ("GET", "/v1/banks/{bank_id}/instructions"): {"application/xml", "text/csv",
                                                       "application/json"}}


@pytest.fixture(scope="module")
def document(app_client: TestClient) -> dict[str, Any]:
    response = app_client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def route_dependencies(route: APIRoute) -> set[Any]:
    """Every dependency the route's endpoint resolves, at any depth."""
    found, todo = set(), list(route.dependant.dependencies)
    while todo:
        dependant = todo.pop()
        found.add(dependant.call)
        todo.extend(dependant.dependencies)
    return found


def test_the_document_declares_how_a_key_and_a_receipt_code_are_presented(
        document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["bearer"]["bearerFormat"] == "yufu_<prefix>_<secret>"
    assert schemes["apiKey"] | {"description": ""} == {
        "type": "apiKey", "in": "header", "name": "X-API-Key", "description": ""}
    assert schemes["receiptCode"] | {"description": ""} == {
        "type": "apiKey", "in": "header", "name": "X-Receipt-Code", "description": ""}


def test_every_operation_that_takes_a_key_requires_one_and_no_other_does(
        document: dict[str, Any]) -> None:
    documented = {(method, path): operation.get("security")
                  for method, path, operation in operations(document)}
    routes = [r for router in ROUTERS for r in router.routes
              if isinstance(r, APIRoute) and r.include_in_schema]
    assert len(routes) == len(documented)
    for route in routes:
        (method,) = route.methods
        calls = route_dependencies(route)
        if context.keyed in calls:
            expected = KEY
        elif context.maybe_keyed in calls:
            expected = KEY_OR_RECEIPT
            assert (method, route.path_format) in CARD_READS
        else:
            expected = None
            assert (method, route.path_format) in KEYLESS
        assert documented[method, route.path_format] == expected, (method, route.path)
    assert {op for op, security in documented.items() if security is None} == KEYLESS


def test_every_write_through_the_appender_declares_the_idempotency_key(
        document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        if method != "POST" or (method, path) in KEYLESS:
            assert "Idempotency-Key" not in headers, path
            continue
        declared = headers["Idempotency-Key"]
        assert declared["required"] is False
        assert declared["schema"]["minLength"] == 1
        assert declared["schema"]["maxLength"] == 200


def test_every_operation_documents_the_model_of_its_success(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for method, path, operation in operations(document):
        successes = {s: a for s, a in operation["responses"].items() if s.startswith("2")}
        content = {media: c["schema"] for answer in successes.values()
                   for media, c in answer.get("content", {}).items()}
        assert set(content) == FILES.get((method, path), {"application/json"}), path
        for media, schema in content.items():
            if media == "application/json":
                assert schema["$ref"].removeprefix("#/components/schemas/") in schemas, path
            else:
                assert schema == {"type": "string"}, path


def test_every_error_an_operation_can_answer_is_a_documented_problem(
        document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        errors = {int(s): a for s, a in operation["responses"].items() if s >= "400"}
        for answer in errors.values():
            assert answer["content"] == PROBLEM, path
        statuses = set(errors)
        assert 422 in statuses, path  # the edge refuses NUL or bad UTF-8 in any query
        keyed = (method, path) not in KEYLESS
        limited = keyed or "consumer" in path or path == "/v1/public/merchants"
        assert (429 in statuses) == limited, path
        assert (401 in statuses) == (keyed or path == "/v1/consumer/keys"), path
        assert (403 in statuses) == (keyed and (method, path) not in CARD_READS), path
        if "requestBody" in operation:
            assert 413 in statuses, path
        if method == "POST":
            assert 503 in statuses, path
            assert (409 in statuses) == keyed, path
        if "{" in path:
            assert 404 in statuses or path.startswith("/v1/banks/"), path
    assert "Retry-After" in document["paths"]["/v1/keys"]["get"]["responses"]["429"]["headers"]


def test_no_validation_error_schema_of_fastapi_remains(app_client: TestClient) -> None:
    text = app_client.get("/openapi.json").text
    assert "HTTPValidationError" not in text
    assert '"ValidationError"' not in text


def test_the_problems_answered_are_the_documented_problem(
        app_client: TestClient, document: dict[str, Any], operator: dict[str, str]) -> None:
    problem = validator(document, {"$ref": "#/components/schemas/Problem"})
    answers = [app_client.get("/v1/keys"),  # 401
               app_client.post("/v1/accounts", headers=operator, json={"kind": "nope"}),
               app_client.get("/v1/journal/999999", headers=operator),  # 404
               app_client.post("/v1/accounts", headers=operator, content=b"{")]  # 400
    for response in answers:
        assert response.headers["content-type"] == PROBLEM_JSON
        problem.validate(response.json())
    assert answers[1].json()["errors"]


class Links(HTMLParser):
    """The URLs of a page's scripts, styles and icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        url = named.get("src") if tag == "script" else named.get("href")
        if tag in ("script", "link") and url:
            self.urls.append(url)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_everything_from_the_app_itself(
        app_client: TestClient, page: str) -> None:
    response = app_client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert not re.search(r"(https?:)?//[a-z0-9]", response.text, re.IGNORECASE), \
        "the page names another host"
    links = Links()
    links.feed(response.text)
    assert len(links.urls) >= 2  # the script and the icon at least
    for url in links.urls:
        assert url.startswith("/"), url
        asset = app_client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0, url
    assert "/openapi.json" in response.text


# -- every answer of a working day, held to the document --------------------------------------


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    return jsonschema_rs.Draft202012Validator(
        {**schema, "components": document["components"]}, validate_formats=True)


class Contract:
    """A client that holds each answer to the document: its status documented for the
    operation, its media type documented for that status, its body valid against the schema.
    Remembers which operations answered a success."""

    def __init__(self, client: TestClient, document: dict[str, Any]) -> None:
        self.client, self.document = client, document
        self.templates = [(method, re.compile(re.sub(r"\{\w+\}", "[^/]+", path) + "$"), path)
                          for method, path, _ in operations(document)]
        self.succeeded: set[tuple[str, str]] = set()

    def call(self, method: str, path: str, headers: dict[str, str] | None = None,
             status: int = 200, **more: Any) -> httpx.Response:
        response = self.client.request(method, path, headers=headers, **more)
        assert response.status_code == status, response.text
        template = next(t for m, pattern, t in self.templates
                        if m == method and pattern.match(path.split("?")[0]))
        answer = self.document["paths"][template][method.lower()]["responses"][str(status)]
        media = response.headers.get("content-type", "").split(";")[0]
        if "content" not in answer:
            assert not response.content, template
        else:
            assert media in answer["content"], (template, media)
            if media in ("application/json", PROBLEM_JSON):
                schema = answer["content"][media]["schema"]
                errors = list(validator(self.document, schema).iter_errors(response.json()))
                assert not errors, (template, errors)
        if status < 300:
            self.succeeded.add((method, template))
        return response

    def json(self, method: str, path: str, headers: dict[str, str] | None = None,
             status: int = 200, **more: Any) -> Any:
        return self.call(method, path, headers, status, **more).json()


def test_every_answer_of_a_working_day_is_the_documented_one(
        app_client: TestClient, engine: Engine, outbox: OutboxSender,
        document: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    api = Contract(app_client, document)
    op = bearer(issue_key(engine, Role.operator))
    today = china_today()
    api.call("GET", "/v1/health")
    api.call("GET", "/v1/ready")

    # The operator: a bank, a rule set, a merchant and keys.
    api.call("POST", "/v1/banks", op, 201,
             json={"id": "DOC-BANK", "name": "文档银行", "code": bank_code("DOC-BANK")})
    api.call("GET", "/v1/banks", op)
    api.call("POST", "/v1/rule-sets", op, 201,
             json={"industry": "体育健身", "rules": {"cooling_off_days": 7}})
    api.call("GET", "/v1/rule-sets", op)
    api.call("GET", "/v1/department-maps", op)
    api.call("POST", "/v1/department-maps", op, 201, json={
        "jurisdiction": "doc", "pending_department": "区市监局",
        "departments": {"体育健身": "区文旅体局"}, "reason": "文档"})
    api.call("POST", "/v1/industries/designations", op, 201, json={
        "jurisdiction": "doc", "industry": "游泳", "department": "区文旅体局",
        "reason": "区政府指定"})
    custody_account = "6200000000001234"
    merchant = api.json("POST", "/v1/merchants", op, 201, json={
        "name": "文档游泳馆", "industry": "体育健身", "credit_code": credit_code(random.Random(7)),
        "bank_id": "DOC-BANK", "custody_account": custody_account})["id"]
    keys = {role: api.json("POST", "/v1/keys", op, 201, json={"role": role, **scope})
            for role, scope in (("merchant", {"merchant_id": merchant}),
                                ("bank", {"bank_id": "DOC-BANK"}), ("regulator", {}))}
    mkey, bkey, rkey = (bearer(keys[r]["key"]) for r in ("merchant", "bank", "regulator"))
    api.call("GET", "/v1/keys", op)

    # The ledger core.
    cash = api.json("POST", "/v1/accounts", op, 201, json={"kind": "asset", "name": "c"})["id"]
    equity = api.json("POST", "/v1/accounts", op, 201, json={"kind": "equity", "name": "e"})["id"]
    postings = [{"account_id": cash, "amount_fen": 500}, {"account_id": equity,
                                                         "amount_fen": -500}]
    tx = api.json("POST", "/v1/transactions", op, 201, json={"postings": postings})
    batch = api.json("POST", "/v1/transactions/batch", op, json={"transactions": [
        {"postings": postings}, {"postings": [{"account_id": 10**9, "amount_fen": 1},
                                              {"account_id": cash, "amount_fen": -1}]}]})
    assert [r["status"] for r in batch["results"]] == [201, 404]
    api.call("POST", f"/v1/transactions/{tx['id']}/reverse", op, 201)
    api.call("GET", f"/v1/accounts/{cash}", op)
    api.call("GET", f"/v1/accounts/{cash}/postings", op)
    api.call("GET", "/v1/journal", op)
    api.call("GET", f"/v1/journal/{tx['id']}", op)

    # A till sells and consumes; the cardholder confirms and rejects with their own key.
    product = api.json("POST", f"/v1/merchants/{merchant}/products", mkey, 201, json={
        "kind": "sessions", "name": "10节游泳课", "price_fen": 100000, "sessions": 10,
        "validity_months": 3})["id"]
    phone = "13800138123"

    def sell() -> dict[str, Any]:
        return dict(api.json("POST", "/v1/cards", mkey, 201,
                             json={"product_id": product, "consumer": {"phone": phone}}))

    def consume(card_id: str) -> int:
        return int(api.json("POST", f"/v1/cards/{card_id}/consumptions", mkey, 201,
                            json={"sessions": 1})["consumption_id"])

    sale = sell()
    card, receipt = sale["card_id"], {"X-Receipt-Code": sale["receipt_code"]}
    api.call("GET", f"/v1/cards/{card}", receipt)
    api.call("GET", f"/v1/merchants/{merchant}", mkey)
    api.call("GET", f"/v1/merchants/{merchant}/cards", mkey)
    api.call("POST", "/v1/consumer/codes", status=202, json={"phone": phone})
    code = re.findall(r"[0-9]{6}", read_outbox(outbox.path, phone)[-1]["text"])[0]
    ckey = bearer(api.json("POST", "/v1/consumer/keys", status=201,
                           json={"phone": phone, "code": code})["key"])
    api.call("POST", f"/v1/consumptions/{consume(card)}/confirm", ckey)
    api.call("POST", f"/v1/consumptions/{consume(card)}/reject", ckey)
    consume(card)
    # Silence confirms once its working days have passed: forty days on.
    later = today + timedelta(days=40)
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    kept_clock, ctx.clock = ctx.clock, lambda: later
    try:
        assert api.json("POST", "/v1/consumptions/auto-confirm", op,
                        json={"as_of": later.isoformat()})["confirmed"]
    finally:
        ctx.clock = kept_clock

    # The bank sees the money; a release; a refund settled; the cardholder's own refund and
    # dispute.
    api.call("POST", f"/v1/merchants/{merchant}/deposits", bkey, 201, json={"amount_fen": 100000})
    run = api.json("POST", "/v1/releases/run", op, json={
        "as_of": (today + timedelta(days=14)).isoformat(), "merchant_id": merchant})
    api.call("GET", "/v1/releases", bkey)
    api.call("POST", f"/v1/releases/{run['releases'][0]['release_id']}/resolve", bkey,
             json={"outcome": "settled"})
    second = sell()["card_id"]
    refund = api.json("POST", f"/v1/cards/{second}/refunds", mkey, 201,
                      json={"reason": "cooling_off"})
    api.call("GET", "/v1/refunds", bkey)
    api.call("POST", f"/v1/merchants/{merchant}/deposits", bkey, 201, json={"amount_fen": 100000})
    api.call("POST", f"/v1/refunds/{refund['refund_id']}/resolve", bkey,
             json={"outcome": "settled"})
    own = api.json("POST", f"/v1/cards/{sell()['card_id']}/consumer-refunds", ckey, 201,
                   json={"reason": "balance"})
    disputed = sell()["card_id"]
    api.call("POST", f"/v1/cards/{disputed}/dispute", ckey)
    resolved = api.json("POST", f"/v1/cards/{disputed}/dispute/resolve", op,
                        json={"outcome": "consumer"})

    # The bank's files: instructions out, answers back, a statement in.
    for kind in ("json", "csv", "pain001"):
        api.call("GET", "/v1/banks/DOC-BANK/instructions", bkey, params={"format": kind})
    for kind in ("csv", "pain001"):  # a payment file carries at least one instruction
        api.call("GET", "/v1/banks/NO-SUCH-BANK/instructions", op, 204, params={"format": kind})
    bank = "/v1/banks/DOC-BANK/instructions"
    api.call("POST", f"{bank}/{own['end_to_end_id']}/accept", bkey, json={"reason": ""})
    assert api.json("POST", f"{bank}/{resolved['refund']['end_to_end_id']}/reject", bkey,
                    json={"reason": "closed account"})["instruction"]["status"] == "failed"
    statement = statement_csv([Stmt(custody_account, "S1", 0, today,
                                    (entry("CRDT", 777, today),))])
    api.call("POST", "/v1/banks/DOC-BANK/statements", {**bkey, "Content-Type": "text/csv"}, 201,
             content=statement, params={"filename": "s.csv"})
    # A file over one slice (made small here): 202 and the job, polled until done.
    monkeypatch.setattr(app_client.app.state.ctx, "import_slice_lines_max", 1)  # type: ignore[attr-defined]
    day = today - timedelta(days=1)  # the CSV's statement is its account's day
    bigger = statement_csv([Stmt(custody_account, "S2", 0, day,
                                 (entry("CRDT", 778, day), entry("CRDT", 779, day)))])
    job = api.json("POST", "/v1/banks/DOC-BANK/statements",
                   {**bkey, "Content-Type": "text/csv"}, 202, content=bigger,
                   params={"filename": "s2.csv"})
    while job["status"] == "running":
        job = api.json("GET", f"/v1/jobs/{job['job_id']}", bkey)
    assert job["status"] == "done"
    breaks = api.json("GET", "/v1/breaks", op)["items"]
    api.call("POST", f"/v1/breaks/{breaks[0]['id']}/resolve", op,
             json={"resolution": "a transfer by the merchant itself"})
    api.call("POST", "/v1/breaks/resolve", op, json={
        "resolution": "transfers by the merchant itself", "filter": {"bank_id": "DOC-BANK"}})
    api.call("GET", "/v1/cross-verifications", op)
    api.call("GET", "/v1/bank-profiles", op)

    # The audit.
    size = api.json("POST", "/v1/audit/tree-heads", op)["tree_size"]
    api.call("GET", "/v1/audit/tree-head")
    api.call("GET", "/v1/audit/tree-heads")
    api.call("GET", "/v1/audit/public-key")
    api.call("GET", "/v1/audit/proofs/inclusion", rkey, params={"seq": 1, "tree_size": size})
    api.call("GET", "/v1/audit/proofs/consistency", rkey, params={"first": 1, "second": size})
    api.call("GET", "/v1/audit/merchants", rkey)
    api.call("GET", "/v1/audit/totals", rkey)
    api.call("GET", "/v1/audit/journal/export", rkey)
    api.call("GET", f"/v1/cards/{card}/receipt", receipt)
    api.call("GET", "/v1/exposure", rkey)
    api.call("GET", "/v1/public/merchants", params={"q": "健身"})

    # A complaint (12345) about the merchant, holding its card's releases, handled to its end
    # by a district regulator; the merchant answers; a file of work orders; the figures.
    received = f"{(today - timedelta(days=1)).isoformat()}T09:00:00"
    complaint = api.json("POST", "/v1/complaints", rkey, 201, json={
        "channel": "12345", "external_id": "DOC-1", "received_at": received,
        "merchant_id": merchant, "category": "退费纠纷", "amount_fen": 50000,
        "card_id": card, "phone": phone, "hold_releases": True})["id"]
    for who, name in ((rkey, "accept"), (mkey, "respond"), (rkey, "mediate"),
                      (rkey, "resolve")):
        api.call("POST", f"/v1/complaints/{complaint}/steps", who, json={"step": name})
    orders = ("channel,external_id,received_at,merchant_id,category\n"
              f"12315,DOC-2,{received},{merchant},虚假宣传\n").encode()
    api.call("POST", "/v1/complaints/import", {**op, "Content-Type": "text/csv"}, 201,
             content=orders, params={"filename": "工单.csv"})
    api.call("GET", "/v1/complaints", mkey)
    api.call("GET", f"/v1/complaints/{complaint}", rkey)
    api.call("POST", "/v1/complaint-deadlines", op, 201, json={
        "jurisdiction": "文档", "acceptance": {"working_days": 7},
        "merchant_response": {"days": 10}, "closure": {"working_days": 45}, "source": "文档"})
    api.call("GET", "/v1/complaint-deadlines", rkey)
    api.call("GET", "/v1/complaints/stats", rkey, params={
        "from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()})

    # The routines: a daily control report (日管控), listed, read and downloaded.
    report = api.json("POST", "/v1/reports", op, 201,
                      json={"kind": "daily", "period": today.isoformat()})["id"]
    api.call("GET", "/v1/reports", rkey)
    api.call("GET", f"/v1/reports/{report}", rkey)
    api.call("GET", f"/v1/reports/{report}.xlsx", rkey)
    api.call("GET", f"/v1/reports/{report}.csv", rkey, params={"lang": "en"})

    # The merchant runs away: first its legal representative changes (变更登记).
    api.call("POST", f"/v1/merchants/{merchant}/amendments", op, 201,
             json={"reason": "法定代表人变更", "street": "望京街道", "address": "望京街 8 号",
                   "people": [{"role": "legal_representative",
                               "id_number": "110105198001011238"}]})
    api.call("GET", f"/v1/merchants/{merchant}/amendments", rkey)
    supervision_day(api, op, rkey, merchant)
    api.call("POST", f"/v1/merchants/{merchant}/tier", op,
             json={"tier": "yellow", "reasons": ["投诉"]})
    api.call("GET", "/v1/tiers", rkey)
    api.call("GET", f"/v1/merchants/{merchant}/tier-changes", rkey)
    api.call("POST", f"/v1/merchants/{merchant}/freeze", op, json={"reason": "调查"})
    api.call("POST", f"/v1/merchants/{merchant}/unfreeze", op, json={"reason": "查清"})
    api.call("POST", f"/v1/merchants/{merchant}/freeze", op, json={"reason": "关门跑路"})
    api.call("POST", f"/v1/merchants/{merchant}/close", op)
    api.call("GET", f"/v1/merchants/{merchant}/payouts.csv", bkey)

    # Its people are blacklisted (黑名单); a premises too; a ban lifted; the export.
    [listed] = api.json("GET", "/v1/bans", rkey, params={"merchant_id": merchant})["items"]
    api.call("GET", f"/v1/bans/{listed['id']}", rkey)
    api.call("POST", "/v1/bans", rkey, 201, json={
        "kind": "premises", "address": "望京街 8 号", "reason": "反复更换经营者",
        "source": "市场监管局"})
    api.call("POST", f"/v1/bans/{listed['id']}/lift", rkey, json={"reason": "已清偿"})
    api.call("GET", "/v1/bans.csv", rkey, params={"kind": "person"})
    api.call("GET", "/v1/premises/望京街8号", rkey)

    # Who read what; a key revoked.
    api.call("GET", "/v1/access-records", op)
    api.call("POST", f"/v1/keys/{keys['regulator']['key_id']}/revoke", op,
             json={"reason": "rotated"})

    documented = {(method, path) for method, path, _ in operations(document)}
    assert documented - api.succeeded == set()


def supervision_day(api: Contract, op: dict[str, str], rkey: dict[str, str], merchant: str
                    ) -> None:
    """The regulators' half: rules, records, a file, revenue, assessments, the sweep, the
    risk and signals read, an override reviewed, the inbox, a webhook, a hold cleared."""
    api.call("POST", "/v1/supervision/rules", op, 201, json={
        "jurisdiction": "beijing", "industry": "体育健身", "rules": {"complaints_max": 5}})
    credit = api.json("GET", f"/v1/merchants/{merchant}", rkey)["credit_code"]
    api.call("POST", "/v1/supervision/records", rkey, 201, json={
        "credit_code": credit, "kind": "舆情", "source": "微博"})
    api.call("POST", "/v1/supervision/records/import", {**rkey, "content-type": "text/csv"},
             201, content=f"统一社会信用代码,类型,来源\n{credit},涉诉,法院\n,欠税,x\n".encode())
    api.call("POST", f"/v1/merchants/{merchant}/revenues", rkey, 201,
             json={"year": 2025, "revenue_fen": 10_000_000})
    api.call("POST", f"/v1/merchants/{merchant}/assessments", rkey, json={})
    api.call("POST", "/v1/supervision/sweep", op, json={})
    api.call("GET", f"/v1/merchants/{merchant}/risk", rkey)
    api.call("GET", f"/v1/merchants/{merchant}/signals", rkey)
    override = api.json("POST", f"/v1/merchants/{merchant}/tier-overrides", rkey, 201,
                        json={"tier": "red", "reason": "联合约谈"})["override_id"]
    api.call("POST", f"/v1/tier-overrides/{override}/review", rkey, json={"reason": "复查"})
    inbox = api.json("GET", "/v1/alerts", rkey, params={"unacknowledged": "true"})["items"]
    alert = next(a["id"] for a in inbox if a["merchant_id"] == merchant)
    api.call("POST", f"/v1/alerts/{alert}/acknowledge", rkey)
    api.call("POST", "/v1/webhooks", rkey, 201, json={
        "department": "区文旅体局", "url": "http://127.0.0.1:9/hook", "secret": "s" * 16})
    api.call("GET", "/v1/webhooks/deliveries", rkey)
    # A run-away pattern: a day's sales spike and a new legal representative hold releases.
    people = [{"role": "legal_representative", "id_number": "110105198001011238"}]
    runner = api.json("POST", "/v1/merchants", op, 201, json={
        "name": "文档健身房", "industry": "体育健身", "credit_code": credit_code(random.Random(8)),
        "bank_id": "DOC-BANK", "custody_account": "6200000000005678", "people": people})["id"]
    key = bearer(api.json("POST", "/v1/keys", op, 201, json={
        "role": "merchant", "merchant_id": runner})["key"])
    product = api.json("POST", f"/v1/merchants/{runner}/products", key, 201, json={
        "kind": "stored_value", "name": "年卡", "price_fen": 150_000, "validity_months": 3})
    for phone in ("13900000701", "13900000702"):
        api.call("POST", "/v1/cards", key, 201, json={"product_id": product["id"],
                                                      "consumer": {"phone": phone}})
    api.call("POST", f"/v1/merchants/{runner}/amendments", op, 201, json={
        "reason": "法定代表人变更",
        "people": [{"role": "legal_representative", "id_number": "11010519491231002X"}]})
    api.call("POST", f"/v1/merchants/{runner}/assessments", rkey)
    api.call("POST", f"/v1/merchants/{runner}/release-hold/clear", rkey,
             json={"reason": "现场检查"})


def test_the_rules_model_has_the_fields_of_a_rule_set() -> None:
    assert list(Rules.model_fields) == [f.name for f in dataclasses.fields(RuleSet)]


@pytest.mark.parametrize(("path", "allow"), [("/v1/keys", "GET, POST"),
                                             ("/v1/audit/tree-heads", "GET, POST"),
                                             ("/v1/health", "GET"),
                                             ("/v1/cards", "POST")])
def test_a_method_a_path_does_not_take_is_answered_with_every_method_it_does(
        app_client: TestClient, path: str, allow: str) -> None:
    response = app_client.request("OPTIONS", path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
