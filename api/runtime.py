"""Bringing the service up: the database (embedded or external), migrations, bootstrap key."""

from __future__ import annotations

import gc
import json
import logging
import os
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from api.department_maps import shipped_department_maps
from api.settings import Settings, embedded_settings
from ledger import audit
from ledger.auth import LOCAL_OPERATOR, SYSTEM_ACTOR, Role
from ledger.custody.rules import default_rule_sets
from ledger.db import department_queries, privileges, queries, supervision_queries
from ledger.db.audit_queries import latest_head
from ledger.db.embedded import EmbeddedPostgres
from ledger.db.engine import make_engine, normalise_url
from ledger.db.writer import WriteRequest, execute_resilient
from ledger.flows.departments import PublishDepartmentMap
from ledger.flows.filing import CreateRuleSet
from ledger.flows.supervision import CreateSupervisionRules
from ledger.service import IssueKey
from ledger.supervision.thresholds import SupervisionRules, parse_shipped

PROJECT_ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("yufu")
INSUFFICIENT_PRIVILEGE = "42501"  # SQLSTATE


@dataclass(frozen=True)
class Database:
    """The two ways into the database (docs/database.md): the service's restricted role,
    which every read and write of the running service uses, and the owner's, which runs the
    migrations and grants the service its privileges."""

    service_url: str
    owner_url: str

    @property
    def roles_split(self) -> bool:
        return self.owner_url != self.service_url


@contextmanager
def database(settings: Settings) -> Iterator[Database]:
    """YUFU_DATABASE_URL (the service's) and YUFU_MIGRATION_DATABASE_URL (the owner's), else
    an embedded cluster under YUFU_HOME, started if needed and stopped afterwards if we
    started it."""
    if settings.database_url:
        service_url = normalise_url(settings.database_url)
        owner_url = settings.migration_database_url
        yield Database(service_url, normalise_url(owner_url) if owner_url else service_url)
        return
    if settings.migration_database_url:
        raise SystemExit("yufu: YUFU_MIGRATION_DATABASE_URL is set but YUFU_DATABASE_URL is "
                         "not: set both (the service's URL and the owner's), or neither for "
                         "the embedded PostgreSQL")
    embedded = EmbeddedPostgres(settings.home / "pg", embedded_settings())
    was_running = (embedded.pgdata / "PG_VERSION").exists() and embedded.is_running()
    for note in embedded.start():  # what a crash of everything left, and how it was undone
        log.warning("embedded PostgreSQL recovered: %s", note)
        print(f"yufu: embedded PostgreSQL recovered: {note}", file=sys.stderr, flush=True)
    try:
        yield Database(embedded.service_url, embedded.owner_url)
    finally:
        if not was_running:
            embedded.stop()


def migrate(db: Database) -> None:
    """As the owner: the migrations, then the service role's privileges (on every start, so
    the tables of a new migration get theirs at once)."""
    if not db.roles_split:
        _warn_roles_not_split()
        try:
            upgrade(db.owner_url)
        except DBAPIError as refused:
            if getattr(refused.orig, "pgcode", None) != INSUFFICIENT_PRIVILEGE:
                raise
            raise SystemExit("yufu: the migrations need the schema's owner, and "
                             "YUFU_DATABASE_URL's role is not: set YUFU_MIGRATION_DATABASE_URL "
                             "(docs/database.md)") from refused
        return
    upgrade(db.owner_url)
    grant_service(db)


def grant_service(db: Database) -> None:
    """As the owner: the service role's privileges, exactly ledger/db/privileges.py's."""
    service_role = _current_user(db.service_url)
    owner = create_engine(db.owner_url, poolclass=NullPool)
    try:
        with owner.begin() as conn:
            if service_role == conn.execute(text("SELECT current_user")).scalar_one():
                _warn_roles_not_split()
                return
            privileges.grant(conn, service_role)
    finally:
        owner.dispose()


@contextmanager
def service_engine(settings: Settings) -> Iterator[Engine]:
    """For a command: the database up and migrated, and an engine on it as the service."""
    with database(settings) as db:
        migrate(db)
        engine = connect(db.service_url)
        try:
            yield engine
        finally:
            engine.dispose()


@cache
def _warn_roles_not_split() -> None:
    log.warning("YUFU_MIGRATION_DATABASE_URL is not set (or names the service's own role): "
                "migrations run with YUFU_DATABASE_URL's role, and if that role owns the "
                "schema the service could change the journal; docs/database.md splits the "
                "roles")


def _current_user(url: str) -> str:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT current_user")).scalar_one())
    finally:
        engine.dispose()


# The collector's generation thresholds while serving (CPython's default: 700, 10, 10). A
# request allocates a few hundred objects, nearly all freed by reference counting; collecting
# the youngest generation every 700 allocations cost more than it found, and its collections
# (with the older generations they drag along) stretched the batches they landed in.
gc_thresholds = (5_000, 20, 100)


