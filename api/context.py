"""What the routes share: the engine, the appender, and authentication."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from ledger import limits
from ledger.auth import Principal, secret_matches, split_key
from ledger.db import queries
from ledger.db.writer import Command, Writer, WriteRequest, request_fingerprint
from ledger.errors import InvalidInput, Unauthorized

key_cache_ttl_s = 60.0


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
    _keys: dict[str, tuple[float, bytes, Principal]] = field(default_factory=dict)
    _keys_lock: threading.Lock = field(default_factory=threading.Lock)

    def cached_principal(self, presented: str) -> Principal | None:
        prefix, secret = split_key(presented)
        cached = self._keys.get(prefix)
        if cached is None or time.monotonic() - cached[0] > key_cache_ttl_s:
            return None
        if not secret_matches(secret, cached[1]):
            raise Unauthorized("unknown API key")
        return cached[2]

    def authenticate(self, presented: str) -> Principal:
        prefix, secret = split_key(presented)
        now = time.monotonic()
        cached = self._keys.get(prefix)
        if cached is None or now - cached[0] > key_cache_ttl_s:
            with self.engine.connect() as conn:
                found = queries.principal_for_prefix(conn, prefix)
            if found is None:
                raise Unauthorized("unknown API key")
            cached = (now, *found)
            with self._keys_lock:
                self._keys[prefix] = cached
        if not secret_matches(secret, cached[1]):
            raise Unauthorized("unknown API key")
        return cached[2]


def context_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


# Where the authenticated principal is left in the ASGI scope: the access log (api/edge.py)
# reads its key id and role there, after the answer.
PRINCIPAL_SCOPE_KEY = "yufu.principal"


def _stashed(authenticate: Callable[[Request], Awaitable[Principal]]
             ) -> Callable[[Request], Awaitable[Principal]]:
    @functools.wraps(authenticate)  # FastAPI reads the signature through __wrapped__
    async def stash(request: Request) -> Principal:
        principal = await authenticate(request)
        request.scope[PRINCIPAL_SCOPE_KEY] = principal
        return principal

    return stash


@_stashed
async def principal_of(request: Request) -> Principal:
    # async, so the usual case (a cached key) costs no hop to the thread pool.
    header = request.headers.get("authorization", "")
    presented = header[7:].strip() if header.lower().startswith("bearer ") else ""
    presented = presented or request.headers.get("x-api-key", "")
    if not presented:
        raise Unauthorized("an API key is required (Authorization: Bearer <key>)")
    ctx = context_of(request)
    cached = ctx.cached_principal(presented)
    if cached is not None:
        return cached
    return await run_in_threadpool(ctx.authenticate, presented)


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
    pending = WriteRequest(command, status_code, principal.key_id, key, fingerprint)
    future = asyncio.wrap_future(context_of(request).writer.submit(pending))
    outcome = await asyncio.wait_for(future, timeout=limits.request_timeout_s)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


async def submit_as_consumer(request: Request, command: Command, status_code: int = 200
                             ) -> JSONResponse:
    """A consumer's write, authorised by the card's token inside the command (no API key,
    so no Idempotency-Key: these writes are safe to retry, a repeat is refused as done)."""
    pending = WriteRequest(command, status_code)
    future = asyncio.wrap_future(context_of(request).writer.submit(pending))
    outcome = await asyncio.wait_for(future, timeout=limits.request_timeout_s)
    return JSONResponse(outcome.body, status_code=outcome.status_code)


def as_json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body)
