"""pg_dump and pg_restore for `yufu backup` and `yufu restore` (api/backup_cli.py).

The tools come from where the embedded server's come from (ledger/db/embedded.py: the pgserver
wheel, else the machine's), and run against any URL, the embedded cluster's or an external
server's. The dump is taken in the snapshot of a transaction of ours that stays open while
pg_dump runs (`pg_export_snapshot`, pg_dump `--snapshot`), so what we read of the journal and
its signed head in that transaction is exactly what the dump holds.

Passwords never go on a command line (where `ps` shows them): a URL's password is handed to
the tool in PGPASSWORD, and the embedded cluster's URLs name its password file instead.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from ledger import merkle
from ledger.audit import SignedTreeHead
from ledger.db import queries
from ledger.db.audit_queries import latest_head
from ledger.db.embedded import find_bin_dir
from ledger.db.engine import normalise_url
from ledger.db.privileges import existing_tables

# A dump or restore of a large journal takes minutes; an hour means something hangs.
tool_timeout_s = 3600
version_timeout_s = 30
# What of a tool's stderr a refusal quotes: the end, where PostgreSQL's tools say why.
tool_error_chars_max = 2000
TOOL_VERSION_RE = re.compile(r"\(PostgreSQL\) ([0-9]+)(?:\.[0-9]+)*")


class DumpRefused(RuntimeError):
    """The dump or restore cannot be done, said for the person at the terminal."""


@dataclass(frozen=True)
class Tool:
    """pg_dump or pg_restore: where it is and its PostgreSQL major version."""

    path: Path
    version: str
    major: int


def tool(name: str) -> Tool:
    path = find_bin_dir() / name
    if not path.exists():
        raise DumpRefused(f"{name} is not beside the PostgreSQL server binaries in "
                          f"{path.parent}: install PostgreSQL's client tools")
    done = subprocess.run([str(path), "--version"], check=False, capture_output=True,
                          text=True, timeout=version_timeout_s)
    found = TOOL_VERSION_RE.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise DumpRefused(f"{path} --version did not say its version: {done.stderr.strip()}")
    version = done.stdout.strip().rsplit(" ", 1)[-1]
    return Tool(path, version, int(found.group(1)))


def check_dump_version(dump_major: int, server_version_num: int, server_version: str) -> None:
    """pg_dump refuses a server newer than itself (PostgreSQL's rule): say so first, by name."""
    server_major = server_version_num // 10_000
    if server_major > dump_major:
        raise DumpRefused(
            f"the database server runs PostgreSQL {server_version} but this pg_dump is "
            f"PostgreSQL {dump_major}: a dump needs pg_dump of the server's major version or "
            f"newer (install PostgreSQL {server_major}'s client tools first on PATH)")


def check_restore_version(restore_major: int, dumped_by: str) -> None:
    """pg_restore cannot read an archive made by a newer pg_dump."""
    dumped_major = int(dumped_by.split(".", 1)[0])
    if dumped_major > restore_major:
        raise DumpRefused(
            f"the backup was dumped by pg_dump {dumped_by} but this pg_restore is PostgreSQL "
            f"{restore_major}: restore with PostgreSQL {dumped_major}'s pg_restore or newer")


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq takes it, without its password, and the environment that carries
    the password (if the URL has one)."""
    parsed = make_url(normalise_url(url))
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    bare = parsed.set(drivername="postgresql", password=None)
    return bare.render_as_string(hide_password=False), env


@dataclass(frozen=True)
class Snapshot:
    """What the dump holds of the journal, read in the snapshot the dump is taken in."""

    snapshot_id: str
    server_version_num: int
    server_version: str
    revision: str
    journal_size: int
    journal_head_hash: bytes
    latest_head: SignedTreeHead | None
    head_key_ids: list[str]


@contextmanager
def exported_snapshot(owner_url: str) -> Iterator[Snapshot]:
    """A read-only repeatable-read transaction whose snapshot pg_dump can share; open until
    the caller leaves the block."""
    engine = create_engine(normalise_url(owner_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            reading = conn.execution_options(isolation_level="REPEATABLE READ",
                                             postgresql_readonly=True)
            with reading.begin():
                yield _read_snapshot(reading)
    finally:
        engine.dispose()


def _read_snapshot(conn: Connection) -> Snapshot:
    snapshot_id = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
    if "chain_head" not in existing_tables(conn):
        raise DumpRefused("the database holds no Yufu journal (no table chain_head): "
                          "is YUFU_DATABASE_URL the right database?")
    size, head_hash = queries.chain_head(conn)
    key_ids = conn.execute(text("SELECT DISTINCT key_id FROM tree_heads ORDER BY key_id"))
    return Snapshot(
        snapshot_id=snapshot_id,
        server_version_num=int(conn.execute(text("SHOW server_version_num")).scalar_one()),
        server_version=str(conn.execute(text("SHOW server_version")).scalar_one()),
        revision=str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()),
        journal_size=size, journal_head_hash=head_hash, latest_head=latest_head(conn),
        head_key_ids=[str(k) for k in key_ids.scalars()])


def dump(pg_dump: Tool, owner_url: str, snapshot: Snapshot, out: Path) -> None:
    """The whole database in PostgreSQL's custom format, as of the snapshot. Without owners
    and grants: the restore makes the target's owner own everything and grants the service
    exactly the policy (ledger/db/privileges.py), whatever the roles were called here."""
    check_dump_version(pg_dump.major, snapshot.server_version_num, snapshot.server_version)
    target, env = libpq_target(owner_url)
    _run(pg_dump, [f"--dbname={target}", "--format=custom", "--no-owner", "--no-privileges",
                   f"--snapshot={snapshot.snapshot_id}", f"--file={out}"], env)


def restore(pg_restore: Tool, owner_url: str, archive: Path) -> None:
    """The dump into the target database, in one transaction: all of it or nothing."""
    target, env = libpq_target(owner_url)
    _run(pg_restore, [f"--dbname={target}", "--no-owner", "--no-privileges",
                      "--single-transaction", "--exit-on-error", str(archive)], env)


def _run(program: Tool, args: list[str], env: Mapping[str, str]) -> None:
    try:
        done = subprocess.run([str(program.path), *args], check=False, capture_output=True,
                              text=True, timeout=tool_timeout_s, env=dict(env))
    except subprocess.TimeoutExpired as slow:
        raise DumpRefused(f"{program.path.name} did not finish in {tool_timeout_s} s") from slow
    if done.returncode != 0:
        said = done.stderr.strip()[-tool_error_chars_max:]
        raise DumpRefused(f"{program.path.name} failed (exit {done.returncode}): {said}")


def database_tables(url: str) -> list[str]:
    """The tables already in the target's schema: a restore goes only into an empty one."""
    engine = create_engine(normalise_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return existing_tables(conn)
    finally:
        engine.dispose()


def journal_root(conn: Connection, tree_size: int) -> bytes:
    """The Merkle root of the first `tree_size` entries, recomputed from their bytes (not
    from the stored tree): what a restored head's signed root must equal."""
    frontier = merkle.Frontier()
    chunk: list[bytes] = []
    for stored in queries.stored_entries(conn):
        if stored.seq > tree_size:
            break
        chunk.append(merkle.leaf_hash(stored.body))
        if len(chunk) >= queries.verify_chunk_entries:
            frontier, _ = merkle.append_leaves(frontier, chunk)
            chunk = []
    frontier, _ = merkle.append_leaves(frontier, chunk)
    return frontier.root()
