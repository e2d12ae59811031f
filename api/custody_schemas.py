"""What the custody endpoints answer (api/routes/custody.py): see api/schemas.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.ban_schemas import PremisesFlag
from api.register_schemas import PersonOut
from api.schemas import (
    BankStatus,
    CardKind,
    CardStatus,
    Day,
    Hex,
    InstructionStatus,
    MerchantStatus,
    NextAfter,
    NextAfterName,
    Out,
    Seq,
    Tier,
)

RefundReason = Literal["cooling_off", "balance", "dispute", "closure"]


# -- custody: rule sets, merchants, products ------------------------------------------------------


class Rules(Out):
    """The fields of ledger.custody.rules.RuleSet, every one always there (a version keeps
    the last one's values it does not set)."""

    custody_ratio_bp: int
    named_card_value_fen_max: int
    anonymous_card_value_fen_max: int
    sessions_per_payment_max: int
    months_per_payment_max: int
    cooling_off_days: int
    confirmation_required: bool
    confirmation_silence_working_days: int
    release_cadence_days: int
    reserve_share_bp: int


class RuleSet(Out):
    id: int
    jurisdiction: str
    industry: str
    version: int
    rules: Rules
    created_seq: Seq


class RuleSets(Out):
    items: list[RuleSet]
    next_after: NextAfter


class CreatedRuleSet(Out):
    id: int
    jurisdiction: str
    industry: str
    version: int
    rules: Rules
    journal_seq: Seq


class Merchant(Out):
    id: str
    name: str
    credit_code: str
    industry: str
    department: str
    department_pending: bool
    jurisdiction: str
    bank_id: str
    custody_account: str
    rule_set_id: int
    status: MerchantStatus
    tier: Tier
    street: str | None = Field(description="属地: the street or town (镇街/街乡)")
    address: str | None = Field(description="the premises as written")
    premises: str | None = Field(description="the address normalised: what bans match")
    people: list[PersonOut] = Field(description="legal representative and officers, "
                                                "as pseudonyms")


class FiledMerchant(Merchant):
    accounts: dict[str, int] = Field(description="the merchant's account ids by purpose")
    department_map_version: int = Field(description="the version of the jurisdiction's "
                                                    "department map its department follows")
    journal_seq: Seq
    premises_flag: PremisesFlag | None = Field(
        default=None, description="the premises' churn flag, if this filing raised it")


class CrossVerificationResult(Out):
    closing_date: Day
    bank_balance_fen: int
    ledger_balance_fen: int
    difference_fen: int
    result: Literal["match", "difference"]


class MerchantSummary(Out):
    """A merchant as the lists of merchants name it (exposure, tiers)."""

    merchant_id: str
    name: str
    industry: str
    department: str
    status: MerchantStatus
    tier: Tier


class Exposure(MerchantSummary):
    complaint_count: int
    cards: int
    card_liability_fen: int
    custodied_card_liability_fen: int
    custody_balance_fen: int
    coverage_ratio_bp: int | None
    required_ratio_bp: int | None
    meets_rule: bool | None
    last_cross_verification: CrossVerificationResult | None
    risk_signals: list[str]


class Exposures(Out):
    items: list[Exposure]
    next_after: NextAfterName


class NextRelease(Out):
    period_end: Day
    estimated_amount_fen: int
    estimated_holdback_fen: int


class MerchantView(Merchant):
    hard_blocks: list[str]
    balances_fen: dict[str, int] = Field(description="balances by account purpose, on each "
                                                     "account's normal side")
    exposure: Exposure
    next_release: NextRelease | None


class MerchantStatusChange(Out):
    merchant_id: str
    status: MerchantStatus
    journal_seq: Seq
    voided_releases: list[int] = Field(description="pending releases a freeze failed")


class TierChange(Out):
    merchant_id: str
    tier: Tier
    previous_tier: Tier
    reasons: list[str]
    hard_blocks: list[str]
    journal_seq: Seq


class Closure(Out):
    merchant_id: str
    cards: int
    available_fen: int
    claims_fen: int
    payout_fen: int
    shortfall_fen: int
    refunds: list[int] = Field(description="the refund instructions made, one per card")
    journal_seq: Seq


class Deposit(Out):
    merchant_id: str
    amount_fen: int
    journal_seq: Seq


class CreatedProduct(Out):
    id: str
    merchant_id: str
    kind: CardKind
    name: str
    price_fen: int
    sessions: int | None
    bonus_units: int
    validity_months: int
    journal_seq: Seq


# -- cards, consumptions, refunds, releases -------------------------------------------------------


class Sale(Out):
    card_id: str
    merchant_id: str
    product_id: str
    consumer_id: str = Field(description="the consumer's pseudonym")
    named: bool
    kind: CardKind
    paid_fen: int
    custody_fen: int
    direct_fen: int
    total_units: int
    rule_set_id: int
    card_account_id: int
    sold_on: Day
    expires_on: Day
    receipt_code: str | None = Field(default=None,
                                     description="reads this card (X-Receipt-Code), acts for "
                                                 "nobody; shown once (absent from a replay)")
    withheld: list[Literal["receipt_code"]] | None = Field(
        default=None, description="on a replay (Idempotency-Key): what the first answer "
                                  "showed once and is not shown again")
    journal_seq: Seq
    entry_hash: Hex


class CardView(Out):
    id: str
    merchant_id: str
    product_id: str
    kind: CardKind
    named: bool
    consumer_id: str
    paid_fen: int
    custody_fen: int
    total_units: int
    used_units: int
    remaining_units: int
    remaining_paid_fen: int
    status: CardStatus
    disputed: bool
    sold_on: Day
    expires_on: Day
    sold_seq: Seq
    rule_set_id: int


class CardsPage(Out):
    items: list[CardView]
    next_after: NextAfterName


class CustodyStatus(Out):
    in_custody_fen: int
    held_by_merchant_fen: int


class CardRefund(Out):
    id: int
    reason: str
    claim_fen: int
    amount_fen: int
    status: InstructionStatus


class HolderCard(CardView):
    merchant_name: str
    merchant_status: MerchantStatus
    custodian_bank: str
    custody_status: CustodyStatus
    refunds: list[CardRefund]


class Consumption(Out):
    consumption_id: int
    card_id: str
    merchant_id: str
    units: int
    paid_fen: int
    custody_fen: int
    direct_fen: int
    status: Literal["pending", "confirmed"]
    confirm_by: Day
    remaining_units: int
    journal_seq: Seq


class SettledConsumption(Out):
    consumption_id: int
    card_id: str
    merchant_id: str
    by: Literal["consumer", "silence"]
    status: Literal["confirmed", "rejected"]
    journal_seq: Seq


class AutoConfirmed(Out):
    as_of: Day
    confirmed: list[int] = Field(description="the consumptions confirmed by silence")


class Refund(Out):
    refund_id: int
    card_id: str
    merchant_id: str
    reason: RefundReason
    claim_fen: int
    amount_fen: int = Field(description="paid out of custody")
    merchant_due_fen: int = Field(description="owed by the merchant")
    consumer_id: str
    end_to_end_id: str
    journal_seq: Seq


class Dispute(Out):
    card_id: str
    disputed: bool
    journal_seq: Seq
    refund: Refund | None = Field(default=None, description="when resolved for the consumer "
                                                            "with money left on the card")


class Release(Out):
    release_id: int
    merchant_id: str
    period_start: Day
    period_end: Day
    amount_fen: int
    holdback_fen: int
    consumptions: int
    bank_id: str
    end_to_end_id: str
    journal_seq: Seq


class ReleaseRun(Out):
    as_of: Day
    releases: list[Release]
    held: list[str] = Field(default_factory=list, description="merchants skipped: a run-away "
                            "pattern holds their releases until a regulator clears it")


class ReleaseInstruction(Out):
    id: int
    merchant_id: str
    period_start: Day
    period_end: Day
    amount_fen: int
    holdback_fen: int
    status: InstructionStatus
    end_to_end_id: str
    bank_status: BankStatus
    created_seq: Seq
    resolved_seq: Seq | None
    bank_id: str


class ReleaseInstructions(Out):
    items: list[ReleaseInstruction]
    next_after: NextAfter


class RefundInstruction(Out):
    id: int
    merchant_id: str
    card_id: str
    reason: RefundReason
    claim_fen: int
    amount_fen: int
    merchant_due_fen: int
    status: InstructionStatus
    end_to_end_id: str
    bank_status: BankStatus
    created_seq: Seq
    resolved_seq: Seq | None
    bank_id: str


class RefundInstructions(Out):
    items: list[RefundInstruction]
    next_after: NextAfter


class ResolvedRelease(Out):
    release_id: int
    status: Literal["settled", "failed"]
    journal_seq: Seq


class ResolvedRefund(Out):
    refund_id: int
    card_id: str
    merchant_id: str
    by: Literal["call", "bank", "statement"]
    status: Literal["settled", "failed"]
    journal_seq: Seq
