"""The audit schema: the journal's Merkle tree and its signed tree heads.

Both tables are append-only (triggers in migration 0003). The tree is stored as the roots of
its complete subtrees (see ledger/merkle.py): a node is written once, in the same database
transaction as the journal entry that completes it, and never changes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.tables import Base


class MerkleNode(Base):
    """The complete subtree over leaves [idx * 2**level, (idx + 1) * 2**level).

    Level 0 holds the leaf hashes: leaf idx is journal entry seq = idx + 1.
    """

    __tablename__ = "merkle_nodes"
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    hash: Mapped[bytes]
    __table_args__ = (
        CheckConstraint("level >= 0 AND level < 63 AND idx >= 0", name="key_in_range"),
        CheckConstraint("octet_length(hash) = 32", name="hash_length"),
    )


class TreeHead(Base):
    """A signed tree head: the root of the journal's first tree_size entries, signed with the
    service's Ed25519 key (docs/audit-format.md gives the signed bytes)."""

    __tablename__ = "tree_heads"
    tree_size: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes]
    ts: Mapped[datetime]
    key_id: Mapped[str]
    signature: Mapped[bytes]
    __table_args__ = (
        CheckConstraint("tree_size >= 1", name="tree_size_positive"),
        CheckConstraint("octet_length(root_hash) = 32", name="root_hash_length"),
        CheckConstraint("key_id ~ '^[0-9a-f]{64}$'", name="key_id_hex"),
        CheckConstraint("octet_length(signature) = 64", name="signature_length"),
    )
