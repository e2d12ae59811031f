"""Complaints (12345 / 12315 工单): intake one by one or a file at a time, and each step.

A complaint is routed on intake to its merchant's supervising department and street (属地),
given its deadlines (its jurisdiction's, stored and journaled the first time they are
used), counted on the merchant (`complaint_count`), and, when asked, holds the releases of
the card it names as a dispute does (ledger/flows/refunds.py `hold_releases`) until it is
resolved. Every step is journaled as `complaint.<what>`, attributed to the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from ledger.access import (
    require_complaint_handler,
    require_district,
    require_operator,
    require_overseer,
    require_supervisor,
)
from ledger.auth import Principal, Role
from ledger.commands import Books, Command, IdKind
from ledger.custody.lifecycle import DisputeOutcome, Merchant
from ledger.errors import Conflict, Forbidden, InvalidInput, LedgerError, NotFound
from ledger.flows.refunds import end_hold, hold_releases
from ledger.supervision.complaints import (
    Complaint,
    ComplaintStatus,
    Deadlines,
    Step,
    shipped_deadlines,
    shipped_for,
    status_after,
)
from ledger.supervision.work_orders import RowRefusal, WorkOrder, china_date

# A refused file names at most this many of its rows in the problem's detail.
refusals_named_max: Final = 20


def _missing_merchant(order: WorkOrder, merchant_id: str | None) -> NotFound:
    if order.merchant_id is None:
        return NotFound("no merchant is filed with this credit code", field="credit_code")
    return NotFound(f"merchant {merchant_id} does not exist", field="merchant_id")


@dataclass(frozen=True, slots=True)
class Reading:
    """What an intake read before writing anything (orders already recorded, the merchants,
    the stored deadlines of their jurisdictions), and its day and file."""

    taken: dict[tuple[str, str], int]
    merchants: dict[int, Merchant]  # by the order's position
    deadlines: dict[str, tuple[int, Deadlines] | None]
    today: date
    source: dict[str, Any] | None = None  # the file it came in, if one


def read_for(books: Books, principal: Principal, orders: Sequence[WorkOrder], today: date,
             source: dict[str, Any] | None = None) -> tuple[Reading, dict[int, LedgerError]]:
    """Every read an intake needs, queries first (ledger/commands.py); and, by position,
    the orders whose merchant is missing to this key."""
    taken = books.complaints.orders_taken(sorted({
        (o.channel.value, o.external_id) for o in orders if o.external_id is not None}))
    by_code = books.complaints.merchants_by_credit_code(sorted({
        o.credit_code for o in orders if o.credit_code is not None}))
    merchants: dict[int, Merchant] = {}
    missing: dict[int, LedgerError] = {}
    for index, order in enumerate(orders):
        merchant_id = order.merchant_id or by_code.get(order.credit_code or "")
        try:
            if merchant_id is None:
                raise _missing_merchant(order, None)
            m = books.custody.merchant(merchant_id)
            require_supervisor(principal, m, _missing_merchant(order, merchant_id))
            merchants[index] = m
        except NotFound:
            missing[index] = _missing_merchant(order, merchant_id)
    deadlines = {j: books.complaints.latest_deadlines(j)
                 for j in sorted({m.jurisdiction for m in merchants.values()})}
    return Reading(taken, merchants, deadlines, today, source), missing


def deadlines_for(books: Books, reading: Reading, jurisdiction: str) -> tuple[int, Deadlines]:
    """The jurisdiction's stored deadlines; the shipped ones, stored and journaled now, if
    it has none yet."""
    stored = reading.deadlines.get(jurisdiction)
    if stored is not None:
        return stored
    shipped = shipped_for(jurisdiction)
    named = jurisdiction if jurisdiction in shipped_deadlines() else "*"
    source = f"shipped: ledger/supervision/complaint_deadlines.json {named!r}"
    deadline_set_id, _ = publish(books, jurisdiction, 1, shipped, source)
    reading.deadlines[jurisdiction] = (deadline_set_id, shipped)
    return deadline_set_id, shipped


def publish(books: Books, jurisdiction: str, version: int, deadlines: Deadlines, source: str
            ) -> tuple[int, int]:
    """Store and journal a version of a jurisdiction's deadlines; its id and its entry."""
    deadline_set_id = books.draw_id(IdKind.complaint_deadlines)
    view = {"id": deadline_set_id, "jurisdiction": jurisdiction, "version": version,
            "deadlines": deadlines.view(), "source": source}
    entry = books.append("complaint.deadlines_published", view)
    books.complaints.add_deadlines({**view, "created_seq": entry.seq})
    return deadline_set_id, entry.seq


