"""The public merchant lookup (查询): no key, rate-limited per address, no personal data."""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.context import context_of, limit_lookups
from api.openapi import open_read
from api.schemas import MerchantStatus, Tier
from ledger.db import public_queries
from ledger.supervision.lookup import (
    CoverageBand,
    lookup_query_chars_max,
    lookup_query_chars_min,
    lookup_terms,
)

router = APIRouter(prefix="/v1")


def _publication() -> dict[str, dict[str, bool]]:
    raw = resources.files("ledger.supervision").joinpath("data/publication.json").read_text(
        encoding="utf-8")
    return {k: v for k, v in json.loads(raw).items() if not k.startswith("_")}


PUBLICATION = _publication()  # read once, at import: a broken file stops the start


class Custody(BaseModel):
    bank_id: str = Field(description="the custodian bank")
    in_place: bool = Field(description="its prepaid money is held at that bank (not closed)")
    bank_confirmed_on: str | None = Field(
        description="the closing date of the latest statement whose balance matched the "
                    "ledger (交叉验证), if the latest one did")
    coverage_band: Literal["no_prepaid", "full", "meets_rule", "below_rule", "unknown"] = \
        Field(description="custody against outstanding prepaid, as a band: " +
                          ", ".join(b.value for b in CoverageBand))


class Match(BaseModel):
    name: str
    credit_code: str
    industry: str
    department: str
    jurisdiction: str
    status: MerchantStatus
    custody: Custody
    tier_published: bool = Field(description="whether its jurisdiction publishes tiers")
    tier: Tier | None = Field(description="红黄蓝, where published")
    complaints_90_days: int = Field(description="complaints (12345/12315 and direct) received "
                                                "about it in the last 90 days, today included")
    banned: bool = Field(description="a ban in force today on its people or its premises "
                                     "(黑名单)")


class Lookup(BaseModel):
    filed: bool = Field(description="whether any filed merchant matched (备案)")
    matches: list[Match]
    more: bool = Field(description="more merchants matched than are shown: be more precise")


Q = Annotated[str, Query(min_length=lookup_query_chars_min, max_length=lookup_query_chars_max,
                         description="a unified social credit code, or part of a name")]


@router.get("/public/merchants", response_model=Lookup, **open_read(429))
def lookup_merchants(request: Request, q: Q) -> dict[str, Any]:
    """Before buying a card: is this merchant filed, is its money in custody, how is it
    doing. Anyone may ask, without a key; a few times a second per address."""
    limit_lookups(request)
    code, name_part = lookup_terms(q)
    with context_of(request).engine.connect() as conn:
        return public_queries.lookup(conn, code, name_part, PUBLICATION,
                                     context_of(request).clock())
