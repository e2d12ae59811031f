"""Read-side queries. They never write; each runs on a connection the caller provides."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, insert, select

from ledger import journal
from ledger.access import is_scoped
from ledger.auth import Principal, Role
from ledger.books import normal_sign
from ledger.db import custody_tables as c
from ledger.db import tables as t
from ledger.db import trust_tables as tt
from ledger.db.scope import supervised_ids, within_scope
from ledger.errors import Forbidden, NotFound

verify_chunk_entries = 5000


class Page(NamedTuple):
    """Which page of a list: the items whose id follows `after` (the previous page's
    `next_after`), at most `limit` of them, by id."""

    after: Any  # an id: an integer, or a string for merchants, cards and banks
    limit: int


def next_after(ids: list[Any], limit: int) -> Any:
    """The cursor of the page after one whose items have these ids: the last, on a full
    page; None on the last page."""
    return ids[-1] if len(ids) == limit else None


def account_view(conn: Connection, principal: Principal, account_id: int,
                 as_of: int | None = None) -> dict[str, Any]:
    # A role that never reads accounts (a consumer) is refused before anything is looked up.
    principal.require_role(Role.operator, Role.regulator, Role.merchant, Role.bank)
    row = conn.execute(select(t.Account.__table__).where(t.Account.id == account_id)).first()
    # Decided before existence: an account this key may not read answers as a missing one.
    if row is None or (as_of is not None and row.opened_seq > as_of) or \
            not principal.may_read_account(row.merchant_id, row.bank_id) or \
            not _supervised_account(conn, principal, row.merchant_id):
        raise NotFound(f"account {account_id} does not exist", field="id")
    balance = row.balance_fen
    if as_of is not None:
        balance = conn.execute(
            select(func.coalesce(func.sum(t.Posting.amount_fen), 0)).where(
                t.Posting.account_id == account_id, t.Posting.transaction_id <= as_of)
        ).scalar_one()
    return {"id": row.id, "kind": row.kind, "currency": row.currency, "name": row.name,
            "merchant_id": row.merchant_id, "bank_id": row.bank_id,
            "non_negative": row.non_negative, "opened_seq": row.opened_seq,
            "as_of": as_of, "balance_fen": int(balance),
            "normal_balance_fen": int(balance) * normal_sign(row.kind)}


def _supervised_account(conn: Connection, principal: Principal, merchant_id: str | None
                        ) -> bool:
    """A department or street regulator key reads the accounts of its merchants only."""
    ids = supervised_ids(principal)
    if ids is None:
        return True
    return merchant_id is not None and \
        conn.execute(ids.where(c.Merchant.id == merchant_id)).first() is not None


def postings_page(conn: Connection, principal: Principal, account_id: int, after: int,
                  limit: int) -> dict[str, Any]:
    account_view(conn, principal, account_id)
    query = (select(t.Posting.transaction_id, t.Posting.idx, t.Posting.amount_fen,
                    t.Posting.currency, t.Transaction.memo, t.Transaction.ts)
             .join(t.Transaction, t.Transaction.id == t.Posting.transaction_id)
             .where(t.Posting.account_id == account_id)
             .order_by(t.Posting.transaction_id, t.Posting.idx))
    rows = list(conn.execute(query.where(t.Posting.transaction_id > after).limit(limit)))
    full = len(rows) == limit
    if full:
        # The cursor is a transaction id, so a page never ends inside a transaction that
        # names the account more than once: the rest of its postings join this page.
        last = rows[-1]
        rows += conn.execute(query.where(t.Posting.transaction_id == last.transaction_id,
                                         t.Posting.idx > last.idx))
    items = [{"transaction_id": r.transaction_id, "idx": r.idx, "amount_fen": r.amount_fen,
              "currency": r.currency, "memo": r.memo, "ts": journal.format_ts(r.ts)}
             for r in rows]
    next_after = rows[-1].transaction_id if full else None
    return {"account_id": account_id, "items": items, "next_after": next_after}


def entry_view(seq: int, kind: str, prev_hash: bytes, entry_hash: bytes,
               body: bytes) -> dict[str, Any]:
    decoded = json.loads(body)
    return {"seq": seq, "ts": decoded["ts"], "kind": kind, "payload": decoded["payload"],
            "prev_hash": bytes(prev_hash).hex(), "entry_hash": bytes(entry_hash).hex(),
            "canonical_b64": base64.b64encode(bytes(body)).decode()}


_ENTRY_COLUMNS = (t.JournalEntry.seq, t.JournalEntry.kind, t.JournalEntry.prev_hash,
                  t.JournalEntry.entry_hash, t.JournalEntry.body)


def _bank_scope(bank_id: str) -> Any:
    """A bank's entries: its own, and those of the merchants whose custodian it is."""
    own_merchants = select(c.Merchant.id).where(c.Merchant.bank_id == bank_id)
    return (t.JournalEntry.bank_id == bank_id) | t.JournalEntry.merchant_id.in_(own_merchants)


