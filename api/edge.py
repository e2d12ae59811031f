"""The service's edge: the outermost ASGI layer, around the lane and FastAPI alike.

Per request it
- gives the request an id (the client's `X-Request-Id` if it is a plain token, else a new
  one), answers it in `X-Request-Id` and puts it in every problem (api/problems.py);
- refuses what PostgreSQL cannot hold before anything reads it: a NUL character, invalid
  UTF-8 or a lone surrogate in the path, a query parameter or a JSON string (values and keys,
  at any depth), as 422 invalid_input naming the field (`path`, the parameter, the JSON path
  such as `consumer.phone`). A JSON body is parsed here only when its bytes hold what could
  decode to such text (a `\\u0000` or `\\ud...` escape, a NUL byte, the UTF-8 lead byte of a
  surrogate), so a till's ordinary write pays a few byte searches, not a parse. (A body nested
  deeper than the parser goes is 400 malformed_json, here or from FastAPI: api/problems.py);
- refuses a query parameter given twice, as 422 invalid_input naming it;
- limits bodies (the 413 before a byte too many is read), requests per API key and, per client
  address, requests after too many failed authentications (429, api/ratelimit.py);
- counts the request by route template, method and status, and its latency (api/metrics.py);
- writes one JSON line per request on the logger `yufu.access` (api/accesslog.py), then hands
  the same record to `app.state.on_request`, if set.

Plain ASGI: BaseHTTPMiddleware costs a task per request. A refusal raised while the app reads
the body replaces whatever the app then answers (FastAPI turns any failure while it reads the
body into its own 400), so the lane and FastAPI's routes answer it alike.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.datastructures import State
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.accesslog import access_log, access_record, write_access_line
from api.context import PRINCIPAL_SCOPE_KEY
from api.metrics import observe_request
from api.ratelimit import RateLimits, limiter_or_none, retry_after_header_s
from ledger import limits
from ledger.auth import split_key
from ledger.bank import limits as bank_limits
from ledger.errors import BodyTooLarge, InvalidInput, LedgerError, Unauthorized

log = logging.getLogger("yufu.api")
# A client's X-Request-Id is kept if it is a plain token of at most this many characters.
request_id_chars_max = 64
REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._-]{1,%d}" % request_id_chars_max)
# A path is logged by its route's template; one that matched no route, as sent, cut to this.
access_log_path_chars_max = 200
# What in a JSON body's bytes could decode to text PostgreSQL refuses: a NUL escape, a
# surrogate escape (lone ones cannot be stored), a NUL byte (also every UTF-16 or UTF-32 body,
# which json.loads accepts), and 0xED, the UTF-8 lead byte of a surrogate (json.loads decodes
# bytes with surrogatepass). 0xED also leads U+D000-D7FF (Hangul): such a body is parsed, and
# passes.
SUSPECT = re.compile(rb"\\u(?:0000|[dD])|[\x00\xed]")

# Called with the access record and the request's scope (for what the record leaves out: the
# path as asked, the query), after the answer.
OnRequest = Callable[[dict[str, Any], Scope], None]
# Request ids come from a generator seeded once per process from os.urandom, not from
# uuid.uuid4(): it reads os.urandom on every call, a system call that releases the interpreter
# lock, and the event loop then waited for the appender's thread to give it back (37 us a
# request, measured by profiling `yufu serve`). An id needs to be unique, not unpredictable.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)  # a forked worker must not repeat its parent's
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """32 hex digits shaped as a random (version 4) UUID's."""
    return f"{_ids.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


# What anyone may send with no key at all (a phone number, a code): a few hundred bytes, so an
# anonymous client cannot make the service parse megabytes.
unauthenticated_body_bytes_max = 4 * 1024


def body_limit_bytes(path: str) -> int:
    """Bank statements are files, allowed up to their own limit; every other body is small,
    and the bodies of the consumer's key-less requests smaller still."""
    if path.startswith("/v1/banks/") and path.endswith("/statements"):
        return bank_limits.statement_bytes_max
    if path.startswith("/v1/consumer/"):
        return unauthenticated_body_bytes_max
    return limits.request_body_bytes_max


def text_fault(data: bytes) -> str | None:
    """Why these bytes are not text PostgreSQL can hold, or None."""
    if b"\x00" in data:
        return "must not contain a NUL character"
    try:
        data.decode("utf-8")  # strict: lone surrogates, encoded, are invalid UTF-8 too
    except UnicodeDecodeError:
        return "must be valid UTF-8 (no lone surrogates)"
    return None


