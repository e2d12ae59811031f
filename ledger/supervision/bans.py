"""Bans and the blacklist (黑名单, 市场禁入; seed 003: 失信禁入制度).

A ban names a subject: a person (a legal representative 法定代表人 or an officer 董事/监事/经理,
by the pseudonym the register keeps: ledger/supervision/register.py) or a premises (经营场所,
an address in its normalised form). It has a reason, a source (a court 法院, a regulator
市场监管局, the platform itself) and a start, and may have an end; lifting it early is an act
of its own, with a reason. A subject has at most one ban in force over any day.

Filing, amendments and every card sale screen the merchant's people and premises: a hit
refuses the write (`Banned`), naming the field and the ban's reason and source.

A premises where operators keep changing to dodge refunds (同一经营场所反复出现以更换经营者等方式
逃避兑付预收款) is flagged once enough distinct merchants or legal representatives arrive at it
within a window: the rule is data (ban_rules.json), and the flag names the rule it met.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from importlib import resources
from typing import Any, Final

from ledger.errors import InvalidInput, Refused
from ledger.supervision.register import Person, person_id_chars

reason_chars_max: Final = 500
source_chars_max: Final = 100
premises_chars_max: Final = 200
# The source a ban the platform lists itself names (a merchant that ran away: its people).
RUN_AWAY_SOURCE: Final = "platform: 关门跑路"
_HEX: Final = frozenset("0123456789abcdef")


class BanKind(StrEnum):
    person = "person"
    premises = "premises"


Subject = tuple[BanKind, str]  # (kind, pseudonym or normalised premises)


class Banned(Refused):
    """A write refused because a person or premises it names is banned. 422 like every
    refusal by the rules (a frozen merchant, a red tier): the key may do this, the content
    may not; 403 would say the key lacks the right, which a retry with another key fixes."""

    code = "banned"


@dataclass(frozen=True, slots=True)
class Ban:
    id: int  # the journal entry that listed it
    kind: BanKind
    subject: str
    reason: str
    source: str
    starts_on: date
    ends_on: date | None  # the first day it no longer holds; None: until lifted

    def in_force(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day < self.ends_on)

    def overlaps(self, starts_on: date, ends_on: date | None) -> bool:
        return ((self.ends_on is None or starts_on < self.ends_on)
                and (ends_on is None or self.starts_on < ends_on))

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind.value, "subject": self.subject,
                "reason": self.reason, "source": self.source,
                "starts_on": self.starts_on.isoformat(),
                "ends_on": None if self.ends_on is None else self.ends_on.isoformat()}


@dataclass(frozen=True, slots=True)
class BanDraft:
    """A ban to list: its id is the entry that lists it."""

    kind: BanKind
    subject: str
    reason: str
    source: str
    starts_on: date
    ends_on: date | None = None
    merchant_id: str | None = None  # the merchant it arose from, if any

    def listed(self, ban_id: int) -> Ban:
        return Ban(ban_id, self.kind, self.subject, self.reason, self.source, self.starts_on,
                   self.ends_on)


def check_subject(kind: BanKind, subject: str, field: str) -> str:
    """A person's pseudonym is a hex SHA-256; a premises is already normalised and bounded."""
    if kind is BanKind.person:
        if len(subject) != person_id_chars or not set(subject) <= _HEX:
            raise InvalidInput("is not a person's pseudonym (64 lower-case hex digits)",
                               field=field)
    elif not subject or len(subject) > premises_chars_max:
        raise InvalidInput(f"must be 1 to {premises_chars_max} characters once normalised",
                           field=field)
    return subject


def check_dates(starts_on: date, ends_on: date | None) -> None:
    if ends_on is not None and ends_on <= starts_on:
        raise InvalidInput("must be after starts_on", field="ends_on")


def check_text(value: str, field: str, chars_max: int) -> str:
    stripped = value.strip()
    if not stripped or len(stripped) > chars_max:
        raise InvalidInput(f"must be 1 to {chars_max} characters", field=field)
    return stripped


def check_no_overlap(existing: Iterable[Ban], starts_on: date, ends_on: date | None) -> None:
    """One ban in force per subject over any day: a second over the same days is refused
    (lift the first, or let it end)."""
    for ban in existing:
        if ban.overlaps(starts_on, ends_on):
            raise InvalidInput(f"the subject already has ban {ban.id} over these days "
                               f"(from {ban.starts_on.isoformat()}); lift it first",
                               field="id_number" if ban.kind is BanKind.person else "address")