@dataclass(frozen=True)
class PublishDeadlines(Command):
    """A jurisdiction's new complaint deadlines (the operator): complaints received from now
    on take them; those received before keep theirs."""

    principal: Principal
    jurisdiction: str
    deadlines: Deadlines
    source: str

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        version = books.complaints.next_deadlines_version(self.jurisdiction)
        deadline_set_id, seq = publish(books, self.jurisdiction, version, self.deadlines,
                                       self.source)
        return {"id": deadline_set_id, "jurisdiction": self.jurisdiction, "version": version,
                "deadlines": self.deadlines.view(), "source": self.source,
                "journal_seq": seq}


def check_card(books: Books, order: WorkOrder, merchant: Merchant, hold: bool) -> None:
    if order.card_id is None:
        if hold:
            raise InvalidInput("a hold on releases needs the card", field="hold_releases")
        return
    try:
        card = books.custody.card(order.card_id)
    except NotFound:
        raise NotFound(f"card {order.card_id} does not exist", field="card_id") from None
    if card.merchant_id != merchant.id:
        raise InvalidInput("the card is not this merchant's", field="card_id")
    if hold and card.disputed:
        raise Conflict("the card's releases are already held (disputed)", field="hold_releases")


def record(books: Books, reading: Reading, order: WorkOrder, merchant: Merchant, hold: bool
           ) -> dict[str, Any]:
    """Record a checked work order: routed, given its deadlines, counted, holding its card."""
    received_on = china_date(order.received_at)
    source = reading.source
    if received_on > reading.today:
        raise InvalidInput("is after today", field="received_at")
    deadline_set_id, deadlines = deadlines_for(books, reading, merchant.jurisdiction)
    complaint = Complaint(
        id=books.draw_id(IdKind.complaint), channel=order.channel,
        external_id=order.external_id, merchant_id=merchant.id,
        department=merchant.department, street=merchant.street,
        jurisdiction=merchant.jurisdiction, category=order.category,
        amount_fen=order.amount_fen, card_id=order.card_id, holds_card=hold,
        consumer_id=order.consumer_id, status=ComplaintStatus.received,
        received_at=order.received_at, received_on=received_on,
        accept_by=deadlines.acceptance.after(received_on), respond_by=None,
        close_by=deadlines.closure.after(received_on), accepted_on=None, responded_on=None,
        closed_on=None, deadline_set_id=deadline_set_id, received_seq=0)
    view = complaint_view(complaint)
    del view["received_seq"]
    entry = books.append("complaint.received", {**view, **({"file": source} if source else {})})
    complaint = dataclasses.replace(complaint, received_seq=entry.seq)
    books.complaints.add_complaint(complaint)
    books.complaints.count_complaint(merchant.id)
    if order.external_id is not None:
        reading.taken[(order.channel.value, order.external_id)] = complaint.id
    answer = {**view, "received_seq": entry.seq, "journal_seq": entry.seq}
    if hold:
        assert order.card_id is not None
        held = hold_releases(books, books.custody.card(order.card_id), complaint_id=complaint.id)
        answer["journal_seq"] = held.seq
    return answer


