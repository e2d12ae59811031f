"""The database only Yufu can enter (docs/database.md): the service's role cannot rewrite
history or change the schema, every table has a privilege policy, and the embedded cluster
lets in nobody without a password, nor any other OS user at all."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from api.runtime import Database, _warn_roles_not_split, database, migrate
from api.settings import Settings
from ledger.db import embedded, privileges
from ledger.db.embedded import OWNER_ROLE, SERVICE_ROLE, EmbeddedPostgres
from tests.support import testdb
from tests.support.db import drop_database, pg_error, rolled_back
from tests.support.testdb import TEST_SETTINGS, own_cluster

INSUFFICIENT_PRIVILEGE = "42501"
UNPRIVILEGED_USER, UNPRIVILEGED_GROUP = "nobody", "nogroup"
psql_timeout_s = 30


def service_role(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT current_user")).scalar_one())


# --- the service's role ---------------------------------------------------------------------
@pytest.mark.parametrize("statement", [
    "UPDATE journal_entries SET kind = kind",
    "DELETE FROM journal_entries",
    "TRUNCATE journal_entries CASCADE",
    "UPDATE postings SET amount_fen = amount_fen",
    "DELETE FROM accounts",
    "ALTER TABLE journal_entries DISABLE TRIGGER ALL",
    "SET session_replication_role = replica",
    "CREATE TABLE yufu_intruder (id bigint)",
    "CREATE TEMPORARY TABLE postings (transaction_id bigint)",  # would shadow the real one
    "CREATE SCHEMA yufu_service",
    "DROP TABLE journal_entries",
    "DROP TRIGGER journal_entries_append_only ON journal_entries",
])
def test_the_service_role_may_not_rewrite_history_or_change_the_schema(
        engine: Engine, statement: str) -> None:
    with rolled_back(engine) as conn, pytest.raises(DBAPIError) as caught:
        conn.execute(text(statement))
    code, message = pg_error(caught)
    # Refused for want of a privilege, before any trigger of ours is reached.
    assert code == INSUFFICIENT_PRIVILEGE, message
    assert not message.startswith("yufu:"), message


def test_the_service_role_is_no_superuser_owns_nothing_and_is_not_the_owner(
        engine: Engine, owner_engine: Engine) -> None:
    role = service_role(engine)
    with owner_engine.connect() as conn:
        owner = conn.execute(text("SELECT current_user")).scalar_one()
        found = conn.execute(text(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, pg_has_role(:role, :owner, 'MEMBER'),"
            " (SELECT count(*) FROM pg_class WHERE relowner = to_regrole(:role))"
            " FROM pg_roles WHERE rolname = :role"), {"role": role, "owner": owner}).one()
        assert tuple(found) == (False, False, False, False, 0)
        assert role != owner
        assert privileges.problems(conn, role) == []


def test_every_table_of_the_migrated_schema_has_a_privilege_policy(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        tables = privileges.existing_tables(conn)
    assert "journal_entries" in tables
    assert [name for name in tables if name not in privileges.TABLES] == []


def test_the_grants_are_the_policy(engine: Engine, owner_engine: Engine) -> None:
    role = service_role(engine)
    held: dict[str, set[str]] = {}
    with owner_engine.connect() as conn:
        for name in privileges.existing_tables(conn):
            held[name] = {p for p in privileges.TABLE_PRIVILEGES_ALL if conn.execute(text(
                "SELECT has_table_privilege(:role, :table, :p)"),
                {"role": role, "table": name, "p": p}).scalar_one()}
    assert held["journal_entries"] == held["postings"] == held["tree_heads"] == {
        "SELECT", "INSERT"}
    assert held["accounts"] == held["cards"] == held["chain_head"] == {
        "SELECT", "INSERT", "UPDATE"}
    assert held["alembic_version"] == {"SELECT"}
    assert held == {name: set(privileges.TABLES[name].privileges) for name in held}


def test_a_table_without_a_policy_stops_the_grant(engine: Engine,
                                                  owner_engine: Engine) -> None:
    role = service_role(engine)
    with rolled_back(owner_engine) as conn:
        conn.execute(text("CREATE TABLE yufu_later_table (id bigint PRIMARY KEY)"))
        with pytest.raises(privileges.UnsafeRoles, match="yufu_later_table"):
            privileges.grant(conn, role)


def test_a_policy_may_name_tables_of_migrations_yet_to_come(
        engine: Engine, owner_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    role = service_role(engine)
    monkeypatch.setattr(privileges, "TABLES", {**privileges.TABLES,
                                               "yufu_table_of_0099": privileges.Access.change})
    with rolled_back(owner_engine) as conn:
        privileges.grant(conn, role)
        assert privileges.problems(conn, role) == []


def test_a_privilege_from_elsewhere_is_seen_when_read_back(engine: Engine,
                                                           owner_engine: Engine) -> None:
    role = service_role(engine)
    with rolled_back(owner_engine) as conn:
        conn.execute(text("GRANT DELETE ON journal_entries TO PUBLIC"))
        assert privileges.problems(conn, role) == ["has DELETE on journal_entries"]
        with pytest.raises(privileges.UnsafeRoles, match="has DELETE on journal_entries"):
            privileges.grant(conn, role)


def test_without_the_owners_url_migrations_run_as_before_and_a_warning_says_so(
        owner_database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    _warn_roles_not_split.cache_clear()
    with caplog.at_level(logging.WARNING, logger="yufu"):
        migrate(Database(owner_database_url, owner_database_url))
        migrate(Database(owner_database_url, owner_database_url))
    warned = [r for r in caplog.records if "YUFU_MIGRATION_DATABASE_URL" in r.getMessage()]
    assert len(warned) == 1


def test_with_the_services_url_alone_a_migrated_database_serves_and_a_new_one_is_refused(
        server: testdb.Server, database_url: str) -> None:
    migrate(Database(database_url, database_url))  # at the head: Alembic only reads
    name = f"yufu_empty_{uuid.uuid4().hex[:10]}"
    testdb.create_database(server.owner_url, name)
    try:
        with pytest.raises(SystemExit, match="set YUFU_MIGRATION_DATABASE_URL"):
            migrate(Database(server.service(name), server.service(name)))
    finally:
        drop_database(server.owner_url, name)


def test_on_an_external_server_the_suite_can_make_its_own_service_role(
        server: testdb.Server) -> None:
    role = "yufu_test_service_made_here"
    made = testdb.external(server.owner_url, None, role=role)
    try:
        engine = create_engine(made.service_url)
        with engine.connect() as conn:
            assert conn.execute(text(
                "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
            )).one() == (role, False)
        engine.dispose()
    finally:
        owner = create_engine(server.owner_url, isolation_level="AUTOCOMMIT")
        with owner.connect() as conn:
            conn.execute(text(f'DROP ROLE "{role}"'))
        owner.dispose()


def test_an_external_server_gives_the_service_its_url_and_the_owner_the_migration_url(
        tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql://svc@db/yufu",
                        migration_database_url="postgresql://own@db/yufu")
    with database(settings) as db:
        assert db == Database("postgresql+psycopg2://svc@db/yufu",
                              "postgresql+psycopg2://own@db/yufu")
    with database(Settings(home=tmp_path, database_url="postgresql://svc@db/yufu",
                           migration_database_url=None)) as db:
        assert not db.roles_split


# --- the embedded cluster -------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedPostgres]:
    """An embedded cluster of its own (the suite's server may be an external one)."""
    with own_cluster("yufu-roles-", TEST_SETTINGS) as made:
        yield made


def connect(cluster: EmbeddedPostgres, role: str, **how: str) -> None:
    """Connect and disconnect, or raise psycopg2.OperationalError."""
    psycopg2.connect(host=str(cluster.socket_dir), dbname="postgres", user=role,
                     connect_timeout=embedded.connect_timeout_s, **how).close()


def password(cluster: EmbeddedPostgres, role: str) -> str:
    for line in cluster.passfile.read_text().splitlines():
        if line.split(":")[3] == role:
            return line.split(":")[4]
    raise AssertionError(f"no password for {role}")


def test_the_password_file_and_the_socket_directory_are_their_owners_alone(
        cluster: EmbeddedPostgres) -> None:
    passfile, socket_dir = os.stat(cluster.passfile), os.stat(cluster.socket_dir)
    assert stat.S_IMODE(passfile.st_mode) == 0o600
    assert passfile.st_uid == os.geteuid()
    assert stat.S_IMODE(socket_dir.st_mode) == 0o700
    assert socket_dir.st_uid == os.stat(cluster.pgdata).st_uid  # the cluster's user
    assert (cluster.pgdata / "pg_hba.conf").read_text() == embedded.HBA
    assert password(cluster, OWNER_ROLE) not in cluster.owner_url


@pytest.mark.parametrize("role", [OWNER_ROLE, SERVICE_ROLE])
def test_a_connection_without_the_password_is_refused(cluster: EmbeddedPostgres,
                                                      role: str) -> None:
    with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
        connect(cluster, role, passfile=str(cluster.home / "no-such-file"))
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        connect(cluster, role, password="not-the-password")
    connect(cluster, role, passfile=str(cluster.passfile))


def test_no_tcp_and_an_owner_only_socket(cluster: EmbeddedPostgres) -> None:
    with psycopg2.connect(host=str(cluster.socket_dir), dbname="postgres", user=SERVICE_ROLE,
                          passfile=str(cluster.passfile)) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT current_setting('listen_addresses'), "
                       "current_setting('unix_socket_permissions'), "
                       "current_setting('password_encryption')")
        assert cursor.fetchone() == ("", "0700", "scram-sha-256")
    conn.close()


