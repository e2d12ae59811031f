"""The till's writes on a short path: post a transaction, sell a card, consume, refund.

FastAPI's router and dependency resolution cost about 300 us a request in this app (its
route matching walks every route, twice), more than the appender spends on the write itself.
A till sends these few requests all day, so the lane answers them with the very same parts,
and nothing else: the route's pydantic model, `principal_of`, the endpoint function itself
(which builds the command and hands it to the appender), and the same problem+json for what
the endpoint raises. Whatever the lane is not sure of (a path that does not match exactly, a
body that is not JSON or does not validate) it hands on, body and all, to FastAPI, so every
refusal of the input keeps exactly the shape FastAPI gives it.

`create_app(..., lane=False)` serves without it; tests/api/test_lane.py checks that both
answer alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.context import principal_of
from api.routes import custody, ledger

Endpoint = Callable[..., Awaitable[Response]]
_ID = r"[^/]{1,64}"  # the routes' Id: 1 to 64 characters


@dataclass(frozen=True, slots=True)
class LaneRoute:
    # The template, as FastAPI's route has it: the lane puts the route in scope["route"] as
    # FastAPI does, so the access log (api/edge.py) names it alike on both paths.
    path: str
    body: type[BaseModel]
    endpoint: Endpoint  # called as endpoint(request, **path, body=..., who=...)
    # `path` as a regex: each {name} a named group, the endpoint's path parameter.
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", rf"(?P<\1>{_ID})", self.path)
        object.__setattr__(self, "pattern", re.compile(regex))


ROUTES = (
    LaneRoute("/v1/transactions", ledger.TransactionIn, ledger.post_transaction),
    LaneRoute("/v1/cards", custody.SaleIn, custody.sell_card),
    LaneRoute("/v1/cards/{card_id}/consumptions", custody.ConsumptionIn, custody.consume),
    LaneRoute("/v1/cards/{card_id}/refunds", custody.RefundIn, custody.refund_card),
)


class Lane:
    """ASGI middleware: serves ROUTES' POSTs, hands everything else to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        found = _match(scope["path"])
        if found is None or not _json_content(scope):
            await self.app(scope, receive, send)
            return
        route, path_params = found
        try:
            body = await _read_body(receive)
        except Exception as error:  # refused by the edge as it came (over the limit, NUL, ...)
            await problems.problem_for(error)(scope, receive, send)
            return
        replay = _replaying(body, receive)
        model = _validated(route.body, body)
        if model is None:
            await self.app(scope, replay, send)  # FastAPI says what is wrong with it
            return
        scope["route"] = route
        request = Request(scope, replay)
        try:
            who = await principal_of(request)
            response = await route.endpoint(request, **path_params, body=model, who=who)
        except Exception as error:
            response = problems.problem_for(error)
        await response(scope, replay, send)


def _match(path: str) -> tuple[LaneRoute, dict[str, str]] | None:
    for route in ROUTES:
        matched = route.pattern.fullmatch(path)
        if matched is not None:
            return route, matched.groupdict()
    return None


def _json_content(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.split(b";")[0].strip().lower() == b"application/json")
    return False


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ConnectionError("the client went away before sending its body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then whatever the client sends next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _validated(model: type[BaseModel], body: bytes) -> BaseModel | None:
    try:
        return model.model_validate(json.loads(body))
    # Not JSON, nested deeper than the parser goes, or not this model: FastAPI answers.
    except (ValueError, RecursionError, ValidationError):
        return None

