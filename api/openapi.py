"""The OpenAPI document and the pages that show it, served by the app itself.

What the routes declare with these helpers:
- the problems each operation can answer (`keyed_read`, `keyed_write`, `card_read`,
  `open_read`, `open_write`), every one an RFC 9457 Problem as application/problem+json
  (api/schemas.py);
- the optional `Idempotency-Key` header of every write that goes through `api.context.write`.

What `install` adds: the Problem schema (FastAPI's own 422 HTTPValidationError and
ValidationError never appear, since every operation documents its 422 itself), and Swagger UI
at /docs and ReDoc at /redoc with their scripts and styles from the fastapi-offline wheel, so
the pages work on a machine without internet.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.problems import PROBLEM_JSON
from api.schemas import JobView, Problem
from ledger import limits

SCHEMAS = "#/components/schemas/"
# FastAPI's `responses=`: an answer's OpenAPI description by status.
Responses = dict[int | str, dict[str, Any]]
# Where the pages' scripts, styles and icon are served: the fastapi-offline wheel's files.
DOCS_STATIC_PATH = "/docs-static"

PROBLEM_DESCRIPTIONS = {
    400: "The body is not JSON, not UTF-8, or nested too deeply (`malformed_json`).",
    401: "No key, a malformed, unknown, expired or revoked one (`unauthorized`).",
    403: "The key's role or scope does not allow this (`forbidden`).",
    404: "No such resource, or one this key may not see: both answer alike (`not_found`).",
    409: "A conflict with the state (`conflict`), or an Idempotency-Key reused with another "
         "request (`idempotency_conflict`).",
    413: "The body is over the limit (`body_too_large`).",
    422: "Invalid input (`invalid_input`, with `errors` naming each field at fault), or a "
         "request the rules refuse (`refused`, `insufficient_funds`).",
    429: "Too many requests (`rate_limited`); `Retry-After` gives whole seconds.",
    503: "The write queue is full or the service is stopping (`busy`): retry. Or the "
         "database is unreachable, or silent past `write_answer_wait_s` "
         "(`database_unavailable`, with `Retry-After`): `recorded` says whether a write may "
         "have been recorded (`no`, `unknown`), and a retry with the same Idempotency-Key is "
         "safe either way. From `GET /v1/ready`: not ready "
         "(`not_ready`, `errors` naming each check that failed).",
}
RETRY_AFTER = {"Retry-After": {"description": "whole seconds to wait",
                               "schema": {"type": "integer", "minimum": 1}}}

# Printable, as `str.isprintable` sees a header's latin-1 text: no control characters (C0,
# DEL, C1), no space but the ASCII one (not U+00A0), no soft hyphen (U+00AD).
IDEMPOTENCY_KEY_PATTERN = "^[\\u0020-\\u007e\\u00a1-\\u00ac\\u00ae-\\u00ff]+$"
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "A retry with the same key, method, path and body answers the first "
                   "answer (`Idempotent-Replayed: true`) and writes nothing; the same key "
                   "with another request is 409 `idempotency_conflict`. Scoped to the API "
                   "key.",
    "schema": {"type": "string", "minLength": 1,
               "maxLength": limits.idempotency_key_chars_max,
               "pattern": IDEMPOTENCY_KEY_PATTERN},
}


# Rules the commands check that the fields' own types do not say, stated in the document
# (json_schema_extra): what breaks them is refused as 422 invalid_input all the same.
NOT_BLANK: dict[str, Any] = {"pattern": "\\S"}  # a character that is not white space


def exactly_one_of(first: str, second: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Exactly one of two fields is given (not null), valid per `schema`; the other is null
    or left out."""
    return {"oneOf": [{"required": [given], "properties": {given: schema, other: {"type": "null"}}}
                      for given, other in ((first, second), (second, first))]}


