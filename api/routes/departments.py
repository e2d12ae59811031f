"""The industry -> supervising-department maps per jurisdiction (行业主管部门), and the
district government's designation of a department for an industry (区政府指定)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.context import Authed, context_of, write
from api.department_schemas import DepartmentMaps, Designation, PublishedDepartmentMap
from api.openapi import NOT_BLANK, keyed_read, keyed_write
from api.paging import After, Limit
from ledger import limits
from ledger.access import require_operator, require_overseer
from ledger.custody.departments import (
    department_chars_max,
    department_map_industries_max,
    jurisdiction_chars_max,
    parse_department_map,
)
from ledger.custody.merchants import industry_chars_max
from ledger.db import department_queries
from ledger.db.queries import Page
from ledger.flows.departments import DesignateDepartment, PublishDepartmentMap

router = APIRouter(prefix="/v1")
reason_chars_max = 500


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DepartmentMapIn(Strict):
    jurisdiction: str = Field(min_length=1, max_length=jurisdiction_chars_max,
                              json_schema_extra=NOT_BLANK)
    departments: dict[Annotated[str, Field(min_length=1, max_length=industry_chars_max)],
                      Annotated[str, Field(min_length=1, max_length=department_chars_max,
                                           json_schema_extra=NOT_BLANK)]] = \
        Field(max_length=department_map_industries_max,
              description="industry -> supervising department, the whole map")
    pending_department: str = Field(
        min_length=1, max_length=department_chars_max, json_schema_extra=NOT_BLANK,
        description="where an industry the map does not name is filed, pending designation "
                    "(the market regulator, 区市监局)")
    reason: str = Field(default="", max_length=reason_chars_max)


class DesignationIn(Strict):
    jurisdiction: str = Field(min_length=1, max_length=jurisdiction_chars_max,
                              json_schema_extra=NOT_BLANK)
    industry: str = Field(min_length=1, max_length=industry_chars_max,
                          json_schema_extra=NOT_BLANK)
    department: str = Field(min_length=1, max_length=department_chars_max,
                            json_schema_extra=NOT_BLANK)
    reason: str = Field(min_length=1, max_length=department_chars_max,
                        json_schema_extra=NOT_BLANK,
                        description="the designation's ground, e.g. 区政府指定")


@router.get("/department-maps", response_model=DepartmentMaps, **keyed_read())
def list_department_maps(request: Request, who: Authed, after: After = 0,
                         limit: Limit = limits.list_page_items_default,
                         jurisdiction: Annotated[str | None, Query(
                             min_length=1, max_length=jurisdiction_chars_max)] = None
                         ) -> dict[str, Any]:
    """Every version of the department maps (or one jurisdiction's), in the order they were
    made; `after` is the `created_seq` of the last one seen. The operator and regulators."""
    require_overseer(who)
    with context_of(request).engine.connect() as conn:
        return department_queries.department_maps(conn, Page(after, limit), jurisdiction)


@router.post("/department-maps", status_code=201, response_model=PublishedDepartmentMap,
             **keyed_write())
async def publish_department_map(request: Request, body: DepartmentMapIn, who: Authed
                                 ) -> JSONResponse:
    """A new version of a jurisdiction's map (the operator). Merchants filed keep their
    department; filings from now on follow the new version."""
    require_operator(who)  # before the input is read: others learn nothing of it
    department_map = parse_department_map(body.model_dump())
    return await write(request, who, PublishDepartmentMap(who, department_map, body.reason))


@router.post("/industries/designations", status_code=201, response_model=Designation,
             **keyed_write(404))
async def designate_department(request: Request, body: DesignationIn, who: Authed
                               ) -> JSONResponse:
    """The district government's designation of the department that supervises an industry
    (the operator records it): a new map version, and every merchant of the jurisdiction and
    industry still pending moves to that department, in one transaction."""
    require_operator(who)
    return await write(request, who, DesignateDepartment(
        who, body.jurisdiction, body.industry, body.department, body.reason))