def complaint_view(c: Complaint) -> dict[str, Any]:
    def day(d: date | None) -> str | None:
        return None if d is None else d.isoformat()

    return {"id": c.id, "channel": c.channel.value, "external_id": c.external_id,
            "merchant_id": c.merchant_id, "department": c.department, "street": c.street,
            "jurisdiction": c.jurisdiction, "category": c.category,
            "amount_fen": c.amount_fen, "card_id": c.card_id, "holds_card": c.holds_card,
            "consumer_id": c.consumer_id, "status": c.status.value,
            "received_at": c.received_at.isoformat(), "received_on": day(c.received_on),
            "accept_by": day(c.accept_by), "respond_by": day(c.respond_by),
            "close_by": day(c.close_by), "accepted_on": day(c.accepted_on),
            "responded_on": day(c.responded_on), "closed_on": day(c.closed_on),
            "deadline_set_id": c.deadline_set_id, "received_seq": c.received_seq}


@dataclass(frozen=True)
class FileComplaint(Command):
    """One work order, by the operator or a regulator whose scope holds its merchant."""

    principal: Principal
    order: WorkOrder
    hold: bool
    today: date

    def run(self, books: Books) -> dict[str, Any]:
        require_overseer(self.principal)
        reading, missing = read_for(books, self.principal, [self.order], self.today)
        if missing:
            raise missing[0]
        merchant = reading.merchants[0]
        order = self.order
        if order.external_id is not None:
            earlier = reading.taken.get((order.channel.value, order.external_id))
            if earlier is not None:
                raise Conflict(f"work order {order.channel.value} {order.external_id} is "
                               f"already recorded as complaint {earlier}",
                               field="external_id")
        check_card(books, order, merchant, self.hold)
        return record(books, reading, order, merchant, self.hold)


@dataclass(frozen=True)
class ImportComplaints(Command):
    """A file of work orders: each row recorded, named a duplicate, or refused by row and
    field. A file with nothing to record and nothing recorded before is refused whole."""

    principal: Principal
    rows: tuple[WorkOrder | RowRefusal, ...]
    source: dict[str, Any]  # the file: its name and SHA-256
    today: date

    def run(self, books: Books) -> dict[str, Any]:
        require_overseer(self.principal)
        orders = [r for r in self.rows if isinstance(r, WorkOrder)]
        reading, missing = read_for(books, self.principal, orders, self.today, self.source)
        refused = [r for r in self.rows if isinstance(r, RowRefusal)]
        recorded: list[dict[str, Any]] = []
        duplicates: list[dict[str, Any]] = []
        for index, order in enumerate(orders):
            row = order.row or 0
            if index in missing:
                refused.append(RowRefusal(row, missing[index].field or "merchant_id",
                                          missing[index].detail))
                continue
            key = (order.channel.value, order.external_id or "")
            if order.external_id is not None and key in reading.taken:
                duplicates.append({"row": row, "channel": key[0], "external_id": key[1],
                                   "complaint_id": reading.taken[key]})
                continue
            merchant = reading.merchants[index]
            mark = books.checkpoint()
            try:
                check_card(books, order, merchant, hold=False)
                done = record(books, reading, order, merchant, False)
            except LedgerError as exc:
                books.rewind(mark)
                refused.append(RowRefusal(row, exc.field or "row", exc.detail))
                continue
            recorded.append({"row": row, "complaint_id": done["id"],
                             "journal_seq": done["journal_seq"]})
        refused.sort(key=lambda r: r.row)
        if not recorded and not duplicates:
            named = "; ".join(f"row {r.row} ({r.field}): {r.reason}"
                              for r in refused[:refusals_named_max])
            raise InvalidInput(f"nothing importable: {named}" if named
                               else "nothing importable: no work order in the file",
                               field="file")
        return {"file": self.source, "rows": len(self.rows), "recorded": recorded,
                "duplicates": duplicates, "refused": [r.view() for r in refused]}