def only_when(field: str, value: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`name` is given (valid per `schema`) when `field` is `value`, and null or left out
    otherwise."""
    return {"if": {"properties": {field: {"const": value}}, "required": [field]},
            "then": {"required": [name], "properties": {name: schema}},
            "else": {"properties": {name: {"type": "null"}}}}


def problems(*statuses: int) -> Responses:
    """`responses=` for these statuses, each a Problem."""
    answers: Responses = {}
    for status in sorted(set(statuses)):
        answer: dict[str, Any] = {
            "description": PROBLEM_DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": f"{SCHEMAS}Problem"}}}}
        if status in (429, 503):
            answer["headers"] = RETRY_AFTER
        answers[status] = answer
    return answers


def _with(responses: Responses | None,
          *statuses: int) -> Responses:
    return {**problems(*statuses), **(responses or {})}


def open_read(*extra: int, responses: Responses | None = None
              ) -> dict[str, Any]:
    """A read that needs no key. 422: any query parameter or the path may hold text
    PostgreSQL cannot (api/edge.py), whatever the operation declares. 503: the database
    is unreachable."""
    return {"responses": _with(responses, 422, 503, *extra)}


def keyed_read(*extra: int, responses: Responses | None = None
               ) -> dict[str, Any]:
    """A read with an API key: 401 without a good one, 403 if its role may not, 429 over
    the key's rate or the address's failed authentications, 503 while the database is
    unreachable."""
    return {"responses": _with(responses, 401, 403, 422, 429, 503, *extra)}


def card_read(*extra: int) -> dict[str, Any]:
    """A card read: an API key or the sale's receipt code. No 403: a key or code that may
    not read the card is answered as for a missing card."""
    return {"responses": problems(401, 404, 422, 429, 503, *extra)}


def open_write(*extra: int) -> dict[str, Any]:
    """A write without a key (the consumer's one-time code): a body, the appender."""
    return {"responses": problems(400, 413, 422, 429, 503, *extra)}


def keyed_write(*extra: int, body: bool = True,
                openapi_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A write through `api.context.write`: keyed, idempotent, queued to the appender (503
    when it is full), 409 for a reused Idempotency-Key. With a body: 400 and 413."""
    statuses = [401, 403, 409, 422, 429, 503, *extra, *((400, 413) if body else ())]
    extra_doc: dict[str, Any] = {"parameters": [IDEMPOTENCY_KEY]}
    extra_doc.update(openapi_extra or {})
    return {"responses": problems(*statuses), "openapi_extra": extra_doc}


def job_write(*extra: int, what: str, openapi_extra: dict[str, Any] | None = None,
              body: bool = False) -> dict[str, Any]:
    """A keyed write that may be a long job (api/jobs.py): 202 with the job to poll when
    `what` is more than one slice."""
    options = keyed_write(*extra, body=body, openapi_extra=openapi_extra)
    options["responses"][202] = {
        "model": JobView,
        "description": f"{what}: a job, carried out in slices (each its own group commit); "
                       "poll it at `Location` (`GET /v1/jobs/{id}`): once done, its `result` "
                       "is the answer a small one gets at once."}
    return options


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the Problem schema its operations refer to."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template=SCHEMAS + "{model}")
        schemas.update(problem.pop("$defs", {}))
        schemas["Problem"] = problem
        app.openapi_schema = document
    return app.openapi_schema


def install(app: FastAPI) -> None:
    """The document (app.openapi) and its pages, /docs and /redoc; the app is made with
    docs_url=None and redoc_url=None, so FastAPI's own pages, which load from a CDN, are not
    served."""
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    app.mount(DOCS_STATIC_PATH, StaticFiles(packages=[("fastapi_offline", "static")]),
              name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        # validatorUrl null: Swagger UI would otherwise send the document to an online
        # validator for its badge.
        return get_swagger_ui_html(
            openapi_url=root + openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC_PATH}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None})

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url, title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_STATIC_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_STATIC_PATH}/favicon.png", with_google_fonts=False)
