"""The tests' PostgreSQL: start or stop an embedded cluster, and check the migrations.

`python -m tests.support.testdb start DIR` starts one and prints the owner's URL; `service-url DIR`
prints the service role's; `stop DIR` stops it; `check URL` migrates a scratch database and
runs `alembic check` against it.

The suite uses the two roles as the service does (docs/database.md): the owner's URL makes
the databases, migrates them and grants the service role; the tests' engines and apps
connect as the service role. On an external server (YUFU_TEST_DATABASE_URL, the owner's
URL), YUFU_TEST_SERVICE_DATABASE_URL names the service role's; without it the suite makes
a role of its own, TEST_SERVICE_ROLE, which needs an owner allowed to create roles.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from api.runtime import alembic_config, upgrade
from ledger.db.embedded import EmbeddedPostgres, ensure_service_role, password_bytes
from ledger.db.engine import normalise_url

# Durability is not under test here, speed is welcome: no fsync for the test cluster.
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                 "max_connections": "200", "shared_buffers": "128MB"}
TEST_SERVICE_ROLE = "yufu_test_service"


@dataclass(frozen=True)
class Server:
    """A test server as its two roles reach it; `owner` and `service` name a database."""

    owner_url: str
    service_url: str

    def owner(self, database: str) -> str:
        return _on(self.owner_url, database)

    def service(self, database: str) -> str:
        return _on(self.service_url, database)


def _on(url: str, database: str) -> str:
    return make_url(normalise_url(url)).set(database=database).render_as_string(
        hide_password=False)


def start(home: Path) -> Server:
    cluster = EmbeddedPostgres(home, TEST_SETTINGS)
    cluster.start()
    return Server(cluster.owner_url, cluster.service_url)


@contextlib.contextmanager
def own_cluster(prefix: str, settings: Mapping[str, str] = TEST_SETTINGS
                ) -> Iterator[EmbeddedPostgres]:
    """An embedded cluster of a test's own in a fresh directory, stopped and removed after."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    made = EmbeddedPostgres(home, dict(settings))
    try:
        made.start()
        yield made
    finally:
        made.stop()
        shutil.rmtree(home, ignore_errors=True)


def stop(home: Path) -> None:
    EmbeddedPostgres(home, TEST_SETTINGS).stop()


def external(owner_url: str, service_url: str | None, role: str = TEST_SERVICE_ROLE) -> Server:
    """An external server: its service role's URL if given, else a role made here, with a
    fresh password each session (kept in this process only)."""
    if service_url:
        return Server(owner_url, service_url)
    password = secrets.token_urlsafe(password_bytes)
    admin = create_engine(make_url(normalise_url(owner_url)), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            ensure_service_role(conn.connection.dbapi_connection, role, password)
    except DBAPIError as refused:
        raise RuntimeError(f"the test server's owner cannot make the role {role} ({refused}): "
                           "set YUFU_TEST_SERVICE_DATABASE_URL to a service role's URL"
                           ) from refused
    finally:
        admin.dispose()
    service = make_url(normalise_url(owner_url)).set(username=role, password=password)
    return Server(owner_url, service.difference_update_query(["passfile"]).render_as_string(
        hide_password=False))


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    url = make_url(normalise_url(server_url))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def check(server_url: str) -> None:
    scratch = create_database(server_url, f"alembic_check_{uuid.uuid4().hex[:8]}")
    upgrade(scratch)
    command.check(alembic_config(scratch))
    print("alembic check: the migrations match the models")


if __name__ == "__main__":
    action, arg = sys.argv[1], sys.argv[2]
    if action == "start":
        print(start(Path(arg)).owner_url)
    elif action == "service-url":
        print(EmbeddedPostgres(Path(arg), TEST_SETTINGS).service_url)
    elif action == "stop":
        stop(Path(arg))
    else:
        check(arg)
