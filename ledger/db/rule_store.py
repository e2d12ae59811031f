"""Rule set versions as the batch reads them: the latest of a jurisdiction and industry (with
the `*` fallback), and any by id. Versions never change once written, so both are kept: the
latest in the batch's row cache, every one read in the writer's state."""

from __future__ import annotations

from sqlalchemy import select

from ledger.custody.rules import ANY_INDUSTRY, RuleSet, parse_rule_set
from ledger.db import custody_tables as c
from ledger.db.batch import Batch
from ledger.db.rowcache import LATEST_RULES
from ledger.errors import NotFound


def latest_rule_set(batch: Batch, jurisdiction: str, industry: str) -> tuple[int, RuleSet]:
    for wanted in (industry, ANY_INDUSTRY):
        fresh = batch.rows.get(LATEST_RULES, (jurisdiction, wanted))
        if fresh is not None:
            if fresh["id"] is None:  # known to have no version of its own: fall back
                continue
            return fresh["id"], fresh["rules"]
        # By (jurisdiction, industry, version): rows no command changes once written.
        row = batch.lookup(
            select(c.RuleSetVersion.id, c.RuleSetVersion.rules)
            .where(c.RuleSetVersion.jurisdiction == jurisdiction,
                   c.RuleSetVersion.industry == wanted)
            .order_by(c.RuleSetVersion.version.desc()).limit(1)).first()
        if row is not None:
            rules = parse_rule_set(row.rules)
            batch.rows.remember(LATEST_RULES, (jurisdiction, wanted),
                                {"id": row.id, "rules": rules})
            return row.id, rules
        batch.rows.remember(LATEST_RULES, (jurisdiction, wanted), {"id": None, "rules": None})
    raise NotFound(f"no rule set for {jurisdiction}/{industry} (nor a fallback '*')",
                   field="jurisdiction")


def rule_set(batch: Batch, rule_set_id: int) -> RuleSet:
    # Rule set versions never change once written: the writer keeps them (batch.state).
    known = batch.state.rules_by_id
    cached = known.get(rule_set_id)
    if cached is not None:
        return cached
    fresh = batch.rows.get(c.RuleSetVersion, rule_set_id)
    if fresh is not None:
        # Made in this batch, or carried from an earlier one: parsed once either way (an id
        # whose batch rolls back is never drawn again, so its entry is never asked for).
        rules = known[rule_set_id] = parse_rule_set(fresh["rules"])
        return rules
    rules = parse_rule_set(batch.lookup(
        select(c.RuleSetVersion.rules).where(c.RuleSetVersion.id == rule_set_id)).scalar_one())
    known[rule_set_id] = rules
    return rules


