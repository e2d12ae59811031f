"""The till's writes on a short path: post a transaction, sell a card, consume, refund.

FastAPI's router and dependency resolution cost about 300 us a request in this app (its
route matching walks every route, twice), more than the appender spends on the write itself.
A till sends these few requests all day, so the lane answers them with the very same parts,
and nothing else: the route's pydantic model, `principal_of`, the endpoint function itself
(which builds the command and hands it to the appender), and the same problem+json for what
the endpoint raises. Whatever the lane is not sure of (a path that does not match exactly, a
body that is not JSON or does not validate) it hands on, body and all, to FastAPI, so every
refusal of the input keeps exactly the shape FastAPI gives it.

The lane declares only which paths it serves (PATHS). Their endpoints and body models it
takes from the app's own routes when the app is made (`lane_routes`), and checks then that
each endpoint takes exactly what the lane passes and FastAPI would not pass more (a query
parameter, another dependency): a route the lane could not serve alike stops the start, with
its reason, instead of answering differently at run time.

`create_app(..., lane=False)` serves without it; tests/api/test_lane.py checks that both
answer alike.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import fastapi.routing
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.context import keyed, principal_of

Endpoint = Callable[..., Awaitable[Response]]
_ID = r"[^/]{1,64}"  # the routes' Id: 1 to 64 characters

# The till's writes, as FastAPI's routes name their paths.
PATHS = ("/v1/transactions", "/v1/cards", "/v1/cards/{card_id}/consumptions",
         "/v1/cards/{card_id}/refunds")


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


class LaneMismatch(RuntimeError):
    """A lane path whose route the lane cannot serve exactly as FastAPI does."""


def lane_routes(routes: Sequence[BaseRoute]) -> tuple[LaneRoute, ...]:
    """The lane's table, from the app's routes: each of PATHS with its POST route's endpoint
    and body model. Raises LaneMismatch, naming the route and why."""
    posts: dict[str, Any] = {}
    for route in _api_routes(routes):
        if "POST" in (route.methods or ()):
            posts.setdefault(route.path, route)  # the first one answers, as in FastAPI
    return tuple(_lane_route(path, posts.get(path)) for path in PATHS)


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[Any]:
    """FastAPI's routes as it serves them. Newer FastAPI includes a router lazily: its routes
    then come as contexts (the include's prefix and dependencies applied), which answer for
    the route; older releases copy the APIRoutes into the app."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in walk(routes) if walk is not None else routes:
        if getattr(route, "dependant", None) is not None:
            yield route


def _lane_route(path: str, route: Any) -> LaneRoute:
    if route is None:
        raise LaneMismatch(f"the lane serves POST {path}, and the app has no such route")
    wrong = _mismatches(path, route.dependant, route.endpoint)
    if wrong:
        raise LaneMismatch(f"POST {path} ({route.endpoint.__qualname__}): {'; '.join(wrong)}")
    return LaneRoute(path, route.dependant.body_params[0].field_info.annotation, route.endpoint)


def _mismatches(path: str, dependant: Any, endpoint: Callable[..., Any]) -> list[str]:
    """What keeps the lane's call, endpoint(request, **path, body=..., who=...), from being
    the one FastAPI makes."""
    names = set(re.findall(r"\{(\w+)\}", path))
    return [*_route_mismatches(names, dependant), *_call_mismatches(names, dependant, endpoint)]


def _route_mismatches(names: set[str], dependant: Any) -> Iterator[str]:
    """What FastAPI would give the endpoint that the lane does not."""
    body = [(f.name, f.field_info.annotation) for f in dependant.body_params]
    if len(body) != 1 or body[0][0] != "body" or not _is_model(body[0][1]):
        yield f"its body must be one pydantic model named body, not {body}"
    if {f.name for f in dependant.path_params} != names:
        yield f"its path parameters must be {sorted(names)}"
    if dependant.query_params or dependant.header_params or dependant.cookie_params:
        yield "it takes query, header or cookie parameters the lane does not pass"
    if [(d.name, d.call) for d in dependant.dependencies] != [("who", keyed)]:
        yield ("its one dependency must be who=Depends(keyed), which the lane stands in for "
               "with principal_of")


def _call_mismatches(names: set[str], dependant: Any, endpoint: Callable[..., Any]
                     ) -> Iterator[str]:
    """Whether the endpoint takes the lane's call at all."""
    if not inspect.iscoroutinefunction(endpoint):
        yield "the lane awaits the endpoint: it must be async"
    signature = inspect.signature(endpoint)
    if next(iter(signature.parameters), None) != dependant.request_param_name:
        yield "its first parameter must be the Request"
    try:
        signature.bind(None, **dict.fromkeys(names, ""), body=None, who=None)
    except TypeError as refused:
        yield f"it cannot be called as the lane calls it ({refused})"


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


class Lane:
    """ASGI middleware: serves its routes' POSTs, hands everything else to the app."""

    def __init__(self, app: ASGIApp, routes: tuple[LaneRoute, ...]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        found = _match(self.routes, scope["path"])
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
            response = problems.problem_for(error, request.app.state.ctx.engine)
        await response(scope, replay, send)


def _match(routes: tuple[LaneRoute, ...], path: str) -> tuple[LaneRoute, dict[str, str]] | None:
    for route in routes:
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

