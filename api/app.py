"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from api import problems
from api.context import Context
from api.routes import ledger as ledger_routes
from api.routes import system
from ledger import limits
from ledger.db.writer import Writer


class BodyLimit(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.request_body_bytes_max:
            return problems.problem(413, "body_too_large", "Body too large",
                                    f"request bodies are limited to "
                                    f"{limits.request_body_bytes_max} bytes", "body")
        return await call_next(request)


def create_app(engine: Engine) -> FastAPI:
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
    app.state.ctx = Context(engine, writer)
    problems.install(app)
    app.add_middleware(BodyLimit)
    app.include_router(system.router)
    app.include_router(ledger_routes.router)
    return app
