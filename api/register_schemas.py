"""The register at the HTTP edge: people by identity card number in, pseudonyms out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from api.context import context_of
from ledger.supervision.register import Person, PersonRole, person_pseudonym

Role = Literal["legal_representative", "director", "supervisor", "manager"]


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role = Field(description="法定代表人, 董事, 监事 or 经理")
    id_number: str = Field(min_length=15, max_length=18,
                           description="居民身份证号, check digit verified; never stored")


class PersonOut(BaseModel):
    role: Role
    person_id: str = Field(description="the pseudonym: a keyed hash of the identity number")


def people_of(request: Request, people: Sequence[PersonIn], where: str = "people"
              ) -> list[Person]:
    key = context_of(request).pseudonym_key
    return [Person(PersonRole(p.role), person_pseudonym(key, p.id_number,
                                                        f"{where}[{i}].id_number"))
            for i, p in enumerate(people)]