@dataclass(frozen=True, slots=True)
class Screened:
    """What a write names that a ban may hit: each subject with the field that names it and
    what it is to the merchant (its role, or its premises)."""

    subjects: tuple[tuple[Subject, str, str], ...]

    @property
    def keys(self) -> list[Subject]:
        return [subject for subject, _, _ in self.subjects]


def screened(people: Sequence[Person], premises: str | None,
             people_order: Sequence[str] = (), people_field: str = "people",
             premises_field: str = "address") -> Screened:
    """The subjects of a merchant's register. `people_order`: the pseudonyms in the order
    the request sent them, so a hit names the field the caller wrote (people[2].id_number);
    a person it does not hold is named by `people_field` alone."""
    index = {person_id: i for i, person_id in enumerate(people_order)}
    subjects: list[tuple[Subject, str, str]] = []
    for person in people:
        at = index.get(person.person_id)
        field = people_field if at is None else f"{people_field}[{at}].id_number"
        subjects.append(((BanKind.person, person.person_id), field, person.role.value))
    if premises:
        subjects.append(((BanKind.premises, premises), premises_field, "premises"))
    return Screened(tuple(subjects))


def check_screen(what: Screened, bans: Mapping[Subject, Sequence[Ban]], day: date,
                 acting: str) -> None:
    """Refuse if a ban in force on `day` hits any subject: the first hit, in the register's
    order (people, then premises)."""
    for subject, field, label in what.subjects:
        for ban in bans.get(subject, ()):
            if ban.in_force(day):
                raise Banned(f"{acting}: the {label} is banned (ban {ban.id}; source: "
                             f"{ban.source}; reason: {ban.reason})", field=field)


# -- premises churn ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ChurnRule:
    """Flag a premises once `merchants_min` distinct merchants, or `representatives_min`
    distinct legal representatives, arrived at it within `window_days`."""

    version: int
    merchants_min: int
    representatives_min: int
    window_days: int

    def view(self) -> dict[str, int]:
        return {"version": self.version, "merchants_min": self.merchants_min,
                "representatives_min": self.representatives_min,
                "window_days": self.window_days}


@dataclass(frozen=True, slots=True)
class Arrival:
    """A merchant filed or amended onto a premises (or its legal representative changed
    there), and who represented it then."""

    merchant_id: str
    legal_representative: str | None
    arrived_on: date


def parse_churn_rules(raw: Mapping[str, Any]) -> tuple[int, dict[str, ChurnRule]]:
    version = raw.get("version")
    rules = raw.get("premises_churn")
    if not isinstance(version, int) or not isinstance(rules, dict) or "*" not in rules:
        raise InvalidInput("needs an integer version and premises_churn with a '*' entry",
                           field="ban_rules")
    parsed: dict[str, ChurnRule] = {}
    for jurisdiction, rule in rules.items():
        values = [rule.get(k) for k in ("merchants_min", "representatives_min", "window_days")]
        if not all(isinstance(v, int) and v >= 2 for v in values[:2]) or \
                not (isinstance(values[2], int) and values[2] >= 1):
            raise InvalidInput("merchants_min and representatives_min must be integers of at "
                               "least 2, window_days at least 1", field=jurisdiction)
        parsed[jurisdiction] = ChurnRule(version, *values)
    return version, parsed


# Data shipped in the package, as the bank profiles are: a jurisdiction with another
# threshold adds its entry (ledger/supervision/ban_rules.json).
_, CHURN_RULES = parse_churn_rules(json.loads(
    resources.files("ledger.supervision").joinpath("ban_rules.json").read_text("utf-8")))


def churn_rule(jurisdiction: str) -> ChurnRule:
    return CHURN_RULES.get(jurisdiction, CHURN_RULES["*"])


@dataclass(frozen=True, slots=True)
class Churn:
    merchants: tuple[str, ...]
    representatives: tuple[str, ...]
    since: date

    def view(self) -> dict[str, Any]:
        return {"merchants": list(self.merchants),
                "legal_representatives": list(self.representatives),
                "since": self.since.isoformat()}


def churn(arrivals: Iterable[Arrival], rule: ChurnRule, today: date) -> Churn | None:
    """The churn at a premises if it meets the rule: distinct merchants, or distinct legal
    representatives, arrived within the window ending today (both ends counted)."""
    since = today - timedelta(days=rule.window_days)
    recent = [a for a in arrivals if since <= a.arrived_on <= today]
    merchants = tuple(sorted({a.merchant_id for a in recent}))
    representatives = tuple(sorted({a.legal_representative for a in recent
                                    if a.legal_representative is not None}))
    if len(merchants) >= rule.merchants_min or len(representatives) >= rule.representatives_min:
        return Churn(merchants, representatives, since)
    return None