@dataclass(frozen=True)
class StepComplaint(Command):
    """A step of a complaint's life (ledger/supervision/complaints.py STEPS), by who may take
    it: the merchant answers (its own complaints only); the department it is routed to sends
    it back (退单); the operator or a district key re-routes it; the operator or a regulator
    whose scope it is routed into takes every other step."""

    principal: Principal
    complaint_id: int
    step: Step
    note: str
    today: date
    department: str | None = None  # a re-route's
    street: str | None = None  # a re-route's, if not the merchant's

    def run(self, books: Books) -> dict[str, Any]:
        who = self.principal
        if self.step is Step.reroute:
            require_district(who)
        elif self.step is Step.respond:
            who.require_role(Role.merchant)
        else:
            who.require_role(Role.operator, Role.regulator)
        missing = NotFound(f"complaint {self.complaint_id} does not exist",
                           field="complaint_id")
        try:
            c = books.complaints.complaint(self.complaint_id)
        except NotFound:
            raise missing from None
        if self.step is Step.respond:
            if who.merchant_id != c.merchant_id:
                raise missing
        else:
            require_complaint_handler(who, c.department, c.street, missing)
        if self.step is Step.return_ and who.role is Role.regulator \
                and who.department != c.department:
            raise Forbidden("only the department a complaint is routed to sends it back "
                            "(退单), with its department key")
        after = status_after(self.step, c.status)
        changed = self._changed(books, c, after)
        counted_to = self.department if self.step is Step.reroute else c.department
        assert counted_to is not None
        view = {"complaint_id": c.id, "merchant_id": c.merchant_id, "step": self.step.value,
                "from_status": c.status.value, "to_status": after.value,
                "department": counted_to,
                "from_department": c.department if self.step is Step.reroute else None,
                "street": changed.street, "note": self.note, "on": self.today.isoformat()}
        step = self.step  # each kind spelt out: docs/journal-format.md lists them
        kind = ("complaint.accepted" if step is Step.accept
                else "complaint.returned" if step is Step.return_
                else "complaint.rerouted" if step is Step.reroute
                else "complaint.merchant_responded" if step is Step.respond
                else "complaint.mediated" if step is Step.mediate
                else "complaint.escalated" if step is Step.escalate
                else "complaint.resolved" if step is Step.resolve
                else "complaint.case_opened")
        entry = books.append(kind, view)
        books.complaints.add_step({
            "seq": entry.seq, "complaint_id": c.id, "step": self.step.value,
            "from_status": c.status.value, "to_status": after.value, "department": counted_to,
            "from_department": view["from_department"],
            "key_id": who.key_id or None, "note": self.note, "on": self.today})
        answer = {**view, "journal_seq": entry.seq}
        if after is ComplaintStatus.resolved and c.holds_card and c.card_id is not None:
            card = books.custody.card(c.card_id)
            changed = dataclasses.replace(changed, holds_card=False)
            if card.disputed:  # the operator may have ended the dispute already
                lifted = end_hold(books, card, DisputeOutcome.merchant, complaint_id=c.id)
                answer["journal_seq"] = lifted.seq
        books.complaints.update_complaint(changed)
        answer["complaint"] = complaint_view(changed)
        return answer

    def _changed(self, books: Books, c: Complaint, after: ComplaintStatus) -> Complaint:
        today = self.today
        if today < c.received_on:
            raise InvalidInput("is before the complaint was received", field="on")
        changed = dataclasses.replace(c, status=after)
        if self.step in (Step.return_, Step.reroute) and not self.note.strip():
            raise InvalidInput("a 退单 or a re-route gives its reason", field="note")
        if self.step is Step.reroute:
            if not self.department or not self.department.strip():
                raise InvalidInput("is required to re-route", field="department")
            department = self.department.strip()
            if department == c.department:
                raise Conflict("the complaint is routed to this department already",
                               field="department")
            acceptance = books.complaints.deadlines(c.deadline_set_id).acceptance
            return dataclasses.replace(changed, department=department,
                                       street=self.street or c.street,
                                       accept_by=acceptance.after(today))
        if self.step is Step.accept:
            respond = books.complaints.deadlines(c.deadline_set_id).merchant_response
            return dataclasses.replace(changed, accepted_on=today,
                                       respond_by=respond.after(today))
        if self.step is Step.respond:
            return dataclasses.replace(changed, responded_on=today)
        if after.closed:
            return dataclasses.replace(changed, closed_on=today)
        return changed