def _scoped(query: Any, principal: Principal | None) -> Any:
    if principal is not None and is_scoped(principal):
        # A department or street key: the entries of its merchants (ledger/db/scope.py).
        return within_scope(query, principal, t.JournalEntry.merchant_id)
    if principal is None or principal.role in (Role.operator, Role.regulator):
        return query
    if principal.role == Role.bank and principal.bank_id is not None:
        return query.where(_bank_scope(principal.bank_id))
    raise Forbidden("the journal is for the operator, regulators and custodian banks")


def journal_page(conn: Connection, after: int, limit: int,
                 principal: Principal | None = None) -> dict[str, Any]:
    """A page of the journal; a bank's pages hold only its own entries, a department or street
    regulator key's those of its merchants (next_after then skips the others)."""
    query = select(*_ENTRY_COLUMNS).where(t.JournalEntry.seq > after)
    rows = conn.execute(_scoped(query, principal).order_by(t.JournalEntry.seq)
                        .limit(limit)).all()
    items = [entry_view(*r) for r in rows]
    head = conn.execute(select(t.ChainHead.seq).where(t.ChainHead.id == 1)).scalar_one()
    if principal is not None and (principal.role == Role.bank or is_scoped(principal)):
        next_after = rows[-1].seq if len(rows) == limit else None
    else:
        next_after = rows[-1].seq if rows and rows[-1].seq < head else None
    return {"items": items, "head_seq": head, "next_after": next_after}


def journal_entry(conn: Connection, seq: int, principal: Principal | None = None
                  ) -> dict[str, Any]:
    """One entry; to a bank an entry of another bank's merchant answers as missing, to a
    department or street regulator key one of a merchant outside its scope."""
    query = select(*_ENTRY_COLUMNS).where(t.JournalEntry.seq == seq)
    row = conn.execute(_scoped(query, principal)).first()
    if row is None:
        raise NotFound(f"journal entry {seq} does not exist", field="seq")
    return entry_view(*row)


def stored_entries(conn: Connection, start_after: int = 0) -> Iterator[journal.StoredEntry]:
    """Every entry in order, read in chunks so memory stays flat."""
    after = start_after
    while True:
        rows = conn.execute(select(*_ENTRY_COLUMNS).where(t.JournalEntry.seq > after)
                            .order_by(t.JournalEntry.seq).limit(verify_chunk_entries)).all()
        if not rows:
            return
        for r in rows:
            yield journal.StoredEntry(r.seq, r.kind, bytes(r.prev_hash), bytes(r.entry_hash),
                                      bytes(r.body))
        after = rows[-1].seq


def chain_head(conn: Connection) -> tuple[int, bytes]:
    row = conn.execute(select(t.ChainHead.seq, t.ChainHead.entry_hash)
                       .where(t.ChainHead.id == 1)).one()
    return row.seq, bytes(row.entry_hash)


def account_balance_mismatches(conn: Connection) -> list[int]:
    """Accounts whose cached balance differs from the sum of their postings."""
    sums = (select(t.Posting.account_id, func.sum(t.Posting.amount_fen).label("total"))
            .group_by(t.Posting.account_id).subquery())
    rows = conn.execute(
        select(t.Account.id).outerjoin(sums, sums.c.account_id == t.Account.id)
        .where(t.Account.balance_fen != func.coalesce(sums.c.total, 0))
        .order_by(t.Account.id)).all()
    return [r.id for r in rows]


