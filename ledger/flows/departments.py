"""The industry -> department maps as versioned data (行业主管部门), and the district
government's designation of a department for an industry nobody supervised (区政府指定)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.access import require_operator
from ledger.auth import LOCAL_OPERATOR, Principal
from ledger.commands import Books, Command
from ledger.custody.departments import (
    DepartmentMap,
    department_chars_max,
    designation_merchants_max,
    jurisdiction_chars_max,
    name,
)
from ledger.custody.merchants import industry_chars_max
from ledger.errors import Conflict, NotFound
from ledger.service import storable


def _created_by(principal: Principal) -> int | None:
    """The key that made a version; none for the machine's own operator (first start, CLI),
    whose key id 0 is never issued: the entry's actor names who that was."""
    return None if principal.key_id == LOCAL_OPERATOR.key_id else principal.key_id




@dataclass(frozen=True)
class PublishDepartmentMap(Command):
    """A new version of a jurisdiction's map: the shipped one at first start, or an
    operator's. Merchants already filed keep their department; filings from now on follow
    this version."""

    principal: Principal
    department_map: DepartmentMap
    reason: str = ""

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        reason = storable(self.reason, "reason")
        latest = books.custody.latest_department_map(self.department_map.jurisdiction)
        version = 1 if latest is None else latest[0] + 1
        entry = books.append("department_map.published", {
            **self.department_map.journaled(), "version": version, "reason": reason})
        books.custody.add_department_map(version, self.department_map, reason, entry.seq,
                                         _created_by(self.principal))
        return {**self.department_map.as_dict(), "version": version, "reason": reason,
                "created_seq": entry.seq, "created_key_id": _created_by(self.principal),
                "journal_seq": entry.seq}


@dataclass(frozen=True)
class DesignateDepartment(Command):
    """The district government designates the department that supervises an industry
    (区政府指定): a new version of the jurisdiction's map with it, and every merchant of
    that jurisdiction and industry still pending moves to it, each move journaled naming
    the designation. All in one transaction."""

    principal: Principal
    jurisdiction: str
    industry: str
    department: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "jurisdiction",
                           name(self.jurisdiction, "jurisdiction", jurisdiction_chars_max))
        object.__setattr__(self, "industry", name(self.industry, "industry",
                                                  industry_chars_max))
        object.__setattr__(self, "department",
                           name(self.department, "department", department_chars_max))
        object.__setattr__(self, "reason", name(self.reason, "reason", department_chars_max))
        storable(self.reason, "reason")

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        # Queries first: the latest map, and the merchants waiting for this designation.
        latest = books.custody.latest_department_map(self.jurisdiction)
        if latest is None:
            raise NotFound(f"jurisdiction {self.jurisdiction} has no department map "
                           "(POST /v1/department-maps)", field="jurisdiction")
        pending = books.custody.pending_merchants(self.jurisdiction, self.industry,
                                                  designation_merchants_max + 1)
        if len(pending) > designation_merchants_max:
            raise Conflict(f"more than {designation_merchants_max} merchants wait for this "
                           "designation: too many for one transaction", field="industry")
        version, current = latest
        if current.departments.get(self.industry) == self.department:
            raise Conflict(f"{self.industry} is already supervised by {self.department} "
                           f"(version {version})", field="department")
        designated = current.designating(self.industry, self.department)
        view = {"jurisdiction": self.jurisdiction, "industry": self.industry,
                "department": self.department, "reason": self.reason,
                "version": version + 1, "merchants": pending}
        entry = books.append("department.designated", view)
        books.custody.add_department_map(version + 1, designated, self.reason, entry.seq,
                                         _created_by(self.principal))
        for merchant_id in pending:
            m = books.custody.merchant(merchant_id)
            books.append("merchant.department_changed", {
                "merchant_id": m.id, "department": self.department,
                "previous_department": m.department, "department_pending": False,
                "designation_seq": entry.seq, "reason": self.reason})
            books.custody.set_department(m.id, self.department)
        return {**view, "journal_seq": entry.seq}
