"""uvicorn's HTTP/1.1 protocol (httptools), with a bound on the request head.

httptools keeps every byte of a request's URL and headers until the head ends, and uvicorn
sets no limit of its own for it (only for h11, which is slower): a 20 MB header or 200,000
headers reached the app (tests/api/test_serve_limits.py shows it). Here a head over the
limits is answered 431, a request httptools cannot parse 400, both as problem+json with a
request id and an access-log line, and the connection is closed. `yufu serve` runs this.
"""

from __future__ import annotations

import json
import time

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api import problems
from api.accesslog import log_refusal
from api.edge import new_request_id

# The request line and headers together; what most servers allow (nginx: 4 x 8 KiB buffers).
request_head_bytes_max = 32 * 1024
request_headers_max = 100


class _HeadRefused(Exception):
    """Raised in a parser callback: httptools stops and reports a parser error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    # A request's head has begun and not ended; the bytes received for it since the chunk in
    # which it began (that chunk is at most one read, so memory stays within the limit and a
    # read). A complete head is measured exactly in on_headers_complete.
    _head_open = False
    _head_bytes = 0
    _refusal: tuple[int, str] | None = None  # status, detail

    def data_received(self, data: bytes) -> None:
        if self._head_open:
            self._head_bytes += len(data)
            if self._head_bytes > request_head_bytes_max:
                self._refuse(431, self._head_too_large())
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        # Counted here, once, not per header: until the head ends, the bytes bound it.
        self._head_open = False
        if len(self.headers) > request_headers_max:
            self._refusal = (431, f"a request carries at most {request_headers_max} headers")
            raise _HeadRefused
        if len(self.url) + sum(len(n) + len(v) for n, v in self.headers) > \
                request_head_bytes_max:
            self._refusal = (431, self._head_too_large())
            raise _HeadRefused
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error (ours included): problem+json, not text."""
        status, detail = self._refusal or (400, "the request is not valid HTTP/1.1")
        self._refusal = None
        self._refuse(status, detail)

    def _head_too_large(self) -> str:
        return f"the request line and headers are limited to {request_head_bytes_max} bytes"

    def _refuse(self, status: int, detail: str) -> None:
        started_s = time.time()
        request_id = new_request_id()
        code, title, field = (("headers_too_large", "Request headers too large", "headers")
                              if status == 431 else
                              ("malformed_request", "Malformed request", "request"))
        body = json.dumps(problems.problem_body(problems.ProblemType(status, code, title),
                                                detail, field, request_id)).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: ", problems.PROBLEM_JSON.encode(), b"\r\n",
                 b"content-length: ", str(len(body)).encode(), b"\r\n",
                 b"x-request-id: ", request_id.encode(), b"\r\n",
                 b"connection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()
        log_refusal(started_s, request_id, status, self.client[0] if self.client else "unknown")
