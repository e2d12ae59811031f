"""`yufu backup` and `yufu restore` through real PostgreSQL: a home with a journal backed up
and restored into a fresh home (its own embedded cluster), verified as `yufu verify` and the
auditor's verifier verify it; after the restore the service signs a new head, consistent
with the backup's. A tampered file, a non-empty target and the signing key's absence."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from api.backup_archive import DUMP_PART, MANIFEST_PART, PUBLIC_KEY_PART, SIGNING_KEY_PART
from api.cli import main as yufu
from api.runtime import AUDIT_KEY_FILE_NAME
from api.settings import embedded_settings
from ledger import audit, merkle
from ledger.auth import Role
from ledger.db import dump, queries
from ledger.db.audit_queries import latest_head
from ledger.db.embedded import EmbeddedPostgres
from ledger.db.engine import make_engine
from tests.support import testdb
from tests.support.audit import post_transfers, run_verifier, sign_head
from tests.support.db import drop_database, issue_key, pg_error
from tests.support.driver import Driver
from tests.support.http import bearer
from tests.support.serve import yufu_serve

HEAD_FIELDS = ("tree_size", "root_hash", "timestamp", "key_id", "signature")
KEY = audit.load_private_key_pem(audit.generate_private_key_pem())


@dataclass(frozen=True)
class Source:
    home: Path  # the backed-up service's YUFU_HOME: its signing key
    env: dict[str, str]  # YUFU_HOME and the module database's two URLs
    head: dict[str, object]  # the latest signed tree head at backup time
    journal_size: int


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """Short paths (the embedded cluster's socket lives under its home), removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="yufu-bk-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def source(custody: Driver, engine: Engine, database_env: dict[str, str],
           scratch: Path) -> Source:
    """Merchants, cards and consumptions through the API; a signed head; then more entries
    the head does not cover yet."""
    for _ in range(2):
        merchant = custody.file("体育健身")
        key = custody.merchant_key(merchant["id"])
        product = custody.product(merchant["id"], key, kind="sessions", price_fen=100_000,
                                  sessions=10, validity_months=3)
        for _ in range(3):
            sale = custody.sell(product["id"], key)
            custody.consume(sale["card_id"], key, sessions=1)
    home = scratch / "src"
    home.mkdir()
    (home / AUDIT_KEY_FILE_NAME).write_bytes(audit.private_key_pem(KEY))
    (home / "pseudonym.key").write_text("ab" * 32 + "\n")
    head = sign_head(engine, KEY)
    custody.file("体育健身")  # beyond the head
    env = {**database_env, "YUFU_HOME": str(home)}
    with engine.connect() as conn:
        size = int(conn.exec_driver_sql("SELECT seq FROM chain_head").scalar_one())
    return Source(home, env, head, size)


