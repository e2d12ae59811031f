"""RFC 9457 problem details: the one place where errors become HTTP answers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import InvariantViolation, LedgerError, RateLimited

log = logging.getLogger("yufu.api")
PROBLEM_JSON = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, field: str | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": f"urn:yufu:problem:{code}", "title": title, "status": status,
                            "detail": detail, "code": code}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def ledger_problem(error: LedgerError) -> JSONResponse:
    title = error.code.replace("_", " ").capitalize()
    answer = problem(error.status, error.code, title, error.detail, error.field)
    if isinstance(error, RateLimited):
        answer.headers["Retry-After"] = str(error.retry_after_s)
    return answer


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def invariant_problem(error: InvariantViolation) -> JSONResponse:
    log.error("invariant violated", exc_info=error)
    return problem(500, "invariant_violation", "Invariant violated",
                   "a ledger invariant would break; nothing was written")


def unexpected_problem(error: Exception) -> JSONResponse:
    log.error("unexpected error", exc_info=error)
    return problem(500, "internal_error", "Internal error", "the request failed; see the logs")


def problem_for(error: Exception) -> JSONResponse:
    """The answer to an error raised by a command or by authentication (api/lane.py)."""
    if isinstance(error, InvariantViolation):
        return invariant_problem(error)
    if isinstance(error, LedgerError):
        return ledger_problem(error)
    return unexpected_problem(error)


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def on_ledger_error(_: Request, error: LedgerError) -> JSONResponse:
        return ledger_problem(error)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_of(tuple(e.get("loc", ()))), "reason": e.get("msg", "")}
                  for e in error.errors()]
        first = errors[0] if errors else {"field": "body", "reason": "invalid"}
        if first["reason"].startswith("JSON decode error"):
            return problem(400, "malformed_json", "Malformed JSON",
                           "the request body is not valid JSON", "body")
        return problem(422, "invalid_input", "Invalid input",
                       f"{first['field']}: {first['reason']}", first["field"], errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem(error.status_code, "http_error", str(error.detail), str(error.detail))

    @app.exception_handler(InvariantViolation)
    async def on_bug(_: Request, error: InvariantViolation) -> JSONResponse:
        return invariant_problem(error)

    @app.exception_handler(Exception)
    async def on_unexpected(_: Request, error: Exception) -> JSONResponse:
        return unexpected_problem(error)
