"""What the supervision flows read and write, typed: `ledger.commands.Books.supervision`.
ledger/db/supervision_store.py implements it.

Lookups (by id or key) are right at any point of a command; queries (marked) see every
earlier command's writes and are refused once the running command has changed something, so
a flow runs its queries first (ledger/commands.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from ledger.custody.merchants import Tier
from ledger.supervision.checks import Facts
from ledger.supervision.signals import Signal, SignalKind, SignalState
from ledger.supervision.thresholds import SupervisionRules
from ledger.supervision.tiers import Override


@dataclass(frozen=True, slots=True)
class Risk:
    """A merchant's standing signals and computed tier as last assessed, and its hold."""

    active: Mapping[SignalKind, Signal]
    computed_tier: Tier
    releases_held: bool
    held_seq: int | None


NO_RISK = Risk({}, Tier.blue, False, None)


@dataclass(frozen=True, slots=True)
class StandingOverride:
    id: int
    merchant_id: str
    reason: str
    override: Override


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    merchant_id: str
    kind: str
    acknowledged: bool


@dataclass(frozen=True, slots=True)
class Window:
    """Days from `since` to `until`, both included."""

    since: date
    until: date


class SupervisionStore(Protocol):
    # -- lookups -------------------------------------------------------------------------
    def rules_of(self, jurisdiction: str, industry: str) -> SupervisionRules | None:
        """The latest version of the jurisdiction's and industry's rules, else of its '*';
        None for a jurisdiction with none (its merchants are not assessed)."""
        ...
    def risk(self, merchant_id: str) -> Risk: ...  # NO_RISK if never assessed
    def overrides(self, merchant_id: str) -> list[StandingOverride]: ...  # ended ones too
    def override(self, override_id: int) -> StandingOverride: ...
    def alert(self, alert_id: int) -> AlertRow: ...

    # -- queries -------------------------------------------------------------------------
    def next_rules_version(self, jurisdiction: str, industry: str
                           ) -> tuple[int, Mapping[str, Any] | None]: ...
    def merchant_of_credit_code(self, credit_code: str) -> str | None: ...

    def facts(self, merchant_id: str, as_of: date, rules: SupervisionRules,
              custody_fen: int, required_ratio_bp: int) -> Facts:
        """A query: the merchant's figures for the four checks on `as_of`."""
        ...

    def complaint_counts(self, merchant_ids: Sequence[str], window: Window
                         ) -> dict[str, int]:
        """A query: complaints received per merchant in the window (12345 / 12315 work
        orders and direct ones). Merchants with none are left out."""
        ...

    def sales_on(self, merchant_id: str, day: date) -> int:
        """A query: the paid money of the merchant's cards sold on `day`, in fen."""
        ...

    # -- writes --------------------------------------------------------------------------
    def add_rules(self, view: Mapping[str, Any], rules: SupervisionRules) -> None: ...
    def add_signal(self, merchant_id: str, signal: Signal, state: SignalState,
                   observed_on: date, seq: int) -> None: ...
    def set_risk(self, merchant_id: str, risk: Risk, assessed_on: date | None) -> None: ...
    def add_status_record(self, row: Mapping[str, Any]) -> None: ...
    def add_revenue(self, row: Mapping[str, Any]) -> None: ...
    def add_override(self, row: Mapping[str, Any]) -> int: ...  # its id
    def end_override(self, override_id: int, seq: int) -> None: ...
    def add_alert(self, row: Mapping[str, Any]) -> int: ...  # its id
    def acknowledge(self, alert_id: int, key_id: int, seq: int, at: str) -> None: ...
    def add_subscription(self, row: Mapping[str, Any]) -> int: ...  # its id
