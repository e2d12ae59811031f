"""The public merchant lookup (查询): what anyone may learn of a merchant before buying a card,
without a key. Shanghai's platform lets consumers check each issuer; so does this.

Only what the merchant's filing makes public and the platform vouches for: filed or not,
whether its custody is in place and confirmed by its bank, a coverage band (not its books),
its tier where the jurisdiction publishes tiers, its complaints of the last 90 days, and
whether it is banned. No person, no address, no amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from stdnum.cn import uscc

from ledger.errors import InvalidInput

lookup_query_chars_min: Final = 2
lookup_query_chars_max: Final = 50
lookup_matches_max: Final = 20
complaints_window_days: Final = 90
basis_points_whole: Final = 10_000


class CoverageBand(StrEnum):
    no_prepaid = "no_prepaid"  # nothing outstanding on its cards
    full = "full"  # custody holds every fen of outstanding prepaid
    meets_rule = "meets_rule"  # at or above the jurisdiction's required share
    below_rule = "below_rule"
    unknown = "unknown"  # no rule set applies


def coverage_band(coverage_bp: int | None, required_bp: int | None) -> CoverageBand:
    if coverage_bp is None:
        return CoverageBand.no_prepaid
    if coverage_bp >= basis_points_whole:
        return CoverageBand.full
    if required_bp is None:
        return CoverageBand.unknown
    return CoverageBand.meets_rule if coverage_bp >= required_bp else CoverageBand.below_rule


def publishes_tier(publication: Mapping[str, Mapping[str, bool]], jurisdiction: str) -> bool:
    """Whether the jurisdiction shows its risk tiers to the public (data, per jurisdiction:
    ledger/supervision/data/publication.json); one that is not listed does not."""
    return bool(publication.get(jurisdiction, {}).get("tier", False))


def lookup_terms(query: str) -> tuple[str | None, str]:
    """A credit code (if the query is one, its check character verified) and a name part."""
    text = query.strip()
    if not lookup_query_chars_min <= len(text) <= lookup_query_chars_max:
        raise InvalidInput(f"must be {lookup_query_chars_min} to {lookup_query_chars_max} "
                           f"characters", field="q")
    code = text.upper()
    return (code if uscc.is_valid(code) else None), text
