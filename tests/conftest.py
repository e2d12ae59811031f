"""Fixtures: a real PostgreSQL (embedded unless YUFU_TEST_DATABASE_URL), migrated once into a
template; each test module gets its own database cloned from it.

As in production, the owner migrates and grants, and the service role does the rest: the
`engine` fixture and the app under test connect as the service role, so the whole suite shows
the service works with no more than ledger/db/privileges.py grants. Tests that go around the
service on purpose (triggers off, the triggers' own refusals) use `owner_engine`."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from stdnum.cn import uscc

from api.app import create_app
from api.messages import OUTBOX_FILE_NAME, OutboxSender, read_outbox
from api.ratelimit import RateLimits
from api.runtime import Database, ensure_default_rule_sets, grant_service, migrate, run_command
from ledger.auth import LOCAL_OPERATOR, Role
from ledger.custody.merchants import parse_filing
from ledger.custody.rules import DEFAULT_JURISDICTION
from ledger.db.engine import make_engine
from ledger.errors import Conflict
from ledger.flows.filing import FileMerchant
from ledger.service import IssueKey, OpenAccount
from ledger.trust_service import RegisterBank
from tests import testdb


@pytest.fixture(scope="session")
def server() -> Iterator[testdb.Server]:
    external = os.environ.get("YUFU_TEST_DATABASE_URL")
    if external:
        yield testdb.external(external, os.environ.get("YUFU_TEST_SERVICE_DATABASE_URL"))
        return
    home = Path(tempfile.mkdtemp(prefix="yufu-pytest-"))
    try:
        yield testdb.start(home)
    finally:
        testdb.stop(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url(server: testdb.Server) -> str:
    """The owner's URL: for tests that make (and migrate) databases of their own."""
    return server.owner_url


@pytest.fixture(scope="session")
def template_name(server: testdb.Server) -> Iterator[str]:
    """Migrated and granted as `yufu serve` does it (the owner), then the default rule sets
    written as the service."""
    name = f"yufu_tpl_{uuid.uuid4().hex[:10]}"
    testdb.create_database(server.owner_url, name)
    db = Database(service_url=server.service(name), owner_url=server.owner(name))
    migrate(db)
    engine = make_engine(db.service_url)
    ensure_default_rule_sets(engine)
    engine.dispose()
    yield name
    drop_database(server.owner_url, name)


def drop_database(server_url: str, name: str) -> None:
    admin = create_engine(make_url(testdb.normalise_url(server_url)), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def module_database(server: testdb.Server, template_name: str) -> Iterator[str]:
    """The module's own database, cloned from the template (its tables' grants with it) and
    granted as a start of `yufu serve` grants it (a database's own privileges are not
    cloned)."""
    name = f"yufu_t_{uuid.uuid4().hex[:10]}"
    testdb.create_database(server.owner_url, name, template=template_name)
    grant_service(Database(service_url=server.service(name), owner_url=server.owner(name)))
    yield name
    drop_database(server.owner_url, name)


@pytest.fixture(scope="module")
def database_url(server: testdb.Server, module_database: str) -> str:
    """The module's database as the service reaches it: its restricted role."""
    return server.service(module_database)


@pytest.fixture(scope="module")
def owner_database_url(server: testdb.Server, module_database: str) -> str:
    """The module's database as its owner reaches it: for tests that play an insider who
    goes around the service (triggers off, history rewritten) or check the triggers."""
    return server.owner(module_database)


@pytest.fixture(scope="module")
def database_env(database_url: str, owner_database_url: str) -> dict[str, str]:
    """The environment of a `yufu` command on the module's database: both roles' URLs."""
    return {"YUFU_DATABASE_URL": database_url, "YUFU_MIGRATION_DATABASE_URL": owner_database_url}


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


# Every request of a TestClient comes from one address, and the tests send dozens of bad keys
# and one-time codes on purpose: the limits per client address are off for them
# (tests/api/test_edge.py and tests/custody/test_consumer_credential.py test them); every
# other limit keeps its default.
ONE_ADDRESS_LIMITS = RateLimits(failed_auth_rate_per_s=0, code_rate_per_s=0)


@pytest.fixture(scope="module")
def owner_engine(owner_database_url: str) -> Iterator[Engine]:
    eng = make_engine(owner_database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def outbox() -> Iterator[OutboxSender]:
    """The development sender, as `yufu serve` uses it, writing to a folder of its own."""
    home = Path(tempfile.mkdtemp(prefix="yufu-test-outbox-"))
    try:
        yield OutboxSender(home / OUTBOX_FILE_NAME)
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def app_client(engine: Engine, outbox: OutboxSender) -> Iterator[TestClient]:
    with TestClient(create_app(engine, rate_limits=ONE_ADDRESS_LIMITS, sender=outbox),
                    raise_server_exceptions=False) as client:
        yield client


def bank_code(bank_id: str) -> str:
    """A made-up but well-formed CNAPS code (12 digits), one per bank id."""
    return f"{int.from_bytes(hashlib.sha256(bank_id.encode()).digest()[:8], 'big'):012d}"[-12:]


def register_bank(engine: Engine, bank_id: str) -> None:
    """Register the custodian bank a test files merchants with (once per database)."""
    with contextlib.suppress(Conflict):  # registered by an earlier test of the module
        run_command(engine, RegisterBank(bank_id, f"{bank_id} 银行", bank_code(bank_id)))


def issue_key(engine: Engine, role: Role, merchant_id: str | None = None,
              bank_id: str | None = None) -> str:
    if bank_id is not None:
        register_bank(engine, bank_id)
    return str(run_command(engine, IssueKey(role, merchant_id, bank_id))["key"])


def file_merchant(engine: Engine, bank_id: str, industry: str = "体育健身") -> str:
    """A merchant filed directly (not over HTTP), for tests that only need one to exist."""
    register_bank(engine, bank_id)
    base = f"91110105{uuid.uuid4().int % 10**9:09d}"
    filing = parse_filing({"name": "测试商户", "credit_code": base + uscc.calc_check_digit(base),
                           "industry": industry, "bank_id": bank_id,
                           "custody_account": "0200001234567"}, DEFAULT_JURISDICTION)
    return str(run_command(engine, FileMerchant(LOCAL_OPERATOR, filing))["id"])


def consumer_key(client: TestClient, outbox: OutboxSender, phone: str) -> dict[str, str]:
    """A cardholder's own key, the way a consumer gets one: a code sent to the phone, read
    from the development outbox, traded for a key."""
    r = client.post("/v1/consumer/codes", json={"phone": phone})
    assert r.status_code == 202, r.text
    messages = read_outbox(outbox.path, phone)
    code = re.search(r"[0-9]{6}", messages[-1]["text"])
    assert code is not None
    r = client.post("/v1/consumer/keys", json={"phone": phone, "code": code.group(0)})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


@pytest.fixture(scope="module")
def operator_key(engine: Engine) -> str:
    return issue_key(engine, Role.operator)


@pytest.fixture(scope="module")
def operator(operator_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator_key}"}


def open_account(engine: Engine, kind: str = "asset", **extra: Any) -> int:
    body = run_command(engine, OpenAccount.parse({"kind": kind, "name": f"{kind} account",
                                                  **extra}))
    return int(body["id"])  # type: ignore[call-overload]
