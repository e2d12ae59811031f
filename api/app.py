"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.context import Context
from api.routes import custody as custody_routes
from api.routes import ledger as ledger_routes
from api.routes import system
from ledger import limits
from ledger.db.writer import Writer
from ledger.errors import BodyTooLarge


def _too_large() -> Response:
    return problems.problem(413, "body_too_large", "Body too large",
                            f"request bodies are limited to {limits.request_body_bytes_max} bytes",
                            "body")


class BodyLimit:
    """Refuse bodies over the limit. Plain ASGI: BaseHTTPMiddleware costs a task per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and \
                    int(value) > limits.request_body_bytes_max:
                await _too_large()(scope, receive, send)
                return
        seen_bytes, too_large = 0, False

        async def counted() -> Message:
            nonlocal seen_bytes, too_large
            message = await receive()
            seen_bytes += len(message.get("body", b""))
            if seen_bytes > limits.request_body_bytes_max:
                too_large = True
                raise BodyTooLarge(f"request bodies are limited to "
                                   f"{limits.request_body_bytes_max} bytes", field="body")
            return message

        async def answer(message: Message) -> None:
            # FastAPI turns any failure while it reads the body into a 400 "error parsing the
            # body": once the limit is passed, whatever the app answers becomes the 413.
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start":
                await _too_large()(scope, receive, send)

        await self.app(scope, counted, answer)


def create_app(engine: Engine, pseudonym_key: bytes = b"yufu-development-pseudonym-key"
               ) -> FastAPI:
    writer = Writer(engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        writer.start()
        try:
            yield
        finally:
            writer.stop()

    app = FastAPI(title="Yufu custody ledger", version="1", lifespan=lifespan,
                  description="Prepaid-fund custody ledger: double entry in integer fen, "
                              "a hash-chained journal, custody flows. Errors are RFC 9457 "
                              "problem+json; writes take an Idempotency-Key header.")
    app.state.ctx = Context(engine, writer, pseudonym_key)
    problems.install(app)
    app.add_middleware(BodyLimit)
    app.include_router(system.router)
    app.include_router(ledger_routes.router)
    app.include_router(custody_routes.router)
    return app
