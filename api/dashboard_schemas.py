"""The answers of the dashboard's own JSON routes (api/routes/dashboard.py)."""

from __future__ import annotations

from pydantic import Field

from api.custody_schemas import MerchantSummary
from api.schemas import NextAfter, NextAfterName, Out, Seq, Tier, Timestamp


class TierCounts(Out):
    blue: int
    yellow: int
    red: int


class TieredMerchant(MerchantSummary):
    hard_blocks: list[str]
    reasons: list[str] = Field(description="the reasons of the last tier change, as journaled; "
                                           "empty while the tier is the one it was filed with")
    tier_changed_seq: Seq | None = Field(description="the journal entry of that change")
    tier_changed_at: Timestamp | None


class TieredMerchants(Out):
    items: list[TieredMerchant]
    next_after: NextAfterName
    by_tier: TierCounts = Field(description="every merchant per tier, on every page alike")


class TierChangeEntry(Out):
    journal_seq: Seq
    ts: Timestamp
    tier: Tier
    previous_tier: Tier
    reasons: list[str]
    hard_blocks: list[str]
    actor_role: str | None = Field(
        description="the role of who changed it (operator, regulator, system, ...); null for "
                    "entries written before actors were journaled")


class TierChanges(Out):
    merchant_id: str
    tier: Tier
    items: list[TierChangeEntry]
    next_after: NextAfter
