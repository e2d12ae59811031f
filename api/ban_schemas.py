"""Bans and premises at the HTTP edge: a person by identity card number (hashed here, never
kept) or by pseudonym, a premises by address (normalised in the core)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Day, NextAfter, Out, Seq
from ledger.supervision.bans import premises_chars_max, reason_chars_max, source_chars_max
from ledger.supervision.register import address_chars_max, person_id_chars

Kind = Literal["person", "premises"]


class BanIn(BaseModel):
    """A person by `id_number` (or a `person_id` already known), or a premises by
    `address`."""

    model_config = ConfigDict(extra="forbid")
    kind: Kind
    id_number: str | None = Field(default=None, min_length=15, max_length=18,
                                  description="居民身份证号, check digit verified; hashed "
                                              "with the register's key, never stored")
    person_id: str | None = Field(default=None, min_length=person_id_chars,
                                  max_length=person_id_chars,
                                  description="a pseudonym the register already shows")
    address: str | None = Field(default=None, min_length=1, max_length=address_chars_max,
                                description="the premises as written; normalised")
    reason: str = Field(min_length=1, max_length=reason_chars_max)
    source: str = Field(min_length=1, max_length=source_chars_max,
                        description="who decided it: 法院, 市场监管局, the platform ...")
    starts_on: date | None = Field(default=None, description="today if absent")
    ends_on: date | None = Field(default=None, description="the first day it no longer "
                                                           "holds; absent: until lifted")
    merchant_id: str | None = Field(default=None, min_length=1, max_length=64,
                                    description="the merchant it arose from, if any")


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=reason_chars_max)


class Lift(Out):
    reason: str
    lifted_on: Day
    journal_seq: Seq
    lifted_by: int = Field(description="the key that lifted it")


class BanOut(Out):
    id: int = Field(description="the journal entry that listed it")
    kind: Kind
    subject: str = Field(description="a person's pseudonym, or a normalised premises")
    reason: str
    source: str
    starts_on: Day
    ends_on: Day | None
    merchant_id: str | None
    listed_by: int = Field(description="the key that listed it")
    journal_seq: Seq
    active: bool = Field(description="in force today")
    lifted: Lift | None


class Listed(Out):
    id: int
    kind: Kind
    subject: str
    reason: str
    source: str
    starts_on: Day
    ends_on: Day | None
    merchant_id: str | None
    active: bool
    journal_seq: Seq


class Lifted(Out):
    ban_id: int
    kind: Kind
    subject: str
    reason: str
    lifted_on: Day
    journal_seq: Seq


class Bans(Out):
    items: list[BanOut]
    next_after: NextAfter


class ChurnRule(Out):
    version: int
    merchants_min: int
    representatives_min: int
    window_days: int


class PremisesFlag(Out):
    premises: str = Field(max_length=premises_chars_max)
    flagged_on: Day
    rule: ChurnRule
    merchants: list[str] = Field(description="the merchants arrived within the window")
    legal_representatives: list[str] = Field(description="their legal representatives' "
                                                         "pseudonyms")
    since: Day
    journal_seq: Seq


class Arrival(Out):
    merchant_id: str
    legal_representative: str | None
    arrived_on: Day
    journal_seq: Seq


class Premises(Out):
    premises: str
    flag: PremisesFlag | None
    arrivals: list[Arrival] = Field(description="merchants filed or amended onto it, newest "
                                                "first")
    bans: list[BanOut]
