"""Cards: products, the sale checks, and the exact arithmetic of consumption and refund.

A card holds `total_units` of service: fen of value for a stored-value card, sessions for a
session card, bonus included. Only the paid money is the card's liability; bonus is service
the merchant gives away. As units are used, the paid money consumed is computed
cumulatively, so every fen is accounted for and the last unit takes the remainder.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Final

from ledger import limits
from ledger.custody.merchants import HARD_BLOCKS, MerchantStatus, Tier
from ledger.custody.rules import RuleSet, basis_points_whole
from ledger.errors import InvalidInput, Refused, require
from ledger.money import check_amount, split_by_weights

consumer_ref_chars_max: Final = 64


class CardKind(StrEnum):
    stored_value = "stored_value"
    sessions = "sessions"


@dataclass(frozen=True, slots=True)
class Product:
    kind: CardKind
    name: str
    price_fen: int
    sessions: int  # 0 for stored value
    bonus_units: int  # bonus fen of value, or bonus sessions
    validity_months: int

    @property
    def total_units(self) -> int:
        base = self.price_fen if self.kind == CardKind.stored_value else self.sessions
        return base + self.bonus_units


def _int(raw: Mapping[str, Any], name: str, low: int, high: int, default: int | None = None
         ) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"must be an integer from {low} to {high}", field=name)
    return value


def parse_product(raw: Mapping[str, Any]) -> Product:
    kind_text = raw.get("kind")
    if kind_text not in CardKind.__members__:
        raise InvalidInput("must be stored_value or sessions", field="kind")
    kind = CardKind(str(kind_text))
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > limits.name_chars_max:
        raise InvalidInput(f"must be 1 to {limits.name_chars_max} characters", field="name")
    price = check_amount(raw.get("price_fen"), "price_fen")
    sessions = _int(raw, "sessions", 1, 100_000) if kind == CardKind.sessions else 0
    if kind == CardKind.stored_value and raw.get("sessions") not in (None, 0):
        raise InvalidInput("only a session card has sessions", field="sessions")
    bonus = _int(raw, "bonus_units", 0, limits.amount_fen_max, default=0)
    validity = _int(raw, "validity_months", 1, 1200, default=12)
    return Product(kind, name.strip(), price, sessions, bonus, validity)


@dataclass(frozen=True, slots=True)
class MerchantState:
    status: MerchantStatus
    tier: Tier
    hard_blocks: frozenset[str]


def check_sale(merchant: MerchantState, product: Product, rules: RuleSet, named: bool) -> None:
    """Why a sale is refused, if it is: frozen, red tier, hard-blocked, or a cap broken."""
    if merchant.status != MerchantStatus.active:
        raise Refused(f"the merchant is {merchant.status.value}: no sales")
    if merchant.tier == Tier.red:
        raise Refused("the merchant is red-tier: no new cards and no renewals")
    blocks = sorted(merchant.hard_blocks & HARD_BLOCKS)
    if blocks:
        raise Refused(f"the merchant is on the hard-block list ({', '.join(blocks)})")
    cap = rules.named_card_value_fen_max if named else rules.anonymous_card_value_fen_max
    if product.price_fen > cap:
        kind = "a named" if named else "an anonymous"
        raise Refused(f"{kind} card may hold at most {cap} fen; this one is "
                      f"{product.price_fen}", field="product_id")
    if product.kind == CardKind.sessions and product.sessions > rules.sessions_per_payment_max:
        raise Refused(f"one payment may cover at most {rules.sessions_per_payment_max} "
                      f"sessions", field="product_id")
    if product.validity_months > rules.months_per_payment_max:
        raise Refused(f"one payment may cover at most {rules.months_per_payment_max} months",
                      field="product_id")


def custody_split(paid_fen: int, custody_ratio_bp: int) -> tuple[int, int]:
    """(custodied, merchant's direct share) of a payment, largest remainder."""
    custodied, direct = split_by_weights(
        paid_fen, [custody_ratio_bp, basis_points_whole - custody_ratio_bp])
    return custodied, direct


@dataclass(frozen=True, slots=True)
class CardMoney:
    """A card's money, enough to price its next consumption or refund."""

    kind: CardKind
    paid_fen: int
    custody_fen: int
    total_units: int
    used_units: int
    consumed_paid_fen: int
    consumed_custody_fen: int

    @property
    def remaining_units(self) -> int:
        return self.total_units - self.used_units

    @property
    def remaining_paid_fen(self) -> int:
        return self.paid_fen - self.consumed_paid_fen

    @property
    def remaining_custody_fen(self) -> int:
        return self.custody_fen - self.consumed_custody_fen

    def after(self, use: Use) -> CardMoney:
        """The card's money once `use` is consumed."""
        # By its constructor, not dataclasses.replace: this runs for every consumption, and
        # replace() looks the fields up again each time.
        return CardMoney(self.kind, self.paid_fen, self.custody_fen, self.total_units,
                         self.used_units + use.units, self.consumed_paid_fen + use.paid_fen,
                         self.consumed_custody_fen + use.custody_fen)

    def before(self, use: Use) -> CardMoney:
        """The card's money with `use` given back (a rejected consumption)."""
        return CardMoney(self.kind, self.paid_fen, self.custody_fen, self.total_units,
                         self.used_units - use.units, self.consumed_paid_fen - use.paid_fen,
                         self.consumed_custody_fen - use.custody_fen)


def paid_for_units(card: CardMoney, used_units: int) -> int:
    """Paid money consumed once `used_units` are used, cumulatively.

    A session card splits its price evenly with the last session taking the remainder; a
    stored-value card prorates paid money over paid-plus-bonus value.
    """
    require(0 <= used_units <= card.total_units, "units used within the card")
    if used_units == card.total_units:
        return card.paid_fen
    if card.kind == CardKind.sessions:
        return used_units * (card.paid_fen // card.total_units)
    return used_units * card.paid_fen // card.total_units


def custody_for_paid(card: CardMoney, paid_consumed_fen: int) -> int:
    if paid_consumed_fen == card.paid_fen or card.paid_fen == 0:
        return card.custody_fen if paid_consumed_fen == card.paid_fen else 0
    return paid_consumed_fen * card.custody_fen // card.paid_fen


@dataclass(frozen=True, slots=True)
class Use:
    """What one consumption takes from a card."""

    units: int
    paid_fen: int  # leaves the card's liability
    custody_fen: int  # becomes earned in custody
    direct_fen: int  # covered by what the merchant took directly


def consume(card: CardMoney, units: int, field: str = "units") -> Use:
    if units <= 0:
        raise InvalidInput("must be a positive number of units", field=field)
    if units > card.remaining_units:
        raise Refused(f"the card has {card.remaining_units} units left, not {units}",
                      field=field)
    paid_after = paid_for_units(card, card.used_units + units)
    custody_after = custody_for_paid(card, paid_after)
    paid = paid_after - card.consumed_paid_fen
    custody = custody_after - card.consumed_custody_fen
    require(paid >= 0 and 0 <= custody <= paid, "a consumption never creates money")
    return Use(units, paid, custody, paid - custody)


@dataclass(frozen=True, slots=True)
class RefundDue:
    """What a refund of a card's remaining money pays back, and from where."""

    paid_fen: int  # the consumer gets this back
    custody_fen: int  # paid out of custody
    merchant_due_fen: int  # owed by the merchant from what it took directly


def refund_remaining(card: CardMoney) -> RefundDue:
    """A balance refund: the remaining paid money; bonus is prorated away by construction
    (paid consumed tracks paid / (paid + bonus) of the value used)."""
    paid = card.remaining_paid_fen
    custody = card.remaining_custody_fen
    require(0 <= custody <= paid, "custody never exceeds the paid balance")
    return RefundDue(paid, custody, paid - custody)


def check_cooling_off(card: CardMoney, sold_on: date, today: date, cooling_off_days: int
                      ) -> None:
    if card.used_units > 0:
        raise Refused("the card has been used: cooling-off no longer applies")
    if today > sold_on + timedelta(days=cooling_off_days):
        raise Refused(f"the cooling-off period of {cooling_off_days} days has passed")


def working_days_after(start: date, working_days: int) -> date:
    """The date `working_days` Monday-to-Friday days after `start` (public holidays are
    not modelled)."""
    day, left = start, working_days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


# A mainland mobile number (中国大陆手机号): 11 digits from 13 to 19. Written with a country
# code, separators or full-width digits it is still the same phone, and one phone must be one
# consumer (else a sale to "+86 138-0013-8000" escapes the holder of 13800138000, and the
# limits per phone count each spelling apart).
MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}\Z")
PHONE_SEPARATORS = str.maketrans("", "", " -().")
COUNTRY_PREFIXES = ("+86", "0086", "86")


def normalise_phone(text: str, field: str) -> str:
    """The phone number as 11 ASCII digits, or InvalidInput naming the field."""
    plain = unicodedata.normalize("NFKC", text).translate(PHONE_SEPARATORS)
    for prefix in COUNTRY_PREFIXES:
        if plain.startswith(prefix) and len(plain) == len(prefix) + 11:
            plain = plain[len(prefix):]
            break
    if not MOBILE_RE.match(plain):
        raise InvalidInput("must be a mainland mobile number (11 digits, 13x to 19x)",
                           field=field)
    return plain


def consumer_pseudonym(key: bytes, reference: object) -> str:
    """A keyed hash of a phone number or an external id: the only consumer id we keep."""
    if not isinstance(reference, str) or not reference.strip() or \
            len(reference) > consumer_ref_chars_max:
        raise InvalidInput(f"must be 1 to {consumer_ref_chars_max} characters",
                           field="consumer")
    normalised = "".join(reference.split())
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
