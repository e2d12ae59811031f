"""The OpenAPI contract: schemathesis reads /openapi.json, generates requests for every
operation (valid ones and invalid ones), sends them to the app in-process and holds every
answer to the document, with every check it has. Once with an operator key, once with a
merchant key; any finding fails the test.

Every check is on (schemathesis's checks are all enabled unless configured, as with
`--checks all`); the only configuration per operation is positive_data_acceptance's 422 where
a rule beyond the schema refuses a request (RULES_BEYOND_THE_SCHEMA). Not run: the stateful
phase (the document declares no links between operations, so use_after_free and
ensure_resource_availability have nothing to follow) and max_response_time (no limit set).

Derandomised: the same seed and the same examples on every run, so a finding in CI is one a
developer sees again with `scripts/test tests/api/test_openapi_contract.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.python import asgi
from sqlalchemy import Engine, create_engine, text
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app
from api.messages import OutboxSender
from ledger.auth import Role, split_key
from tests.support.db import file_merchant, issue_key
from tests.support.http import ONE_ADDRESS_LIMITS, bearer

# Generated examples per operation in the fuzzing phase (the coverage phase adds its own
# boundary and negative cases, which are most of the findings): 20 took the module from about
# two minutes to seven once supervision doubled the operations (115), so 6 keep it near two.
examples_per_operation = 6
contract_seed = 20260607


def app_document() -> dict[str, Any]:
    """The app's own /openapi.json. It depends on the routes alone, so an app on an engine
    that never connects gives it, when the tests are collected (one test per operation)."""
    return dict(create_app(create_engine("postgresql+psycopg2://")).openapi())


class ModuleApp:
    """The ASGI app schemathesis calls: the module's app, once its fixture has made it on the
    module's database (the schema, made at collection, cannot wait for a fixture)."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the contract_app fixture makes the app"
        await self.app(scope, receive, send)


# Operations whose rules refuse some requests the schema allows, as 422, for what no JSON
# Schema of the request can say: the state of the ledger, or a check over the whole request.
# positive_data_acceptance takes their 422 (every other operation's 422 on a schema-valid
# request is a finding: a rule the document does not state).
RULES_BEYOND_THE_SCHEMA = {
    "POST /v1/keys": "the merchant or bank a key names must be filed or registered",
    "POST /v1/transactions": "postings balance per currency, none is zero",
    "POST /v1/transactions/batch": "each transaction as POST /v1/transactions",
    "POST /v1/rule-sets": "a first version names every rule",
    "POST /v1/merchants": "the credit code's check character, a registered bank",
    # An object's keys cannot be held to a pattern in the document as FastAPI writes it.
    "POST /v1/department-maps": "industries that are not blank, each named once once trimmed",
    "GET /v1/audit/proofs/inclusion": "seq at most tree_size, no tree larger than the journal",
    "GET /v1/audit/proofs/consistency": "first at most second, no tree larger than the "
                                        "journal",
    "POST /v1/banks/{bank_id}/statements": "a file the bank formats parse, for a custody "
                                           "account held at the bank",
    # A phone number however written (+86, separators, full-width digits) is one consumer, so
    # the schema takes any short text; the rule is a mainland mobile number.
    "POST /v1/consumer/codes": "a mainland mobile number",
    "POST /v1/consumer/keys": "a mainland mobile number and a 6-digit code",
    "POST /v1/cards": "a mainland mobile number for the consumer",
    "POST /v1/releases/run": "a day from 2000-01-01 to a year after today",
    "POST /v1/reports": "a period of the kind's own shape that exists and has begun",
    "POST /v1/consumptions/auto-confirm": "a day from 2000-01-01 to today",
    # The body is optional to FastAPI, so that roles answer before it is looked at: a null
    # body is a blank resolution.
    "POST /v1/breaks/{break_id}/resolve": "a resolution that is not blank",
    "POST /v1/breaks/resolve": "a resolution that is not blank; ids or a filter, one of the "
                               "two; ids named once",
    "POST /v1/complaints": "the merchant by id or credit code, one of the two; a hotline's "
                           "order names its id; received by today; a mainland mobile number; "
                           "a card of the merchant",
    "POST /v1/complaints/import": "a CSV or XLSX file of work orders, one row at least to "
                                  "record",
    "GET /v1/complaints/stats": "`to` not before `from`",
    "GET /v1/complaints/stats/departments": "`to` not before `from`",
    "POST /v1/complaint-deadlines": "each period in working days or in days, one of the two",
    "POST /v1/merchants/{merchant_id}/amendments": "identity card numbers' check digits, one "
                                                   "legal representative, a change to make",
    # A credit code's check character is a rule of its own; a name part is 2 characters or
    # more once its spacing is trimmed.
    "GET /v1/public/merchants": "at least 2 characters once trimmed",
    "POST /v1/bans": "a person by a valid identity card number or a pseudonym, a premises by "
                     "its address, one of them as the kind says; an end after the start",
    # supervision
    "POST /v1/supervision/sweep": "a day from 2000-01-01 to today",
    "POST /v1/merchants/{merchant_id}/assessments": "a day from 2000-01-01 to today",
    "POST /v1/supervision/records": "a valid credit code, a known kind, a source not blank",
    "POST /v1/supervision/records/import": "a CSV or XLSX file with its header row",
    "POST /v1/merchants/{merchant_id}/tier-overrides": "expires_on after today",
    "POST /v1/webhooks": "a department or a street, one of the two, in the key's scope",
    "POST /v1/supervision/rules": "every rule within its bounds; an industry's first version "
                                  "fills in from '*' of a jurisdiction that has one",
}
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]

