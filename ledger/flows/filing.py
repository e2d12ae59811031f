"""Filing (备案) and the operator's hold on a merchant: rule sets, filing, freeze, tier."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ledger.access import require_operator
from ledger.auth import Principal
from ledger.commands import Books, Command, IdKind, NewAccount
from ledger.custody.chart import BANK_HELD, CHART
from ledger.custody.lifecycle import check_not_ending
from ledger.custody.merchants import Filing, MerchantStatus, Tier
from ledger.custody.rules import parse_rule_set
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.flows.bans import arrive, screen, watch
from ledger.flows.releases import fail_release
from ledger.supervision.bans import screened


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass(frozen=True)
class CreateRuleSet(Command):
    principal: Principal
    jurisdiction: str
    industry: str
    rules: Mapping[str, Any]

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        version, previous = books.custody.next_rule_version(self.jurisdiction, self.industry)
        base = parse_rule_set(previous) if previous is not None else None
        rules = parse_rule_set(self.rules, base).as_dict()
        view = {"id": books.draw_id(IdKind.rule_set), "jurisdiction": self.jurisdiction,
                "industry": self.industry, "version": version, "rules": rules}
        entry = books.append("rule_set.created", view)
        books.custody.add_rule_set({**view, "created_seq": entry.seq}, parse_rule_set(rules))
        return {**view, "journal_seq": entry.seq}


@dataclass(frozen=True)
class FileMerchant(Command):
    principal: Principal
    filing: Filing
    # The day bans are screened on and the premises is arrived at.
    today: date = field(default_factory=date.today)
    # The people's pseudonyms as the request sent them: a ban's hit names its field.
    people_order: tuple[str, ...] = ()

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        f = self.filing
        screen(books, screened(f.people, f.premises, self.people_order), self.today,
               "filing refused")
        watched = watch(books, f.premises, f.jurisdiction, self.today)  # queries: first
        if not books.trust.bank_registered(f.bank_id):
            raise InvalidInput(f"bank {f.bank_id} is not registered (POST /v1/banks)",
                               field="bank_id")
        department_map = books.custody.latest_department_map(f.jurisdiction)
        if department_map is None:  # as for a jurisdiction with no rule set
            raise NotFound(f"jurisdiction {f.jurisdiction} has no department map "
                           "(POST /v1/department-maps)", field="jurisdiction")
        map_version, departments = department_map
        department, pending = departments.department_for(f.industry)
        taken = books.custody.credit_code_taken(f.credit_code)
        if taken is not None:
            raise Conflict(f"credit code already filed as merchant {taken}", field="credit_code")
        holder = books.custody.custody_account_holder(f.bank_id, f.custody_account)
        if holder is not None:
            # Statements name the account only: two merchants on it would get each other's.
            raise Conflict(f"custody account {f.custody_account} at bank {f.bank_id} is "
                           f"already held by merchant {holder}", field="custody_account")
        rule_set_id, _ = books.custody.latest_rule_set(f.jurisdiction, f.industry)
        merchant_id = new_id("m")
        accounts = {purpose: books.open_account(NewAccount(
            kind, f"{f.name} {purpose}", merchant_id, f.bank_id if purpose in BANK_HELD else None))
            for purpose, kind in CHART.items()}
        view = {"id": merchant_id, "name": f.name, "credit_code": f.credit_code,
                "industry": f.industry, "department": department,
                "department_pending": pending, "department_map_version": map_version,
                "jurisdiction": f.jurisdiction,
                "bank_id": f.bank_id, "custody_account": f.custody_account,
                "rule_set_id": rule_set_id, "status": MerchantStatus.active.value,
                "tier": Tier.blue.value, "street": f.street, "address": f.address,
                "premises": f.premises, "people": [p.view() for p in f.people],
                "accounts": accounts}
        entry = books.append("merchant.filed", view)
        row = {k: v for k, v in view.items() if k not in ("accounts", "department_map_version")}
        books.custody.add_merchant({**row, "hard_blocks": {"blocks": []}, "complaint_count": 0,
                                    "filed_seq": entry.seq}, accounts)
        flag = None if watched is None else arrive(books, watched, merchant_id, f.people,
                                                   entry.seq)
        return {**view, "journal_seq": entry.seq, "premises_flag": flag}


@dataclass(frozen=True)
class FreezeMerchant(Command):
    """Sales, consumption and releases stop at once; pending releases are voided."""

    principal: Principal
    merchant_id: str
    reason: str

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        pending = books.custody.pending_releases(self.merchant_id)  # a query: first
        linked = {r: books.custody.consumptions_of_release(r) for r in pending}
        m = books.custody.merchant(self.merchant_id)
        check_not_ending(m)
        if m.status == MerchantStatus.frozen:
            raise Conflict("the merchant is already frozen", field="merchant_id")
        for release_id in pending:
            fail_release(books, m, books.custody.release(release_id), "merchant frozen",
                         linked[release_id])
        entry = books.append("merchant.frozen", {"merchant_id": m.id, "reason": self.reason,
                                                 "voided_releases": pending})
        books.custody.set_merchant_status(m.id, MerchantStatus.frozen)
        return {"merchant_id": m.id, "status": MerchantStatus.frozen.value,
                "journal_seq": entry.seq, "voided_releases": pending}


@dataclass(frozen=True)
class UnfreezeMerchant(Command):
    principal: Principal
    merchant_id: str
    reason: str

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        m = books.custody.merchant(self.merchant_id)
        check_not_ending(m)
        if m.status == MerchantStatus.active:
            raise Conflict("the merchant is already active", field="merchant_id")
        entry = books.append("merchant.unfrozen", {"merchant_id": m.id, "reason": self.reason,
                                                   "voided_releases": []})
        books.custody.set_merchant_status(m.id, MerchantStatus.active)
        return {"merchant_id": m.id, "status": MerchantStatus.active.value,
                "journal_seq": entry.seq, "voided_releases": []}


@dataclass(frozen=True)
class SetTier(Command):
    principal: Principal
    merchant_id: str
    tier: Tier
    reasons: Sequence[str]
    hard_blocks: Sequence[str]

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        m = books.custody.merchant(self.merchant_id)
        view = {"merchant_id": m.id, "tier": self.tier.value, "previous_tier": m.tier.value,
                "reasons": list(self.reasons), "hard_blocks": sorted(self.hard_blocks)}
        entry = books.append("merchant.tier_changed", view)
        books.custody.set_tier(m.id, self.tier, self.hard_blocks)
        return {**view, "journal_seq": entry.seq}
