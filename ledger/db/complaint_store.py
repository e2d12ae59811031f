"""The complaint store (ledger/supervision/complaint_store.py) on a batch: complaint rows read
once into the batch, changed there and written at its flush; queries through `Batch.query`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, tuple_

from ledger.db import complaint_tables as q
from ledger.db import custody_tables as c
from ledger.db.batch import Batch
from ledger.db.custody_store import merchant
from ledger.errors import NotFound
from ledger.supervision.complaints import (
    Channel,
    Complaint,
    ComplaintStatus,
    Deadlines,
    parse_deadlines,
)

# What a step changes of a complaint's row (the rest is written once, at intake).
CHANGING = ("department", "street", "status", "accept_by", "respond_by", "accepted_on",
            "responded_on", "closed_on", "holds_card")


class ComplaintRows:
    """`ComplaintStore` for one batch."""

    __slots__ = ("batch",)

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    def complaint(self, complaint_id: int) -> Complaint:
        batch = self.batch
        row = batch.rows.get(q.Complaint, complaint_id)
        if row is None:
            found = batch.lookup(select(q.Complaint.__table__)
                                 .where(q.Complaint.id == complaint_id).with_for_update()).first()
            if found is None:
                raise NotFound(f"complaint {complaint_id} does not exist", field="complaint_id")
            row = batch.rows.remember(q.Complaint, complaint_id, dict(found._mapping))
        return complaint_of(row)

    def deadlines(self, deadline_set_id: int) -> Deadlines:
        held = self.batch.rows.get(q.ComplaintDeadlineSet, deadline_set_id)
        if held is not None:
            return parse_deadlines(held["deadlines"])
        raw = self.batch.lookup(select(q.ComplaintDeadlineSet.deadlines).where(
            q.ComplaintDeadlineSet.id == deadline_set_id)).scalar_one()
        return parse_deadlines(raw)

    def orders_taken(self, orders: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        if not orders:
            return {}
        rows = self.batch.query(
            select(q.Complaint.channel, q.Complaint.external_id, q.Complaint.id)
            .where(tuple_(q.Complaint.channel, q.Complaint.external_id).in_(list(orders))))
        return {(r.channel, r.external_id): int(r.id) for r in rows}

    def merchants_by_credit_code(self, codes: Sequence[str]) -> dict[str, str]:
        if not codes:
            return {}
        rows = self.batch.query(select(c.Merchant.credit_code, c.Merchant.id)
                                .where(c.Merchant.credit_code.in_(list(codes))))
        return {str(r.credit_code): str(r.id) for r in rows}

    def latest_deadlines(self, jurisdiction: str) -> tuple[int, Deadlines] | None:
        row = self.batch.query(
            select(q.ComplaintDeadlineSet.id, q.ComplaintDeadlineSet.deadlines)
            .where(q.ComplaintDeadlineSet.jurisdiction == jurisdiction)
            .order_by(q.ComplaintDeadlineSet.version.desc()).limit(1)).first()
        return None if row is None else (int(row.id), parse_deadlines(row.deadlines))

    def next_deadlines_version(self, jurisdiction: str) -> int:
        latest = self.batch.query(
            select(func.max(q.ComplaintDeadlineSet.version))
            .where(q.ComplaintDeadlineSet.jurisdiction == jurisdiction)).scalar()
        return 1 if latest is None else int(latest) + 1

    def add_deadlines(self, row: Mapping[str, Any]) -> None:
        self.batch.rows.insert(q.ComplaintDeadlineSet, row["id"], dict(row))

    def add_complaint(self, complaint: Complaint) -> None:
        self.batch.rows.insert(q.Complaint, complaint.id, row_of(complaint))

    def update_complaint(self, complaint: Complaint) -> None:
        self.complaint(complaint.id)  # brought into the batch, locked
        row = row_of(complaint)
        self.batch.rows.update(q.Complaint, complaint.id, **{k: row[k] for k in CHANGING})

    def add_step(self, row: Mapping[str, Any]) -> None:
        self.batch.rows.insert(q.ComplaintStep, row["seq"], dict(row))

    def count_complaint(self, merchant_id: str) -> None:
        merchant(self.batch, merchant_id)  # its row, locked, in the batch
        row = self.batch.rows.get(c.Merchant, merchant_id)
        assert row is not None
        self.batch.rows.update(c.Merchant, merchant_id,
                               complaint_count=row["complaint_count"] + 1)


def row_of(complaint: Complaint) -> dict[str, Any]:
    return {"id": complaint.id, "channel": complaint.channel.value,
            "external_id": complaint.external_id, "merchant_id": complaint.merchant_id,
            "department": complaint.department, "street": complaint.street,
            "jurisdiction": complaint.jurisdiction, "category": complaint.category,
            "amount_fen": complaint.amount_fen, "card_id": complaint.card_id,
            "holds_card": complaint.holds_card, "consumer_id": complaint.consumer_id,
            "status": complaint.status.value, "received_at": complaint.received_at,
            "received_on": complaint.received_on, "accept_by": complaint.accept_by,
            "respond_by": complaint.respond_by, "close_by": complaint.close_by,
            "accepted_on": complaint.accepted_on, "responded_on": complaint.responded_on,
            "closed_on": complaint.closed_on, "deadline_set_id": complaint.deadline_set_id,
            "received_seq": complaint.received_seq}


def complaint_of(row: Mapping[str, Any]) -> Complaint:
    return Complaint(
        id=row["id"], channel=Channel(row["channel"]), external_id=row["external_id"],
        merchant_id=row["merchant_id"], department=row["department"], street=row["street"],
        jurisdiction=row["jurisdiction"], category=row["category"],
        amount_fen=row["amount_fen"], card_id=row["card_id"], holds_card=row["holds_card"],
        consumer_id=row["consumer_id"], status=ComplaintStatus(row["status"]),
        received_at=row["received_at"], received_on=row["received_on"],
        accept_by=row["accept_by"], respond_by=row["respond_by"], close_by=row["close_by"],
        accepted_on=row["accepted_on"], responded_on=row["responded_on"],
        closed_on=row["closed_on"], deadline_set_id=row["deadline_set_id"],
        received_seq=row["received_seq"])
