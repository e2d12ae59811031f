"""The authorisation matrix: every operation the app serves, taken from its own OpenAPI
document (so a new route cannot escape), asked by every kind of caller, against the policy
table below (read from the commands and queries, docs/security.md and the README).

The scene: merchant A at bank A and merchant B at bank B, each with a product and a card
sold to a phone of its own; A also has a pending consumption, a pending release, a pending
refund, a reconciliation break. Every path parameter is filled with an id of A's world:
"own" callers are A's merchant, A's bank, A's cardholder; "other" are B's.

Allowed: a 2xx answer (each allowed write that changes state gets a fresh object of A's
world). Denied: 401 without a valid key, 404 for an id the caller may not see (exactly as
for a missing id: the same request with a missing id answers the same), 403 for a role that
may never do it; and a denied write writes nothing."""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.messages import OutboxSender, read_outbox
from api.runtime import run_command
from ledger.auth import Role
from ledger.custody.rules import BEIJING_TRAINING
from ledger.service import IssueKey
from tests.support.custody import credit_code, id_number
from tests.support.db import WRITTEN_TABLES, issue_key, nothing_written, open_account, row
from tests.support.driver import Driver
from tests.support.http import PROBLEM_JSON, Headers, bearer, key_id_of
from tests.support.statements import Stmt, camt053, entry

TODAY = date(2026, 3, 2)  # a Monday: the start of a 7-day release period
RELEASE_AS_OF = TODAY + timedelta(days=7)  # the scene's pending release: [TODAY, +7)
FRESH_RELEASE_AS_OF = TODAY + timedelta(days=14)  # fresh releases: the next period
BANK_A, BANK_B = "MX-BANK-A", "MX-BANK-B"
PHONE_A, PHONE_B = "13700000001", "13700000002"

# -- the callers -------------------------------------------------------------------------------
NO_KEY, BAD_KEY, REVOKED, EXPIRED = "no key", "bad key", "revoked key", "expired key"
OPERATOR, REGULATOR = "operator", "regulator"
# Regulator keys scoped to a department (docs/supervision.md): A's (区文旅体局, A is a gym) and
# B's (区商务局, B a restaurant). REGULATOR is a district key: it sees both.
R_OWN, R_OTHER = "regulator of A's department", "regulator of B's department"
M_OWN, M_OTHER = "merchant own", "merchant other"
B_OWN, B_OTHER = "bank own", "bank other"
C_OWN, C_OTHER = "consumer own", "consumer other"
UNAUTHENTICATED = (NO_KEY, BAD_KEY, REVOKED, EXPIRED)
KEYED = (OPERATOR, M_OWN, M_OTHER, B_OWN, B_OTHER, REGULATOR, R_OWN, R_OTHER, C_OWN, C_OTHER)
CALLERS = UNAUTHENTICATED + KEYED


