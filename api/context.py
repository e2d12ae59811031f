"""What the routes share: the engine, the appender, and authentication."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from api.keycache import KeyCache
from api.messages import MessageSender
from api.ratelimit import Limiter, retry_after_header_s
from ledger import limits
from ledger.auth import Principal
from ledger.bank.profile import BankProfile
from ledger.commands import Command
from ledger.db.outage import silent
from ledger.db.writer import Outcome, Writer, WriteRequest, request_fingerprint
from ledger.errors import InvalidInput, RateLimited, Unauthorized
from ledger.flows.imports import import_slice_lines_max, import_slice_lines_min

CHINA_STANDARD_TIME = timezone(timedelta(hours=8))


def china_today() -> date:
    """Business dates (cooling-off, releases) are Beijing dates; China keeps no summer time."""
    return datetime.now(CHINA_STANDARD_TIME).date()


@dataclass
class Context:
    engine: Engine
    writer: Writer
    pseudonym_key: bytes = b"yufu-development-pseudonym-key"
    clock: Callable[[], date] = china_today
    sender: MessageSender | None = None
    # One-time-code requests and attempts per client address (None: no limit).
    code_attempts: Limiter | None = None
    # Public merchant lookups per client address (None: no limit).
    lookups: Limiter | None = None
    # Statement lines an import's slice applies, the least and the most (ledger/flows/
    # imports.py, `SliceSizes`): tests make them small.
    import_slice_lines_min: int = import_slice_lines_min
    import_slice_lines_max: int = import_slice_lines_max
    # The bank profiles by name (api/profiles.py), read once at start.
    bank_profiles: Mapping[str, BankProfile] = field(default_factory=dict)
    keys: KeyCache = field(init=False)

    def __post_init__(self) -> None:
        self.keys = KeyCache(self.engine)

    @property
    def code_secret(self) -> bytes:
        """The key of the one-time codes' hashes: derived, so it is never the pseudonyms'."""
        return hmac.new(self.pseudonym_key, b"yufu one-time codes", hashlib.sha256).digest()


def context_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


# Where the authenticated principal is left in the ASGI scope: the access log (api/edge.py)
# and the records of reads read its key id and role there, after the answer.
PRINCIPAL_SCOPE_KEY = "yufu.principal"


def presented_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    presented = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return presented or request.headers.get("x-api-key", "")


async def principal_of(request: Request) -> Principal:
    # async, so the usual case (a cached key) costs no hop to the thread pool.
    presented = presented_key(request)
    if not presented:
        raise Unauthorized("an API key is required (Authorization: Bearer <key>)")
    keys = context_of(request).keys
    principal = keys.cached(presented)
    if principal is None:
        principal = await run_in_threadpool(keys.authenticate, presented)
    request.scope[PRINCIPAL_SCOPE_KEY] = principal
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """The caller's key if one is presented (a consumer's card look-up also takes a receipt
    code instead)."""
    return await principal_of(request) if presented_key(request) else None


# How a key is presented, as the OpenAPI document declares it (api/openapi.py). They only
# document: auto_error=False, and the routes' dependencies below ignore what they return, so
# authentication and its 401 problem stay principal_of's, exactly as the lane (api/lane.py),
# which calls principal_of itself, answers them.
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="bearer", bearerFormat="yufu_<prefix>_<secret>",
    description="An API key: `Authorization: Bearer yufu_<16 hex prefix>_<secret>`.")
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey",
    description="The same API key in a header of its own, for clients that cannot set "
                "Authorization. A Bearer key, if both are sent, is the one used.")
receipt_code_scheme = APIKeyHeader(
    name="X-Receipt-Code", auto_error=False, scheme_name="receiptCode",
    description="The receipt code a card's sale answered: reads that card and its receipt, "
                "acts for nobody.")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
ApiKeyHeader = Annotated[str | None, Depends(api_key_scheme)]
# A receipt code is a random token of 32 characters; a longer one is refused as input.
receipt_code_chars_max = 100


async def keyed(request: Request, _bearer: Bearer, _header: ApiKeyHeader) -> Principal:
    """principal_of as the routes' dependency: an API key is required."""
    return await principal_of(request)


async def maybe_keyed(request: Request, _bearer: Bearer, _header: ApiKeyHeader
                      ) -> Principal | None:
    """optional_principal as the routes' dependency: a key, if one is presented."""
    return await optional_principal(request)


async def receipt_code_of(code: Annotated[str | None, Depends(receipt_code_scheme)]
                          ) -> str | None:
    if code is not None and len(code) > receipt_code_chars_max:
        raise InvalidInput(f"must be at most {receipt_code_chars_max} characters",
                           field="X-Receipt-Code")
    return code


# What the routes take: a principal that presented a key; a key or nothing (the card reads,
# which take a receipt code instead); the receipt code.
Authed = Annotated[Principal, Depends(keyed)]
MaybeAuthed = Annotated[Principal | None, Depends(maybe_keyed)]
ReceiptCode = Annotated[str | None, Depends(receipt_code_of)]


def limit_code_attempts(request: Request) -> None:
    """One-time-code requests and attempts per client address (api/ratelimit.py)."""
    _per_address(request, context_of(request).code_attempts, "one-time-code requests")


def limit_lookups(request: Request) -> None:
    """Public merchant lookups per client address (api/ratelimit.py)."""
    _per_address(request, context_of(request).lookups, "merchant lookups")


def _per_address(request: Request, limiter: Limiter | None, what: str) -> None:
    address = request.client.host if request.client is not None else ""
    wait_s = limiter.hit(address) if limiter is not None else None
    if wait_s is not None:
        raise RateLimited(f"too many {what} from this address",
                          retry_after_s=retry_after_header_s(wait_s))


def idempotency_key_of(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > limits.idempotency_key_chars_max or not key.isprintable():
        raise InvalidInput(f"must be 1 to {limits.idempotency_key_chars_max} printable characters",
                           field="Idempotency-Key")
    return key


async def write(request: Request, principal: Principal, command: Command,
                status_code: int = 201) -> JSONResponse:
    """Hand a command to the appender and answer with its outcome (or the first one)."""
    key = idempotency_key_of(request)
    fingerprint = None
    if key is not None:
        fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
    pending = WriteRequest(command, status_code, principal.key_id, key, fingerprint,
                           principal.actor)
    outcome = await submit(request, pending)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


async def submit(request: Request, pending: WriteRequest) -> Outcome:
    """The writer's answer; a 503 `database_unavailable`, `recorded: unknown`, if none comes
    within `write_answer_wait_s` (a silent database: ledger/db/outage.py `silent`)."""
    ctx = context_of(request)
    future = asyncio.wrap_future(ctx.writer.submit(pending))
    try:
        return await asyncio.wait_for(future, timeout=limits.write_answer_wait_s)
    except TimeoutError:
        raise silent(ctx.engine, limits.write_answer_wait_s) from None


def as_json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body)
