"""Amending a filing (变更登记): a merchant's premises, street, people or custody account.

Every amendment is journaled with each field before and after, and kept as a row: a change
of legal representative or officers, or of premises, is a signal supervision reads (seed 000:
频繁变更法人). The custody account may change at the same bank only: a change of bank moves the
custody money, which is a closure at one bank and a filing at the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.access import require_operator
from ledger.auth import Principal
from ledger.commands import Books, Command
from ledger.custody.lifecycle import check_not_ending
from ledger.errors import Conflict, InvalidInput
from ledger.flows import supervision
from ledger.flows.bans import arrive, screen, watch
from ledger.supervision.bans import screened
from ledger.supervision.register import (
    Person,
    Register,
    changes,
    check_people,
    legal_representative,
)

reason_chars_max = 500


@dataclass(frozen=True)
class AmendFiling(Command):
    """`None` leaves a field as it is; `people`, when given, is the whole new list."""

    principal: Principal
    merchant_id: str
    reason: str
    today: date
    street: str | None = None
    address: str | None = None
    people: Sequence[Person] | None = None
    custody_account: str | None = None
    # The people's pseudonyms as the request sent them: a ban's hit names its field.
    people_order: tuple[str, ...] = ()

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        m = books.custody.merchant(self.merchant_id)
        check_not_ending(m)
        before = books.custody.register(m.id)
        account = self._account(books, m.id, m.bank_id)
        # The four checks read amendments (频繁变更法人): their figures before any write, this
        # amendment added below, and the merchant assessed in this same command.
        gathered = supervision.gather(books, m.id, self.today)
        after = Register(self.street if self.street is not None else before.street,
                         self.address if self.address is not None else before.address,
                         check_people(self.people) if self.people is not None
                         else before.people)
        changed = changes(_fields(before, books.custody.custody_account_of(m.id)),
                          _fields(after, account))
        if not changed:
            raise InvalidInput("changes nothing: give a field with a new value",
                               field="amendment")
        # What the amendment brings in is screened: a person added, a move to a premises. (One
        # already there is not: an amendment that removes a banned person must go through.)
        kept = {p.person_id for p in before.people}
        moved = after.premises if after.premises != before.premises else None
        screen(books, screened([p for p in after.people if p.person_id not in kept], moved,
                               self.people_order), self.today, "amendment refused")
        # An arrival at the premises: a move there, or a new legal representative there.
        arriving = moved or (after.premises if legal_representative(after.people)
                             != legal_representative(before.people) else None)
        watched = watch(books, arriving, m.jurisdiction, self.today)  # queries: first
        view = {"merchant_id": m.id, "changes": changed, "reason": self.reason,
                "amended_on": self.today.isoformat()}
        entry = books.append("merchant.amended", view)
        books.custody.amend(m.id, after, account, {
            "amended_seq": entry.seq, "merchant_id": m.id, "changes": changed,
            "reason": self.reason, "amended_on": self.today})
        flag = None if watched is None else arrive(books, watched, m.id, after.people,
                                                   entry.seq)
        supervision.settle_all(books, [supervision.with_amendment(gathered, changed)],
                               self.today)
        return {**view, "registered": after.view(), "custody_account": account,
                "journal_seq": entry.seq, "premises_flag": flag}

    def _account(self, books: Books, merchant_id: str, bank_id: str) -> str:
        current = books.custody.custody_account_of(merchant_id)
        if self.custody_account is None or self.custody_account == current:
            return current
        holder = books.custody.custody_account_holder(bank_id, self.custody_account)
        if holder is not None and holder != merchant_id:
            raise Conflict(f"custody account {self.custody_account} at bank {bank_id} is "
                           f"already held by merchant {holder}", field="custody_account")
        return self.custody_account


def _fields(register: Register, custody_account: str) -> dict[str, Any]:
    return {"address": register.address, "street": register.street,
            "people": [p.view() for p in register.people], "custody_account": custody_account}
