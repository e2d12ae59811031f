"""Reads of the blacklist (黑名单) and of premises: the listing and its export, a premises with
its flag and the merchants that passed through it, and what supervision's signals read."""

from __future__ import annotations

from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, not_, or_, select, tuple_

from ledger.access import covers, is_scoped, require_overseer
from ledger.auth import LOCAL_OPERATOR, Principal, Role
from ledger.db import ban_tables as bt
from ledger.db import custody_tables as c
from ledger.db import tables as t
from ledger.db.queries import Page
from ledger.errors import NotFound
from ledger.journal import decode_entry
from ledger.supervision.bans import BanKind
from ledger.supervision.register import premises_of

# The columns of GET /v1/bans.csv: pseudonyms only, never an identity number (none is kept).
CSV_COLUMNS = ("id", "kind", "subject", "reason", "source", "starts_on", "ends_on",
               "merchant_id", "active", "lifted_on", "lift_reason", "listed_seq", "lifted_seq")
# Rows of one CSV export at most; past it the answer names where the next export starts.
ban_export_rows_max = 10_000
# What a flag says, as `premises.flagged` journaled it (ledger/flows/bans.py arrive).
FLAG_FIELDS = ("premises", "flagged_on", "rule", "merchants", "legal_representatives", "since")
# Arrivals a premises answers with at most (newest first).
premises_arrivals_max = 200


def _in_force(today: date) -> Any:
    """In force on `today`, in a query of bans outer-joined to their lifts."""
    return and_(bt.BanLift.ban_id.is_(None), bt.Ban.starts_on <= today,
                or_(bt.Ban.ends_on.is_(None), bt.Ban.ends_on > today))


class BanFilter(NamedTuple):
    """Which bans a listing shows: `active`, in force on `today`."""

    today: date
    kind: BanKind | None = None
    active: bool | None = None
    merchant_id: str | None = None


def _listing(which: BanFilter) -> Any:
    today, kind, active, merchant_id = which
    query = (select(bt.Ban.__table__, bt.BanLift.reason.label("lift_reason"),
                    bt.BanLift.lifted_on, bt.BanLift.lifted_seq, bt.BanLift.lifted_by,
                    _in_force(today).label("active"), c.Merchant.department,
                    c.Merchant.street)
             .outerjoin(bt.BanLift, bt.BanLift.ban_id == bt.Ban.id)
             .outerjoin(c.Merchant, c.Merchant.id == bt.Ban.merchant_id))
    if kind is not None:
        query = query.where(bt.Ban.kind == kind.value)
    if active is not None:
        query = query.where(_in_force(today) if active else not_(_in_force(today)))
    if merchant_id is not None:
        query = query.where(bt.Ban.merchant_id == merchant_id)
    return query


def _merchant_seen(principal: Principal, row: Any) -> str | None:
    """The merchant a ban arose from, to whoever supervises it: a department or street key
    is not told of a merchant outside its scope (the ban itself, a pseudonym, it sees)."""
    merchant_id: str | None = row.merchant_id
    if merchant_id is None or not (principal.role is Role.regulator and is_scoped(principal)):
        return merchant_id
    return merchant_id if covers(principal, row.department, row.street) else None


def ban_view(row: Any, principal: Principal) -> dict[str, Any]:
    lifted = None if row.lifted_seq is None else {
        "reason": row.lift_reason, "lifted_on": row.lifted_on.isoformat(),
        "journal_seq": row.lifted_seq, "lifted_by": row.lifted_by}
    return {"id": row.id, "kind": row.kind, "subject": row.subject, "reason": row.reason,
            "source": row.source, "starts_on": row.starts_on.isoformat(),
            "ends_on": None if row.ends_on is None else row.ends_on.isoformat(),
            "merchant_id": _merchant_seen(principal, row), "listed_by": row.listed_by,
            "journal_seq": row.id, "active": bool(row.active), "lifted": lifted}


def bans(conn: Connection, principal: Principal, page: Page, which: BanFilter
         ) -> dict[str, Any]:
    """The blacklist by id (the entry that listed each), `active`: in force today. To the
    operator and every regulator: it names pseudonyms and premises, no merchant's books."""
    require_overseer(principal)
    if which.merchant_id is not None and principal.role is Role.regulator and \
            is_scoped(principal):
        seen = conn.execute(select(c.Merchant.department, c.Merchant.street)
                            .where(c.Merchant.id == which.merchant_id)).first()
        if seen is None or not covers(principal, seen.department, seen.street):
            return {"items": [], "next_after": None}  # as for a merchant with no bans
    rows = conn.execute(_listing(which).where(bt.Ban.id > page.after).order_by(bt.Ban.id)
                        .limit(page.limit)).all()
    return {"items": [ban_view(r, principal) for r in rows],
            "next_after": rows[-1].id if len(rows) == page.limit else None}