# -- the policy --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """Who is let through. Every other caller with a valid key gets 403, but `hidden` ones:
    404, as for a missing id. `scoped` callers are let through to a list that must not name
    merchant A (and every other caller let through with a key must see A in it)."""

    allowed: frozenset[str]
    hidden: frozenset[str] = frozenset()
    scoped: frozenset[str] = frozenset()

    def expected(self, caller: str) -> int | None:
        """None: allowed; else the status of the refusal."""
        if caller in self.allowed:
            return None
        if caller in UNAUTHENTICATED:
            return 401
        return 404 if caller in self.hidden else 403


def allow(*callers: str, hidden: tuple[str, ...] = (), scoped: tuple[str, ...] = ()) -> Rule:
    return Rule(frozenset(callers + scoped), frozenset(hidden), frozenset(scoped))


OPEN = Rule(frozenset(CALLERS))  # no key needed: whatever key comes along is ignored
OPERATOR_ONLY = allow(OPERATOR)
MERCHANT_BOOKS = allow(OPERATOR, REGULATOR, R_OWN, M_OWN, B_OWN,
                       hidden=(M_OTHER, B_OTHER, R_OTHER))
CARD_READ = allow(OPERATOR, REGULATOR, R_OWN, M_OWN, B_OWN, C_OWN,
                  hidden=(M_OTHER, B_OTHER, C_OTHER, R_OTHER))
# a bank: its own merchants' figures; a department key: its department's
AUDIT_READ = allow(OPERATOR, REGULATOR, R_OWN, R_OTHER, B_OWN, B_OTHER)
INSTRUCTION_LIST = allow(OPERATOR, REGULATOR, R_OWN, M_OWN, B_OWN,
                         scoped=(M_OTHER, B_OTHER, R_OTHER))
# Reads of every merchant at once (every key, every read, the whole journal): the operator
# and a district key; a department key is refused for its scope.
DISTRICT_READ = allow(OPERATOR, REGULATOR)
BANK_WRITE = allow(OPERATOR, B_OWN)  # the path names bank A: a bank id is no secret (GET
# /v1/banks lists them), so another bank is refused for its role's scope: 403
CUSTODIAN_WRITE = allow(OPERATOR, B_OWN, hidden=(B_OTHER,))  # A's release, refund, merchant
CONSUMER_ACT = allow(C_OWN, hidden=(C_OTHER,))
# A regulator's write on a merchant of A's department (ledger/access.py require_supervisor)
SUPERVISOR_WRITE = allow(OPERATOR, REGULATOR, R_OWN, hidden=(R_OTHER,))

POLICY: dict[tuple[str, str], Rule] = {
    ("GET", "/v1/health"): OPEN,
    ("GET", "/v1/ready"): OPEN,
    # keys, banks, the consumer's credential
    ("POST", "/v1/keys"): OPERATOR_ONLY,
    # Not for regulators, although they "read everything" (docs/api.md): the README's table
    # names keys and access records as the operator's. api/routes/trust.py decides it.
    ("GET", "/v1/keys"): DISTRICT_READ,  # a district regulator reads everything
    # the key in the path is a spare key of merchant A: a holder revokes its own key only
    ("POST", "/v1/keys/{key_id}/revoke"): allow(
        OPERATOR, hidden=(M_OWN, M_OTHER, B_OWN, B_OTHER, C_OWN, C_OTHER)),
    ("GET", "/v1/access-records"): DISTRICT_READ,
    ("POST", "/v1/banks"): OPERATOR_ONLY,
    ("GET", "/v1/banks"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER, M_OWN, M_OTHER, B_OWN,
                                B_OTHER),
    ("POST", "/v1/consumer/codes"): OPEN,
    ("POST", "/v1/consumer/keys"): OPEN,
    ("GET", "/v1/public/merchants"): OPEN,  # the public lookup: no key at all
    # the ledger core
    ("POST", "/v1/accounts"): OPERATOR_ONLY,
    ("GET", "/v1/accounts/{account_id}"): MERCHANT_BOOKS,
    ("GET", "/v1/accounts/{account_id}/postings"): MERCHANT_BOOKS,
    ("POST", "/v1/transactions"): OPERATOR_ONLY,
    ("POST", "/v1/transactions/batch"): OPERATOR_ONLY,
    ("POST", "/v1/transactions/{transaction_id}/reverse"): OPERATOR_ONLY,
    ("GET", "/v1/journal"): allow(OPERATOR, REGULATOR, R_OWN, B_OWN, scoped=(B_OTHER, R_OTHER)),
    ("GET", "/v1/journal/{seq}"): allow(OPERATOR, REGULATOR, R_OWN, B_OWN,
                                        hidden=(B_OTHER, R_OTHER)),
    # custody: rules, merchants, products, cards
    ("GET", "/v1/rule-sets"): allow(*KEYED),  # the published rules: any key reads them,
    # a cardholder too (its cooling-off days are there)
    ("POST", "/v1/rule-sets"): OPERATOR_ONLY,
    ("POST", "/v1/merchants"): OPERATOR_ONLY,
    # the industry -> department maps: the operator writes them, regulators read them too
    ("GET", "/v1/department-maps"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    ("POST", "/v1/department-maps"): OPERATOR_ONLY,
    ("POST", "/v1/industries/designations"): OPERATOR_ONLY,
    ("GET", "/v1/merchants/{merchant_id}"): MERCHANT_BOOKS,
    ("GET", "/v1/merchants/{merchant_id}/cards"): MERCHANT_BOOKS,
    ("GET", "/v1/merchants/{merchant_id}/payouts.csv"): MERCHANT_BOOKS,
    ("POST", "/v1/merchants/{merchant_id}/freeze"): OPERATOR_ONLY,
    ("POST", "/v1/merchants/{merchant_id}/unfreeze"): OPERATOR_ONLY,
    ("POST", "/v1/merchants/{merchant_id}/tier"): OPERATOR_ONLY,
    ("POST", "/v1/merchants/{merchant_id}/amendments"): OPERATOR_ONLY,
    ("GET", "/v1/merchants/{merchant_id}/amendments"): MERCHANT_BOOKS,
    ("POST", "/v1/merchants/{merchant_id}/close"): OPERATOR_ONLY,
    ("POST", "/v1/merchants/{merchant_id}/deposits"): CUSTODIAN_WRITE,
    ("POST", "/v1/merchants/{merchant_id}/products"): allow(OPERATOR, M_OWN, hidden=(M_OTHER,)),
    ("GET", "/v1/exposure"): allow(OPERATOR, REGULATOR, R_OWN, scoped=(R_OTHER,)),
    ("POST", "/v1/cards"): allow(OPERATOR, M_OWN, hidden=(M_OTHER,)),  # A's product
    ("GET", "/v1/cards/{card_id}"): CARD_READ,
    ("GET", "/v1/cards/{card_id}/receipt"): CARD_READ,
    ("POST", "/v1/cards/{card_id}/consumptions"): allow(OPERATOR, M_OWN, hidden=(M_OTHER,)),
    # the cardholder's consent: neither the merchant who recorded it nor the operator
    ("POST", "/v1/consumptions/{consumption_id}/confirm"): CONSUMER_ACT,
    ("POST", "/v1/consumptions/{consumption_id}/reject"): CONSUMER_ACT,
    ("POST", "/v1/consumptions/auto-confirm"): OPERATOR_ONLY,
    # the merchant's till refunds its cards; the cardholder may use the same route
    ("POST", "/v1/cards/{card_id}/refunds"): allow(OPERATOR, M_OWN, C_OWN,
                                                   hidden=(M_OTHER, C_OTHER)),
    ("POST", "/v1/cards/{card_id}/consumer-refunds"): CONSUMER_ACT,
    ("POST", "/v1/cards/{card_id}/dispute"): allow(OPERATOR, C_OWN, hidden=(C_OTHER,)),
    ("POST", "/v1/cards/{card_id}/dispute/resolve"): OPERATOR_ONLY,
    # releases and refund instructions
    ("POST", "/v1/releases/run"): OPERATOR_ONLY,
    ("GET", "/v1/releases"): INSTRUCTION_LIST,
    ("POST", "/v1/releases/{release_id}/resolve"): CUSTODIAN_WRITE,
    ("GET", "/v1/refunds"): INSTRUCTION_LIST,
    ("POST", "/v1/refunds/{refund_id}/resolve"): CUSTODIAN_WRITE,
    # partner banks
    ("POST", "/v1/banks/{bank_id}/statements"): BANK_WRITE,
    # a department key: the payment file of its merchants' instructions only (no merchant
    # id in it: tests/api/test_department_scope.py shows B's department gets none of A's)
    ("GET", "/v1/banks/{bank_id}/instructions"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER,
                                                       B_OWN),
    ("POST", "/v1/banks/{bank_id}/instructions/{end_to_end_id}/accept"): BANK_WRITE,
    ("POST", "/v1/banks/{bank_id}/instructions/{end_to_end_id}/reject"): BANK_WRITE,
    ("GET", "/v1/breaks"): allow(OPERATOR, REGULATOR, R_OWN, B_OWN, scoped=(B_OTHER, R_OTHER)),
    ("POST", "/v1/breaks/{break_id}/resolve"): OPERATOR_ONLY,
    ("POST", "/v1/breaks/resolve"): OPERATOR_ONLY,
    # long jobs: who may do what the job does (A's statement import: the operator, bank A)
    ("GET", "/v1/jobs/{job_id}"): allow(OPERATOR, B_OWN, hidden=(B_OTHER,)),
    ("GET", "/v1/bank-profiles"): allow(*KEYED),  # how banks' own exports are read: any key
    ("GET", "/v1/cross-verifications"): allow(OPERATOR, REGULATOR, R_OWN, M_OWN, B_OWN,
                                              scoped=(M_OTHER, B_OTHER, R_OTHER)),
    # audit: the key and the heads are public; the export is not for banks
    ("GET", "/v1/audit/public-key"): OPEN,
    ("GET", "/v1/audit/tree-head"): OPEN,
    ("GET", "/v1/audit/tree-heads"): OPEN,
    ("POST", "/v1/audit/tree-heads"): OPERATOR_ONLY,
    ("GET", "/v1/audit/proofs/inclusion"): allow(OPERATOR, REGULATOR, R_OWN, B_OWN,
                                                 hidden=(B_OTHER, R_OTHER)),
    ("GET", "/v1/audit/proofs/consistency"): AUDIT_READ,
    ("GET", "/v1/audit/merchants"): allow(OPERATOR, REGULATOR, R_OWN, B_OWN,
                                          scoped=(B_OTHER, R_OTHER)),
    ("GET", "/v1/audit/totals"): AUDIT_READ,
    ("GET", "/v1/audit/journal/export"): DISTRICT_READ,
    # the regulators' dashboard: merchants by tier, a merchant's tier history
    ("GET", "/v1/tiers"): allow(OPERATOR, REGULATOR, R_OWN, scoped=(R_OTHER,)),
    ("GET", "/v1/merchants/{merchant_id}/tier-changes"): allow(OPERATOR, REGULATOR, R_OWN,
                                                              hidden=(R_OTHER,)),
    # bans (黑名单): listed and lifted by the operator or a district regulator (the matrix's
    # regulator key is one), read by the operator and every regulator
    ("POST", "/v1/bans"): allow(OPERATOR, REGULATOR),
    ("POST", "/v1/bans/{ban_id}/lift"): allow(OPERATOR, REGULATOR),
    ("GET", "/v1/bans"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    ("GET", "/v1/bans.csv"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    ("GET", "/v1/bans/{ban_id}"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    ("GET", "/v1/premises/{premises}"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    # complaints (12345 / 12315): a regulator handles those routed into its scope (a district
    # key: all); a merchant reads its own and answers through the steps' `respond`
    ("POST", "/v1/complaints"): allow(OPERATOR, REGULATOR, R_OWN, hidden=(R_OTHER,)),
    ("POST", "/v1/complaints/import"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    ("GET", "/v1/complaints"): allow(OPERATOR, REGULATOR, R_OWN, M_OWN,
                                     scoped=(M_OTHER, R_OTHER)),
    ("GET", "/v1/complaints/stats"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),  # its own
    ("GET", "/v1/complaints/stats/departments"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    ("GET", "/v1/complaints/{complaint_id}"): allow(OPERATOR, REGULATOR, R_OWN, M_OWN,
                                                    hidden=(M_OTHER, R_OTHER)),
    ("POST", "/v1/complaints/{complaint_id}/steps"): allow(OPERATOR, REGULATOR, R_OWN,
                                                           hidden=(R_OTHER,)),
    ("POST", "/v1/complaint-deadlines"): OPERATOR_ONLY,
    ("GET", "/v1/complaint-deadlines"): allow(*KEYED),  # published, as the rule sets are
    # the routines' reports: the operator and regulators (a scoped key: its scope's,
    # tests/api/test_reports.py)
    ("POST", "/v1/reports"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    ("GET", "/v1/reports"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    ("GET", "/v1/reports/{report_id}"): allow(OPERATOR, REGULATOR,  # a district one
                                                 hidden=(R_OWN, R_OTHER)),
    ("GET", "/v1/reports/{report_id}.xlsx"): allow(OPERATOR, REGULATOR,  # a district one
                                                 hidden=(R_OWN, R_OTHER)),
    ("GET", "/v1/reports/{report_id}.csv"): allow(OPERATOR, REGULATOR,  # a district one
                                                 hidden=(R_OWN, R_OTHER)),
    # supervision: the regulators' writes on a merchant of their scope, the operator's sweep
    ("POST", "/v1/supervision/sweep"): OPERATOR_ONLY,
    ("POST", "/v1/supervision/rules"): OPERATOR_ONLY,
    # a record names its merchant by credit code: one outside the key's scope is a row
    # refused by name, as for a credit code nobody filed (201 all the same)
    ("POST", "/v1/supervision/records"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    ("POST", "/v1/supervision/records/import"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
    ("POST", "/v1/merchants/{merchant_id}/assessments"): SUPERVISOR_WRITE,
    ("POST", "/v1/merchants/{merchant_id}/revenues"): SUPERVISOR_WRITE,
    ("POST", "/v1/merchants/{merchant_id}/tier-overrides"): SUPERVISOR_WRITE,
    ("POST", "/v1/tier-overrides/{override_id}/review"): SUPERVISOR_WRITE,
    ("POST", "/v1/merchants/{merchant_id}/release-hold/clear"): SUPERVISOR_WRITE,
    ("GET", "/v1/merchants/{merchant_id}/risk"): MERCHANT_BOOKS,
    ("GET", "/v1/merchants/{merchant_id}/signals"): MERCHANT_BOOKS,
    # the inbox: a merchant sees its own warnings, a department key its department's
    ("GET", "/v1/alerts"): allow(OPERATOR, REGULATOR, R_OWN, M_OWN, scoped=(M_OTHER, R_OTHER)),
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): SUPERVISOR_WRITE,
    # the body subscribes A's department: another department's key is refused for its scope
    ("POST", "/v1/webhooks"): allow(OPERATOR, REGULATOR, R_OWN),
    ("GET", "/v1/webhooks/deliveries"): allow(OPERATOR, REGULATOR, R_OWN, R_OTHER),
}

# What each denial is, as problem+json `code`.
PROBLEM_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found"}
# Ids nobody has: an id refused must answer exactly as these do.
MISSING: dict[str, Any] = {
    "account_id": 999_999_999_999, "seq": 999_999_999_999, "card_id": "card_0000000000000000",
    "consumption_id": 999_999_999_999, "key_id": 999_999_999_999,
    "merchant_id": "m_0000000000000000", "release_id": 999_999_999_999,
    "refund_id": 999_999_999_999, "product_id": "p_0000000000000000",
    "transaction_id": 999_999_999_999, "break_id": 999_999_999_999, "bank_id": "MX-NO-BANK",
    "job_id": 999_999_999_999, "ban_id": 999_999_999_999, "premises": "矩阵街999999号",
    "complaint_id": 999_999_999_999, "report_id": 999_999_999_999,
    "alert_id": 999_999_999_999, "override_id": 999_999_999_999,
    "end_to_end_id": "YFF999999999999"}
# Ids an operation takes outside its path.
IDS_OUTSIDE_THE_PATH = {("POST", "/v1/cards"): ("product_id",),
                        ("GET", "/v1/audit/proofs/inclusion"): ("seq",)}


# -- the scene ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    path: str
    json: Any = None
    content: bytes | None = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    custody: Driver
    keys: dict[str, Headers | None]
    a: dict[str, Any]
    b: dict[str, Any]
    ids: dict[str, Any]  # A's world: a value for every path parameter, and more
    numbers: Iterator[int] = field(default_factory=itertools.count)

    @property
    def client(self) -> TestClient:
        return self.custody.client

    def ok(self, method: str, path: str, key: Headers | None, body: Any = None,
           status: int = 200) -> Any:
        return self.custody.ok(method, path, key, body, status)

    def n(self) -> int:
        return next(self.numbers)

    # Fresh objects of A's world, for allowed writes that change state.
    def card(self) -> dict[str, Any]:
        """A card of A sold to A's cardholder."""
        return sell(self.custody, self.ids["product_id"], self.keys[M_OWN], PHONE_A)

    def fresh_card(self) -> dict[str, Any]:
        return {"card_id": self.card()["card_id"]}

    def fresh_disputed_card(self) -> dict[str, Any]:
        card = self.card()["card_id"]
        self.ok("POST", f"/v1/cards/{card}/dispute", self.keys[OPERATOR])
        return {"card_id": card}

    def fresh_consumption(self) -> dict[str, Any]:
        use = self.ok("POST", f"/v1/cards/{self.ids['card_id']}/consumptions",
                      self.keys[M_OWN], {"sessions": 1}, 201)
        return {"consumption_id": use["consumption_id"]}

    def fresh_release(self) -> dict[str, Any]:
        """One more confirmed consumption, released in the period after the scene's."""
        use = self.fresh_consumption()["consumption_id"]
        self.ok("POST", f"/v1/consumptions/{use}/confirm", self.keys[C_OWN])
        [release] = self.custody.run_releases(FRESH_RELEASE_AS_OF, self.a["id"])
        return {"release_id": release["release_id"]}

    def refund(self) -> dict[str, Any]:
        card = self.card()["card_id"]
        return dict(self.ok("POST", f"/v1/cards/{card}/refunds", self.keys[M_OWN],
                            {"reason": "balance"}, 201))

    def fresh_refund(self) -> dict[str, Any]:
        return {"refund_id": self.refund()["refund_id"]}

    def fresh_instruction(self) -> dict[str, Any]:
        return {"end_to_end_id": self.refund()["end_to_end_id"]}

    def fresh_merchant(self, frozen: bool = False) -> dict[str, Any]:
        merchant = self.custody.file("体育健身", bank_id=BANK_A)["id"]
        if frozen:
            self.ok("POST", f"/v1/merchants/{merchant}/freeze", self.keys[OPERATOR],
                    {"reason": "matrix"})
        return {"merchant_id": merchant}

    def fresh_ban(self) -> dict[str, Any]:
        return {"ban_id": self.ok("POST", "/v1/bans", self.keys[OPERATOR],
                                  ban_body(self), 201)["id"]}

    def fresh_complaint(self) -> dict[str, Any]:
        return {"complaint_id": self.ok("POST", "/v1/complaints", self.keys[OPERATOR],
                                        complaint(self, self.ids), 201)["id"]}

    def fresh_override(self) -> dict[str, Any]:
        merchant = self.fresh_merchant()["merchant_id"]
        made = self.ok("POST", f"/v1/merchants/{merchant}/tier-overrides", self.keys[OPERATOR],
                       {"tier": "yellow", "reason": "matrix"}, 201)
        return {"override_id": made["override_id"]}

    def fresh_alert(self) -> dict[str, Any]:
        return {"alert_id": alert_of(self.custody, self.fresh_merchant()["merchant_id"])}

    def fresh_hold(self) -> dict[str, Any]:
        """A merchant whose run-away pattern (a day's sales spike, a new legal
        representative) holds its releases."""
        person = [{"role": "legal_representative", "id_number": id_number(self.custody.rng)}]
        # 娱乐场所: A's department (区文旅体局), judged by the shipped rules, which hold
        m = self.custody.file("娱乐场所", bank_id=BANK_A, people=person)
        key = self.custody.merchant_key(m["id"])
        product = self.custody.product(m["id"], key, kind="stored_value", price_fen=150_000,
                                       validity_months=3)
        for _ in range(2):
            self.custody.sell(product["id"], key)
        self.ok("POST", f"/v1/merchants/{m['id']}/amendments", self.keys[OPERATOR], {
            "reason": "matrix", "people": [
                {"role": "legal_representative", "id_number": id_number(self.custody.rng)}]},
            201)
        held = self.ok("POST", f"/v1/merchants/{m['id']}/assessments", self.keys[OPERATOR])
        assert held["releases_held"], held
        return {"merchant_id": m["id"]}

    def statement(self) -> bytes:
        return unexpected_credit(self.a["custody_account"], f"MX-{self.n()}", 1)

    def phone_with_code(self) -> dict[str, str]:
        phone = f"1360{self.n():07d}"
        r = self.client.post("/v1/consumer/codes", json={"phone": phone})
        assert r.status_code == 202, r.text
        code = re.search(r"[0-9]{6}", read_outbox(self.custody.outbox.path, phone)[-1]["text"])
        assert code is not None
        return {"phone": phone, "code": code.group(0)}


