"""Read side of complaints: one complaint with its steps, the paged list, a department's
rates (受理率, 按时办结率) and open items by age, and the counts the signals read.

Everything is decided "as of" a date: a step taken after it has not happened yet, so the
figures for a past day are those that day had, and tests are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, func, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ledger.access import handles_complaint
from ledger.auth import Principal, Role
from ledger.db import complaint_tables as q
from ledger.db.complaint_store import complaint_of
from ledger.db.queries import Page, next_after
from ledger.errors import Forbidden, NotFound
from ledger.flows.complaints import complaint_view
from ledger.supervision.complaints import (
    Channel,
    age_bucket,
    age_bucket_names,
    open_age_bucket_days_bounds,
    rate_bp,
)

C = q.Complaint


class ComplaintFilter(NamedTuple):
    """Which complaints a list or the figures ask for: each field given must match."""

    merchant_id: str | None = None
    department: str | None = None
    street: str | None = None
    status: str | None = None
    overdue_as_of: date | None = None  # open past one of its deadlines at this day's end


def _readers(principal: Principal) -> None:
    principal.require_role(Role.operator, Role.regulator, Role.merchant)


def _scoped(principal: Principal, query: Any) -> Any:
    """A regulator key sees the complaints routed into its scope; a merchant its own."""
    if principal.role is Role.merchant:
        return query.where(C.merchant_id == principal.merchant_id)
    if principal.role is Role.regulator and principal.department is not None:
        return query.where(C.department == principal.department)
    if principal.role is Role.regulator and principal.street is not None:
        return query.where(C.street == principal.street)
    return query


def _may_read(principal: Principal, row: Any) -> bool:
    if principal.role is Role.merchant:
        return bool(principal.merchant_id == row.merchant_id)
    return handles_complaint(principal, row.department, row.street)


def complaint(conn: Connection, principal: Principal, complaint_id: int) -> dict[str, Any]:
    """One complaint and its steps, to who may read it (to anyone else: missing)."""
    _readers(principal)
    row = conn.execute(select(C.__table__).where(C.id == complaint_id)).first()
    if row is None or not _may_read(principal, row):
        raise NotFound(f"complaint {complaint_id} does not exist", field="complaint_id")
    steps = conn.execute(select(q.ComplaintStep.__table__)
                         .where(q.ComplaintStep.complaint_id == complaint_id)
                         .order_by(q.ComplaintStep.seq)).all()
    return {**complaint_view(complaint_of(dict(row._mapping))), "steps": [
        {"journal_seq": s.seq, "step": s.step, "from_status": s.from_status,
         "to_status": s.to_status, "department": s.department,
         "from_department": s.from_department, "key_id": s.key_id, "note": s.note,
         "on": s.on.isoformat()} for s in steps]}


def overdue(as_of: date) -> ColumnElement[bool]:
    """Open past a deadline at the end of `as_of`: not accepted by its acceptance deadline,
    not answered by the merchant by its response deadline, or not closed by its closure
    deadline (each as of that day)."""
    accepted, responded, closed = (_by(C.accepted_on, as_of), _by(C.responded_on, as_of),
                                   _by(C.closed_on, as_of))
    return or_(and_(not_(accepted), C.accept_by < as_of),
               and_(C.respond_by.is_not(None), C.respond_by < as_of, not_(responded),
                    not_(closed)),
               and_(not_(closed), C.close_by < as_of))


def _by(column: Any, as_of: date) -> ColumnElement[bool]:
    return and_(column.is_not(None), column <= as_of)


def _filtered(query: Any, wanted: ComplaintFilter) -> Any:
    if wanted.merchant_id:
        query = query.where(C.merchant_id == wanted.merchant_id)
    if wanted.department:
        query = query.where(C.department == wanted.department)
    if wanted.street:
        query = query.where(C.street == wanted.street)
    if wanted.status:
        query = query.where(C.status == wanted.status)
    if wanted.overdue_as_of is not None:
        query = query.where(C.received_on <= wanted.overdue_as_of,
                            overdue(wanted.overdue_as_of))
    return query


def complaints(conn: Connection, principal: Principal, wanted: ComplaintFilter, page: Page
               ) -> dict[str, Any]:
    """A page of complaints by id: those this key may read, filtered in the query."""
    _readers(principal)
    query = _filtered(_scoped(principal, select(C.__table__).where(C.id > page.after)), wanted)
    rows = conn.execute(query.order_by(C.id).limit(page.limit)).all()
    as_of = wanted.overdue_as_of
    items = []
    for r in rows:
        found = complaint_of(dict(r._mapping))
        view = complaint_view(found)
        if as_of is not None:
            view["overdue"] = found.overdue(as_of)
        items.append(view)
    return {"items": items, "next_after": next_after([r.id for r in rows], page.limit)}


class Window(NamedTuple):
    """The complaints received in [since, until], as they stood at the end of `as_of`."""

    since: date
    until: date
    as_of: date


def stats(conn: Connection, principal: Principal, wanted: ComplaintFilter, window: Window
          ) -> dict[str, Any]:
    """A department's (and street's) figures over the complaints received in the window:
    each rate an exact numerator and denominator, and its basis points."""
    principal.require_role(Role.operator, Role.regulator)
    department, street = _stats_scope(principal, wanted)
    return {"department": department, "street": street, **_window_view(window),
            **figures(conn, department, street, window)}


def department_stats(conn: Connection, principal: Principal, window: Window
                     ) -> dict[str, Any]:
    """The figures of every department in the key's scope, one row each, as `stats` gives
    them for that department: those that received complaints in the window or sent back or
    re-routed one then (a department key: its own, whatever it had). A street key's rows
    count its street's complaints only."""
    principal.require_role(Role.operator, Role.regulator)
    department, street = _stats_scope(principal, ComplaintFilter())
    if department is not None:
        names = [department]
    else:
        since, until, as_of = window
        received: Any = select(C.department).where(
            C.received_on >= since, C.received_on <= min(until, as_of))
        S = q.ComplaintStep
        stepped: Any = select(S.department).join(C, C.id == S.complaint_id).where(
            S.on >= since, S.on <= min(until, as_of), S.step.in_(("return", "reroute")))
        away: Any = select(S.from_department).join(C, C.id == S.complaint_id).where(
            S.on >= since, S.on <= min(until, as_of), S.from_department.is_not(None))
        if street:
            received, stepped, away = (part.where(C.street == street)
                                       for part in (received, stepped, away))
        names = sorted({str(name) for name in conn.execute(
            received.union(stepped, away)).scalars()})
    return {"street": street, **_window_view(window), "items": [
        {"department": name, **figures(conn, name, street, window)} for name in names]}


