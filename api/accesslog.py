"""The access log: one JSON line per request on the logger `yufu.access` (api/edge.py writes
them; api/protocol.py for requests refused before any app), and under `yufu serve` a handler
that puts them on stderr in batches.

Why batches: a write to stderr releases the interpreter lock for the system call, and the
event loop then waits for the appender's thread to hand it back (up to the 5 ms switch
interval). A write per request, with the same stall from uuid4's os.urandom (api/edge.py),
cost scripts/bench's `single` scenario 15-20% on this machine (docs/benchmarks.md). The event
loop now only formats and appends the line; a thread writes what gathered every
access_log_flush_s.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any

from ledger.auth import Principal

access_log = logging.getLogger("yufu.access")
# How long a line may wait to be written, and how many may wait (stderr blocked: a full pipe,
# a stopped reader); past that the newest are dropped, and counted in a line of their own.
access_log_flush_s = 0.2
access_log_lines_waiting_max = 100_000


def access_record(started_s: float, request_id: str, principal: Principal | None,
                  method: str | None, route: str | None, status: int,
                  latency_ms: float | None, client: str) -> dict[str, Any]:
    # strftime and the milliseconds by hand: half the cost of datetime's isoformat.
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started_s))
    return {"time": f"{stamp}.{int(started_s * 1000) % 1000:03d}Z",
            "request_id": request_id,
            "key_id": principal.key_id if principal is not None else None,
            "role": principal.role.value if principal is not None else None,
            "method": method, "route": route, "status": status, "latency_ms": latency_ms,
            "client": client}


def write_access_line(entry: dict[str, Any]) -> None:
    """The record as one JSON line (ASCII: a path as sent may hold anything). Under `yufu
    serve` the line goes straight to its one handler: a LogRecord and the handler's
    machinery cost about as much again as the line itself. Anywhere else (a test's capture,
    a handler of the operator's own) it goes through logging, made here rather than by
    Logger.info, which walks the stack for a caller no line shows."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    handlers = access_log.handlers
    if len(handlers) == 1 and type(handlers[0]) is BatchedLines and not access_log.propagate:
        handlers[0].add(json.dumps(entry))
        return
    access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, __file__, 0,
                                            json.dumps(entry), (), None))


def log_refusal(started_s: float, request_id: str, status: int, client: str) -> None:
    """An access-log line for a request refused before any app saw it (api/protocol.py): no
    key, method, route or latency is known for it."""
    if access_log.isEnabledFor(logging.INFO):
        write_access_line(access_record(started_s, request_id, None, None, None, status, None,
                                        client))


class BatchedLines(logging.Handler):
    """Formatted lines gathered in memory and written to a file descriptor by a daemon thread
    every access_log_flush_s (and by flush(), which logging calls at exit)."""

    def __init__(self, fd: int, lines_waiting_max: int = access_log_lines_waiting_max) -> None:
        super().__init__()
        self.fd, self.lines_waiting_max = fd, lines_waiting_max
        self.lines: list[str] = []
        self.dropped = 0
        threading.Thread(target=self._write_every, name="yufu-access-log", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:  # under the handler's lock
        self.add(self.format(record))

    def add(self, line: str) -> None:
        with self.lock:  # type: ignore[union-attr]  # Handler.__init__ made it
            if len(self.lines) < self.lines_waiting_max:
                self.lines.append(line)
            else:
                self.dropped += 1

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # Handler.__init__ made it
            lines, self.lines, dropped, self.dropped = self.lines, [], self.dropped, 0
        if dropped:
            lines.append(json.dumps({"access_log_lines_dropped": dropped}))
        if lines:
            self._write(("\n".join(lines) + "\n").encode())

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError:  # stderr closed: nobody can read these lines
            pass

    def _write_every(self) -> None:
        while True:
            time.sleep(access_log_flush_s)
            self.flush()


def log_access_to_stderr() -> None:
    """`yufu serve`: the access log as bare JSON lines on stderr (once per process)."""
    if any(isinstance(handler, BatchedLines) for handler in access_log.handlers):
        return
    sys.stderr.flush()
    handler = BatchedLines(sys.stderr.fileno())
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
