"""What reaches a real uvicorn, run as `yufu serve` runs it (api/cli.py uvicorn_options):
huge or endless request heads, too many headers, bytes no HTTP parser takes. Every answer is
a 4xx problem+json with a request id, and nothing is written.

uvicorn's httptools protocol alone sets no bound on a request head: the first test shows a
1 MB header reaching the app, which is why `yufu serve` runs api/protocol.py.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine

from api.app import create_app
from api.cli import uvicorn_options
from api.protocol import request_head_bytes_max, request_headers_max
from tests.support.db import head_seq
from tests.support.http import ONE_ADDRESS_LIMITS, PROBLEM_JSON, live_server

socket_timeout_s = 10.0
header_bytes_huge = 1_000_000
chunk_bytes = 16 * 1024


@pytest.fixture(scope="module")
def served(engine: Engine) -> Iterator[int]:
    """The port of the app under uvicorn with `yufu serve`'s options."""
    app = create_app(engine, rate_limits=ONE_ADDRESS_LIMITS)
    with live_server(app, uvicorn_options("127.0.0.1", 0)) as url:
        yield int(urlsplit(url).port or 0)


def served_head_seq(port: int) -> int:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        return head_seq(client)


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def exchange(port: int, *parts: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send the parts (a server that refuses may stop reading halfway), then read one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=socket_timeout_s) as sock:
        try:
            for part in parts:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end: its answer is already on the way
        return _read_answer(sock)


def get(path: str = "/v1/health", headers: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n".encode() + headers + b"\r\n"


def assert_refused(answer: tuple[int, dict[str, str], bytes], status: int, code: str,
                   field: str) -> dict[str, Any]:
    got, headers, raw = answer
    assert got == status, raw[:300]
    assert headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = json.loads(raw)
    assert (body["status"], body["code"], body["field"]) == (status, code, field)
    assert body["request_id"] == headers["x-request-id"]
    return body


def test_uvicorn_alone_lets_a_1_mb_header_reach_the_app(engine: Engine) -> None:
    app = create_app(engine, rate_limits=ONE_ADDRESS_LIMITS)
    with live_server(app, {"http": "httptools"}) as url:
        port = int(urlsplit(url).port or 0)
        status, _, _ = exchange(port, get(headers=b"X-Big: " + b"a" * header_bytes_huge +
                                          b"\r\n"))
    assert status == 200


def test_an_ordinary_request_is_served_with_its_request_id(served: int) -> None:
    status, headers, body = exchange(served, get(headers=b"X-Request-Id: pos-1\r\n"))
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert headers["x-request-id"] == "pos-1"


def test_a_head_just_under_the_limit_is_served(served: int) -> None:
    filler = b"a" * (request_head_bytes_max - 200)
    assert exchange(served, get(headers=b"X-Filler: " + filler + b"\r\n"))[0] == 200


@pytest.mark.parametrize("size", [request_head_bytes_max + 1, header_bytes_huge])
def test_a_huge_header_is_431_problem_json(served: int, size: int) -> None:
    before = served_head_seq(served)
    answer = exchange(served, get(headers=b"X-Big: " + b"a" * size + b"\r\n"))
    assert_refused(answer, 431, "headers_too_large", "headers")
    assert served_head_seq(served) == before


def test_a_huge_url_is_431_problem_json(served: int) -> None:
    answer = exchange(served, get("/v1/health?q=" + "a" * header_bytes_huge))
    assert_refused(answer, 431, "headers_too_large", "headers")


def test_too_many_headers_are_431_problem_json(served: int) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(request_headers_max + 1))
    body = assert_refused(exchange(served, get(headers=many)), 431, "headers_too_large",
                          "headers")
    assert str(request_headers_max) in body["detail"]
    fewer = b"".join(b"X-H%d: v\r\n" % i for i in range(request_headers_max - 2))
    assert exchange(served, get(headers=fewer))[0] == 200


def test_a_head_that_never_ends_is_cut_off_within_the_limit_and_a_read(served: int) -> None:
    """Sent a chunk at a time with no end of head: refused without reading it all."""
    chunks = [get()[:-2] + b"X-Endless: "] + \
        [b"a" * chunk_bytes] * (header_bytes_huge // chunk_bytes)
    assert_refused(exchange(served, *chunks), 431, "headers_too_large", "headers")


@pytest.mark.parametrize("raw", [
    get(headers=b"X-Nul: a\x00b\r\n"),
    b"GET /v1/health\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    b"NOT HTTP AT ALL\r\n\r\n",
], ids=["NUL in a header", "raw 0xFF in the path", "no HTTP"])
def test_what_the_parser_refuses_is_400_problem_json(served: int, raw: bytes) -> None:
    assert_refused(exchange(served, raw), 400, "malformed_request", "request")


@pytest.mark.parametrize("path", ["/v1/cards/%00", "/v1/cards/%FF", "/v1/cards/%ED%A0%80"])
def test_hostile_paths_through_the_real_server_are_422(served: int, path: str) -> None:
    assert_refused(exchange(served, get(path)), 422, "invalid_input", "path")


def test_a_refused_head_gets_an_access_log_line(served: int,
                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="yufu.access"):
        answer = exchange(served, get(headers=b"X-Big: " + b"a" * header_bytes_huge + b"\r\n"))
    body = assert_refused(answer, 431, "headers_too_large", "headers")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "yufu.access"]
    assert [(line["request_id"], line["status"], line["client"]) for line in lines] == \
        [(body["request_id"], 431, "127.0.0.1")]
