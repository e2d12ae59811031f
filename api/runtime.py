"""Bringing the service up: the database (embedded or external), migrations, bootstrap key."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, select

from api.settings import Settings, embedded_settings
from ledger.auth import Role
from ledger.custody.rules import default_rule_sets
from ledger.custody_service import CreateRuleSet
from ledger.db import custody_tables as c
from ledger.db import tables as t
from ledger.db.embedded import EmbeddedPostgres
from ledger.db.engine import make_engine, normalise_url
from ledger.db.writer import WriteRequest, execute_resilient
from ledger.service import IssueKey

PROJECT_ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("yufu")


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The database URL: YUFU_DATABASE_URL, else an embedded cluster under YUFU_HOME,
    started if needed and stopped afterwards if we started it."""
    if settings.database_url:
        yield normalise_url(settings.database_url)
        return
    embedded = EmbeddedPostgres(settings.home / "pg", embedded_settings())
    was_running = (embedded.pgdata / "PG_VERSION").exists() and embedded.is_running()
    url = embedded.start()
    try:
        yield url
    finally:
        if not was_running:
            embedded.stop()


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["skip_logging"] = True
    return config


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def run_command(engine: Engine, cmd: object, status_code: int = 201) -> dict[str, object]:
    """Run one command synchronously, outside the appender thread (CLI, bootstrap, tests)."""
    request = WriteRequest(cmd, status_code)  # type: ignore[arg-type]
    with engine.connect() as conn:
        execute_resilient(conn, [request])
    return request.future.result().body


def pseudonym_key(home: Path) -> bytes:
    """The key of the consumers' pseudonyms: YUFU_PSEUDONYM_KEY, else one made at first start.
    Losing it means the same phone number maps to a new id, so back it up with the data."""
    configured = os.environ.get("YUFU_PSEUDONYM_KEY")
    if configured:
        return configured.encode()
    key_file = home / "pseudonym.key"
    if not key_file.exists():
        home.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32) + "\n")
        os.chmod(key_file, 0o600)
    return key_file.read_text().strip().encode()


def ensure_default_rule_sets(engine: Engine) -> int:
    """Ship the Beijing rule sets (journaled like any change) when there are none."""
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(c.RuleSetVersion)).scalar_one()
    if count:
        return 0
    for jurisdiction, industry, rules in default_rule_sets():
        run_command(engine, CreateRuleSet(jurisdiction, industry, rules.as_dict()))
    return len(default_rule_sets())


def bootstrap_operator_key(engine: Engine, home: Path) -> str | None:
    """On first start (no keys at all) issue an operator key; returns it, else None."""
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(t.ApiKey)).scalar_one()
    if count:
        return None
    body = run_command(engine, IssueKey(Role.operator, label="bootstrap"))
    key = str(body["key"])
    home.mkdir(parents=True, exist_ok=True)
    key_file = home / "operator.key"
    key_file.write_text(key + "\n")
    os.chmod(key_file, 0o600)
    return key


def connect(url: str) -> Engine:
    return make_engine(url)
