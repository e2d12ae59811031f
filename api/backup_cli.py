"""`yufu backup FILE` and `yufu restore FILE` (docs/database.md, "Backup and restore").

A backup is one pg_dump of the database, taken in one snapshot, with what the service needs
to check it: the journal's size and head hash and the latest signed tree head as of that
snapshot, and the tree-head public key. The private signing key and the consumers' pseudonym
key go in only when asked for (`--with-signing-key`, `--with-pseudonym-key`), and the
manifest then lists them under `secrets`.

A restore goes only into a fresh home (and, with YUFU_DATABASE_URL, an empty database). It
checks the file against its manifest first, restores the dump as the target's owner, runs
the migrations and grants the service role exactly the policy (ledger/db/privileges.py),
then checks what it restored as `yufu verify` does, and against the manifest.

Exit codes: 0 restored (or backed up) and sound; 1 restored but a check failed (BROKEN);
2 refused, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from api.backup_archive import (
    BACKUP_FORMAT,
    DUMP_PART,
    PSEUDONYM_KEY_PART,
    PUBLIC_KEY_PART,
    SECRET_PARTS,
    SIGNING_KEY_PART,
    BackupRefused,
    format_version,
    read_archive,
    write_archive,
)
from api.backup_checks import check_restored, check_revision, manifest_head
from api.runtime import AUDIT_KEY_FILE_NAME, Database, database, migrate
from api.settings import Settings
from ledger import audit
from ledger.db import dump

PSEUDONYM_KEY_FILE_NAME = "pseudonym.key"  # api/runtime.py pseudonym_key's file


def add_commands(sub: Any) -> None:
    """Register `backup` and `restore` on the `yufu` parser's subcommands."""
    backup = sub.add_parser("backup", help="write a consistent backup of the books to FILE")
    backup.add_argument("file", type=Path, help="the backup file to write (never overwritten)")
    backup.add_argument("--with-signing-key", action="store_true",
                        help="include the private tree-head signing key (a secret)")
    backup.add_argument("--with-pseudonym-key", action="store_true",
                        help="include the consumers' pseudonym key (a secret)")
    restore = sub.add_parser("restore", help="restore a backup into a fresh YUFU_HOME "
                                             "(or an empty YUFU_DATABASE_URL) and verify it")
    restore.add_argument("file", type=Path, help="a file written by `yufu backup`")


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "backup":
            return _backup(args)
        return _restore(args.file)
    except (BackupRefused, dump.DumpRefused) as refused:
        print(f"yufu {args.command}: {refused}", file=sys.stderr)
        return 2


# --- backup -------------------------------------------------------------------------------


