"""What the audit tests share: the verifier script, journals, heads and trees."""

from __future__ import annotations

import hashlib
import io
from types import ModuleType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text

from api.audit_cli import load_verifier
from api.runtime import run_command
from ledger import merkle
from ledger.audit_service import SignTreeHead
from ledger.service import PostTransaction
from tests.support.db import open_account

# The test key of docs/audit-format.md: its seed is SHA-256 of this text.
DOC_KEY_SEED = hashlib.sha256(b"yufu audit-format test key").digest()


def doc_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(DOC_KEY_SEED)


def verifier() -> ModuleType:
    """scripts/verify_audit.py, loaded by path as `yufu audit verify` does."""
    return load_verifier()


def run_verifier(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = verifier().main(list(args), out=out)
    return code, out.getvalue()


def post_transfers(engine: Engine, count: int) -> None:
    """`count` journal entries: a pair of accounts, then transfers between them."""
    cash = open_account(engine, "asset")
    card = open_account(engine, "liability")
    for n in range(max(0, count - 2)):
        run_command(engine, PostTransaction.parse({"memo": f"sale {n}", "postings": [
            {"account_id": cash, "amount_fen": 100 + n},
            {"account_id": card, "amount_fen": -100 - n}]}))


def sign_head(engine: Engine, key: Ed25519PrivateKey) -> dict[str, Any]:
    return run_command(engine, SignTreeHead(key), 200)


def memory_tree(engine: Engine) -> merkle.MemoryTree:
    """The tree recomputed from the journal's bytes, with the pure code."""
    with engine.connect() as conn:
        bodies = conn.execute(text("SELECT body FROM journal_entries ORDER BY seq")).scalars()
        return merkle.MemoryTree(merkle.leaf_hash(bytes(b)) for b in bodies)


def stored_nodes(engine: Engine) -> dict[tuple[int, int], bytes]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT level, idx, hash FROM merkle_nodes")).all()
    return {(r.level, r.idx): bytes(r.hash) for r in rows}