def _window_view(window: Window) -> dict[str, str]:
    return {"from": window.since.isoformat(), "to": window.until.isoformat(),
            "as_of": window.as_of.isoformat()}


def figures(conn: Connection, department: str | None, street: str | None, window: Window
            ) -> dict[str, Any]:
    """The figures `stats` answers, for a department and street already allowed (None: all);
    the dashboard's rows and the routines' reports read them too."""
    since, until, as_of = window
    received = [C.received_on >= since, C.received_on <= until, C.received_on <= as_of]
    if department:
        received.append(C.department == department)
    if street:
        received.append(C.street == street)
    accepted = _by(C.accepted_on, as_of)
    closed = _by(C.closed_on, as_of)
    due = or_(closed, C.close_by < as_of)
    on_time = and_(closed, C.closed_on <= C.close_by)
    routed = C.channel != Channel.direct.value

    def count(*conditions: Any) -> Any:
        return func.count().filter(*conditions) if conditions else func.count()

    counted = conn.execute(select(
        count(), count(accepted), count(due), count(on_time), count(overdue(as_of)),
        count(routed), count(routed, not_(closed)), count(not_(routed)),
        count(not_(routed), not_(closed))).where(*received)).one()
    (total, accepted_n, due_n, on_time_n, overdue_n, routed_n, routed_open, direct_n,
     direct_open) = (int(v) for v in counted)
    opened = conn.execute(select(C.received_on).where(*received, not_(closed))).scalars()
    buckets = dict.fromkeys(age_bucket_names(), 0)
    for received_on in opened:
        buckets[age_bucket(received_on, as_of)] += 1
    return {"received": total,
            "acceptance_rate": _rate(accepted_n, total),
            "on_time_closure_rate": _rate(on_time_n, due_n),
            "open_by_age_days": [{"bucket": name, "open": n} for name, n in buckets.items()],
            "age_bucket_days_bounds": list(open_age_bucket_days_bounds),
            "overdue": overdue_n,
            "register": {"routed": {"received": routed_n, "open": routed_open},
                         "direct": {"received": direct_n, "open": direct_open}},
            **_routing(conn, department, street, since, min(until, as_of))}