def _str_fault(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode (no lone surrogates)"
    return None


def path_fault(scope: Scope) -> str | None:
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
    if b"%" not in raw and raw.isascii() and b"\x00" not in raw:
        return None
    return text_fault(unquote_to_bytes(raw))


def query_fault(query: bytes) -> tuple[str, str] | None:
    """(the parameter's name, why) for the first parameter that is not plain text."""
    if b"%" not in query and query.isascii() and b"\x00" not in query:
        return None
    # Separators are ASCII, so the whole string decodes cleanly exactly when every part does.
    if text_fault(unquote_to_bytes(query)) is None:
        return None
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        for part in (name, value):
            reason = text_fault(unquote_to_bytes(part.replace(b"+", b" ")))
            if reason is not None:
                return unquote_to_bytes(name).decode("utf-8", "replace"), reason
    return None


def repeated_parameter(query: bytes) -> str | None:
    """The name of a query parameter given more than once, or None. Every parameter of this
    API takes one value, and which of two the framework keeps (the last) is a guess a proxy
    in front may not share: `?limit=1&limit=1000` is refused, not read."""
    if b"&" not in query:
        return None
    seen: set[bytes] = set()
    for pair in query.split(b"&"):
        name = unquote_to_bytes(pair.partition(b"=")[0].replace(b"+", b" "))
        if name in seen:
            return name.decode("utf-8", "replace")
        if name:
            seen.add(name)
    return None


def json_fault(body: bytes) -> LedgerError | None:
    """A refusal for a JSON body holding text PostgreSQL cannot hold, or None. Anything that
    is not JSON is left to the app, which says what is wrong with it."""
    if SUSPECT.search(body) is None:
        return None
    try:
        value = json.loads(body)
    except RecursionError:
        return problems.MalformedJson("the request body nests too deeply", field="body")
    except ValueError:
        return None
    return _text_fault_in(value)


def _text_fault_in(value: Any) -> LedgerError | None:
    """A refusal naming the first string (value or key) of a parsed JSON body that PostgreSQL
    cannot hold, or None. Depth first, in document order, without recursion: json.loads took
    any depth the interpreter's recursion limit allows."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            reason = _str_fault(item)
            if reason is not None:
                return InvalidInput(reason, field=where or "body")
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                reason = _str_fault(key)
                if reason is not None:
                    # The problem is encoded as UTF-8: a lone surrogate goes back escaped.
                    shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
                    return InvalidInput(f"a key {reason}",
                                        field=f"{where}.{shown}" if where else shown)
                children.append((child, f"{where}.{key}" if where else key))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((item[i], f"{where}[{i}]") for i in reversed(range(len(item))))
    return None


def input_refusal(scope: Scope, headers: dict[bytes, bytes],
                  limit_bytes: int) -> JSONResponse | None:
    """A refusal of what the request carries, before anything reads it: text PostgreSQL
    cannot hold in the path or a query parameter, a parameter given twice, a declared body
    over the limit. None if there is nothing to refuse."""
    reason = path_fault(scope)
    if reason is not None:
        return problems.ledger_problem(InvalidInput(f"the path {reason}", field="path"))
    query = query_fault(scope["query_string"])
    if query is not None:
        name, reason = query
        return problems.ledger_problem(InvalidInput(f"{name} {reason}", field=name))
    repeated = repeated_parameter(scope["query_string"])
    if repeated is not None:
        return problems.ledger_problem(InvalidInput(f"{repeated} is given more than once",
                                                    field=repeated))
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        return problems.ledger_problem(BodyTooLarge(
            f"request bodies are limited to {limit_bytes} bytes", field="body"))
    return None


def key_prefix(presented: str) -> str | None:
    try:
        return split_key(presented)[0]
    except Unauthorized:
        return None


class Exchange:
    """One request's passage through the edge: its id, what was answered, the body seen."""

    __slots__ = ("body_chunks", "json_checked", "limit_bytes", "receive_inner", "refusal",
                 "request_id", "scope", "seen_bytes", "send_inner", "status")

    def __init__(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        self.scope, self.receive_inner, self.send_inner = scope, receive, send
        self.request_id = request_id
        self.status = 0
        self.refusal: LedgerError | None = None
        self.limit_bytes = body_limit_bytes(scope["path"])
        # Statements are files the bank formats parse (ledger/bank/), not JSON.
        self.json_checked = self.limit_bytes == limits.request_body_bytes_max
        self.seen_bytes = 0
        self.body_chunks: list[bytes] = []

    async def receive(self) -> Message:
        message = await self.receive_inner()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        self.seen_bytes += len(chunk)
        if self.seen_bytes > self.limit_bytes:
            self.refusal = BodyTooLarge(
                f"request bodies are limited to {self.limit_bytes} bytes", field="body")
            raise self.refusal
        if self.json_checked:
            if message.get("more_body", False):
                self.body_chunks.append(chunk)
                return message
            body = b"".join((*self.body_chunks, chunk)) if self.body_chunks else chunk
            self.body_chunks = []
            self.refusal = json_fault(body)
            if self.refusal is not None:
                raise self.refusal
        return message

    async def send(self, message: Message) -> None:
        if self.refusal is None:
            await self.send_own(message)
        elif message["type"] == "http.response.start":  # the app's answer to the refusal
            await problems.problem_for(self.refusal)(self.scope, self.receive, self.send_own)

    async def send_own(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", ()),
                                  (b"x-request-id", self.request_id.encode())]
        await self.send_inner(message)


class Edge:
    """ASGI middleware: see the module's docstring. `state` is the app's: its `on_request`
    (a callable taking the access record, or None) is looked up on every request."""

    def __init__(self, app: ASGIApp, state: State, rate_limits: RateLimits) -> None:
        self.app, self.state = app, state
        self.keys = limiter_or_none(rate_limits.key_rate_per_s, rate_limits.key_burst)
        self.failures = limiter_or_none(rate_limits.failed_auth_rate_per_s,
                                        rate_limits.failed_auth_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_s, started_perf_s = time.time(), time.perf_counter()
        headers = dict(reversed(scope["headers"]))  # the first of a repeated header wins,
        # as with Starlette's Headers.get (principal_of reads the key that way)
        given = headers.get(b"x-request-id")
        request_id = (given.decode() if given is not None and REQUEST_ID_RE.fullmatch(given)
                      else new_request_id())
        token = problems.REQUEST_ID.set(request_id)
        exchange = Exchange(scope, receive, send, request_id)
        address = scope["client"][0] if scope.get("client") else "unknown"
        try:
            # Two steps; the key presented is read inside the second, not by a call of its
            # own, so a request makes as many calls as when they were one (scripts/bench_edge).
            refusal = input_refusal(scope, headers, exchange.limit_bytes)
            if refusal is None:
                refusal = self.rate_refusal(headers, address)
            if refusal is not None:
                await refusal(scope, receive, exchange.send_own)
            else:
                await self.app(scope, exchange.receive, exchange.send)
        except Exception as error:
            if exchange.status:  # answered already: the app's handler logged it
                raise
            await problems.unexpected_problem(error)(scope, receive, exchange.send_own)
        finally:
            problems.REQUEST_ID.reset(token)
            if exchange.status == 401 and self.failures is not None:
                self.failures.hit(address)
            self.record(scope, exchange, address, started_s, started_perf_s)

    def rate_refusal(self, headers: dict[bytes, bytes], address: str) -> JSONResponse | None:
        """429 for a request presenting an API key (read as principal_of in api/context.py
        reads it): its address failed authentication too often, or its key asks too often."""
        header = headers.get(b"authorization", b"").decode("latin-1")
        presented = (header[7:].strip() if header.lower().startswith("bearer ") else "") \
            or headers.get(b"x-api-key", b"").decode("latin-1")
        if not presented:
            return None
        if self.failures is not None:
            wait_s = self.failures.check(address)
            if wait_s is not None:
                return _too_many(wait_s, "too many failed authentications from this address")
        prefix = key_prefix(presented)
        if prefix is not None and self.keys is not None:
            wait_s = self.keys.hit(prefix)
            if wait_s is not None:
                return _too_many(wait_s, "too many requests with this API key")
        return None

    def record(self, scope: Scope, exchange: Exchange, address: str, started_s: float,
               started_perf_s: float) -> None:
        """The metrics, the access-log line, and the on_request hook, after the answer."""
        latency_s = time.perf_counter() - started_perf_s
        route = getattr(scope.get("route"), "path", None)
        observe_request(route, scope["method"], exchange.status, latency_s)
        on_request: OnRequest | None = getattr(self.state, "on_request", None)
        if on_request is None and not access_log.isEnabledFor(logging.INFO):
            return
        entry = access_record(started_s, exchange.request_id, scope.get(PRINCIPAL_SCOPE_KEY),
                              scope["method"], route or scope["path"][:access_log_path_chars_max],
                              exchange.status, round(latency_s * 1000, 3), address)
        write_access_line(entry)
        if on_request is not None:
            try:
                on_request(entry, scope)
            except Exception:  # a hook's failure must not fail the request, already answered
                log.exception("on_request hook failed")


def _too_many(wait_s: float, detail: str) -> JSONResponse:
    retry_after_s = retry_after_header_s(wait_s)
    return problems.problem(problems.RATE_LIMITED, f"{detail}; retry after {retry_after_s} s",
                            headers={"Retry-After": str(retry_after_s)})