def _backup(args: argparse.Namespace) -> int:
    settings = Settings()
    target: Path = args.file
    if target.exists():
        raise BackupRefused(f"{target} exists: a backup never overwrites a file; name a new one")
    workdir = Path(tempfile.mkdtemp(prefix="yufu-backup-"))
    try:
        parts = _key_parts(settings, args, workdir)
        pg_dump = dump.tool("pg_dump")
        with database(settings) as db, dump.exported_snapshot(db.owner_url) as snapshot:
            dump.dump(pg_dump, db.owner_url, snapshot, workdir / DUMP_PART)
        parts[DUMP_PART] = workdir / DUMP_PART
        write_archive(target, _manifest(snapshot, pg_dump, parts), parts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    head = snapshot.latest_head
    print(f"wrote {target}: journal of {snapshot.journal_size} entries (head hash "
          f"{snapshot.journal_head_hash.hex()}), "
          + (f"latest signed tree head {head.head.tree_size}" if head else "no signed tree head"))
    secrets = sorted(set(parts) & set(SECRET_PARTS))
    print(f"secrets in the file: {', '.join(secrets)}; keep it as you keep those keys"
          if secrets else "no secret key in the file (the signing key stays where it is)")
    return 0


def _signing_key_file(settings: Settings) -> Path:
    return settings.audit_key_file or settings.home / AUDIT_KEY_FILE_NAME


def _key_parts(settings: Settings, args: argparse.Namespace, workdir: Path) -> dict[str, Path]:
    """The tree-head public key (if there is a key), and the secrets asked for."""
    parts: dict[str, Path] = {}
    key_file = _signing_key_file(settings)
    if key_file.exists():
        key = audit.load_private_key_pem(key_file.read_bytes())
        parts[PUBLIC_KEY_PART] = workdir / PUBLIC_KEY_PART
        parts[PUBLIC_KEY_PART].write_text(audit.public_key_pem(key.public_key()))
    if args.with_signing_key:
        if not key_file.exists():
            raise BackupRefused(f"--with-signing-key: there is no signing key at {key_file}")
        parts[SIGNING_KEY_PART] = _private_copy(key_file.read_bytes(), workdir / SIGNING_KEY_PART)
    if args.with_pseudonym_key:
        parts[PSEUDONYM_KEY_PART] = _private_copy(_pseudonym_key(settings),
                                                  workdir / PSEUDONYM_KEY_PART)
    return parts


def _pseudonym_key(settings: Settings) -> bytes:
    configured = os.environ.get("YUFU_PSEUDONYM_KEY")
    if configured:
        return configured.encode() + b"\n"
    key_file = settings.home / PSEUDONYM_KEY_FILE_NAME
    if not key_file.exists():
        raise BackupRefused(f"--with-pseudonym-key: there is no pseudonym key at {key_file} "
                            "and YUFU_PSEUDONYM_KEY is not set")
    return key_file.read_bytes()


def _private_copy(content: bytes, path: Path) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    return path


def _manifest(snapshot: dump.Snapshot, pg_dump: dump.Tool, parts: dict[str, Path]
              ) -> dict[str, Any]:
    head = snapshot.latest_head
    public = ([{"key_id": audit.key_id(audit.load_public_key_pem(
        parts[PUBLIC_KEY_PART].read_bytes())), "part": PUBLIC_KEY_PART}]
        if PUBLIC_KEY_PART in parts else [])
    return {
        "format": BACKUP_FORMAT, "format_version": format_version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "yufu_version": _yufu_version(),
        "database": {"server_version": snapshot.server_version, "revision": snapshot.revision,
                     "pg_dump_version": pg_dump.version},
        "journal": {"size": snapshot.journal_size,
                    "head_hash": snapshot.journal_head_hash.hex()},
        "tree_head": head.view() if head else None,
        "tree_head_key_ids": snapshot.head_key_ids,
        "public_keys": public,
        "secrets": sorted(set(parts) & set(SECRET_PARTS)),
    }


def _yufu_version() -> str:
    try:
        return version("yufu")
    except PackageNotFoundError:
        return "unknown"


# --- restore ------------------------------------------------------------------------------


def _restore(source: Path) -> int:
    settings = Settings()
    if not source.is_file():
        raise BackupRefused(f"there is no backup file {source}")
    pg_restore = dump.tool("pg_restore")
    _check_fresh_home(settings.home)
    workdir = Path(tempfile.mkdtemp(prefix="yufu-restore-"))
    try:
        manifest, parts = read_archive(source, workdir)
        dump.check_restore_version(pg_restore.major, _dumped_by(manifest))
        head = manifest_head(manifest, parts)
        check_revision(manifest)
        _check_key_targets(settings, parts)
        with database(settings) as db:
            _check_empty_database(db)
            _place_keys(settings, parts)
            _restore_dump(settings, pg_restore, db, parts[DUMP_PART])
            migrate(db)  # a backup of an older release is brought up to date; then the grants
            code = check_restored(db, manifest, head)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _say_next(settings, manifest, parts, code)
    return code


def _dumped_by(manifest: dict[str, Any]) -> str:
    try:
        return str(manifest["database"]["pg_dump_version"])
    except (KeyError, TypeError) as missing:
        raise BackupRefused("the manifest does not say which pg_dump made the dump"
                            ) from missing


def _check_fresh_home(home: Path) -> None:
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        held = ", ".join(sorted(p.name for p in home.iterdir())[:5]) if home.is_dir() else "a file"
        raise BackupRefused(f"the target home {home} is not empty (it holds {held}): a restore "
                            "goes only into a fresh YUFU_HOME and never overwrites; nothing "
                            "was changed")


def _check_empty_database(db: Database) -> None:
    tables = dump.database_tables(db.owner_url)
    if tables:
        raise BackupRefused(f"the target database is not empty (it holds the tables "
                            f"{', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}): "
                            "a restore goes only into an empty database; nothing was changed")


def _key_targets(settings: Settings, parts: dict[str, Path]) -> dict[str, Path]:
    """Where the backup's secrets go: the files `yufu serve` reads them from."""
    placed = {SIGNING_KEY_PART: _signing_key_file(settings),
              PSEUDONYM_KEY_PART: settings.home / PSEUDONYM_KEY_FILE_NAME}
    return {part: path for part, path in placed.items() if part in parts}


def _check_key_targets(settings: Settings, parts: dict[str, Path]) -> None:
    taken = [str(path) for path in _key_targets(settings, parts).values() if path.exists()]
    if taken:
        raise BackupRefused(f"{', '.join(taken)} exists: a restore never overwrites a key; "
                            "nothing was changed")


def _place_keys(settings: Settings, parts: dict[str, Path]) -> None:
    """The secrets the backup holds, into the new home, 0600 (never over an existing file)."""
    for part, path in _key_targets(settings, parts).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        _private_copy(parts[part].read_bytes(), path)


def _restore_dump(settings: Settings, pg_restore: dump.Tool, db: Database, archive: Path
                  ) -> None:
    try:
        dump.restore(pg_restore, db.owner_url, archive)
    except dump.DumpRefused as failed:
        raise BackupRefused(f"{failed}\nThe restore ran in one transaction: the database is "
                            f"as it was. Remove {settings.home} before trying again."
                            ) from failed


def _say_next(settings: Settings, manifest: dict[str, Any], parts: dict[str, Path],
              code: int) -> None:
    if code:
        print(f"the restore into {settings.home} did not verify: do not serve from it",
              file=sys.stderr)
        return
    print(f"restored into {settings.home}; `yufu serve` serves it")
    if SIGNING_KEY_PART not in parts and manifest.get("tree_head") is not None:
        print(f"the backup holds no signing key: put the key {manifest['tree_head']['key_id']} "
              f"at {_signing_key_file(settings)} before `yufu serve` (or rotate with "
              "YUFU_AUDIT_KEY_ROTATE=1 and publish the new public key to the auditors)")
    if PSEUDONYM_KEY_PART not in parts and not os.environ.get("YUFU_PSEUDONYM_KEY"):
        print("the backup holds no pseudonym key: restore the old one (YUFU_PSEUDONYM_KEY or "
              f"{settings.home / PSEUDONYM_KEY_FILE_NAME}), or consumers' phones map to new ids")
