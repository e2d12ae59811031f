"""The schema as SQLAlchemy models.

Alembic migrations create it; `alembic check` keeps the two equal.

Triggers and constraint triggers live in the migrations as hand-written SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime

# Rows that name a journal entry or an account written by the same batch: those are
# inserted at flush, after them, so the check waits for the commit.
DEFERRED_FK: dict[str, Any] = {"deferrable": True, "initially": "DEFERRED"}

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        int: BigInteger(),
        datetime: DateTime(timezone=True),
        bytes: LargeBinary(),
        str: Text(),
        dict[str, Any]: JSONB(),
    }


class JournalEntry(Base):
    __tablename__ = "journal_entries"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    ts: Mapped[datetime]
    kind: Mapped[str]
    prev_hash: Mapped[bytes]
    entry_hash: Mapped[bytes] = mapped_column(unique=True)
    body: Mapped[bytes]
    # Whose entry it is, copied from the payload at append (outside the hashed bytes): a bank
    # reads only its own merchants' entries and its own, found by index (docs/security.md).
    merchant_id: Mapped[str | None]
    bank_id: Mapped[str | None]
    __table_args__ = (
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("octet_length(prev_hash) = 32 AND octet_length(entry_hash) = 32",
                        name="hash_lengths"),
        Index("ix_journal_entries_kind_seq", "kind", "seq"),
        Index("ix_journal_entries_merchant_id_seq", "merchant_id", "seq",
              postgresql_where="merchant_id IS NOT NULL"),
        Index("ix_journal_entries_bank_id_seq", "bank_id", "seq",
              postgresql_where="bank_id IS NOT NULL"),
    )


class ChainHead(Base):
    """One row: the last appended entry. Every writer locks it, so the chain never forks."""

    __tablename__ = "chain_head"
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int]
    entry_hash: Mapped[bytes]
    ts: Mapped[datetime | None]
    # Bumped by the database on every write to a table a writer carries between batches
    # (migration 0005), so a process knows whether its copy of those rows is still current.
    generation: Mapped[int] = mapped_column(BigInteger, server_default="0")
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str]
    currency: Mapped[str] = mapped_column(String(3))
    name: Mapped[str]
    merchant_id: Mapped[str | None] = mapped_column(index=True)
    bank_id: Mapped[str | None] = mapped_column(index=True)
    non_negative: Mapped[bool]
    balance_fen: Mapped[int] = mapped_column(server_default="0")
    opened_seq: Mapped[int] = mapped_column(
        ForeignKey("journal_entries.seq", deferrable=True, initially="DEFERRED"))
    __table_args__ = (
        UniqueConstraint("id", "currency", name="uq_accounts_id_currency"),
        CheckConstraint("kind IN ('asset','liability','equity','income','expense')",
                        name="kind_known"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint(
            "NOT non_negative OR (CASE WHEN kind IN ('asset','expense') THEN balance_fen >= 0 "
            "ELSE balance_fen <= 0 END)", name="non_negative_balance"),
    )


class Transaction(Base):
    """A posted transaction; its id is the sequence number of its journal entry."""

    __tablename__ = "transactions"
    id: Mapped[int] = mapped_column(
        ForeignKey("journal_entries.seq", deferrable=True, initially="DEFERRED"),
        primary_key=True, autoincrement=False)
    memo: Mapped[str]
    # How many postings the transaction has: each posting names it, so none can be added later.
    postings_count: Mapped[int] = mapped_column(SmallInteger)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"), unique=True)
    ts: Mapped[datetime]
    __table_args__ = (
        CheckConstraint("reverses_id IS NULL OR reverses_id < id", name="reverses_earlier"),
        CheckConstraint("postings_count >= 2", name="two_postings"),
        UniqueConstraint("id", "postings_count", name="uq_transactions_id_postings_count"),
    )


class Posting(Base):
    __tablename__ = "postings"
    transaction_id: Mapped[int] = mapped_column(primary_key=True)
    idx: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    postings_count: Mapped[int] = mapped_column(SmallInteger)
    account_id: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    amount_fen: Mapped[int]
    # A posting names an account (in its currency) and a transaction (with its postings
    # count); both references are checked once per statement by a trigger (migration 0009).
    __table_args__ = (
        CheckConstraint("idx >= 0 AND idx < postings_count", name="idx_in_range"),
        CheckConstraint("amount_fen <> 0", name="amount_not_zero"),
        CheckConstraint("abs(amount_fen) <= 9007199254740991", name="amount_exact_in_json"),
        Index("ix_postings_account_id_transaction_id", "account_id", "transaction_id"),
    )


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(unique=True)
    secret_hash: Mapped[bytes]
    role: Mapped[str]
    merchant_id: Mapped[str | None]
    bank_id: Mapped[str | None]
    label: Mapped[str] = mapped_column(server_default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    issued_seq: Mapped[int] = mapped_column(
        ForeignKey("journal_entries.seq", deferrable=True, initially="DEFERRED"))
    # A consumer's key names the consumer's pseudonym (never the phone number).
    consumer_id: Mapped[str | None] = mapped_column(index=True)
    expires_at: Mapped[datetime | None]
    # A regulator key's scope (migration 0016): one department or one street, or neither (a
    # district key, which sees every merchant).
    department: Mapped[str | None]
    street: Mapped[str | None]
    __table_args__ = (
        CheckConstraint("role IN ('operator','merchant','bank','regulator','consumer')",
                        name="role_known"),
        CheckConstraint("(role = 'merchant') = (merchant_id IS NOT NULL)", name="merchant_scope"),
        CheckConstraint("(role = 'bank') = (bank_id IS NOT NULL)", name="bank_scope"),
        CheckConstraint("(role = 'consumer') = (consumer_id IS NOT NULL)",
                        name="consumer_scope"),
        CheckConstraint("role = 'regulator' OR (department IS NULL AND street IS NULL)",
                        name="regulator_scope"),
        CheckConstraint("department IS NULL OR street IS NULL", name="one_scope"),
        # Every key names something that exists: a filed merchant, a registered bank.
        # (Checked at the commit: a merchant and its first key may be written together.)
        ForeignKeyConstraint(["merchant_id"], ["merchants.id"], **DEFERRED_FK),
        ForeignKeyConstraint(["bank_id"], ["banks.id"], **DEFERRED_FK),
    )


class IdempotencyRecord(Base):
    """The first successful result of a write, kept under its Idempotency-Key."""

    __tablename__ = "idempotency_records"
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    key: Mapped[str] = mapped_column(primary_key=True)
    request_hash: Mapped[bytes]
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
