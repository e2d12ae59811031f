"""Read side for partner banks: instruction files, open breaks, cross-verifications."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, func, select

from ledger.access import (
    bank_scope,
    merchant_scope,
    require_bank_reader,
    require_book_reader,
    require_journal_reader,
)
from ledger.auth import Principal
from ledger.bank.payments import PaymentInstruction
from ledger.bank.reconciliation import BreakStatus
from ledger.bank.store import ImportedFile, SeenStatement
from ledger.custody.lifecycle import InstructionStatus
from ledger.db import bank_tables as b
from ledger.db import custody_tables as c
from ledger.db.queries import Page, next_after
from ledger.db.scope import supervised_ids, within_scope

# The bank maps these to the merchant's registered settlement account and, for refunds, to
# the account the consumer paid from: the ledger keeps neither (no personal data).
# (ISO account ids here are letters and digits only.)
release_creditor_account_prefix = "MERCHANT"
refund_creditor_account = "RETURNTOPAYER"


def payment_instructions(conn: Connection, principal: Principal, bank_id: str,
                         today: date, page: Page | None = None) -> list[PaymentInstruction]:
    """Pending releases and refunds out of the custody accounts held at this bank: all of
    them (a payment file), or a page of them by end-to-end id, the id the bank knows them by
    (`page.after`, a string; the list answered as JSON)."""
    require_bank_reader(principal, bank_id)
    out: list[PaymentInstruction] = []
    for table, is_release in ((c.ReleaseInstruction, True), (c.RefundInstruction, False)):
        extra = [] if is_release else [c.Card.consumer_id]
        query = (select(table.__table__, c.Merchant.name.label("merchant_name"),
                        c.Merchant.custody_account, *extra)
                 .join(c.Merchant, c.Merchant.id == table.merchant_id)
                 .where(c.Merchant.bank_id == bank_id, table.status == InstructionStatus.pending,
                        table.bank_status != "rejected", table.amount_fen > 0))
        if not is_release:
            query = query.join(c.Card, c.Card.id == c.RefundInstruction.card_id)
        query = within_scope(query, principal, table.merchant_id)
        if page is None:
            query = query.order_by(table.id)
        else:
            query = query.where(table.end_to_end_id > page.after) \
                .order_by(table.end_to_end_id).limit(page.limit)
        for r in conn.execute(query).all():
            out.append(_instruction(r, is_release, today))
    if page is None:
        return out
    return sorted(out, key=lambda i: i.end_to_end_id)[:page.limit]


def _instruction(r: Any, is_release: bool, today: date) -> PaymentInstruction:
    if is_release:
        creditor, account = r.merchant_name, (release_creditor_account_prefix
                                                 + r.merchant_id.replace("_", "").upper())
        remittance = f"Yufu release {r.period_start}..{r.period_end}"
    else:
        creditor, account = f"consumer {r.consumer_id[:16]}", refund_creditor_account
        remittance = f"Yufu refund ({r.reason}) card {r.card_id}"
    return PaymentInstruction(
        end_to_end_id=r.end_to_end_id, amount_fen=r.amount_fen, currency="CNY",
        debtor_account=r.custody_account, debtor_name=f"{r.merchant_name} custody",
        creditor_name=creditor[:70], creditor_account=account, remittance=remittance[:140],
        requested_date=today)


class BreakFilter(NamedTuple):
    """Which breaks a list asks for: each field given must match; None or empty, any."""

    bank_id: str | None = None
    merchant_id: str | None = None
    status: str | None = None


def breaks(conn: Connection, principal: Principal, wanted: BreakFilter,
           today: date, page: Page) -> dict[str, Any]:
    """A page of breaks, oldest first, with their age in days; `open` and `by_bank_merchant`
    (count, amount, oldest age of the open ones per bank and merchant) are of every break the
    filter matches, not only the page's, summed by the database."""
    require_journal_reader(principal)  # breaks: the operator, regulators and banks
    bank_id, merchant_id, status = wanted
    bank_id = bank_scope(principal, bank_id, "breaks")
    brk = b.ReconciliationBreak
    conditions = [brk.bank_id == bank_id] if bank_id else []
    if merchant_id:
        conditions.append(brk.merchant_id == merchant_id)
    if status:
        conditions.append(brk.status == status)
    scoped = supervised_ids(principal)
    if scoped is not None:  # a department or street key: its merchants' breaks (none unnamed)
        conditions.append(brk.merchant_id.in_(scoped))
    rows = conn.execute(select(brk.__table__).where(*conditions, brk.id > page.after)
                        .order_by(brk.id).limit(page.limit)).all()
    items = [{**_plain(r._mapping), "age_days": (today - r.opened_on).days} for r in rows]
    groups = conn.execute(
        select(brk.bank_id, brk.merchant_id, func.count().label("open"),
               func.sum(brk.amount_fen).label("amount_fen"),
               func.min(brk.opened_on).label("oldest"))
        .where(*conditions, brk.status == BreakStatus.open)
        .group_by(brk.bank_id, brk.merchant_id)).all()
    # Sorted here, not by the database's collation: by code point, as ever.
    by_bank_merchant = [{"bank_id": g.bank_id, "merchant_id": g.merchant_id, "open": g.open,
                         "amount_fen": int(g.amount_fen),
                         "oldest_age_days": max(0, (today - g.oldest).days)}
                        for g in sorted(groups, key=lambda g: (g.bank_id, g.merchant_id or ""))]
    return {"items": items, "next_after": next_after([r.id for r in rows], page.limit),
            "open": sum(g["open"] for g in by_bank_merchant),
            "by_bank_merchant": by_bank_merchant}


