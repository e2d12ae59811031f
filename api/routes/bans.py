"""Bans and the blacklist (黑名单): listing and lifting, the listing and its CSV export, and a
premises with its churn flag."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

from api.ban_schemas import BanIn, BanOut, Bans, Lifted, LiftIn, Listed, Premises
from api.context import Authed, context_of, write
from api.openapi import Responses, keyed_read, keyed_write
from api.paging import After, PageQuery
from ledger.access import require_district
from ledger.db import ban_queries as views
from ledger.errors import InvalidInput
from ledger.flows.bans import LiftBan, ListBan
from ledger.supervision.bans import BanDraft, BanKind
from ledger.supervision.register import address_chars_max, person_pseudonym, premises_of

router = APIRouter(prefix="/v1")
BanId = Annotated[int, Path(ge=1, le=2**63 - 1)]
CSV: Responses = {200: {"description": "The blacklist: one row per ban, with a header row; "
                                       "pseudonyms and premises only, no identity number. "
                                       "`X-Next-After`, when present, is where the next "
                                       "export starts.",
                        "content": {"text/csv": {"schema": {"type": "string"}}}}}


class BanFilter(PageQuery):
    kind: Literal["person", "premises"] | None = None
    active: bool | None = None
    merchant_id: str | None = None


@router.post("/bans", status_code=201, response_model=Listed, **keyed_write(404))
async def list_ban(request: Request, body: BanIn, who: Authed) -> JSONResponse:
    """List a person or a premises (列入黑名单): the operator or a district regulator."""
    require_district(who)  # before the input is read: others learn nothing of it
    kind = BanKind(body.kind)
    today = context_of(request).clock()
    draft = BanDraft(kind, _subject(request, kind, body), body.reason, body.source,
                     body.starts_on or today, body.ends_on, body.merchant_id)
    command = ListBan(who, draft, today)
    return await write(request, who, command)


def _subject(request: Request, kind: BanKind, body: BanIn) -> str:
    if kind is BanKind.premises:
        if body.address is None or body.id_number is not None or body.person_id is not None:
            raise InvalidInput("a premises is named by its address alone", field="address")
        return premises_of(body.address)
    if body.address is not None or (body.id_number is None) == (body.person_id is None):
        raise InvalidInput("a person is named by one of id_number and person_id",
                           field="id_number")
    if body.id_number is not None:
        return person_pseudonym(context_of(request).pseudonym_key, body.id_number, "id_number")
    return str(body.person_id)


@router.post("/bans/{ban_id}/lift", response_model=Lifted, **keyed_write(404))
async def lift_ban(request: Request, ban_id: BanId, body: LiftIn, who: Authed) -> JSONResponse:
    """Lift a ban (解除), with a reason: the operator or a district regulator."""
    require_district(who)
    return await write(request, who, LiftBan(who, ban_id, body.reason,
                                             context_of(request).clock()), 200)


@router.get("/bans", response_model=Bans, **keyed_read())
def bans(request: Request, who: Authed, q: Annotated[BanFilter, Depends()]) -> dict[str, Any]:
    """The blacklist, by id; `active`: in force today. The operator and regulators."""
    ctx = context_of(request)
    with ctx.engine.connect() as conn:
        return views.bans(conn, who, q.page(), views.BanFilter(
            ctx.clock(), None if q.kind is None else BanKind(q.kind), q.active, q.merchant_id))


@router.get("/bans.csv", response_class=Response, **keyed_read(responses=CSV))
def bans_csv(request: Request, who: Authed, after: After = 0,
             kind: Literal["person", "premises"] | None = None,
             active: bool | None = None) -> Response:
    """The blacklist for export: pseudonyms only, never an identity number."""
    ctx = context_of(request)
    with ctx.engine.connect() as conn:
        rows, more = views.ban_csv_rows(conn, who, after, views.BanFilter(
            ctx.clock(), None if kind is None else BanKind(kind), active))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(views.CSV_COLUMNS)
    writer.writerows(rows)
    headers = {"Content-Disposition": 'attachment; filename="bans.csv"'}
    if more is not None:
        headers["X-Next-After"] = str(more)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/bans/{ban_id}", response_model=BanOut, **keyed_read(404))
def ban(request: Request, ban_id: BanId, who: Authed) -> dict[str, Any]:
    ctx = context_of(request)
    with ctx.engine.connect() as conn:
        return views.ban(conn, who, ban_id, ctx.clock())


@router.get("/premises/{premises}", response_model=Premises, **keyed_read(404))
def premises(request: Request, who: Authed,
             premises: Annotated[str, Path(min_length=1, max_length=address_chars_max)]
             ) -> dict[str, Any]:
    """A premises (the address as written, normalised here): its churn flag, the merchants
    that passed through it, its bans."""
    ctx = context_of(request)
    with ctx.engine.connect() as conn:
        return views.premises(conn, who, premises, ctx.clock())