def _run(env: dict[str, str], *argv: str) -> int:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("YUFU_DATABASE_URL", "YUFU_MIGRATION_DATABASE_URL", "YUFU_PSEUDONYM_KEY",
                     "YUFU_AUDIT_KEY_FILE"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        return yufu(list(argv))


def _manifest(path: Path) -> dict[str, object]:
    with tarfile.open(path) as tar:
        stream = tar.extractfile(MANIFEST_PART)
        assert stream is not None
        return dict(json.loads(stream.read()))


def _members(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


@pytest.fixture(scope="module")
def with_key(source: Source, scratch: Path) -> Path:
    target = scratch / "with-key.yufu-backup"
    assert _run(source.env, "backup", str(target), "--with-signing-key",
                "--with-pseudonym-key") == 0
    return target


def test_a_backup_records_the_journal_and_the_head_of_its_snapshot(
        source: Source, with_key: Path) -> None:
    manifest = _manifest(with_key)
    assert manifest["format"] == "yufu-backup" and manifest["format_version"] == 1
    assert manifest["journal"] == {"size": source.journal_size,
                                   "head_hash": manifest["journal"]["head_hash"]}  # type: ignore[index]
    assert manifest["tree_head"] == {k: source.head[k] for k in HEAD_FIELDS}
    assert manifest["public_keys"] == [{"key_id": audit.key_id(KEY.public_key()),
                                        "part": PUBLIC_KEY_PART}]
    assert manifest["secrets"] == ["audit-signing-key.pem", "pseudonym.key"]
    assert _members(with_key) == [MANIFEST_PART, "audit-public-key.pem",
                                  "audit-signing-key.pem", "pseudonym.key", DUMP_PART]
    assert stat.S_IMODE(with_key.stat().st_mode) == 0o600


def test_the_signing_key_stays_out_unless_asked_for(source: Source, scratch: Path) -> None:
    target = scratch / "public.yufu-backup"
    assert _run(source.env, "backup", str(target)) == 0
    assert _manifest(target)["secrets"] == []
    assert SIGNING_KEY_PART not in _members(target)
    assert b"PRIVATE KEY" not in target.read_bytes()
    assert _run(source.env, "backup", str(target)) == 2  # never overwritten


def test_a_restored_home_verifies_and_its_heads_continue(
        source: Source, with_key: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = scratch / "new"
    capsys.readouterr()
    assert _run({"YUFU_HOME": str(home)}, "restore", str(with_key)) == 0
    said = capsys.readouterr().out
    assert f"OK: {source.journal_size} entries verified" in said
    assert "the service role yufu_service holds exactly" in said
    assert f"tree head {source.head['tree_size']} (key {audit.key_id(KEY.public_key())})" in said
    assert (home / AUDIT_KEY_FILE_NAME).read_bytes() == audit.private_key_pem(KEY)
    assert (home / "pseudonym.key").read_text() == "ab" * 32 + "\n"
    assert list(Path(tempfile.gettempdir()).glob("yufu-restore-*")) == []
    assert _run({"YUFU_HOME": str(home)}, "verify") == 0
    new_head = _serve_sign_and_audit(home, source)
    # The restored home backs up in turn (the embedded cluster's path), its new head with it.
    again = scratch / "again.yufu-backup"
    assert _run({"YUFU_HOME": str(home)}, "backup", str(again)) == 0
    assert _manifest(again)["tree_head"] == {k: new_head[k] for k in HEAD_FIELDS}


def _serve_sign_and_audit(home: Path, source: Source) -> dict[str, Any]:
    """`yufu serve` on the new home; a new entry and a new head signed there, its consistency
    with the backup's head proved; the auditor's verifier; the service role's powers."""
    with yufu_serve(home, home.parent / "serve.log") as (url, _):
        # Its cluster is up: keys straight into it, as the service's role.
        engine = make_engine(EmbeddedPostgres(home / "pg", embedded_settings()).service_url)
        try:
            operator = bearer(issue_key(engine, Role.operator))  # an entry after the restore
            reader = issue_key(engine, Role.regulator)
            new_head = httpx.post(f"{url}/v1/audit/tree-heads", headers=operator).json()
            first, second = int(str(source.head["tree_size"])), new_head["tree_size"]
            assert second > source.journal_size
            proof = httpx.get(f"{url}/v1/audit/proofs/consistency", headers=bearer(reader),
                              params={"first": first, "second": second}).json()
            assert merkle.verify_consistency(
                first, second, bytes.fromhex(str(source.head["root_hash"])),
                bytes.fromhex(new_head["root_hash"]), [bytes.fromhex(p) for p in proof["proof"]])
            pem = home.parent / "audit-public.pem"
            pem.write_text(audit.public_key_pem(KEY.public_key()))
            code, out = run_verifier("--url", url, "--key", reader, "--public-key", str(pem))
            assert code == 0, out
            _history_stays_fixed(engine)
        finally:
            engine.dispose()
    return dict(new_head)


def _history_stays_fixed(engine: Engine) -> None:
    """The restored service role still cannot rewrite history: refused for want of the
    privilege (SQLSTATE 42501), before any trigger."""
    for sql in ("UPDATE journal_entries SET kind = kind WHERE seq = 1",
                "DELETE FROM postings", "ALTER TABLE journal_entries DISABLE TRIGGER ALL"):
        with pytest.raises(DBAPIError) as refused, engine.begin() as conn:
            conn.exec_driver_sql(sql)
        assert pg_error(refused)[0] == "42501", sql


def test_a_tampered_backup_is_refused_by_name(with_key: Path, scratch: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    tampered = scratch / "tampered.yufu-backup"
    data = bytearray(with_key.read_bytes())
    data[-20_000] ^= 0x01  # inside the dump, the last member
    tampered.write_bytes(bytes(data))
    home = scratch / "never"
    capsys.readouterr()
    assert _run({"YUFU_HOME": str(home)}, "restore", str(tampered)) == 2
    said = capsys.readouterr().err
    assert f"{tampered} was altered or damaged: {DUMP_PART} has SHA-256" in said
    assert not home.exists()


def test_a_non_empty_target_is_refused_by_name(
        source: Source, with_key: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = scratch / "used"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert _run({"YUFU_HOME": str(home)}, "restore", str(with_key)) == 2
    assert f"the target home {home} is not empty (it holds notes.txt)" in capsys.readouterr().err
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]
    # The module's database, which holds the books: refused by its tables, nothing written.
    env = {**source.env, "YUFU_HOME": str(scratch / "fresh-for-db")}
    assert _run(env, "restore", str(with_key)) == 2
    assert "the target database is not empty (it holds the tables" in capsys.readouterr().err


def test_a_server_newer_than_pg_dump_is_refused_by_name() -> None:
    with pytest.raises(dump.DumpRefused, match=r"the database server runs PostgreSQL 17\.1 but "
                       r"this pg_dump is PostgreSQL 16"):
        dump.check_dump_version(16, 170001, "17.1")
    dump.check_dump_version(16, 160002, "16.2")  # the same major: fine
    with pytest.raises(dump.DumpRefused, match=r"dumped by pg_dump 17\.0 but this pg_restore"):
        dump.check_restore_version(16, "17.0")


def test_no_temporary_files_are_left(with_key: Path) -> None:
    assert not os.path.exists(str(with_key) + ".partial")
    assert list(Path(tempfile.gettempdir()).glob("yufu-backup-*")) == []


def _rewritten(source: Path, target: Path, change: dict[str, Any]) -> Path:
    """The backup with its manifest changed (the parts and their digests as they were): what
    someone who edits the manifest consistently could make."""
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old.getmembers():
            stream = old.extractfile(member)
            assert stream is not None
            data = stream.read()
            if member.name == MANIFEST_PART:
                data = json.dumps({**json.loads(data), **change}).encode()
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return target


def test_a_forged_head_or_an_unknown_schema_is_refused_by_name(
        with_key: Path, scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = dict(_manifest(with_key)["tree_head"])  # type: ignore[call-overload]
    head["root_hash"] = "00" * 32
    forged = _rewritten(with_key, scratch / "forged.yufu-backup", {"tree_head": head})
    home = scratch / "never-forged"
    capsys.readouterr()
    assert _run({"YUFU_HOME": str(home)}, "restore", str(forged)) == 2
    assert (f"the manifest's tree head {head['tree_size']} does not verify with the backup's "
            f"public key {head['key_id']}") in capsys.readouterr().err
    database = dict(_manifest(with_key)["database"])  # type: ignore[call-overload]
    newer = _rewritten(with_key, scratch / "newer.yufu-backup",
                       {"database": {**database, "revision": "0999"}})
    assert _run({"YUFU_HOME": str(home)}, "restore", str(newer)) == 2
    assert "the backup's schema is at revision '0999', which this Yufu does not know" in \
        capsys.readouterr().err
    assert not home.exists()


def test_the_dump_holds_what_its_snapshot_read_not_a_later_commit(
        engine: Engine, owner_database_url: str, server: testdb.Server, scratch: Path) -> None:
    """A write committed after the snapshot is read, before pg_dump starts, is not in the
    dump: the manifest's journal and head are the dump's own."""
    out = scratch / "snapshot.pgdump"
    with dump.exported_snapshot(owner_database_url) as snapshot:
        post_transfers(engine, 3)
        dump.dump(dump.tool("pg_dump"), owner_database_url, snapshot, out)
    with engine.connect() as conn:
        assert queries.chain_head(conn)[0] == snapshot.journal_size + 3
    name = f"yufu_restored_{uuid.uuid4().hex[:8]}"
    testdb.create_database(server.owner_url, name)
    try:
        dump.restore(dump.tool("pg_restore"), server.owner(name), out)
        restored = make_engine(server.owner(name))
        with restored.connect() as conn:
            assert queries.chain_head(conn) == (snapshot.journal_size,
                                                snapshot.journal_head_hash)
            assert latest_head(conn) == snapshot.latest_head
        restored.dispose()
    finally:
        drop_database(server.owner_url, name)


def test_a_restore_into_an_empty_external_database(
        source: Source, with_key: Path, server: testdb.Server, scratch: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """YUFU_DATABASE_URL and YUFU_MIGRATION_DATABASE_URL name a new, empty database: restored
    there as its owner, the service role granted the policy, and verified."""
    name = f"yufu_restore_{uuid.uuid4().hex[:8]}"
    testdb.create_database(server.owner_url, name)
    env = {"YUFU_HOME": str(scratch / "external-home"),
           "YUFU_DATABASE_URL": server.service(name),
           "YUFU_MIGRATION_DATABASE_URL": server.owner(name)}
    try:
        capsys.readouterr()
        assert _run(env, "restore", str(with_key)) == 0
        said = capsys.readouterr().out
        assert f"OK: {source.journal_size} entries verified" in said
        assert "holds exactly ledger/db/privileges.py's policy" in said
        restored = make_engine(server.service(name))
        with restored.connect() as conn:
            assert latest_head(conn).view() == {  # type: ignore[union-attr]
                k: source.head[k] for k in HEAD_FIELDS}
        restored.dispose()
    finally:
        drop_database(server.owner_url, name)