def ban_body(w: World) -> dict[str, Any]:
    """A premises no merchant of the scene is at: banning it stops nobody's sales."""
    return {"kind": "premises", "address": f"矩阵街{w.n()}号", "reason": "matrix",
            "source": "matrix"}


def complaint(w: World | None, ids: dict[str, Any], n: int = 0) -> dict[str, Any]:
    """A work order about merchant A, with an order id of its own."""
    number = w.n() if w is not None else n
    return {"channel": "12345", "external_id": f"MX-{number}", "category": "matrix",
            "received_at": f"{TODAY.isoformat()}T09:00:00", "merchant_id": ids["merchant_id"]}


def work_orders(w: World, ids: dict[str, Any]) -> bytes:
    """Orders about A and about B: a department key imports its own and is told the other
    merchant does not exist (row by row), so every regulator's import records one."""
    return ("channel,external_id,received_at,merchant_id,category\n"
            f"12345,MX-FILE-{w.n()},{TODAY.isoformat()} 09:00,{ids['merchant_id']},matrix\n"
            f"12345,MX-FILE-{w.n()},{TODAY.isoformat()} 09:00,{w.b['id']},matrix\n"
            ).encode()
def alert_of(custody: Driver, merchant_id: str) -> int:
    """An alert on the merchant: a tax-arrears record turns it yellow; lifted, it is blue
    again, and the alert stays."""
    credit = custody.ok("GET", f"/v1/merchants/{merchant_id}", custody.operator)["credit_code"]
    record = {"credit_code": credit, "kind": "tax_arrears", "source": "matrix"}
    listed = custody.ok("POST", "/v1/supervision/records", custody.operator, record, 201)
    custody.ok("POST", "/v1/supervision/records", custody.operator, {**record, "listed": False},
               201)
    return int(listed["assessed"][0]["alerts"][0])


