"""What the department-map endpoints answer (api/routes/departments.py): see api/schemas.py."""

from __future__ import annotations

from pydantic import Field

from api.schemas import NextAfter, Out, Seq


class DepartmentMap(Out):
    jurisdiction: str
    version: int
    departments: dict[str, str] = Field(description="industry -> supervising department "
                                                    "(行业主管部门)")
    pending_department: str = Field(description="where an industry the map does not name is "
                                                "filed, pending designation")
    reason: str
    created_seq: Seq
    created_key_id: int | None = Field(description="the operator key that made this version; "
                                                   "null for the shipped map at first start")


class DepartmentMaps(Out):
    items: list[DepartmentMap]
    next_after: NextAfter


class PublishedDepartmentMap(DepartmentMap):
    journal_seq: Seq


class Designation(Out):
    jurisdiction: str
    industry: str
    department: str
    reason: str
    version: int = Field(description="the map's version that names the designation")
    merchants: list[str] = Field(description="the merchants moved from the pending department "
                                             "to this one, each journaled "
                                             "merchant.department_changed")
    journal_seq: Seq
