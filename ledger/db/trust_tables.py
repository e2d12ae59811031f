"""Who may act: the registry of custodian banks, key revocations, consumers' one-time codes,
and the record of reads by banks and regulators (docs/security.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, func
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.tables import DEFERRED_FK, Base


class Bank(Base):
    """A custodian bank (存管银行). Merchants are filed with one, bank keys name one.
    Append-only: a bank registered stays registered (its history names it)."""

    __tablename__ = "banks"
    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    # CNAPS bank code (12 digits) or SWIFT BIC (8 or 11 characters).
    code: Mapped[str] = mapped_column(unique=True)
    # NULL only for banks that merchants named before the registry existed (migration 0010).
    registered_seq: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entries.seq", **DEFERRED_FK))


class KeyRevocation(Base):
    """A key's revocation: a row of its own, so api_keys stays append-only and a revocation
    can never be undone. Inserting one notifies every worker (migration 0010)."""

    __tablename__ = "key_revocations"
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True,
                                        autoincrement=False)
    reason: Mapped[str] = mapped_column(server_default="")
    revoked_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))


class ConsumerCode(Base):
    """A one-time code sent to a consumer's phone (or external id): stored as a keyed hash,
    never in clear; expires; counts the attempts made against it."""

    __tablename__ = "consumer_codes"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    consumer_id: Mapped[str]
    code_hash: Mapped[bytes]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    used_at: Mapped[datetime | None]
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_counted"),
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
        Index("ix_consumer_codes_consumer_id_created_at", "consumer_id", "created_at"),
    )


class AccessRecord(Base):
    """One read by a bank or a regulator: who read what, when (append-only)."""

    __tablename__ = "access_records"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(server_default=func.now())
    request_id: Mapped[str]
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    role: Mapped[str]
    method: Mapped[str]
    route: Mapped[str]
    path: Mapped[str]
    query: Mapped[str] = mapped_column(server_default="")
    status: Mapped[int] = mapped_column(SmallInteger)
    __table_args__ = (Index("ix_access_records_key_id_id", "key_id", "id"),)