@pytest.mark.parametrize("role", [OWNER_ROLE, SERVICE_ROLE])
def test_another_os_user_cannot_connect_even_with_the_password(cluster: EmbeddedPostgres,
                                                               role: str) -> None:
    """As root: `nobody`, holding the role's password, cannot reach the socket at all. Not
    as root (no other user to become), the cluster runs as us, and the same protection is
    the modes checked here: the socket's directory and the password file are ours alone."""
    if os.geteuid() != 0:
        assert stat.S_IMODE(os.stat(cluster.socket_dir).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(cluster.passfile).st_mode) == 0o600
        return
    psql = embedded.find_bin_dir() / "psql"
    done = subprocess.run(
        [str(psql), "-X", "-w", f"host={cluster.socket_dir} dbname=postgres user={role} "
         f"passfile={cluster.passfile}", "-c", "SELECT 1"],
        user=UNPRIVILEGED_USER, group=UNPRIVILEGED_GROUP, extra_groups=[], cwd="/",
        env={"PGPASSWORD": password(cluster, role), "PGCONNECT_TIMEOUT": "5"},
        capture_output=True, text=True, timeout=psql_timeout_s, check=False)
    assert done.returncode != 0
    assert "Permission denied" in done.stderr, done.stderr
    unread = subprocess.run(["cat", str(cluster.passfile)], user=UNPRIVILEGED_USER,
                            group=UNPRIVILEGED_GROUP, extra_groups=[], cwd="/",
                            capture_output=True, text=True, timeout=psql_timeout_s,
                            check=False)
    assert unread.returncode != 0 and unread.stdout == ""


