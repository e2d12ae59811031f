"""Read side of the regulators' dashboard (docs/supervision.md, "The regulators' dashboard"):
merchants by tier with the reasons of their last tier change, and a merchant's tier history.

A tier's reasons are not kept on the merchant's row: they are in the journal, in the
`merchant.tier_changed` entry that set the tier (docs/journal-format.md section 5.10), found by
the journal's (merchant_id, seq) index. So the reasons shown are exactly the journaled ones.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, select

from ledger.access import require_overseer
from ledger.auth import Principal
from ledger.custody.merchants import Tier
from ledger.db import custody_tables as c
from ledger.db import tables as t
from ledger.db.custody_queries import readable_merchant
from ledger.db.queries import Page, next_after
from ledger.db.scope import supervised

TIER_CHANGED = "merchant.tier_changed"


def _change_view(seq: int, body: bytes) -> dict[str, Any]:
    entry = json.loads(body)
    payload = entry["payload"]
    actor = payload.get("actor") or {}  # entries before `actor` existed have none
    return {"journal_seq": seq, "ts": entry["ts"], "tier": payload["tier"],
            "previous_tier": payload["previous_tier"], "reasons": payload["reasons"],
            "hard_blocks": payload["hard_blocks"], "actor_role": actor.get("role")}


def tiers(conn: Connection, principal: Principal, tier: Tier | None, page: Page
          ) -> dict[str, Any]:
    """A page of merchants by id (of one tier if named), each with the reasons and journal
    entry of its last tier change (none while its tier is the one it was filed with);
    `by_tier` counts every merchant per tier, on every page alike."""
    require_overseer(principal)
    m = c.Merchant
    scope = supervised(principal)  # a department or street key: its merchants only
    query = select(m.id, m.name, m.industry, m.department, m.status, m.tier,
                   m.hard_blocks).where(m.id > page.after)
    if tier is not None:
        query = query.where(m.tier == tier.value)
    counting = select(m.tier, func.count().label("merchants")).group_by(m.tier)
    if scope is not None:
        query, counting = query.where(scope), counting.where(scope)
    rows = conn.execute(query.order_by(m.id).limit(page.limit)).all()
    last = _last_changes(conn, [r.id for r in rows])
    items = []
    for r in rows:
        change = last.get(r.id)
        items.append({"merchant_id": r.id, "name": r.name, "industry": r.industry,
                      "department": r.department, "status": r.status, "tier": r.tier,
                      "hard_blocks": r.hard_blocks.get("blocks", []),
                      "reasons": change["reasons"] if change else [],
                      "tier_changed_seq": change["journal_seq"] if change else None,
                      "tier_changed_at": change["ts"] if change else None})
    counts = {r.tier: r.merchants for r in conn.execute(counting)}
    return {"items": items, "next_after": next_after([r.id for r in rows], page.limit),
            "by_tier": {t.value: int(counts.get(t.value, 0)) for t in Tier}}


def _last_changes(conn: Connection, merchant_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not merchant_ids:
        return {}
    j = t.JournalEntry
    last_seq = (select(func.max(j.seq)).where(j.merchant_id.in_(merchant_ids),
                                              j.kind == TIER_CHANGED)
                .group_by(j.merchant_id))
    rows = conn.execute(select(j.merchant_id, j.seq, j.body).where(j.seq.in_(last_seq))).all()
    return {r.merchant_id: _change_view(r.seq, bytes(r.body)) for r in rows}


def tier_changes(conn: Connection, principal: Principal, merchant_id: str, page: Page
                 ) -> dict[str, Any]:
    """A page of the merchant's tier changes, oldest first, by journal sequence number."""
    require_overseer(principal)
    merchant = readable_merchant(conn, principal, merchant_id)
    j = t.JournalEntry
    rows = conn.execute(select(j.seq, j.body)
                        .where(j.merchant_id == merchant.id, j.kind == TIER_CHANGED,
                               j.seq > page.after)
                        .order_by(j.seq).limit(page.limit)).all()
    return {"merchant_id": merchant.id, "tier": merchant.tier,
            "items": [_change_view(r.seq, bytes(r.body)) for r in rows],
            "next_after": next_after([r.seq for r in rows], page.limit)}
