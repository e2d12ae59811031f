"""The FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.context import Context
from api.lane import Lane
from api.messages import MessageSender
from api.routes import audit as audit_routes
from api.routes import banks as bank_routes
from api.routes import custody as custody_routes
from api.routes import ledger as ledger_routes
from api.routes import system
from api.routes import trust as trust_routes
from api.signer import TreeHeadSigner
from ledger import limits
from ledger.bank import limits as bank_limits
from ledger.db.writer import Writer
from ledger.errors import BodyTooLarge


def _too_large(limit_bytes: int) -> Response:
    return problems.problem(413, "body_too_large", "Body too large",
                            f"request bodies are limited to {limit_bytes} bytes", "body")


def _body_limit(path: str) -> int:
    """Bank statements are files, allowed up to their own limit; every other body is small."""
    if path.startswith("/v1/banks/") and path.endswith("/statements"):
        return bank_limits.statement_bytes_max
    return limits.request_body_bytes_max


class BodyLimit:
    """Refuse bodies over the limit. Plain ASGI: BaseHTTPMiddleware costs a task per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit_bytes = _body_limit(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit_bytes:
                await _too_large(limit_bytes)(scope, receive, send)
                return
        seen_bytes, too_large = 0, False

        async def counted() -> Message:
            nonlocal seen_bytes, too_large
            message = await receive()
            seen_bytes += len(message.get("body", b""))
            if seen_bytes > limit_bytes:
                too_large = True
                raise BodyTooLarge(f"request bodies are limited to {limit_bytes} bytes",
                                   field="body")
            return message

        async def answer(message: Message) -> None:
            # FastAPI turns any failure while it reads the body into a 400 "error parsing the
            # body": once the limit is passed, whatever the app answers becomes the 413.
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start":
                await _too_large(limit_bytes)(scope, receive, send)

        await self.app(scope, counted, answer)


class YufuApp(FastAPI):
    """FastAPI, with the body limit and the till's lane (api/lane.py) outermost: a till's
    write then passes through none of FastAPI's own middleware layers (its error, telemetry
    and body-limit wrappers, each of which wraps every message sent). The lane answers its
    own failures as problem+json; everything else goes through the whole stack as before."""

    lane = True

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        return BodyLimit(Lane(inner) if self.lane else inner)


# FastAPI's OpenTelemetry hooks (newer releases) look for a provider on every request; the
# service configures none, so they are switched off rather than asked ~1,000 times a second.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})


def create_app(engine: Engine, pseudonym_key: bytes = b"yufu-development-pseudonym-key",
               audit_key: Ed25519PrivateKey | None = None,
               tree_head_interval_s: float | None = limits.tree_head_interval_s,
               lane: bool = True, sender: MessageSender | None = None) -> FastAPI:
    """The app. Without an audit key (tests) it signs tree heads with a throwaway key, and
    only on demand; `yufu serve` passes the configured key and signs on the interval too.
    `lane` serves the till's writes on the short path of api/lane.py."""
    writer = Writer(engine)
    signer = TreeHeadSigner(audit_key, tree_head_interval_s) if audit_key is not None \
        else TreeHeadSigner(Ed25519PrivateKey.generate(), None)

    ctx = Context(engine, writer, pseudonym_key, sender=sender)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        writer.start()
        ctx.keys.start()
        task = asyncio.create_task(signer.run(writer)) if signer.interval_s else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            ctx.keys.stop()
            writer.stop()

    app = YufuApp(title="Yufu custody ledger", version="1", lifespan=lifespan, **_NO_TELEMETRY,
                  description="Prepaid-fund custody ledger: double entry in integer fen, "
                              "a hash-chained journal, custody flows. Errors are RFC 9457 "
                              "problem+json; writes take an Idempotency-Key header.")
    app.state.ctx = ctx
    app.state.signer = signer
    problems.install(app)
    app.lane = lane
    app.include_router(system.router)
    app.include_router(trust_routes.router)
    app.include_router(ledger_routes.router)
    app.include_router(custody_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(bank_routes.router)
    return app


def app_from_environment() -> FastAPI:
    """The app of one `yufu serve` worker process: everything from the environment, which
    the parent process prepared (database migrated, keys made)."""
    from api.messages import sender_from_environment
    from api.runtime import audit_signing_key, connect, pseudonym_key, settle_heap
    from api.settings import Settings

    settings = Settings()
    assert settings.database_url is not None, "the parent process sets YUFU_DATABASE_URL"
    app = create_app(connect(settings.database_url), pseudonym_key(settings.home),
                     audit_signing_key(settings), sender=sender_from_environment(settings.home))
    settle_heap()
    return app
