"""RFC 9457 problem details: the one place where errors become HTTP answers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Final, NamedTuple

import psycopg2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ledger import limits
from ledger.db.outage import connection_lost, refuse, unavailable
from ledger.errors import (
    DatabaseUnavailable,
    InvariantViolation,
    LedgerError,
    RateLimited,
    Recorded,
)

log = logging.getLogger("yufu.api")
PROBLEM_JSON = "application/problem+json"
validation_errors_listed_max = 20
# The request being answered (api/edge.py sets it): every problem carries it as `request_id`,
# so a client's report of an error leads to its access-log line.
REQUEST_ID: ContextVar[str | None] = ContextVar("yufu_request_id", default=None)
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class MalformedJson(LedgerError):
    code = "malformed_json"
    title = "Malformed JSON"
    status = 400


class ProblemType(NamedTuple):
    """What kind of problem an answer is: its status, its code (the `type` is the code's URN)
    and its title."""

    status: int
    code: str
    title: str


NOT_FOUND: Final = ProblemType(404, "not_found", "Not found")
METHOD_NOT_ALLOWED: Final = ProblemType(405, "method_not_allowed", "Method not allowed")
INVALID_INPUT: Final = ProblemType(422, "invalid_input", "Invalid input")
RATE_LIMITED: Final = ProblemType(429, "rate_limited", "Too many requests")
INVARIANT_VIOLATION: Final = ProblemType(500, "invariant_violation", "Invariant violated")
INTERNAL_ERROR: Final = ProblemType(500, "internal_error", "Internal error")


def problem_body(kind: ProblemType, detail: str, field: str | None = None,
                 request_id: str | None = None, **extra: Any) -> dict[str, Any]:
    status, code, title = kind
    body: dict[str, Any] = {"type": f"urn:yufu:problem:{code}", "title": title, "status": status,
                            "detail": detail, "code": code}
    if field is not None:
        body["field"] = field
    request_id = request_id or REQUEST_ID.get()
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extra)
    return body


def problem(kind: ProblemType, detail: str, field: str | None = None,
            headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(problem_body(kind, detail, field, **extra),
                        status_code=kind.status, media_type=PROBLEM_JSON, headers=headers)


def ledger_problem(error: LedgerError) -> JSONResponse:
    title = getattr(error, "title", None) or error.code.replace("_", " ").capitalize()
    if isinstance(error, DatabaseUnavailable):
        return problem(ProblemType(error.status, error.code, "Database unavailable"),
                       error.detail, headers={"Retry-After": str(limits.database_retry_after_s)},
                       recorded=error.recorded.value,
                       retry_safe_with_same_idempotency_key=True)
    answer = problem(ProblemType(error.status, error.code, title), error.detail, error.field)
    if isinstance(error, RateLimited):
        answer.headers["Retry-After"] = str(error.retry_after_s)
    return answer


def database_problem(error: Exception, engine: Engine | None) -> JSONResponse | None:
    """The answer to a request that met the database away outside the writer (a read, an
    authentication): 503, nothing recorded (no route commits but through the writer, which
    types its own failures); noted in the engine's outage, which logs it once. None if the
    error is not a lost connection."""
    if not connection_lost(error):
        return None
    typed = refuse(engine, error, Recorded.NO) if engine is not None \
        else unavailable(error, Recorded.NO)
    return ledger_problem(typed)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def invariant_problem(error: InvariantViolation) -> JSONResponse:
    log.error("invariant violated", exc_info=error)
    return problem(INVARIANT_VIOLATION, "a ledger invariant would break; nothing was written")


def unexpected_problem(error: Exception) -> JSONResponse:
    log.error("unexpected error", exc_info=error)
    return problem(INTERNAL_ERROR, "the request failed; see the logs")


def problem_for(error: Exception, engine: Engine | None = None) -> JSONResponse:
    """The answer to an error raised by a command or by authentication (api/lane.py);
    `engine`: the app's, whose outage a lost connection is noted in."""
    if isinstance(error, InvariantViolation):
        return invariant_problem(error)
    if isinstance(error, LedgerError):
        return ledger_problem(error)
    return database_problem(error, engine) or unexpected_problem(error)


def _malformed_json(detail: str) -> JSONResponse:
    return ledger_problem(MalformedJson(detail, field="body"))


def http_problem(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """The framework's own refusals (our routes raise typed errors, never HTTPException):
    no route for the path, a method the route does not take, a body it could not parse."""
    unread = _unread_body_problem(error)
    if unread is not None:
        return unread
    if error.status_code == 404:
        return problem(NOT_FOUND, "there is no such route", "path")
    if error.status_code == 405:
        allow = allowed_methods(request)
        headers = {**(error.headers or {}), **({"Allow": allow} if allow else {})}
        return problem(METHOD_NOT_ALLOWED, f"{request.method} is not allowed here", "method",
                       headers)
    return problem(ProblemType(error.status_code, "http_error", str(error.detail)),
                   str(error.detail), headers=error.headers)


def _unread_body_problem(error: StarletteHTTPException) -> JSONResponse | None:
    """The answer for a body the framework failed to read, by what it failed on (the
    refusal's cause), or None."""
    cause = error.__cause__
    if isinstance(cause, LedgerError):  # raised while the body was read (api/edge.py)
        return ledger_problem(cause)
    if isinstance(cause, RecursionError):
        return _malformed_json("the request body nests too deeply")
    if isinstance(cause, UnicodeDecodeError):
        return _malformed_json("the request body is not valid UTF-8")
    if cause is not None and error.status_code == 400:  # e.g. an integer of 5,000 digits
        return _malformed_json("the request body is not valid JSON")
    return None


def allowed_methods(request: Request) -> str | None:
    """Every method the routes at this path take, for `Allow`: Starlette's 405 names the
    methods of the first route that matched the path only (GET /v1/keys and POST /v1/keys
    are two routes). None where a route takes any method (a mount) and answered for itself."""
    routes = request.app.router.routes
    methods = [method for method in HTTP_METHODS
               if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
                      for route in routes)]
    return ", ".join(methods) if methods and request.method not in methods else None


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def on_ledger_error(_: Request, error: LedgerError) -> JSONResponse:
        return ledger_problem(error)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        # At most a page of them: a body with 300,000 unknown fields is not answered with a
        # list of 300,000 (the count says how many there were).
        found = error.errors()
        errors = [{"field": _field_of(tuple(e.get("loc", ()))), "reason": e.get("msg", "")}
                  for e in found[:validation_errors_listed_max]]
        first = errors[0] if errors else {"field": "body", "reason": "invalid"}
        if first["reason"].startswith("JSON decode error"):
            return _malformed_json("the request body is not valid JSON")
        return problem(INVALID_INPUT, f"{first['field']}: {first['reason']}", first["field"],
                       errors=errors, errors_count=len(found))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return http_problem(request, error)

    @app.exception_handler(InvariantViolation)
    async def on_bug(_: Request, error: InvariantViolation) -> JSONResponse:
        return invariant_problem(error)

    # The database's errors answered here, not by the handler of Exception below: Starlette
    # re-raises what that one answers, for the server to log with its traceback, and an
    # outage would then log one per request.
    async def on_database_error(request: Request, error: Exception) -> JSONResponse:
        return problem_for(error, request.app.state.ctx.engine)

    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(psycopg2.Error, on_database_error)

    @app.exception_handler(Exception)
    async def on_unexpected(_: Request, error: Exception) -> JSONResponse:
        return unexpected_problem(error)