def sell(custody: Driver, product_id: str, key: Headers | None, phone: str) -> dict[str, Any]:
    sale = custody.ok("POST", "/v1/cards", key, {"product_id": product_id,
                                                 "consumer": {"phone": phone}}, 201)
    return {**sale, "phone": phone}


def unexpected_credit(account: str, name: str, amount_fen: int) -> bytes:
    """A camt.053 of this custody account with one credit nobody expects: a break."""
    return camt053([Stmt(account, name, 0, TODAY, (
        entry("CRDT", amount_fen, TODAY, cref=f"{name}-UNEXPECTED"),))], message_id=name)


def regulator_of(engine: Engine, department: str) -> Headers:
    """A regulator key scoped to a department."""
    return bearer(str(run_command(engine, IssueKey(Role.regulator,
                                                   department=department))["key"]))


def bad_key() -> str:
    """Well formed (yufu_<16 hex>_<secret>), but no such key exists."""
    return f"yufu_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


@pytest.fixture(scope="module")
def world(app_client: TestClient, engine: Engine, operator: Headers,
          outbox: OutboxSender) -> World:
    custody = Driver(app_client, engine, operator, outbox)
    custody.set_today(TODAY)
    # The expired key first: its second passes while the scene is built.
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    expired = custody.ok("POST", "/v1/keys", operator, {
        "role": "operator", "expires_at": expires_at.isoformat()}, 201)["key"]
    revoked = custody.ok("POST", "/v1/keys", operator, {"role": "operator"}, 201)
    custody.ok("POST", f"/v1/keys/{revoked['key_id']}/revoke", operator, {"reason": "matrix"})

    # The scene's industry judged by rules of its own (data): only tax arrears move a tier,
    # and nothing holds releases, so that what the matrix asks of A (assessments, records,
    # complaints) leaves A's tier and releases as they are.
    custody.ok("POST", "/v1/supervision/rules", operator, {
        "jurisdiction": "beijing", "industry": "体育健身",
        "rules": {"red_any": [], "yellow_any": ["tax_arrears"],
                  "hold_releases_on_run_away": False}}, 201)
    a, b = custody.file("体育健身", bank_id=BANK_A), custody.file("餐饮", bank_id=BANK_B)
    ka, kb = custody.merchant_key(a["id"]), custody.merchant_key(b["id"])
    bank_a, bank_b = custody.bank_key(BANK_A), custody.bank_key(BANK_B)
    pa = custody.product(a["id"], ka, kind="sessions", price_fen=60_000, sessions=60,
                         validity_months=3)
    pb = custody.product(b["id"], kb, kind="stored_value", price_fen=50_000)
    card_a, card_b = sell(custody, pa["id"], ka, PHONE_A), sell(custody, pb["id"], kb, PHONE_B)
    ca, cb = custody.consumer(card_a), custody.consumer(card_b)
    # A's pending release: a confirmed session, its money at the bank, the period released.
    released = custody.consume(card_a["card_id"], ka, sessions=1)
    custody.confirm(released["consumption_id"], card_a)
    custody.deposit(a["id"], bank_a, 30_000)
    [release] = custody.run_releases(RELEASE_AS_OF, a["id"])
    # A's pending consumption and A's pending refund (of another card of A's cardholder).
    pending = custody.consume(card_a["card_id"], ka, sessions=1)
    refunded = sell(custody, pa["id"], ka, PHONE_A)
    refund = custody.ok("POST", f"/v1/cards/{refunded['card_id']}/refunds", ka,
                        {"reason": "balance"}, 201)
    # A's break and cross-verification: a statement with a credit nobody expects.
    statement = unexpected_credit(a["custody_account"], "MX-SCENE", 777)
    r = app_client.post(f"/v1/banks/{BANK_A}/statements", headers=bank_a, content=statement)
    assert r.status_code == 201, r.text
    [opened] = custody.ok("GET", "/v1/breaks", operator)["items"]
    assert opened["merchant_id"] == a["id"]
    # Its import's job (a small one answers at once, but is a job all the same).
    job_id = row(engine, "SELECT id FROM jobs WHERE kind = 'statement_import' AND key = :k",
                 k=hashlib.sha256(statement).hexdigest())["id"]
    spare = issue_key(engine, Role.merchant, a["id"])  # the key others try to revoke
    x, y = open_account(engine), open_account(engine)
    posted = custody.ok("POST", "/v1/transactions", operator, {"postings": [
        {"account_id": x, "amount_fen": 1}, {"account_id": y, "amount_fen": -1}]}, 201)
    banned = custody.ok("POST", "/v1/bans", operator, {
        "kind": "premises", "address": "矩阵街0号", "reason": "matrix", "source": "matrix"}, 201)
    # A's alert (its inbox's), and an override on a merchant of its own to review.
    alert_id = alert_of(custody, a["id"])
    spare_merchant = custody.file("体育健身", bank_id=BANK_A)["id"]
    override_id = custody.ok("POST", f"/v1/merchants/{spare_merchant}/tier-overrides", operator,
                             {"tier": "yellow", "reason": "matrix"}, 201)["override_id"]
    head = custody.ok("POST", "/v1/audit/tree-heads", operator)
    filed = custody.ok("POST", "/v1/complaints", operator,
                       complaint(None, {"merchant_id": a["id"]}, -1), 201)
    report = custody.ok("POST", "/v1/reports", operator, {"kind": "daily"}, 201)

    ids = {"account_id": a["accounts"]["custody_cash"], "merchant_id": a["id"],
           "bank_id": BANK_A, "product_id": pa["id"], "card_id": card_a["card_id"],
           "consumption_id": pending["consumption_id"], "release_id": release["release_id"],
           "refund_id": refund["refund_id"], "end_to_end_id": refund["end_to_end_id"],
           "break_id": opened["id"], "key_id": key_id_of(app_client, spare),
           "seq": card_a["journal_seq"], "tree_size": head["tree_size"],
           "transaction_id": posted["id"], "postings": [x, y], "job_id": job_id,
           "complaint_id": filed["id"], "report_id": report["id"],
           "ban_id": banned["id"], "premises": "矩阵街0号",
           "alert_id": alert_id, "override_id": override_id}
    keys: dict[str, Headers | None] = {
        NO_KEY: None, BAD_KEY: bearer(bad_key()), REVOKED: bearer(revoked["key"]),
        EXPIRED: bearer(expired), OPERATOR: operator, M_OWN: ka, M_OTHER: kb,
        B_OWN: bank_a, B_OTHER: bank_b, REGULATOR: bearer(issue_key(engine, Role.regulator)),
        R_OWN: regulator_of(engine, a["department"]),
        R_OTHER: regulator_of(engine, b["department"]),
        C_OWN: ca, C_OTHER: cb}
    time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.05)
    return World(custody, keys, a, b, ids)


