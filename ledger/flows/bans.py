"""Bans and the blacklist (黑名单, 市场禁入): listing and lifting a ban, the screens filing,
amendments and sales run, the churn of operators at a premises, and the automatic listing of
a run-away merchant's people (ledger/supervision/bans.py holds the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from ledger.access import require_district
from ledger.auth import Principal
from ledger.commands import Books, Command
from ledger.errors import Conflict, NotFound
from ledger.supervision.bans import (
    RUN_AWAY_SOURCE,
    Arrival,
    BanDraft,
    BanKind,
    Screened,
    check_dates,
    check_no_overlap,
    check_screen,
    check_subject,
    check_text,
    churn,
    churn_rule,
    reason_chars_max,
    source_chars_max,
)
from ledger.supervision.register import Person, legal_representative


@dataclass(frozen=True)
class ListBan(Command):
    """List a person or a premises (列入黑名单): the operator or a district regulator."""

    principal: Principal
    draft: BanDraft  # its subject a pseudonym, or a premises already normalised
    today: date

    def run(self, books: Books) -> dict[str, Any]:
        require_district(self.principal)
        d = self.draft
        field = "id_number" if d.kind is BanKind.person else "address"
        check_dates(d.starts_on, d.ends_on)
        if d.merchant_id is not None:
            books.custody.merchant(d.merchant_id)  # NotFound if there is none
        draft = replace(d, subject=check_subject(d.kind, d.subject, field),
                        reason=check_text(d.reason, "reason", reason_chars_max),
                        source=check_text(d.source, "source", source_chars_max))
        return list_ban(books, self.principal, draft, self.today)


def list_ban(books: Books, principal: Principal, draft: BanDraft, today: date
             ) -> dict[str, Any]:
    key = (draft.kind, draft.subject)
    check_no_overlap(books.bans.bans_of([key]).get(key, ()), draft.starts_on, draft.ends_on)
    view = {"kind": draft.kind.value, "subject": draft.subject, "reason": draft.reason,
            "source": draft.source, "starts_on": draft.starts_on.isoformat(),
            "ends_on": None if draft.ends_on is None else draft.ends_on.isoformat(),
            "merchant_id": draft.merchant_id}
    entry = books.append("ban.listed", view)
    ban = draft.listed(entry.seq)
    books.bans.add_ban(ban, principal.key_id, draft.merchant_id)
    return {"id": entry.seq, **view, "active": ban.in_force(today), "journal_seq": entry.seq}


@dataclass(frozen=True)
class LiftBan(Command):
    """Lift a ban (解除): its own act, with a reason; the operator or a district regulator."""

    principal: Principal
    ban_id: int
    reason: str
    today: date

    def run(self, books: Books) -> dict[str, Any]:
        require_district(self.principal)
        reason = check_text(self.reason, "reason", reason_chars_max)
        ban = books.bans.ban(self.ban_id)
        if ban is None:
            raise NotFound(f"ban {self.ban_id} does not exist", field="ban_id")
        held = books.bans.bans_of([(ban.kind, ban.subject)]).get((ban.kind, ban.subject), ())
        if all(b.id != ban.id for b in held):
            raise Conflict(f"ban {ban.id} is lifted already", field="ban_id")
        view = {"ban_id": ban.id, "kind": ban.kind.value, "subject": ban.subject,
                "reason": reason, "lifted_on": self.today.isoformat()}
        entry = books.append("ban.lifted", view)
        books.bans.lift_ban(ban, reason, self.today, entry.seq, self.principal.key_id)
        return {**view, "journal_seq": entry.seq}


# -- screens ---------------------------------------------------------------------------

def screen(books: Books, what: Screened, day: date, acting: str) -> None:
    """Refuse (`Banned`) if a ban in force on `day` hits what the write names."""
    if what.subjects:
        check_screen(what, books.bans.bans_of(what.keys), day, acting)


# -- premises churn --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PremisesWatch:
    """What a filing or amendment read of a premises before it wrote: its recent arrivals,
    and whether it is flagged already (queries: first)."""

    premises: str
    jurisdiction: str
    today: date
    arrivals: tuple[Arrival, ...]
    flagged: bool


def watch(books: Books, premises: str | None, jurisdiction: str, today: date
          ) -> PremisesWatch | None:
    if not premises:
        return None
    since = today - timedelta(days=churn_rule(jurisdiction).window_days)
    return PremisesWatch(premises, jurisdiction, today,
                         tuple(books.bans.arrivals(premises, since)),
                         books.bans.flagged(premises))


def arrive(books: Books, watched: PremisesWatch, merchant_id: str, people: Sequence[Person],
           seq: int) -> dict[str, Any] | None:
    """A merchant arrives at the watched premises (entry `seq`); the premises is flagged
    (`premises.flagged`) when the arrivals meet the rule. The flag, if raised."""
    arrival = Arrival(merchant_id, legal_representative(people), watched.today)
    books.bans.add_arrival(watched.premises, arrival, seq)
    if watched.flagged:
        return None
    rule = churn_rule(watched.jurisdiction)
    found = churn((*watched.arrivals, arrival), rule, watched.today)
    if found is None:
        return None
    view = {"premises": watched.premises, "flagged_on": watched.today.isoformat(),
            "rule": rule.view(), **found.view()}
    entry = books.append("premises.flagged", view)
    books.bans.add_flag(watched.premises, watched.today, entry.seq)
    return {**view, "journal_seq": entry.seq}


# -- a merchant that ran away ----------------------------------------------------------

def list_run_away(books: Books, principal: Principal, merchant_id: str, today: date
                  ) -> list[int]:
    """Its legal representative and officers, listed with the platform as source and the
    merchant named (卷款跑路、查无下落的...高级管理人员，纳入黑名单管理); one already banned
    over today is left as listed. The bans listed, by id."""
    people = books.custody.register(merchant_id).people
    listed = []
    for person in people:
        subject = (BanKind.person, person.person_id)
        if any(b.overlaps(today, None) for b in books.bans.bans_of([subject]).get(subject, ())):
            continue
        ban = list_ban(books, principal, BanDraft(
            BanKind.person, person.person_id,
            f"关门跑路: {person.role.value} of merchant {merchant_id}", RUN_AWAY_SOURCE, today,
            None, merchant_id), today)
        listed.append(int(ban["id"]))
    return listed
