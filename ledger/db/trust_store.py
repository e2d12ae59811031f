"""SQL for the trust commands: banks, keys and their revocations, consumers' codes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from ledger.db import custody_tables as c
from ledger.db import tables as t
from ledger.db import trust_tables as tt
from ledger.db.batch import Batch

# Banks are never unregistered (append-only), so a bank seen once is known for good.
_known_banks: set[tuple[str, str]] = set()


def bank_registered(batch: Batch, bank_id: str) -> bool:
    key = (str(batch.conn.engine.url), bank_id)
    if key in _known_banks:
        return True
    found = batch.conn.execute(select(tt.Bank.id).where(tt.Bank.id == bank_id)).first()
    if found is not None:
        _known_banks.add(key)
    return found is not None


def bank_code_taken(batch: Batch, code: str) -> str | None:
    return batch.conn.execute(select(tt.Bank.id).where(tt.Bank.code == code)).scalar()


def merchant_filed(batch: Batch, merchant_id: str) -> bool:
    if batch.rows.get(c.Merchant, merchant_id) is not None:
        return True
    batch.sync()
    return batch.conn.execute(
        select(c.Merchant.id).where(c.Merchant.id == merchant_id)).first() is not None


def key_row(batch: Batch, key_id: int) -> Any:
    return batch.conn.execute(
        select(t.ApiKey.id, t.ApiKey.role, t.ApiKey.merchant_id, t.ApiKey.bank_id,
               t.ApiKey.consumer_id, tt.KeyRevocation.revoked_seq)
        .outerjoin(tt.KeyRevocation, tt.KeyRevocation.key_id == t.ApiKey.id)
        .where(t.ApiKey.id == key_id)).first()


def other_lasting_operator_keys(batch: Batch, key_id: int) -> int:
    """Operator keys other than this one that are not revoked and never expire: an expiring
    key would leave nobody to administer Yufu once its time is up."""
    revoked = select(tt.KeyRevocation.key_id).where(tt.KeyRevocation.key_id == t.ApiKey.id)
    return int(batch.conn.execute(
        select(func.count()).select_from(t.ApiKey)
        .where(t.ApiKey.role == "operator", t.ApiKey.id != key_id,
               t.ApiKey.expires_at.is_(None), ~revoked.exists())).scalar_one())


def record_revocation(batch: Batch, key_id: int, reason: str, seq: int) -> None:
    # Written at once (not buffered): the next revocation in this batch must see it when it
    # counts the operator keys that remain.
    batch.write(insert(tt.KeyRevocation).values(key_id=key_id, reason=reason, revoked_seq=seq))


def codes_sent_since(batch: Batch, consumer_id: str, now: datetime, window_s: int
                     ) -> list[datetime]:
    batch.sync()
    since = now - timedelta(seconds=window_s)
    return list(batch.conn.execute(
        select(tt.ConsumerCode.created_at)
        .where(tt.ConsumerCode.consumer_id == consumer_id, tt.ConsumerCode.created_at > since)
        .order_by(tt.ConsumerCode.created_at)).scalars())


def latest_code(batch: Batch, consumer_id: str, now: datetime) -> dict[str, Any] | None:
    """The consumer's newest code that is unused and unexpired, locked."""
    batch.sync()
    row_id = batch.conn.execute(
        select(tt.ConsumerCode.id)
        .where(tt.ConsumerCode.consumer_id == consumer_id, tt.ConsumerCode.used_at.is_(None),
               tt.ConsumerCode.expires_at > now)
        .order_by(tt.ConsumerCode.id.desc()).limit(1)).scalar()
    if row_id is None:
        return None
    row = batch.conn.execute(select(tt.ConsumerCode.__table__)
                             .where(tt.ConsumerCode.id == row_id).with_for_update()).one()
    return batch.rows.remember(tt.ConsumerCode, row_id, dict(row._mapping))


def insert_code(batch: Batch, row: dict[str, Any]) -> None:
    batch.rows.insert(tt.ConsumerCode, row["id"], row)


def update_code(batch: Batch, code_id: int, **values: Any) -> None:
    batch.rows.update(tt.ConsumerCode, code_id, **values)


class TrustRows:
    """Interim: the trust store on a batch (completed on branch bankdoor)."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    def bank_registered(self, bank_id: str) -> bool:
        return bank_registered(self.batch, bank_id)
