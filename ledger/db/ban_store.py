"""The ban store (ledger/supervision/store.py) on a batch.

Screening is on every sale, so the bans of a subject are kept in the batch's row cache as a
memo (`BANS_OF`: subject -> its bans not lifted), which the writer carries to its next batch
like merchants and cards (ledger/db/carry.py): `bans` and `ban_lifts` bump the write
generation (migration 0018), so a ban listed or lifted by anyone else drops the carry. A
subject's memo is read from the database once, for a whole batch's sales at once
(`prefetch_screens`), and then only when the carry is dropped.

A ban listed or lifted in a batch changes its subject's memo at once; so that the memo never
misses a row the batch has not written yet, the flows read a subject's memo before they list
or lift a ban of it (`bans_of` reads it then), and a subject not in the memo has no ban the
batch wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import exists, select, tuple_

from ledger.db import ban_tables as bt
from ledger.db import custody_tables as c
from ledger.db.batch import Batch
from ledger.db.rowcache import BANS_OF
from ledger.supervision.bans import Arrival, Ban, BanKind, Subject
from ledger.supervision.register import register_of

_LIFTED = exists().where(bt.BanLift.ban_id == bt.Ban.id)


def ban_of(row: Any) -> Ban:
    return Ban(row.id, BanKind(row.kind), row.subject, row.reason, row.source, row.starts_on,
               row.ends_on)


class BanRows:
    """`BanStore` for one batch."""

    __slots__ = ("batch",)

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    def bans_of(self, subjects: Sequence[Subject]) -> Mapping[Subject, Sequence[Ban]]:
        load_bans(self.batch, subjects)
        rows = self.batch.rows
        return {s: held["bans"] for s in subjects
                if (held := rows.get(BANS_OF, s)) is not None and held["bans"]}

    def ban(self, ban_id: int) -> Ban | None:
        for _, held in self.batch.rows.held(BANS_OF):  # listed in this batch, not written
            found: Ban
            for found in held["bans"]:
                if found.id == ban_id:
                    return found
        row = self.batch.lookup(select(bt.Ban.__table__).where(bt.Ban.id == ban_id)).first()
        return None if row is None else ban_of(row)

    def arrivals(self, premises: str, since: date) -> list[Arrival]:
        rows = self.batch.query(
            select(bt.PremisesArrival.merchant_id, bt.PremisesArrival.legal_representative,
                   bt.PremisesArrival.arrived_on)
            .where(bt.PremisesArrival.premises == premises,
                   bt.PremisesArrival.arrived_on >= since)
            .order_by(bt.PremisesArrival.seq)).all()
        return [Arrival(r.merchant_id, r.legal_representative, r.arrived_on) for r in rows]

    def flagged(self, premises: str) -> bool:
        return self.batch.query(select(bt.PremisesFlag.seq).where(
            bt.PremisesFlag.premises == premises)).first() is not None

    def add_ban(self, ban: Ban, listed_by: int, merchant_id: str | None) -> None:
        batch = self.batch
        load_bans(batch, [(ban.kind, ban.subject)])
        batch.add_row(bt.Ban, {"id": ban.id, "kind": ban.kind.value, "subject": ban.subject,
                               "reason": ban.reason, "source": ban.source,
                               "starts_on": ban.starts_on, "ends_on": ban.ends_on,
                               "listed_by": listed_by, "merchant_id": merchant_id})
        key = (ban.kind, ban.subject)
        held = batch.rows.get(BANS_OF, key)
        batch.rows.update(BANS_OF, key, bans=(*(held["bans"] if held else ()), ban))

    def lift_ban(self, ban: Ban, reason: str, lifted_on: date, lifted_seq: int,
                 lifted_by: int) -> None:
        batch = self.batch
        load_bans(batch, [(ban.kind, ban.subject)])
        batch.add_row(bt.BanLift, {"ban_id": ban.id, "reason": reason, "lifted_on": lifted_on,
                                   "lifted_seq": lifted_seq, "lifted_by": lifted_by})
        key = (ban.kind, ban.subject)
        held = batch.rows.get(BANS_OF, key)
        batch.rows.update(BANS_OF, key,
                          bans=tuple(b for b in (held["bans"] if held else ()) if b.id != ban.id))

    def add_arrival(self, premises: str, arrival: Arrival, seq: int) -> None:
        self.batch.add_row(bt.PremisesArrival, {
            "seq": seq, "premises": premises, "merchant_id": arrival.merchant_id,
            "legal_representative": arrival.legal_representative,
            "arrived_on": arrival.arrived_on})

    def add_flag(self, premises: str, flagged_on: date, seq: int) -> None:
        self.batch.add_row(bt.PremisesFlag, {"seq": seq, "premises": premises,
                                             "flagged_on": flagged_on})


def load_bans(batch: Batch, subjects: Sequence[Subject]) -> None:
    """The memo of the subjects not held yet: one query for all of them. A lookup, not a
    query: every ban this batch wrote is in the memo already (see the module's note)."""
    rows = batch.rows
    missing = sorted({s for s in subjects if rows.get(BANS_OF, s) is None})
    if not missing:
        return
    found: dict[Subject, list[Ban]] = {s: [] for s in missing}
    for row in batch.lookup(
            select(bt.Ban.__table__)
            .where(tuple_(bt.Ban.kind, bt.Ban.subject).in_([(k.value, s) for k, s in missing]),
                   ~_LIFTED)
            .order_by(bt.Ban.id)):
        found[(BanKind(row.kind), row.subject)].append(ban_of(row))
    for subject, bans in found.items():
        rows.remember(BANS_OF, subject, {"bans": tuple(bans)})


def prefetch_screens(batch: Batch, merchant_ids: Sequence[str]) -> None:
    """The bans of the people and premises of merchants the batch already holds (a batch of
    sales: ledger/db/custody_store.py prefetch_products), in one query for all."""
    subjects: list[Subject] = []
    for merchant_id in merchant_ids:
        row = batch.rows.get(c.Merchant, merchant_id)
        if row is not None:
            register = register_of(row)
            subjects.extend((BanKind.person, p.person_id) for p in register.people)
            if register.premises:
                subjects.append((BanKind.premises, register.premises))
    load_bans(batch, subjects)
