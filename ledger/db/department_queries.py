"""Read side of the department maps (ledger/custody/departments.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from ledger.db import custody_tables as c
from ledger.db.queries import Page, next_after


def department_maps(conn: Connection, page: Page, jurisdiction: str | None = None
                    ) -> dict[str, Any]:
    """Every version of every jurisdiction's map (or of one), in the order they were made:
    the cursor is the journal entry that made a version."""
    query = select(c.DepartmentMap.__table__).where(c.DepartmentMap.created_seq > page.after)
    if jurisdiction is not None:
        query = query.where(c.DepartmentMap.jurisdiction == jurisdiction)
    rows = conn.execute(query.order_by(c.DepartmentMap.created_seq).limit(page.limit)).all()
    return {"items": [{"jurisdiction": r.jurisdiction, "version": r.version,
                       "departments": r.departments, "pending_department": r.pending_department,
                       "reason": r.reason, "created_seq": r.created_seq,
                       "created_key_id": r.created_key_id} for r in rows],
            "next_after": next_after([r.created_seq for r in rows], page.limit)}


def mapped_jurisdictions(conn: Connection) -> set[str]:
    """The jurisdictions that have a department map."""
    return set(conn.execute(select(c.DepartmentMap.jurisdiction).distinct()).scalars())