# -- the requests --------------------------------------------------------------------------------
def postings(ids: dict[str, Any]) -> dict[str, Any]:
    x, y = ids["postings"]
    return {"postings": [{"account_id": x, "amount_fen": 1}, {"account_id": y, "amount_fen": -1}]}


Body = Callable[[World, dict[str, Any]], Any]
# A well-formed body per write: only the key should stop it.
BODIES: dict[tuple[str, str], Body] = {
    ("POST", "/v1/keys"): lambda w, ids: {"role": "regulator", "label": "matrix"},
    ("POST", "/v1/keys/{key_id}/revoke"): lambda w, ids: {"reason": "matrix"},
    ("POST", "/v1/banks"): lambda w, ids: {"id": f"MX-NEW-{w.n()}", "name": "矩阵银行",
                                           "code": f"9{secrets.randbelow(10**11):011d}"},
    ("POST", "/v1/consumer/codes"): lambda w, ids: {"phone": f"1350{w.n():07d}"},
    ("POST", "/v1/consumer/keys"): lambda w, ids: w.phone_with_code(),
    ("POST", "/v1/accounts"): lambda w, ids: {"kind": "asset", "name": "matrix"},
    ("POST", "/v1/transactions"): lambda w, ids: postings(ids),
    ("POST", "/v1/transactions/batch"): lambda w, ids: {"transactions": [postings(ids)]},
    ("POST", "/v1/transactions/{transaction_id}/reverse"): lambda w, ids: {"memo": "matrix"},
    ("POST", "/v1/rule-sets"): lambda w, ids: {  # 托育: no merchant of the scene
        "industry": "托育", "rules": {"cooling_off_days": BEIJING_TRAINING.cooling_off_days}},
    ("POST", "/v1/merchants"): lambda w, ids: {
        "name": "矩阵商户", "industry": "餐饮", "credit_code": credit_code(w.custody.rng),
        "bank_id": BANK_A, "custody_account": f"03{w.n():011d}"},
    ("POST", "/v1/department-maps"): lambda w, ids: {
        "jurisdiction": "matrix", "pending_department": "区市监局",
        "departments": {"餐饮": "区商务局"}},
    # an industry of its own each time: designating one twice is a conflict
    ("POST", "/v1/industries/designations"): lambda w, ids: {
        "jurisdiction": "beijing", "industry": f"矩阵行业{w.n()}", "department": "区文旅体局",
        "reason": "区政府指定"},
    ("POST", "/v1/merchants/{merchant_id}/freeze"): lambda w, ids: {"reason": "matrix"},
    ("POST", "/v1/merchants/{merchant_id}/unfreeze"): lambda w, ids: {"reason": "matrix"},
    ("POST", "/v1/merchants/{merchant_id}/tier"): lambda w, ids: {"tier": "yellow"},
    ("POST", "/v1/merchants/{merchant_id}/amendments"): lambda w, ids: {
        "reason": "matrix", "street": f"街道{w.n()}"},
    ("POST", "/v1/merchants/{merchant_id}/deposits"): lambda w, ids: {"amount_fen": 1},
    ("POST", "/v1/merchants/{merchant_id}/products"): lambda w, ids: {
        "kind": "stored_value", "name": "矩阵卡", "price_fen": 100},
    ("POST", "/v1/cards"): lambda w, ids: {"product_id": ids["product_id"],
                                           "consumer": {"phone": PHONE_A}},
    ("POST", "/v1/cards/{card_id}/consumptions"): lambda w, ids: {"sessions": 1},
    ("POST", "/v1/consumptions/auto-confirm"): lambda w, ids: {"as_of": TODAY.isoformat()},
    ("POST", "/v1/cards/{card_id}/refunds"): lambda w, ids: {"reason": "balance"},
    ("POST", "/v1/cards/{card_id}/consumer-refunds"): lambda w, ids: {"reason": "balance"},
    ("POST", "/v1/cards/{card_id}/dispute/resolve"): lambda w, ids: {"outcome": "merchant"},
    # as of the scene's day: no period has ended with anything to release
    ("POST", "/v1/releases/run"): lambda w, ids: {"as_of": TODAY.isoformat(),
                                                  "merchant_id": ids["merchant_id"]},
    ("POST", "/v1/releases/{release_id}/resolve"): lambda w, ids: {"outcome": "failed",
                                                                   "reason": "matrix"},
    ("POST", "/v1/refunds/{refund_id}/resolve"): lambda w, ids: {"outcome": "failed",
                                                                 "reason": "matrix"},
    ("POST", "/v1/banks/{bank_id}/instructions/{end_to_end_id}/accept"): lambda w, ids: {
        "reason": "matrix"},
    ("POST", "/v1/banks/{bank_id}/instructions/{end_to_end_id}/reject"): lambda w, ids: {
        "reason": "matrix"},
    ("POST", "/v1/breaks/{break_id}/resolve"): lambda w, ids: {"resolution": "matrix"},
    ("POST", "/v1/bans"): lambda w, ids: ban_body(w),
    ("POST", "/v1/bans/{ban_id}/lift"): lambda w, ids: {"reason": "matrix"},
    # a filter that picks nothing: the matrix's breaks stay as they are
    ("POST", "/v1/breaks/resolve"): lambda w, ids: {"resolution": "matrix",
                                                    "filter": {"bank_id": "NO-SUCH-BANK"}},
    ("POST", "/v1/complaints"): complaint,
    ("POST", "/v1/reports"): lambda w, ids: {"kind": "daily"},
    ("POST", "/v1/complaints/{complaint_id}/steps"): lambda w, ids: {"step": "accept"},
    ("POST", "/v1/complaint-deadlines"): lambda w, ids: {  # no merchant of the scene's
        "jurisdiction": "matrix", "acceptance": {"working_days": 1},
        "merchant_response": {"days": 3}, "closure": {"working_days": 15}},
    ("POST", "/v1/supervision/sweep"): lambda w, ids: {"as_of": TODAY.isoformat()},
    ("POST", "/v1/supervision/rules"): lambda w, ids: {  # 托育: no merchant of the scene
        "jurisdiction": "beijing", "industry": "托育", "rules": {"complaints_max": 5}},
    # a lifting of a record A never had: A's signals stay as they are
    ("POST", "/v1/supervision/records"): lambda w, ids: {
        "credit_code": w.a["credit_code"], "kind": "litigation", "source": "matrix",
        "listed": False},
    ("POST", "/v1/merchants/{merchant_id}/revenues"): lambda w, ids: {
        "year": TODAY.year - 1, "revenue_fen": 10**12},
    ("POST", "/v1/merchants/{merchant_id}/tier-overrides"): lambda w, ids: {
        "tier": "yellow", "reason": "matrix"},
    ("POST", "/v1/tier-overrides/{override_id}/review"): lambda w, ids: {"reason": "matrix"},
    ("POST", "/v1/merchants/{merchant_id}/release-hold/clear"): lambda w, ids: {
        "reason": "matrix"},
    ("POST", "/v1/webhooks"): lambda w, ids: {
        "department": "区文旅体局", "url": "http://127.0.0.1:9/matrix", "secret": "m" * 16},
}
QUERIES: dict[tuple[str, str], Body] = {
    ("GET", "/v1/public/merchants"): lambda w, ids: {"q": "矩阵"},
    ("GET", "/v1/audit/proofs/inclusion"): lambda w, ids: {"seq": ids["seq"],
                                                           "tree_size": ids["tree_size"]},
    ("GET", "/v1/audit/proofs/consistency"): lambda w, ids: {"first": 1,
                                                             "second": ids["tree_size"]},
    ("GET", "/v1/complaints/stats"): lambda w, ids: {"from": TODAY.isoformat(),
                                                     "to": TODAY.isoformat()},
    ("GET", "/v1/complaints/stats/departments"): lambda w, ids: {
        "from": TODAY.isoformat(), "to": TODAY.isoformat()},
}
# Allowed writes that change what they name get a fresh object of A's world.
FRESH: dict[tuple[str, str], Callable[[World], dict[str, Any]]] = {
    ("POST", "/v1/merchants/{merchant_id}/freeze"): lambda w: w.fresh_merchant(),
    ("POST", "/v1/merchants/{merchant_id}/unfreeze"): lambda w: w.fresh_merchant(frozen=True),
    ("POST", "/v1/merchants/{merchant_id}/tier"): lambda w: w.fresh_merchant(),
    ("POST", "/v1/merchants/{merchant_id}/close"): lambda w: w.fresh_merchant(frozen=True),
    ("POST", "/v1/cards/{card_id}/refunds"): World.fresh_card,
    ("POST", "/v1/cards/{card_id}/consumer-refunds"): World.fresh_card,
    ("POST", "/v1/cards/{card_id}/dispute"): World.fresh_card,
    ("POST", "/v1/cards/{card_id}/dispute/resolve"): World.fresh_disputed_card,
    ("POST", "/v1/consumptions/{consumption_id}/confirm"): World.fresh_consumption,
    ("POST", "/v1/consumptions/{consumption_id}/reject"): World.fresh_consumption,
    ("POST", "/v1/releases/{release_id}/resolve"): World.fresh_release,
    ("POST", "/v1/refunds/{refund_id}/resolve"): World.fresh_refund,
    ("POST", "/v1/bans/{ban_id}/lift"): World.fresh_ban,
    ("POST", "/v1/banks/{bank_id}/instructions/{end_to_end_id}/accept"):
        World.fresh_instruction,
    ("POST", "/v1/banks/{bank_id}/instructions/{end_to_end_id}/reject"):
        World.fresh_instruction,
    ("POST", "/v1/complaints/{complaint_id}/steps"): World.fresh_complaint,
    ("POST", "/v1/merchants/{merchant_id}/tier-overrides"): lambda w: w.fresh_merchant(),
    ("POST", "/v1/tier-overrides/{override_id}/review"): World.fresh_override,
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): World.fresh_alert,
    ("POST", "/v1/merchants/{merchant_id}/release-hold/clear"): World.fresh_hold,
}


