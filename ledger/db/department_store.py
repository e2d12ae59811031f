"""The department maps on a batch (ledger/custody/store.py's department half): versions as
rows of the batch, the latest read by a query, a merchant's designated department an update."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ledger.custody.departments import DepartmentMap
from ledger.db import custody_tables as c
from ledger.db.batch import Batch


def latest_department_map(batch: Batch, jurisdiction: str) -> tuple[int, DepartmentMap] | None:
    row = batch.query(
        select(c.DepartmentMap.version, c.DepartmentMap.departments,
               c.DepartmentMap.pending_department)
        .where(c.DepartmentMap.jurisdiction == jurisdiction)
        .order_by(c.DepartmentMap.version.desc()).limit(1)).first()
    if row is None:
        return None
    return row.version, DepartmentMap(jurisdiction, dict(row.departments),
                                      row.pending_department)


def pending_merchants(batch: Batch, jurisdiction: str, industry: str, limit: int) -> list[str]:
    return list(batch.query(
        select(c.Merchant.id)
        .where(c.Merchant.jurisdiction == jurisdiction, c.Merchant.industry == industry,
               c.Merchant.department_pending.is_(True))
        .order_by(c.Merchant.id).limit(limit)).scalars())


def add_department_map(batch: Batch, version: int, department_map: DepartmentMap,
                       **made: Any) -> None:
    """A new version; `made`: its `reason`, `created_seq` and `created_key_id`."""
    batch.rows.insert(c.DepartmentMap, (department_map.jurisdiction, version), {
        "jurisdiction": department_map.jurisdiction, "version": version,
        "departments": dict(department_map.departments),
        "pending_department": department_map.pending_department, **made})
