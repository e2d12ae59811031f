"""The public merchant lookup's reads (ledger/supervision/lookup.py says what is shown)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, select

from ledger.custody.merchants import MerchantStatus
from ledger.db import custody_tables as c
from ledger.db.ban_queries import merchant_ban_hits
from ledger.db.complaint_queries import complaint_counts
from ledger.db.custody_queries import exposure
from ledger.supervision.lookup import (
    complaints_window_days,
    coverage_band,
    lookup_matches_max,
    publishes_tier,
)


def lookup(conn: Connection, code: str | None, name_part: str,
           publication: Mapping[str, Mapping[str, bool]], today: date) -> dict[str, Any]:
    """Merchants by credit code (exactly) or by a part of their name, at most a page."""
    query = select(c.Merchant.__table__)
    if code is not None:
        query = query.where(c.Merchant.credit_code == code)
    else:
        pattern = "%" + name_part.replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"
        query = query.where(c.Merchant.name.ilike(pattern, escape="\\"))
    rows = conn.execute(query.order_by(c.Merchant.name, c.Merchant.id)
                        .limit(lookup_matches_max)).all()
    since = today - timedelta(days=complaints_window_days - 1)
    complained = complaint_counts(conn, since, today, [r.id for r in rows])
    return {"filed": bool(rows),
            "matches": [{**_shown(conn, row, publication),
                         "complaints_90_days": complained.get(row.id, 0),
                         "banned": bool(merchant_ban_hits(conn, row.id, today))}
                        for row in rows],
            "more": len(rows) == lookup_matches_max}


def _shown(conn: Connection, row: Any, publication: Mapping[str, Mapping[str, bool]]
           ) -> dict[str, Any]:
    figures = exposure(conn, row)
    verified = figures["last_cross_verification"]
    published = publishes_tier(publication, row.jurisdiction)
    return {
        "name": row.name, "credit_code": row.credit_code, "industry": row.industry,
        "department": row.department, "jurisdiction": row.jurisdiction, "status": row.status,
        "custody": {
            "bank_id": row.bank_id,
            "in_place": row.status != MerchantStatus.closed,
            "bank_confirmed_on": verified["closing_date"]
            if verified is not None and verified["result"] == "match" else None,
            "coverage_band": coverage_band(figures["coverage_ratio_bp"],
                                           figures["required_ratio_bp"]).value},
        "tier_published": published, "tier": row.tier if published else None}