def build(w: World, operation: tuple[str, str], ids: dict[str, Any]) -> Call:
    template = operation[1]
    path = template.format(**ids)
    body = BODIES.get(operation)
    query = QUERIES.get(operation)
    params = query(w, ids) if query else {}
    if template == "/v1/banks/{bank_id}/statements":
        return Call(path, content=w.statement(), headers={"Content-Type": "application/xml"})
    if template == "/v1/complaints/import":
        return Call(path, content=work_orders(w, ids), headers={"Content-Type": "text/csv"})
    if template == "/v1/supervision/records/import":  # a lifting A never had, as above
        lifting = f"credit_code,kind,listed,source\n{w.a['credit_code']},欠税,移出,matrix\n"
        return Call(path, content=lifting.encode(), headers={"Content-Type": "text/csv"})
    return Call(path, json=body(w, ids) if body else None, params=params)


def send(w: World, method: str, call: Call, key: Headers | None) -> httpx.Response:
    response: httpx.Response = w.client.request(
        method, call.path, json=call.json, content=call.content, params=call.params,
        headers={**call.headers, **(key or {})})
    return response


# -- proof that a refusal wrote nothing ---------------------------------------------------------
# access_records grows on every read by a bank or regulator, written by a thread of its own.
NOT_COMPARED = {"access_records", "alembic_version"}


