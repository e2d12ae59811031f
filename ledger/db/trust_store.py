"""The trust store (ledger/trust_store.py) on a batch: banks, keys, revocations and one-time
codes are rows of the batch, written at its flush; queries through `Batch.query`.

A bank, key or revocation made in this batch is held by the batch until its flush, so the
reads by id look there first; a query (which syncs) sees them in the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ledger.auth import NewKey, Role
from ledger.db import custody_tables as c
from ledger.db import tables as t
from ledger.db import trust_tables as tt
from ledger.db.batch import Batch
from ledger.trust_store import Key, KeyGrant, OneTimeCode


class TrustRows:
    """`TrustStore` for one batch."""

    __slots__ = ("batch",)

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    # -- by id ---------------------------------------------------------------------------
    def bank_registered(self, bank_id: str) -> bool:
        batch, known = self.batch, self.batch.state.known_banks  # banks are never removed
        if bank_id in known or batch.rows.get(tt.Bank, bank_id) is not None:
            return True
        found = batch.lookup(select(tt.Bank.id).where(tt.Bank.id == bank_id)).first()
        if found is not None:
            known.add(bank_id)
        return found is not None

    def merchant_filed(self, merchant_id: str) -> bool:
        batch = self.batch
        if batch.rows.get(c.Merchant, merchant_id) is not None:
            return True
        return batch.lookup(
            select(c.Merchant.id).where(c.Merchant.id == merchant_id)).first() is not None

    def key(self, key_id: int) -> Key | None:
        batch = self.batch
        row: Any = batch.rows.get(t.ApiKey, key_id)
        revoked_seq: int | None = None
        if row is None:
            found = batch.lookup(
                select(t.ApiKey.role, t.ApiKey.merchant_id, t.ApiKey.bank_id,
                       t.ApiKey.consumer_id, tt.KeyRevocation.revoked_seq)
                .outerjoin(tt.KeyRevocation, tt.KeyRevocation.key_id == t.ApiKey.id)
                .where(t.ApiKey.id == key_id)).first()
            if found is None:
                return None
            row, revoked_seq = found._mapping, found.revoked_seq
        revocation = batch.rows.get(tt.KeyRevocation, key_id)
        if revocation is not None:
            revoked_seq = revocation["revoked_seq"]
        return Key(key_id, Role(row["role"]), row["merchant_id"], row["bank_id"],
                   row["consumer_id"], revoked_seq)

    # -- queries -------------------------------------------------------------------------
    def bank_code_taken(self, code: str) -> str | None:
        taken = self.batch.query(select(tt.Bank.id).where(tt.Bank.code == code)).scalar()
        return None if taken is None else str(taken)

    def other_lasting_operator_keys(self, key_id: int) -> int:
        revoked = select(tt.KeyRevocation.key_id).where(tt.KeyRevocation.key_id == t.ApiKey.id)
        return int(self.batch.query(
            select(func.count()).select_from(t.ApiKey)
            .where(t.ApiKey.role == Role.operator.value, t.ApiKey.id != key_id,
                   t.ApiKey.expires_at.is_(None), ~revoked.exists())).scalar_one())

    def codes_sent_since(self, consumer_id: str, since: datetime) -> list[datetime]:
        return list(self.batch.query(
            select(tt.ConsumerCode.created_at)
            .where(tt.ConsumerCode.consumer_id == consumer_id,
                   tt.ConsumerCode.created_at > since)
            .order_by(tt.ConsumerCode.created_at)).scalars())

    def latest_code(self, consumer_id: str, now: datetime) -> OneTimeCode | None:
        batch = self.batch
        code_id = batch.query(
            select(tt.ConsumerCode.id)
            .where(tt.ConsumerCode.consumer_id == consumer_id,
                   tt.ConsumerCode.used_at.is_(None), tt.ConsumerCode.expires_at > now)
            .order_by(tt.ConsumerCode.id.desc()).limit(1)).scalar()
        if code_id is None:
            return None
        found = batch.lookup(select(tt.ConsumerCode.__table__)
                             .where(tt.ConsumerCode.id == code_id).with_for_update()).one()
        row = batch.rows.remember(tt.ConsumerCode, code_id, dict(found._mapping))
        return OneTimeCode(row["id"], row["consumer_id"], bytes(row["code_hash"]),
                           row["created_at"], row["expires_at"], row["attempts"],
                           row["used_at"])

    # -- writes --------------------------------------------------------------------------
    def add_bank(self, bank_id: str, name: str, code: str, registered_seq: int) -> None:
        self.batch.rows.insert(tt.Bank, bank_id, {"id": bank_id, "name": name, "code": code,
                                                  "registered_seq": registered_seq})

    def add_key(self, key_id: int, key: NewKey, grant: KeyGrant, issued_seq: int) -> None:
        self.batch.rows.insert(t.ApiKey, key_id, {
            "id": key_id, "prefix": key.prefix, "secret_hash": key.secret_hash,
            "role": grant.role.value, "merchant_id": grant.merchant_id,
            "bank_id": grant.bank_id, "consumer_id": grant.consumer_id, "label": grant.label,
            "expires_at": grant.expires_at, "department": grant.department,
            "street": grant.street, "issued_seq": issued_seq})

    def revoke_key(self, key_id: int, reason: str, revoked_seq: int) -> None:
        # A row of the batch like any other: the next revocation's count of the operator keys
        # left is a query, which writes it first.
        self.batch.rows.insert(tt.KeyRevocation, key_id, {
            "key_id": key_id, "reason": reason, "revoked_seq": revoked_seq})

    def add_code(self, code: OneTimeCode) -> None:
        self.batch.rows.insert(tt.ConsumerCode, code.id, {
            "id": code.id, "consumer_id": code.consumer_id, "code_hash": code.code_hash,
            "created_at": code.created_at, "expires_at": code.expires_at,
            "attempts": code.attempts, "used_at": code.used_at})

    def count_attempt(self, code_id: int, attempts: int) -> None:
        self.batch.rows.update(tt.ConsumerCode, code_id, attempts=attempts)

    def use_code(self, code_id: int, used_at: datetime) -> None:
        self.batch.rows.update(tt.ConsumerCode, code_id, used_at=used_at)
