"""Fixtures: a real PostgreSQL (embedded unless YUFU_TEST_DATABASE_URL), migrated once into a
template; each test module gets its own database cloned from it."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text

from api.app import create_app
from api.ratelimit import RateLimits
from api.runtime import ensure_default_rule_sets, run_command, upgrade
from ledger.auth import Role
from ledger.db.engine import make_engine
from ledger.service import IssueKey, OpenAccount
from tests import testdb


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    external = os.environ.get("YUFU_TEST_DATABASE_URL")
    if external:
        yield external
        return
    home = Path(tempfile.mkdtemp(prefix="yufu-pytest-"))
    try:
        yield testdb.start(home)
    finally:
        testdb.stop(home)


@pytest.fixture(scope="session")
def template_name(server_url: str) -> Iterator[str]:
    name = f"yufu_tpl_{uuid.uuid4().hex[:10]}"
    url = testdb.create_database(server_url, name)
    upgrade(url)
    engine = make_engine(url)
    ensure_default_rule_sets(engine)
    engine.dispose()
    yield name
    _drop(server_url, name)


def _drop(server_url: str, name: str) -> None:
    admin = create_engine(make_url(testdb.normalise_url(server_url)), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def database_url(server_url: str, template_name: str) -> Iterator[str]:
    name = f"yufu_t_{uuid.uuid4().hex[:10]}"
    url = testdb.create_database(server_url, name, template=template_name)
    yield url
    _drop(server_url, name)


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


# Every request of a TestClient comes from one address, and the tests of keys and roles send
# dozens of bad keys on purpose: the limit on failed authentications per address is off for
# them (tests/api/test_edge.py tests it); every other limit keeps its default.
NO_FAILED_AUTH_LIMIT = RateLimits(failed_auth_rate_per_s=0)


@pytest.fixture(scope="module")
def app_client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, rate_limits=NO_FAILED_AUTH_LIMIT),
                    raise_server_exceptions=False) as client:
        yield client


def issue_key(engine: Engine, role: Role, merchant_id: str | None = None,
              bank_id: str | None = None) -> str:
    return str(run_command(engine, IssueKey(role, merchant_id, bank_id))["key"])


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