def other_tables(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        names = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
    return sorted(set(names) - set(WRITTEN_TABLES) - NOT_COMPARED)


def fingerprints(engine: Engine, tables: list[str]) -> dict[str, tuple[int, str]]:
    """Rows and an md5 of all of them, per table: one round trip for every table."""
    query = " UNION ALL ".join(
        f"SELECT '{name}', count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), ''))"
        f' FROM "{name}" r' for name in tables)
    with engine.connect() as conn:
        return {row[0]: (row[1], row[2]) for row in conn.execute(text(query))}


@contextmanager
def nothing_at_all_written(client: TestClient, engine: Engine, tables: list[str]
                           ) -> Iterator[None]:
    """nothing_written (the journal head and every custody table's rows) and every other
    table: banks, key revocations, consumer codes, statements, breaks, ..."""
    before = fingerprints(engine, tables)
    with nothing_written(client, engine):
        yield
    after = fingerprints(engine, tables)
    changed = {name: (before[name], after[name]) for name in tables if before[name] != after[name]}
    assert not changed, f"tables written: {changed}"


# -- the tests ---------------------------------------------------------------------------------
def served_operations(client: TestClient) -> list[tuple[str, str]]:
    document = client.get("/openapi.json").json()
    return sorted((method.upper(), path) for path, operations in document["paths"].items()
                  for method in operations)


def test_every_served_operation_has_an_expectation_in_the_policy(app_client: TestClient
                                                                  ) -> None:
    served = set(served_operations(app_client))
    assert len(served) >= 60, sorted(served)
    unexpected = sorted(served - set(POLICY))
    stale = sorted(set(POLICY) - served)
    assert not unexpected, f"operations with no expectation in POLICY: {unexpected}"
    assert not stale, f"POLICY names operations the app does not serve: {stale}"


def describe(method: str, call: Call, caller: str, response: httpx.Response) -> str:
    query = f"?{httpx.QueryParams(call.params)}" if call.params else ""
    return (f"{method} {call.path}{query} as {caller}: {response.status_code} "
            f"{response.text[:300]}")


def check_allowed(w: World, operation: tuple[str, str], rule: Rule, caller: str,
                  call: Call, response: httpx.Response) -> str | None:
    method = operation[0]
    what = describe(method, call, caller, response)
    if not 200 <= response.status_code < 300:
        return f"allowed, but {what}"
    if method == "GET" and rule.scoped and caller in KEYED:
        names_a = w.a["id"] in response.text
        if caller in rule.scoped and names_a:
            return f"a list of another's world names merchant A: {what}"
        if caller not in rule.scoped and not names_a:
            return f"a list that should name merchant A does not: {what}"
    return None


def check_denied(method: str, status: int, caller: str, call: Call,
                 response: httpx.Response) -> str | None:
    what = describe(method, call, caller, response)
    if response.status_code != status:
        return f"expected {status}, got {what}"
    if response.headers.get("content-type") != PROBLEM_JSON or \
            response.json().get("code") != PROBLEM_CODES[status]:
        return f"expected a problem+json {PROBLEM_CODES[status]}, got {what}"
    return None


def check_refused(w: World, operation: tuple[str, str], status: int, key: Headers | None,
                  caller: str, call: Call) -> str | None:
    response = send(w, operation[0], call, key)
    failure = check_denied(operation[0], status, caller, call, response)
    if failure is None and status in (403, 404):
        failure = check_like_missing(w, operation, key, caller, call, response)
    return failure


def check_like_missing(w: World, operation: tuple[str, str], key: Headers | None, caller: str,
                       call: Call, response: httpx.Response) -> str | None:
    """Authorisation before existence: the same request with missing ids answers exactly
    alike (status, code, field, and the detail but for the ids themselves), whether it was
    refused for the role (403) or for an id the caller may not see (404)."""
    method, template = operation
    names = set(re.findall(r"\{(\w+)\}", template)) | set(IDS_OUTSIDE_THE_PATH.get(operation, ()))
    swapped = {name: MISSING[name] for name in names}
    if not swapped:
        return None
    twin_call = build(w, operation, {**w.ids, **swapped})
    twin = send(w, method, twin_call, key)

    def shape(r: httpx.Response, ids: dict[str, Any]) -> tuple[Any, ...]:
        problem = r.headers.get("content-type") == PROBLEM_JSON
        body = r.json() if problem else {"detail": r.text}
        detail = str(body.get("detail", ""))
        for name in swapped:
            detail = detail.replace(str(ids[name]), "<id>")
        return r.status_code, body.get("code"), body.get("field"), detail

    if shape(response, w.ids) != shape(twin, {**w.ids, **swapped}):
        return (f"an id answers unlike a missing one: "
                f"{describe(method, call, caller, response)} but "
                f"{describe(method, twin_call, caller, twin)}")
    return None


@pytest.mark.parametrize("caller", CALLERS)
def test_each_caller_is_allowed_or_refused_exactly_as_the_policy_says(
        app_client: TestClient, engine: Engine, world: World, caller: str) -> None:
    tables = other_tables(engine)
    key = world.keys[caller]
    failures: list[str] = []
    for operation in served_operations(app_client):
        rule = POLICY.get(operation)
        if rule is None:
            failures.append(f"{operation}: no expectation in POLICY")
            continue
        method, _ = operation
        status = rule.expected(caller)
        ids = world.ids
        if status is None and operation in FRESH:
            ids = {**ids, **FRESH[operation](world)}
        call = build(world, operation, ids)
        if status is None:
            failure = check_allowed(world, operation, rule, caller, call,
                                    send(world, method, call, key))
        elif method == "GET":
            failure = check_refused(world, operation, status, key, caller, call)
        else:
            failure = None
            try:
                with nothing_at_all_written(app_client, engine, tables):
                    failure = check_refused(world, operation, status, key, caller, call)
            except AssertionError as error:  # the refusal wrote something
                failure = f"wrote ({str(error) or 'custody rows changed'}): " + (
                    failure or f"{method} {call.path} as {caller}, refused as it should be")
        if failure is not None:
            failures.append(failure)
    assert not failures, f"{len(failures)} answers contradict the policy:\n" + "\n".join(
        failures)


def test_a_holder_revokes_its_own_key_but_a_regulator_not_even_its_own(
        app_client: TestClient, world: World, engine: Engine) -> None:
    custody = world.custody
    own = {"merchant": custody.merchant_key(world.a["id"]), "bank": custody.bank_key(BANK_A),
           "consumer": custody.consumer(sell(custody, world.ids["product_id"],
                                             world.keys[M_OWN], "13700000099"))}
    for role, key in own.items():
        key_id = key_id_of(app_client, key["Authorization"][7:])
        r = app_client.post(f"/v1/keys/{key_id}/revoke", headers=key, json={"reason": "lost"})
        assert r.status_code == 200, (role, r.text)
        assert app_client.get("/v1/rule-sets", headers=key).status_code == 401, role
    regulator = bearer(issue_key(engine, Role.regulator))
    key_id = key_id_of(app_client, regulator["Authorization"][7:])
    with nothing_written(app_client, engine):
        r = app_client.post(f"/v1/keys/{key_id}/revoke", headers=regulator)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "forbidden"