def cross_verifications(conn: Connection, principal: Principal, merchant_id: str | None,
                        bank_id: str | None, page: Page) -> dict[str, Any]:
    """A page, by id, of the last cross-verification of every custody account (the principal
    may see): all for the operator and regulators, a bank's own, a merchant's own; none for
    a consumer."""
    require_book_reader(principal)
    bank_id = bank_scope(principal, bank_id, "cross-verifications")
    own = merchant_scope(principal, None)  # a merchant key: its own accounts, whatever it asks
    latest = (select(func.max(b.CrossVerification.id))
              .group_by(b.CrossVerification.bank_id, b.CrossVerification.account))
    query = select(b.CrossVerification.__table__).where(b.CrossVerification.id.in_(latest),
                                                        b.CrossVerification.id > page.after)
    if merchant_id:
        query = query.where(b.CrossVerification.merchant_id == merchant_id)
    if bank_id:
        query = query.where(b.CrossVerification.bank_id == bank_id)
    if own:
        query = query.where(b.CrossVerification.merchant_id == own)
    query = within_scope(query, principal, b.CrossVerification.merchant_id)
    rows = conn.execute(query.order_by(b.CrossVerification.id).limit(page.limit)).all()
    return {"items": [{**_plain(r._mapping),
                       "result": "match" if r.difference_fen == 0 else "difference"}
                      for r in rows],
            "next_after": next_after([r.id for r in rows], page.limit)}


def _plain(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v)
            for k, v in dict(row).items()}


def merchants_by_account(conn: Connection, bank_id: str) -> dict[str, str]:
    """The bank's merchants by custody account, as an import sorts statements by them."""
    rows = conn.execute(select(c.Merchant.custody_account, c.Merchant.id)
                        .where(c.Merchant.bank_id == bank_id)).all()
    return {str(account): str(merchant_id) for account, merchant_id in rows}


def statements_seen(conn: Connection, bank_id: str, fingerprints: list[bytes]
                    ) -> dict[bytes, SeenStatement]:
    """Which of these statements (by fingerprint) the bank's files imported before."""
    if not fingerprints:
        return {}
    return seen_statements(conn.execute(statements_seen_query(bank_id, fingerprints)).all())


def statements_seen_query(bank_id: str, fingerprints: Collection[bytes]
                          ) -> Select[bytes, int, int]:
    """The statements of these fingerprints the bank imported before (and an import's
    `BankStore.statements_seen`)."""
    return (select(b.BankStatement.fingerprint, b.BankStatement.id, b.BankStatement.file_id)
            .where(b.BankStatement.bank_id == bank_id,
                   b.BankStatement.fingerprint.in_(sorted(set(fingerprints)))))


def seen_statements(rows: Sequence[Any]) -> dict[bytes, SeenStatement]:
    return {bytes(row[0]): SeenStatement(row[1], row[2]) for row in rows}


def file_by_hash(conn: Connection, sha256: bytes) -> ImportedFile | None:
    """A statement file received before, byte for byte, and from which bank."""
    found = conn.execute(select(b.StatementFile.id, b.StatementFile.imported_seq,
                                b.StatementFile.bank_id)
                         .where(b.StatementFile.sha256 == sha256)).first()
    return None if found is None else ImportedFile(found.id, found.imported_seq, found.bank_id)