def _stats_scope(principal: Principal, wanted: ComplaintFilter) -> tuple[str | None,
                                                                          str | None]:
    """The department and street asked for; a scoped regulator key only its own."""
    department, street = wanted.department or None, wanted.street or None
    if principal.role is Role.regulator and principal.department is not None:
        if department not in (None, principal.department):
            raise Forbidden("a department key reads its own department's figures only")
        department = principal.department
    if principal.role is Role.regulator and principal.street is not None:
        if street not in (None, principal.street):
            raise Forbidden("a street key reads its own street's figures only")
        street = principal.street
    return department, street


def _rate(numerator: int, denominator: int) -> dict[str, Any]:
    return {"numerator": numerator, "denominator": denominator,
            "rate_bp": rate_bp(numerator, denominator)}


def _routing(conn: Connection, department: str | None, street: str | None, since: date,
             until: date) -> dict[str, int]:
    """退单 and re-routes over the steps taken in [since, until]: sent back by the department,
    re-routed to it, re-routed away from it (错单)."""
    S = q.ComplaintStep
    to_it = S.department == department if department else S.department.is_not(None)
    from_it = S.from_department == department if department \
        else S.from_department.is_not(None)
    query = select(func.count().filter(S.step == "return", to_it),
                   func.count().filter(S.step == "reroute", to_it),
                   func.count().filter(S.step == "reroute", from_it)) \
        .join(C, C.id == S.complaint_id).where(S.on >= since, S.on <= until)
    if street:
        query = query.where(C.street == street)
    returned, rerouted_in, rerouted_away = conn.execute(query).one()
    return {"returned": int(returned), "rerouted_in": int(rerouted_in),
            "rerouted_away": int(rerouted_away)}


def complaint_counts(conn: Connection, since: date, until: date,
                     merchant_ids: Sequence[str] | None = None) -> dict[str, int]:
    """Complaints received per merchant in [since, until] (for the 四查 complaint signal: its
    count, and its growth as two windows compared); merchants with none are left out."""
    query = select(C.merchant_id, func.count()).where(
        C.received_on >= since, C.received_on <= until).group_by(C.merchant_id)
    if merchant_ids is not None:
        query = query.where(C.merchant_id.in_(list(merchant_ids)))
    return {str(m): int(n) for m, n in conn.execute(query)}


def deadline_sets(conn: Connection, page: Page) -> dict[str, Any]:
    """Every stored version of every jurisdiction's complaint deadlines, by id."""
    D = q.ComplaintDeadlineSet
    rows = conn.execute(select(D.__table__).where(D.id > page.after)
                        .order_by(D.id).limit(page.limit)).all()
    return {"items": [{"id": r.id, "jurisdiction": r.jurisdiction, "version": r.version,
                       "deadlines": r.deadlines, "source": r.source,
                       "created_seq": r.created_seq} for r in rows],
            "next_after": next_after([r.id for r in rows], page.limit)}
