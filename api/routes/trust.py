"""Who may act: API keys (issue, list, revoke), the registry of custodian banks, and the
consumer's own credential (a one-time code, then a consumer key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from api.context import Authed, context_of, limit_code_attempts, submit, write
from api.openapi import keyed_read, keyed_write, only_when, open_write
from api.paging import AfterName, Limit
from api.routes.custody import ONE_CONSUMER_REFERENCE, ConsumerIn, consumer_id_of
from api.schemas import (
    AccessRecordsPage,
    Banks,
    CodeSent,
    ConsumerKey,
    IssuedKey,
    KeysPage,
    RegisteredBank,
    Revocation,
)
from ledger import consumer, limits
from ledger.access import require_book_reader, require_district, require_operator
from ledger.auth import Role
from ledger.custody.cards import normalise_phone
from ledger.db import queries
from ledger.db.writer import WriteRequest
from ledger.errors import Busy, Unauthorized
from ledger.service import IssueKey
from ledger.trust_service import WRONG_CODE, RegisterBank, RequestCode, RevokeKey, VerifyCode

router = APIRouter(prefix="/v1")
KeyId = Annotated[int, Path(ge=1, le=2**63 - 1)]
keys_page_max = 1000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [
        only_when("role", "merchant", "merchant_id", {"type": "string"}),
        only_when("role", "bank", "bank_id", {"type": "string"}),
        {"if": {"properties": {"role": {"const": "regulator"}}, "required": ["role"]},
         "then": {"not": {"required": ["department", "street"]}},
         "else": {"properties": {"department": {"type": "null"},
                                 "street": {"type": "null"}}}}]})

    role: Literal["operator", "merchant", "bank", "regulator"]
    merchant_id: str | None = Field(default=None, max_length=limits.owner_chars_max)
    bank_id: str | None = Field(default=None, max_length=limits.owner_chars_max)
    label: str = Field(default="", max_length=limits.name_chars_max)
    department: str | None = Field(
        default=None, min_length=1, max_length=limits.name_chars_max,
        description="a regulator key only: the department (行业主管部门) whose merchants it "
                    "sees, e.g. 区文旅体局")
    street: str | None = Field(
        default=None, min_length=1, max_length=limits.name_chars_max,
        description="a regulator key only: the street or town (属地) whose merchants it "
                    "sees, e.g. 望京街道")
    expires_at: AwareDatetime | None = Field(
        default=None, description="when the key stops working (rotation: issue the new key, "
                                  "then revoke the old one); in the future")

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value


class AccessRecordsQuery(BaseModel):
    """The page of access records asked for, as query parameters: those after a record id,
    at most `limit`, of one key or one role."""

    after: int = Field(default=0, ge=0, le=2**63 - 1)
    limit: int = Field(default=100, ge=1, le=keys_page_max)
    key_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    role: Literal["bank", "regulator"] | None = None


class RevokeIn(Strict):
    reason: str = Field(default="", max_length=500)


class BankIn(Strict):
    id: str = Field(min_length=1, max_length=64,
                    json_schema_extra={"pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"})
    name: str = Field(min_length=1, max_length=limits.name_chars_max)
    code: str = Field(min_length=8, max_length=12, description="CNAPS code or SWIFT BIC",
                      json_schema_extra={"pattern": "^(?:[0-9]{12}|[A-Z]{6}[A-Z0-9]{2}"
                                                    "(?:[A-Z0-9]{3})?)$"})


class CodeIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_CONSUMER_REFERENCE)
    phone: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=64)


class ConsumerKeyIn(CodeIn):
    code: str = Field(min_length=1, max_length=12, json_schema_extra={
        "pattern": f"^[0-9]{{{consumer.code_digits}}}$"})
    label: str = Field(default="", max_length=limits.name_chars_max)


# -- keys ----------------------------------------------------------------------------------


@router.post("/keys", status_code=201, response_model=IssuedKey, **keyed_write())
async def issue_key(request: Request, body: KeyIn, who: Authed) -> JSONResponse:
    require_operator(who)
    command = IssueKey(Role(body.role), body.merchant_id, body.bank_id, body.label,
                       body.expires_at, body.department, body.street)
    return await write(request, who, command)


@router.get("/keys", response_model=KeysPage, **keyed_read())
def list_keys(request: Request, who: Authed,
              after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
              limit: Annotated[int, Query(ge=1, le=keys_page_max)] = 100,
              role: Literal["operator", "merchant", "bank", "regulator", "consumer"] | None
              = None) -> dict[str, Any]:
    """Every key with its scope, expiry and revocation: never its secret (operators and
    regulators, who read everything)."""
    require_district(who)
    with context_of(request).engine.connect() as conn:
        return queries.keys_page(conn, after, limit, role)


@router.post("/keys/{key_id}/revoke", response_model=Revocation, **keyed_write(404))
async def revoke_key(request: Request, key_id: KeyId, who: Authed,
                     body: RevokeIn | None = None) -> JSONResponse:
    """An operator revokes any key, a holder its own. Takes effect on the next request."""
    reason = body.reason if body is not None else ""
    answer = await write(request, who, RevokeKey(who, key_id, reason), 200)
    if answer.status_code == 200:
        context_of(request).keys.forget(key_id)
    return answer


@router.get("/access-records", response_model=AccessRecordsPage, **keyed_read())
def list_access_records(request: Request, who: Authed,
                        wanted: Annotated[AccessRecordsQuery, Query()]) -> dict[str, Any]:
    """Who read what: every read by a bank or regulator key (operators and regulators)."""
    require_district(who)
    with context_of(request).engine.connect() as conn:
        return queries.access_records_page(conn, wanted.after, wanted.limit, wanted.key_id,
                                           wanted.role)


# -- banks ----------------------------------------------------------------------------------


@router.post("/banks", status_code=201, response_model=RegisteredBank, **keyed_write())
async def register_bank(request: Request, body: BankIn, who: Authed) -> JSONResponse:
    require_operator(who)
    return await write(request, who, RegisterBank(body.id, body.name, body.code))


@router.get("/banks", response_model=Banks, **keyed_read())
def list_banks(request: Request, who: Authed, after: AfterName = "",
               limit: Limit = limits.list_page_items_default) -> dict[str, Any]:
    """The partner banks, a page by id."""
    require_book_reader(who)
    with context_of(request).engine.connect() as conn:
        return queries.banks(conn, queries.Page(after, limit))


# -- the consumer's own credential ------------------------------------------------------------


@router.post("/consumer/codes", status_code=202, response_model=CodeSent,
             **open_write())
async def request_code(request: Request, body: CodeIn) -> JSONResponse:
    """Send a one-time code to the phone (or external id) cards were sold to. Answers alike
    whether or not any card was sold to it, so it tells nobody who holds cards."""
    limit_code_attempts(request)
    ctx = context_of(request)
    consumer_id = consumer_id_of(request, ConsumerIn(phone=body.phone,
                                                     external_id=body.external_id), where="")
    code = consumer.new_code()
    secret_hash = consumer.code_hash(ctx.code_secret, consumer_id, code)
    outcome = await submit(request, WriteRequest(
        RequestCode(consumer_id, secret_hash, datetime.now(UTC)), 202,
        actor={"role": Role.consumer.value, "consumer_id": consumer_id}))
    if outcome.status_code == 202 and ctx.sender is not None:
        # A phone gets the code as a text message, to its number written plainly; an external
        # id (a school's or a platform's own account) through the gateway, which knows it.
        channel, to = ("phone", normalise_phone(body.phone, "phone")) if body.phone is not None \
            else ("external", body.external_id or "")
        try:
            await run_in_threadpool(ctx.sender.send, to, consumer.message_text(code), channel)
        except Exception as error:  # the code is stored but was not delivered: ask again
            raise Busy("the code could not be sent: ask again shortly") from error
    return JSONResponse(outcome.body, status_code=outcome.status_code)


@router.post("/consumer/keys", status_code=201, response_model=ConsumerKey,
             **open_write(401))
async def consumer_key(request: Request, body: ConsumerKeyIn) -> JSONResponse:
    """Trade a one-time code for a consumer key: it confirms, rejects, disputes and asks for
    refunds on every card sold to that phone, and nobody else can."""
    limit_code_attempts(request)
    ctx = context_of(request)
    consumer_id = consumer_id_of(request, ConsumerIn(phone=body.phone,
                                                     external_id=body.external_id), where="")
    code = consumer.check_code_format(body.code)
    command = VerifyCode(consumer_id, code, ctx.code_secret, datetime.now(UTC), body.label)
    outcome = await submit(request, WriteRequest(command, 201, actor={
        "role": Role.consumer.value, "consumer_id": consumer_id, "via": "one_time_code"}))
    if outcome.status_code == 201 and not outcome.body.get("verified", False):
        raise Unauthorized(WRONG_CODE, field="code")
    body_out = {k: v for k, v in outcome.body.items() if k != "verified"}
    return JSONResponse(body_out, status_code=outcome.status_code)
