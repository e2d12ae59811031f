"""Fixtures: a real PostgreSQL (embedded unless YUFU_TEST_DATABASE_URL), migrated once into a
template; each test module gets its own database cloned from it.

As in production, the owner migrates and grants, and the service role does the rest: the
`engine` fixture and the app under test connect as the service role, so the whole suite shows
the service works with no more than ledger/db/privileges.py grants. Tests that go around the
service on purpose (triggers off, the triggers' own refusals) use `owner_engine`."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.messages import OUTBOX_FILE_NAME, OutboxSender
from api.runtime import (
    Database,
    ensure_default_department_maps,
    ensure_default_rule_sets,
    grant_service,
    migrate,
)
from ledger.auth import Role
from ledger.db.engine import make_engine
from tests.support import testdb
from tests.support.db import drop_database, issue_key
from tests.support.driver import Banking, Driver
from tests.support.http import ONE_ADDRESS_LIMITS, Headers, bearer


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
    ensure_default_department_maps(engine)
    engine.dispose()
    yield name
    drop_database(server.owner_url, name)


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


@pytest.fixture(scope="module")
def operator_key(engine: Engine) -> str:
    return issue_key(engine, Role.operator)


@pytest.fixture(scope="module")
def operator(operator_key: str) -> Headers:
    return bearer(operator_key)


@pytest.fixture(scope="module")
def custody(app_client: TestClient, engine: Engine, operator: Headers,
            outbox: OutboxSender) -> Driver:
    return Driver(app_client, engine, operator, outbox)


@pytest.fixture(scope="module")
def banking(app_client: TestClient, engine: Engine, operator: Headers,
            outbox: OutboxSender) -> Banking:
    return Banking(app_client, engine, operator, outbox)
