"""The regulators' dashboard: its page (/dashboard), its files, and the two read-only JSON
routes its panels need beyond the rest of the API: merchants by tier with their reasons
(GET /v1/tiers) and a merchant's tier history (GET /v1/merchants/{id}/tier-changes).

The page and its files need no key: they hold no data. Every figure on the page comes from
the JSON API, read with the regulator's key (api/dashboard/__init__.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api import dashboard
from api.context import Authed, context_of
from api.dashboard_schemas import TierChanges, TieredMerchants
from api.openapi import keyed_read
from api.paging import After, AfterName, Limit
from ledger import limits
from ledger.custody.merchants import Tier
from ledger.db import dashboard_queries as views
from ledger.db.queries import Page
from ledger.errors import NotFound

router = APIRouter(include_in_schema=False)  # the page and its files: not JSON, not the API's
api_router = APIRouter(prefix="/v1")
Lang = Annotated[Literal["zh", "en"], Query(description="the page's language")]
MerchantId = Annotated[str, Path(min_length=1, max_length=64)]
_PAGE_HEADERS = {"Content-Security-Policy": dashboard.PAGE_CSP, "Cache-Control": "no-store",
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_FILE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


@router.get("/dashboard")
def page(lang: Lang = "zh") -> HTMLResponse:
    return HTMLResponse(dashboard.page(lang), headers=_PAGE_HEADERS)


@router.get("/dashboard/static/{name:path}")
def static_file(name: str) -> Response:
    found = dashboard.static_files().get(name)
    if found is None:
        raise NotFound(f"no dashboard file {name}", field="path")
    content, media_type = found
    return Response(content, media_type=media_type, headers=_FILE_HEADERS)


@router.get("/dashboard/strings/{lang}.json")
def strings(lang: Literal["zh", "en"]) -> JSONResponse:
    return JSONResponse(dashboard.strings(lang), headers=_FILE_HEADERS)


@router.get("/dashboard/vendor/chart.js")
def chart_library() -> Response:
    return Response(dashboard.chart_library(), media_type="text/javascript; charset=utf-8",
                    headers=_FILE_HEADERS)


@api_router.get("/tiers", response_model=TieredMerchants, **keyed_read())
def tiers(request: Request, who: Authed, tier: Tier | None = None, after: AfterName = "",
          limit: Limit = limits.list_page_items_default) -> dict[str, Any]:
    """Merchants by id (of one tier if `tier` is given), each with its tier (红黄蓝) and the
    reasons of its last tier change as journaled; `by_tier` counts every merchant. Operator
    and regulators."""
    with context_of(request).engine.connect() as conn:
        return views.tiers(conn, who, tier, Page(after, limit))


@api_router.get("/merchants/{merchant_id}/tier-changes", response_model=TierChanges,
                **keyed_read(404))
def tier_changes(request: Request, merchant_id: MerchantId, who: Authed, after: After = 0,
                 limit: Limit = limits.list_page_items_default) -> dict[str, Any]:
    """The merchant's tier changes, oldest first, a page by journal sequence number.
    Operator and regulators."""
    with context_of(request).engine.connect() as conn:
        return views.tier_changes(conn, who, merchant_id, Page(after, limit))