@dataclass(frozen=True, slots=True)
class StoredKey:
    secret_hash: bytes
    principal: Principal
    expires_at: datetime | None
    revoked: bool


def key_for_prefix(conn: Connection, prefix: str) -> StoredKey | None:
    row = conn.execute(
        select(t.ApiKey.__table__, tt.KeyRevocation.revoked_seq)
        .outerjoin(tt.KeyRevocation, tt.KeyRevocation.key_id == t.ApiKey.id)
        .where(t.ApiKey.prefix == prefix)).first()
    if row is None:
        return None
    principal = Principal(row.id, Role(row.role), row.merchant_id, row.bank_id, row.consumer_id,
                          row.department, row.street)
    return StoredKey(bytes(row.secret_hash), principal, row.expires_at,
                     row.revoked_seq is not None)


def keys_page(conn: Connection, after: int, limit: int, role: str | None = None
              ) -> dict[str, Any]:
    """Keys as an operator lists them: never the secret, nor its hash."""
    query = (select(t.ApiKey.id, t.ApiKey.prefix, t.ApiKey.role, t.ApiKey.merchant_id,
                    t.ApiKey.bank_id, t.ApiKey.consumer_id, t.ApiKey.department,
                    t.ApiKey.street, t.ApiKey.label,
                    t.ApiKey.created_at, t.ApiKey.expires_at, t.ApiKey.issued_seq,
                    tt.KeyRevocation.revoked_seq, tt.KeyRevocation.reason)
             .outerjoin(tt.KeyRevocation, tt.KeyRevocation.key_id == t.ApiKey.id)
             .where(t.ApiKey.id > after).order_by(t.ApiKey.id).limit(limit))
    if role is not None:
        query = query.where(t.ApiKey.role == role)
    rows = conn.execute(query).all()
    items = [{"key_id": r.id, "prefix": r.prefix, "role": r.role, "merchant_id": r.merchant_id,
              "bank_id": r.bank_id, "consumer_id": r.consumer_id,
              "department": r.department, "street": r.street, "label": r.label,
              "created_at": journal.format_ts(r.created_at),
              "expires_at": None if r.expires_at is None else journal.format_ts(r.expires_at),
              "issued_seq": r.issued_seq, "revoked_seq": r.revoked_seq,
              "revoked_reason": r.reason} for r in rows]
    return {"items": items, "next_after": rows[-1].id if len(rows) == limit else None}


def banks(conn: Connection, page: Page) -> dict[str, Any]:
    rows = conn.execute(select(tt.Bank.__table__).where(tt.Bank.id > page.after)
                        .order_by(tt.Bank.id).limit(page.limit)).all()
    return {"items": [{"id": r.id, "name": r.name, "code": r.code,
                       "registered_seq": r.registered_seq} for r in rows],
            "next_after": next_after([r.id for r in rows], page.limit)}


def access_records_page(conn: Connection, after: int, limit: int, key_id: int | None = None,
                        role: str | None = None) -> dict[str, Any]:
    """Reads by banks and regulators, oldest first (docs/security.md)."""
    query = select(tt.AccessRecord.__table__).where(tt.AccessRecord.id > after)
    if key_id is not None:
        query = query.where(tt.AccessRecord.key_id == key_id)
    if role is not None:
        query = query.where(tt.AccessRecord.role == role)
    rows = conn.execute(query.order_by(tt.AccessRecord.id).limit(limit)).all()
    items = [{"id": r.id, "ts": journal.format_ts(r.ts), "request_id": r.request_id,
              "key_id": r.key_id, "role": r.role, "method": r.method, "route": r.route,
              "path": r.path, "query": r.query, "status": r.status} for r in rows]
    return {"items": items, "next_after": rows[-1].id if len(rows) == limit else None}


def rule_set_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(c.RuleSetVersion)).scalar_one())


def key_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.ApiKey)).scalar_one())


def write_access_records(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Records of reads (api/access_records.py): one multi-row insert."""
    conn.execute(insert(tt.AccessRecord), rows)