def settle_heap() -> None:
    """Before serving: collect, then move every object alive now (the libraries, the app) out
    of the collector's sight. A full collection walks every tracked object; without this the
    service's own start-up objects made each one a pause of about 60 ms, every few seconds
    under load, which showed as the p99 of every request in flight."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*gc_thresholds)


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["skip_logging"] = True
    return config


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def run_command(engine: Engine, cmd: object, status_code: int = 201,
                actor: Mapping[str, Any] = SYSTEM_ACTOR) -> dict[str, Any]:
    """Run one command synchronously, outside the appender thread (CLI, bootstrap, tests)."""
    request = WriteRequest(cmd, status_code, actor=actor)  # type: ignore[arg-type]
    with engine.connect() as conn:
        # As the appender does: the batch opens and commits its own transaction.
        execute_resilient(conn.execution_options(isolation_level="AUTOCOMMIT"), [request])
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


AUDIT_KEY_FILE_NAME = "audit-ed25519.pem"


class AuditKeyMismatch(RuntimeError):
    """The signing key is not the one that signed the latest tree head."""


def audit_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The tree-head key: the PEM file named in the settings, else one under YUFU_HOME, made at
    first start. Back it up: auditors pin its public key (docs/audit.md)."""
    key_file = settings.audit_key_file
    if key_file is None:
        key_file = settings.home / AUDIT_KEY_FILE_NAME
        if not key_file.exists():
            settings.home.mkdir(parents=True, exist_ok=True)
            # Created 0600 before the secret is written, so it is never readable by others.
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(audit.generate_private_key_pem())
            log.warning("made a new tree-head signing key at %s", key_file)
    return audit.load_private_key_pem(key_file.read_bytes())


def check_audit_key(engine: Engine, key: Ed25519PrivateKey, allow_rotation: bool) -> None:
    """The fingerprint check: a new key (a lost file, another YUFU_HOME) would sign heads no
    auditor can check with the key they pinned, so it is refused unless rotation is asked for."""
    with engine.connect() as conn:
        latest = latest_head(conn)
    current = audit.key_id(key.public_key())
    if latest is None or latest.head.key_id == current:
        return
    message = (f"the tree-head key {current} is not the key {latest.head.key_id} that signed "
               f"the latest tree head (size {latest.head.tree_size})")
    if not allow_rotation:
        raise AuditKeyMismatch(message + "; restore that key, or set YUFU_AUDIT_KEY_ROTATE=1 "
                               "and publish the new public key to the auditors")
    log.warning("%s: rotating as YUFU_AUDIT_KEY_ROTATE=1 asks", message)


def ensure_default_rule_sets(engine: Engine) -> int:
    """Ship the Beijing rule sets (journaled like any change) when there are none; and the
    supervision rules (ledger/supervision/shipped/*.json) likewise."""
    ensure_supervision_rules(engine)
    with engine.connect() as conn:
        count = queries.rule_set_count(conn)
    if count:
        return 0
    for jurisdiction, industry, rules in default_rule_sets():
        run_command(engine, CreateRuleSet(LOCAL_OPERATOR, jurisdiction, industry,
                                          rules.as_dict()))
    return len(default_rule_sets())


def shipped_supervision_rules() -> list[tuple[str, str, SupervisionRules]]:
    """The supervision rules shipped in the package, every file of them."""
    shipped = []
    for item in sorted(resources.files("ledger.supervision.shipped").iterdir(),
                       key=lambda i: i.name):
        if item.name.endswith(".json"):
            shipped += parse_shipped(json.loads(item.read_text(encoding="utf-8")))
    return shipped


def ensure_supervision_rules(engine: Engine) -> int:
    with engine.connect() as conn:
        if supervision_queries.rule_count(conn):
            return 0
    shipped = shipped_supervision_rules()
    for jurisdiction, industry, rules in shipped:
        run_command(engine, CreateSupervisionRules(LOCAL_OPERATOR, jurisdiction, industry,
                                                   rules.as_dict()))
    return len(shipped)


def ensure_default_department_maps(engine: Engine) -> int:
    """Ship each jurisdiction's industry -> department map (journaled, as version 1) where
    that jurisdiction has none yet; how many were written."""
    with engine.connect() as conn:
        mapped = department_queries.mapped_jurisdictions(conn)
    shipped = [(m, source) for m, source in shipped_department_maps()
               if m.jurisdiction not in mapped]
    for department_map, source in shipped:
        run_command(engine, PublishDepartmentMap(LOCAL_OPERATOR, department_map, source))
    return len(shipped)


def bootstrap_operator_key(engine: Engine, home: Path) -> str | None:
    """On first start (no keys at all) issue an operator key; returns it, else None."""
    with engine.connect() as conn:
        count = queries.key_count(conn)
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
