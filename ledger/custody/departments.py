"""Which department supervises which industry (行业主管部门), per jurisdiction: data, not code.

Each jurisdiction's map ships as a JSON file (ledger/custody/department_maps/*.json: Beijing
from seed 000's list, Tianjin from seed 002's division of duties), is written as version 1 at
the service's first start, and changes only by a new version, journaled (an operator's
`POST /v1/department-maps`, or the district government's designation of one industry). An
industry the map does not name is filed to the jurisdiction's pending department (the market
regulator, 区市监局) with `department_pending`, until a designation moves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ledger.custody.merchants import industry_chars_max
from ledger.errors import InvalidInput
from ledger.limits import name_chars_max

# Names as filing takes them (a jurisdiction is as short as an industry there).
jurisdiction_chars_max: Final = industry_chars_max
department_chars_max: Final = name_chars_max
# Seed 000 names 49 industries; room for a district's own split, and a bound on the row.
department_map_industries_max: Final = 500
# A designation moves every pending merchant of its industry in one transaction.
designation_merchants_max: Final = 10_000


@dataclass(frozen=True, slots=True)
class DepartmentMap:
    """One jurisdiction's map: industry -> department, and where the unmapped go."""

    jurisdiction: str
    departments: Mapping[str, str]
    pending_department: str

    def department_for(self, industry: str) -> tuple[str, bool]:
        """The supervising department, and whether it is only pending designation."""
        department = self.departments.get(industry.strip())
        if department is None:
            return self.pending_department, True
        return department, False

    def designating(self, industry: str, department: str) -> DepartmentMap:
        """The map with `industry` supervised by `department` (the district's designation)."""
        return DepartmentMap(self.jurisdiction, {**self.departments, industry: department},
                             self.pending_department)

    def as_dict(self) -> dict[str, Any]:
        """As the API shows it: `departments` an object of industry -> department."""
        return {"jurisdiction": self.jurisdiction,
                "departments": dict(sorted(self.departments.items())),
                "pending_department": self.pending_department}

    def journaled(self) -> dict[str, Any]:
        """As the journal holds it: an entry's object keys are ASCII (docs/journal-format.md),
        so `departments` is a list of {industry, department}, sorted by industry."""
        return {"jurisdiction": self.jurisdiction,
                "departments": [{"industry": industry, "department": department}
                                for industry, department in sorted(self.departments.items())],
                "pending_department": self.pending_department}


def name(value: Any, field: str, chars_max: int) -> str:
    """A jurisdiction's, industry's or department's name: text, trimmed, not empty."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("is required: a name", field=field)
    if len(value.strip()) > chars_max:
        raise InvalidInput(f"must be at most {chars_max} characters", field=field)
    return value.strip()


def parse_department_map(raw: Mapping[str, Any]) -> DepartmentMap:
    """A map as the API takes it and the table stores it: `departments` is an object of
    industry -> department."""
    jurisdiction = name(raw.get("jurisdiction"), "jurisdiction", jurisdiction_chars_max)
    pending = name(raw.get("pending_department"), "pending_department", department_chars_max)
    given = raw.get("departments")
    if not isinstance(given, Mapping):
        raise InvalidInput("must be an object of industry -> department", field="departments")
    if len(given) > department_map_industries_max:
        raise InvalidInput(f"at most {department_map_industries_max} industries",
                           field="departments")
    departments: dict[str, str] = {}
    for industry, department in given.items():
        key = name(industry, "departments", industry_chars_max)
        if key in departments:
            raise InvalidInput(f"industry {key} is named twice", field=f"departments.{key}")
        departments[key] = name(department, f"departments.{key}", department_chars_max)
    return DepartmentMap(jurisdiction, departments, pending)


def parse_shipped_map(raw: Mapping[str, Any]) -> DepartmentMap:
    """A shipped file's map: `departments` lists each department's industries, as the seeds
    do (`{"区商务局": ["餐饮", "美容美发", ...]}`); an industry under two departments is an
    error in the file."""
    grouped = raw.get("departments")
    if not isinstance(grouped, Mapping):
        raise InvalidInput("must be an object of department -> industries",
                           field="departments")
    flat: dict[str, str] = {}
    for department, industries in grouped.items():
        if not isinstance(industries, list):
            raise InvalidInput("must list industries", field=f"departments.{department}")
        for industry in industries:
            if industry in flat:
                raise InvalidInput(f"industry {industry} is under {flat[industry]} and "
                                   f"{department}", field=f"departments.{department}")
            flat[industry] = department
    return parse_department_map({**raw, "departments": flat})
