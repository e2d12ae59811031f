"""A merchant's chart of accounts in custody, and the references its money travels under."""

from __future__ import annotations

from datetime import date
from typing import Final

from ledger.books import AccountKind

# The merchant's chart: purpose -> account kind. Every account must never go negative.
CHART: Final[dict[str, AccountKind]] = {
    "custody_cash": AccountKind.asset,
    "custody_in_transit": AccountKind.asset,
    "direct_share": AccountKind.asset,
    "earned_pending": AccountKind.liability,
    "earned": AccountKind.liability,
    "reserve": AccountKind.liability,
    "release_pending": AccountKind.liability,
    "refunds_payable": AccountKind.liability,
    "merchant_refund_due": AccountKind.liability,
}
# Held at the custodian bank: these accounts name the bank.
BANK_HELD: Final = frozenset({"custody_cash", "custody_in_transit"})

deposit_expected_days: Final = 3  # card money reaches custody within T+3 at the latest


def deposit_reference(sale_seq: int) -> str:
    """What the payment of one card sale carries as its reference (ISO EndToEndId: <= 35)."""
    return f"YFS{sale_seq:012d}"


def batch_reference(merchant_id: str, day: date) -> str:
    """One bank credit for a merchant's whole day of sales carries this reference."""
    return f"YFD{day:%Y%m%d}{merchant_id}"


def end_to_end_id(prefix: str, seq: int) -> str:
    """An instruction's id at the bank: unique, at most 35 characters (ISO 20022
    EndToEndId), traceable to the journal entry that made it."""
    return f"YF{prefix}{seq:012d}"