def test_a_cluster_made_with_trust_is_moved_onto_passwords_in_place() -> None:
    home = Path(tempfile.mkdtemp(prefix="yufu-trust-"))
    cluster = EmbeddedPostgres(home, TEST_SETTINGS)
    try:
        _make_trust_cluster(cluster)
        cluster.start()
        with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
            connect(cluster, OWNER_ROLE, passfile=str(home / "no-such-file"))
        with psycopg2.connect(host=str(cluster.socket_dir), dbname="postgres", user=OWNER_ROLE,
                              passfile=str(cluster.passfile)) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT note FROM made_before_passwords")
            assert cursor.fetchall() == [("kept",)]  # the same cluster, upgraded in place
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (SERVICE_ROLE,))
            assert cursor.fetchall() == [(False,)]
        conn.close()
        connect(cluster, SERVICE_ROLE, passfile=str(cluster.passfile))
        assert (cluster.pgdata / "pg_hba.conf").read_text() == embedded.HBA
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


def _make_trust_cluster(cluster: EmbeddedPostgres) -> None:
    """A cluster as Yufu made them before passwords (initdb --auth=trust), with a row in it."""
    bin_dir, user = embedded.find_bin_dir(), embedded._ensure_system_user()
    cluster.socket_dir.mkdir(parents=True)
    if user is not None:
        for path in (cluster.home, cluster.socket_dir):
            shutil.chown(path, user, user)
    for args in ([str(bin_dir / "initdb"), "-D", str(cluster.pgdata), "-U", OWNER_ROLE,
                  "--auth=trust", "--encoding=UTF8", "--locale=C"],
                 [str(bin_dir / "pg_ctl"), "-D", str(cluster.pgdata), "-w", "-l",
                  str(cluster.home / "postgres.log"), "-o",
                  f"-c listen_addresses='' -c unix_socket_directories='{cluster.socket_dir}'",
                  "start"]):
        done = cluster._run(args, user)
        assert done.returncode == 0, done.stderr
    with psycopg2.connect(host=str(cluster.socket_dir), dbname="postgres",
                          user=OWNER_ROLE) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE made_before_passwords (note text)")
        cursor.execute("INSERT INTO made_before_passwords VALUES ('kept')")
    conn.close()
    cluster.stop()