def ban(conn: Connection, principal: Principal, ban_id: int, today: date) -> dict[str, Any]:
    require_overseer(principal)
    row = conn.execute(_listing(BanFilter(today)).where(bt.Ban.id == ban_id)).first()
    if row is None:
        raise NotFound(f"ban {ban_id} does not exist", field="ban_id")
    return ban_view(row, principal)


def ban_csv_rows(conn: Connection, principal: Principal, after: int, which: BanFilter
                 ) -> tuple[list[tuple[Any, ...]], int | None]:
    """The export's rows after its header, at most `ban_export_rows_max`, and where the next
    export starts if there is more."""
    require_overseer(principal)
    rows = conn.execute(_listing(which).where(bt.Ban.id > after)
                        .order_by(bt.Ban.id).limit(ban_export_rows_max)).all()
    out = [(r.id, r.kind, r.subject, r.reason, r.source, r.starts_on.isoformat(),
            "" if r.ends_on is None else r.ends_on.isoformat(), _merchant_seen(principal, r) or "",
            "yes" if r.active else "no",
            "" if r.lifted_on is None else r.lifted_on.isoformat(), r.lift_reason or "",
            r.id, "" if r.lifted_seq is None else r.lifted_seq) for r in rows]
    return out, (rows[-1].id if len(rows) == ban_export_rows_max else None)


def premises(conn: Connection, principal: Principal, address: str, today: date
             ) -> dict[str, Any]:
    """A premises (an address, normalised here): its churn flag, the merchants that arrived
    at it (newest first; a scoped regulator sees those of its scope), its bans."""
    require_overseer(principal)
    normalised = premises_of(address)
    if not normalised:
        raise NotFound("no premises: the address is only spacing and punctuation",
                       field="premises")
    arrivals = conn.execute(
        select(bt.PremisesArrival.seq, bt.PremisesArrival.merchant_id,
               bt.PremisesArrival.legal_representative, bt.PremisesArrival.arrived_on,
               c.Merchant.department, c.Merchant.street)
        .join(c.Merchant, c.Merchant.id == bt.PremisesArrival.merchant_id)
        .where(bt.PremisesArrival.premises == normalised)
        .order_by(bt.PremisesArrival.seq.desc()).limit(premises_arrivals_max)).all()
    scoped = principal.role is Role.regulator and is_scoped(principal)
    passed = [{"merchant_id": r.merchant_id, "legal_representative": r.legal_representative,
               "arrived_on": r.arrived_on.isoformat(), "journal_seq": r.seq}
              for r in arrivals if not scoped or covers(principal, r.department, r.street)]
    listed = conn.execute(_listing(BanFilter(today, BanKind.premises))
                          .where(bt.Ban.subject == normalised).order_by(bt.Ban.id)).all()
    return {"premises": normalised, "flag": premises_flag(conn, normalised),
            "arrivals": passed, "bans": [ban_view(r, principal) for r in listed]}


def premises_flag(conn: Connection, premises: str) -> dict[str, Any] | None:
    """The churn flag of a (normalised) premises as journaled (`premises.flagged`): when, by
    which rule, and the merchants and legal representatives that passed through within the
    window; None if it is not flagged. For supervision's signals as well as the API."""
    row = conn.execute(
        select(bt.PremisesFlag.seq, t.JournalEntry.body)
        .join(t.JournalEntry, t.JournalEntry.seq == bt.PremisesFlag.seq)
        .where(bt.PremisesFlag.premises == premises)).first()
    if row is None:
        return None
    payload = decode_entry(bytes(row.body)).payload
    return {**{k: payload[k] for k in FLAG_FIELDS}, "journal_seq": row.seq}


def merchant_ban_hits(conn: Connection, merchant_id: str, today: date) -> list[dict[str, Any]]:
    """The bans in force today on a merchant's people or premises (as the operator sees
    them): what supervision's signals (and a public lookup's "banned or not") read."""
    row = conn.execute(select(c.Merchant.people, c.Merchant.premises)
                       .where(c.Merchant.id == merchant_id)).first()
    if row is None:
        raise NotFound(f"merchant {merchant_id} does not exist", field="merchant_id")
    subjects = [(BanKind.person.value, p["person_id"]) for p in row.people]
    if row.premises:
        subjects.append((BanKind.premises.value, row.premises))
    if not subjects:
        return []
    rows = conn.execute(_listing(BanFilter(today, active=True))
                        .where(tuple_(bt.Ban.kind, bt.Ban.subject).in_(subjects))
                        .order_by(bt.Ban.id)).all()
    return [ban_view(r, LOCAL_OPERATOR) for r in rows]
