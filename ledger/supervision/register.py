"""The register (备案台账): who runs a merchant, where, and every change to it.

A merchant's people (its legal representative 法定代表人 and officers 董事/监事/经理) are kept
only as pseudonyms: a keyed hash of the resident identity card number (居民身份证号), made at
the edge with the service's pseudonym key, so a banned person is recognised at any merchant
they turn up at and the journal still holds no personal data. Its premises are its address in
a normalised form, so one shop front written two ways is one premises.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from ledger.errors import InvalidInput

street_chars_max: Final = 50
address_chars_max: Final = 200
people_per_merchant_max: Final = 20
person_id_chars: Final = 64  # a hex SHA-256

# Dropped from an address before comparing: spacing and punctuation, which people write
# freely (北京市朝阳区 望京街 8 号, 北京市朝阳区望京街8号).
# Passes of `premises_of` at most: an address is stable after two (the property test in
# tests/ledger/supervision/test_premises.py looks for one that is not).
_NORMALISE_PASSES_MAX: Final = 4
_ADDRESS_NOISE: Final = frozenset("-_,.;:·、，。；：（）()[]【】#/\\'\"")


class PersonRole(StrEnum):
    legal_representative = "legal_representative"  # 法定代表人
    director = "director"  # 董事
    supervisor = "supervisor"  # 监事
    manager = "manager"  # 经理


@dataclass(frozen=True, slots=True)
class Person:
    role: PersonRole
    person_id: str  # the pseudonym

    def view(self) -> dict[str, str]:
        return {"role": self.role.value, "person_id": self.person_id}


def person_pseudonym(key: bytes, id_number: object, field: str) -> str:
    """The pseudonym of a resident identity card number (its check digit verified)."""
    if not isinstance(id_number, str):
        raise InvalidInput("must be a string", field=field)
    try:
        number = str(ric.validate(id_number.strip().upper()))
    except ValidationError as exc:
        raise InvalidInput(f"is not a valid resident identity card number: {exc}",
                           field=field) from exc
    return hmac.new(key, f"person:{number}".encode(), hashlib.sha256).hexdigest()


def check_people(people: Sequence[Person]) -> tuple[Person, ...]:
    """At most one legal representative, nobody twice in one role, a bounded list."""
    if len(people) > people_per_merchant_max:
        raise InvalidInput(f"at most {people_per_merchant_max} people", field="people")
    seen: set[tuple[PersonRole, str]] = set()
    for index, person in enumerate(people):
        if (person.role, person.person_id) in seen:
            raise InvalidInput("the same person twice in one role", field=f"people[{index}]")
        seen.add((person.role, person.person_id))
    if sum(p.role is PersonRole.legal_representative for p in people) > 1:
        raise InvalidInput("a merchant has one legal representative", field="people")
    return tuple(sorted(people, key=lambda p: (p.role.value, p.person_id)))


def premises_of(address: str) -> str:
    """The normalised form of an address: full-width to half-width (NFKC), case folded,
    spacing and punctuation dropped; normalising it again changes nothing."""
    premises = address
    # One pass may leave work for the next: NFKC turns a spacing mark into a space and a
    # combining one (R¸ -> "r ̧"), and once the space is dropped the two compose (ŗ).
    for _ in range(_NORMALISE_PASSES_MAX):
        folded = unicodedata.normalize("NFKC", premises).casefold()
        again = "".join(ch for ch in folded if not ch.isspace() and ch not in _ADDRESS_NOISE)
        if again == premises:
            break
        premises = again
    return premises


def optional_text(raw: Mapping[str, Any], name: str, chars_max: int) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("must be a non-blank text when given", field=name)
    if len(value) > chars_max:
        raise InvalidInput(f"must be at most {chars_max} characters", field=name)
    return value.strip()


def legal_representative(people: Sequence[Person]) -> str | None:
    return next((p.person_id for p in people if p.role is PersonRole.legal_representative),
                None)


# The fields of a filing an amendment may change (变更登记), as the journal names them.
AMENDABLE: Final = ("address", "street", "people", "custody_account")


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What an amendment changes: each field whose value differs, before and after."""
    return {name: {"before": before.get(name), "after": after[name]}
            for name in AMENDABLE if name in after and after[name] != before.get(name)}


@dataclass(frozen=True, slots=True)
class Register:
    """What the register holds of a merchant beyond its money: where, and who."""

    street: str | None
    address: str | None
    people: tuple[Person, ...]

    @property
    def premises(self) -> str | None:
        return premises_of(self.address) if self.address else None

    def view(self) -> dict[str, Any]:
        return {"street": self.street, "address": self.address, "premises": self.premises,
                "people": [p.view() for p in self.people]}


def register_of(row: Mapping[str, Any]) -> Register:
    """The register from its stored form."""
    return Register(row.get("street"), row.get("address"),
                    tuple(Person(PersonRole(p["role"]), p["person_id"])
                          for p in row.get("people") or ()))
