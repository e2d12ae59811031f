"""What `yufu restore` checks: the manifest's signed head before restoring, and after it the
restored books as `yufu verify` checks them, against the manifest, and the service role's
privileges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from api.backup_archive import PUBLIC_KEY_PART, BackupRefused
from api.checks import verify_books
from api.runtime import Database, alembic_config, connect
from ledger import audit
from ledger.audit import SignedTreeHead, TreeHead
from ledger.db import privileges, queries
from ledger.db.audit_queries import latest_head
from ledger.db.dump import journal_root
from ledger.errors import InvariantViolation, LedgerError


def manifest_head(manifest: dict[str, Any], parts: dict[str, Path]) -> SignedTreeHead | None:
    """The manifest's signed tree head, its signature checked with the backup's public key
    (when the backup has the key that signed it)."""
    view = manifest.get("tree_head")
    if view is None:
        return None
    try:
        head = SignedTreeHead(TreeHead(int(view["tree_size"]), bytes.fromhex(view["root_hash"]),
                                       str(view["timestamp"]), str(view["key_id"])),
                              bytes.fromhex(view["signature"]))
    except (KeyError, TypeError, ValueError, InvariantViolation) as bad:
        raise BackupRefused(f"the manifest's tree head is malformed ({bad})") from bad
    if PUBLIC_KEY_PART in parts:
        try:
            key = audit.load_public_key_pem(parts[PUBLIC_KEY_PART].read_bytes())
        except LedgerError as bad:
            raise BackupRefused(f"{PUBLIC_KEY_PART} is not an Ed25519 public key") from bad
        if audit.key_id(key) == head.head.key_id and not audit.verify_tree_head(key, head):
            raise BackupRefused(f"the manifest's tree head {head.head.tree_size} does not "
                                f"verify with the backup's public key {head.head.key_id}: "
                                "the backup was altered; nothing was restored")
    return head


def check_revision(manifest: dict[str, Any]) -> None:
    """The backup's schema must be one of this release's migrations (or older): a newer
    release's books need that release to restore them."""
    revision = (manifest.get("database") or {}).get("revision")
    try:
        ScriptDirectory.from_config(alembic_config("")).get_revision(str(revision))
    except CommandError as unknown:
        raise BackupRefused(f"the backup's schema is at revision {revision!r}, which this "
                            "Yufu does not know: restore it with the release that made it "
                            "(or a newer one); nothing was changed") from unknown


def check_restored(db: Database, manifest: dict[str, Any], head: SignedTreeHead | None) -> int:
    """Print what the restored database holds and whether it is sound; 0 sound, 1 broken."""
    print(privileges_line(db))
    engine = connect(db.service_url)
    try:
        with engine.connect() as conn:
            code = verify_books(conn)
            if code:
                return code
            return _against_manifest(conn, manifest, head)
    finally:
        engine.dispose()


def privileges_line(db: Database) -> str:
    """The service role's powers, read back from PostgreSQL (the grant refuses to go on if
    they exceed the policy; this says so to the person restoring)."""
    if not db.roles_split:
        return ("the roles are not split (YUFU_MIGRATION_DATABASE_URL unset): the service's "
                "role may own the schema (docs/database.md)")
    owner = create_engine(db.owner_url, poolclass=NullPool)
    service = create_engine(db.service_url, poolclass=NullPool)
    try:
        with service.connect() as conn:
            role = str(conn.execute(text("SELECT current_user")).scalar_one())
        with owner.connect() as conn:
            found = privileges.problems(conn, role)
    finally:
        owner.dispose()
        service.dispose()
    if found:
        raise privileges.UnsafeRoles(f"the service role {role} can do more than Yufu grants "
                                     "it: " + "; ".join(found))
    return (f"privileges: the service role {role} holds exactly ledger/db/privileges.py's "
            "policy (no UPDATE or DELETE of history)")


def _against_manifest(conn: Connection, manifest: dict[str, Any],
                      head: SignedTreeHead | None) -> int:
    size, head_hash = queries.chain_head(conn)
    journal = manifest.get("journal") or {}
    if (size, head_hash.hex()) != (journal.get("size"), journal.get("head_hash")):
        print(f"BROKEN: the restored journal ends at entry {size} ({head_hash.hex()}) but the "
              f"backup's manifest says {journal.get('size')} ({journal.get('head_hash')})")
        return 1
    latest = latest_head(conn)
    if latest != head:
        print(f"BROKEN: the restored latest tree head is "
              f"{latest.view() if latest else None}, the manifest's {manifest.get('tree_head')}")
        return 1
    if head is None:
        print("no signed tree head in the backup: sign one after `yufu serve` starts")
        return 0
    root = journal_root(conn, head.head.tree_size)
    if root != head.head.root_hash:
        print(f"BROKEN: the root of the restored first {head.head.tree_size} entries is "
              f"{root.hex()}, the signed tree head's {head.head.root_hash.hex()}")
        return 1
    print(f"tree head {head.head.tree_size} (key {head.head.key_id}): as in the backup, its "
          "root recomputed from the restored entries")
    return 0