module_app = ModuleApp()
schema = schemathesis.openapi.from_dict(app_document(), config=schemathesis.Config.from_dict({
    "seed": contract_seed,
    "generation": {
        "max-examples": examples_per_operation, "deterministic": True, "database": "none",
        # Text PostgreSQL cannot hold (a NUL character) is refused in every field, query
        # parameter and path, by the edge, as 422 invalid_input (docs/api.md): not a
        # constraint each schema repeats.
        "allow-x00": False,
    },
    "operations": [
        {"include-name": name, "checks": {"positive_data_acceptance": {
            "expected-statuses": [*POSITIVE_STATUSES, "422"]}}}
        for name in RULES_BEYOND_THE_SCHEMA],
}))
schema.app = module_app


def integers_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integers_as_integers(v) for v in value]
    return value


@schema.hook
def map_body(context: Any, body: Any) -> Any:
    """JSON Schema counts 2.0 an integer; this API, which lets no float near money, refuses
    it where an integer goes (docs/api.md: floats are refused). No schema can say so, so the
    generated integers are sent as integers."""
    return integers_as_integers(body)


@pytest.fixture(scope="module")
def contract_app(engine: Engine, outbox: OutboxSender) -> Iterator[FastAPI]:
    """The app as `yufu serve` makes it, on the module's database; schemathesis's ASGI client
    starts it (its lifespan: the appender, the key cache) on the first request and the
    fixture stops it. The limits per client address are off as for every TestClient
    (tests/conftest.py): every request comes from one address, and many present a wrong key
    on purpose."""
    app = create_app(engine, rate_limits=ONE_ADDRESS_LIMITS, sender=outbox)
    module_app.app = app
    yield app
    asgi.shutdown_lifespans()
    module_app.app = None


@pytest.fixture(scope="module")
def merchant(engine: Engine) -> dict[str, str]:
    merchant_id = file_merchant(engine, "CONTRACT-BANK")
    return bearer(issue_key(engine, Role.merchant, merchant_id))


def merchant_of(engine: Engine, headers: dict[str, str]) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT merchant_id FROM api_keys WHERE id = :k"),
                                {"k": key_id(engine, headers)}).scalar_one())


def key_id(engine: Engine, headers: dict[str, str]) -> int:
    prefix = split_key(headers["Authorization"].removeprefix("Bearer "))[0]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT id FROM api_keys WHERE prefix = :p"),
                                {"p": prefix}).scalar_one())


def spare_the_key_in_use(case: schemathesis.Case, engine: Engine, headers: dict[str, str],
                         issue_another: Callable[[], str]) -> None:
    """Revoking the key the run uses would make every later request a 401: a request to
    revoke it revokes a key of the same role, issued for the purpose, instead."""
    if case.operation.label == "POST /v1/keys/{key_id}/revoke" and \
            case.path_parameters.get("key_id") == key_id(engine, headers):
        spare = bearer(issue_another())
        case.path_parameters["key_id"] = key_id(engine, spare)


@schema.parametrize()
def test_the_api_keeps_its_contract_with_an_operator_key(
        case: schemathesis.Case, contract_app: FastAPI, engine: Engine,
        operator: dict[str, str]) -> None:
    spare_the_key_in_use(case, engine, operator, lambda: issue_key(engine, Role.operator))
    case.call_and_validate(headers=operator)


@schema.parametrize()
def test_the_api_keeps_its_contract_with_a_merchant_key(
        case: schemathesis.Case, contract_app: FastAPI, engine: Engine,
        merchant: dict[str, str]) -> None:
    spare_the_key_in_use(case, engine, merchant,
                         lambda: issue_key(engine, Role.merchant, merchant_of(engine, merchant)))
    case.call_and_validate(headers=merchant)
