"""Merchant filing (备案): the checks on what an operator files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from stdnum.cn import uscc
from stdnum.exceptions import ValidationError

from ledger import limits
from ledger.bank.accounts import account_candidates, custody_currency
from ledger.errors import InvalidInput
from ledger.supervision.register import (
    Person,
    address_chars_max,
    check_people,
    optional_text,
    premises_of,
    street_chars_max,
)

industry_chars_max: Final = 50
bank_account_chars_max: Final = 64


class MerchantStatus(StrEnum):
    active = "active"
    frozen = "frozen"
    closing = "closing"  # its cards' refunds are being instructed, slice by slice
    closed = "closed"


class Tier(StrEnum):
    blue = "blue"
    yellow = "yellow"
    red = "red"


HARD_BLOCKS: Final = frozenset({"court_listed_defaulter", "abnormal_operations_list",
                                "deregistering"})


def check_credit_code(code: object) -> str:
    """The 18-character unified social credit code, with its GB 32100-2015 check character."""
    if not isinstance(code, str):
        raise InvalidInput("must be a string", field="credit_code")
    try:
        return str(uscc.validate(code.strip().upper()))
    except ValidationError as exc:
        raise InvalidInput(f"is not a valid unified social credit code: {exc}",
                           field="credit_code") from exc


@dataclass(frozen=True, slots=True)
class Filing:
    name: str
    credit_code: str
    industry: str  # its department follows from the jurisdiction's map, at filing
    bank_id: str
    custody_account: str
    jurisdiction: str
    street: str | None = None  # 属地: the street or town (镇街/街乡) it answers to
    address: str | None = None  # its premises as written
    people: tuple[Person, ...] = ()  # pseudonyms (ledger/supervision/register.py)

    @property
    def premises(self) -> str | None:
        return premises_of(self.address) if self.address else None


def _text(raw: Mapping[str, Any], name: str, chars_max: int) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("is required", field=name)
    if len(value) > chars_max:
        raise InvalidInput(f"must be at most {chars_max} characters", field=name)
    return value.strip()


def _custody_account(raw: Mapping[str, Any]) -> str:
    return barest_account(_text(raw, "custody_account", bank_account_chars_max))


def barest_account(written: str, field: str = "custody_account") -> str:
    """A custody account in its barest form (ledger/bank/accounts.py: no spacing, no `BIC/`
    before it, no currency after it), the form a statement's account is matched in at last:
    so one account spelt two ways is one account, and a second merchant cannot be filed on
    it."""
    account = account_candidates(written, custody_currency)[-1]
    if not account:
        raise InvalidInput("is only separators", field=field)
    return account


def parse_filing(raw: Mapping[str, Any], default_jurisdiction: str,
                 people: Sequence[Person] = ()) -> Filing:
    """A filing as sent; its people already pseudonymised at the edge."""
    industry = _text(raw, "industry", industry_chars_max)
    jurisdiction = raw.get("jurisdiction") or default_jurisdiction
    if not isinstance(jurisdiction, str) or len(jurisdiction) > industry_chars_max:
        raise InvalidInput("must be a short text", field="jurisdiction")
    return Filing(
        name=_text(raw, "name", limits.name_chars_max),
        credit_code=check_credit_code(raw.get("credit_code")),
        industry=industry,
        bank_id=_text(raw, "bank_id", limits.owner_chars_max),
        custody_account=_custody_account(raw),
        jurisdiction=jurisdiction,
        street=optional_text(raw, "street", street_chars_max),
        address=optional_text(raw, "address", address_chars_max),
        people=check_people(people))
