"""The access log's handler under `yufu serve` (api/accesslog.py): lines gathered, written in
batches by a thread, bounded while nobody reads them."""

from __future__ import annotations

import json
import logging
import os
import select
import time
from collections.abc import Iterator

import pytest

from api.accesslog import (
    BatchedLines,
    access_log,
    access_log_flush_s,
    access_record,
    log_access_to_stderr,
    write_access_line,
)

flushes_waited_max = 20


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    os.close(read_fd)
    os.close(write_fd)


@pytest.fixture
def serve_logging() -> Iterator[None]:
    """The logger as `yufu serve` sets it, put back afterwards for the other tests."""
    before = (list(access_log.handlers), access_log.level, access_log.propagate)
    yield
    access_log.handlers[:] = before[0]
    access_log.setLevel(before[1])
    access_log.propagate = before[2]


def _read_lines(fd: int, count: int) -> list[str]:
    data = b""
    deadline = time.monotonic() + flushes_waited_max * access_log_flush_s
    while data.count(b"\n") < count and time.monotonic() < deadline:
        if select.select([fd], [], [], access_log_flush_s)[0]:
            data += os.read(fd, 65536)
    return data.decode().splitlines()


def _entry(n: int) -> dict[str, object]:
    return access_record(1_765_000_000.5, f"req-{n}", None, "GET", "/v1/health", 200, 0.5,
                         "10.0.0.1")


def test_lines_reach_the_descriptor_within_a_few_flush_intervals_in_order(
        pipe: tuple[int, int], serve_logging: None) -> None:
    handler = BatchedLines(pipe[1])
    access_log.handlers[:] = [handler]
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    for n in range(5):
        write_access_line(_entry(n))
    lines = _read_lines(pipe[0], 5)
    assert [json.loads(line)["request_id"] for line in lines] == [f"req-{n}" for n in range(5)]
    assert json.loads(lines[0]) == {
        "time": "2025-12-06T05:46:40.500Z", "request_id": "req-0", "key_id": None,
        "role": None, "method": "GET", "route": "/v1/health", "status": 200,
        "latency_ms": 0.5, "client": "10.0.0.1"}


def test_lines_past_the_bound_are_dropped_and_counted(pipe: tuple[int, int]) -> None:
    handler = BatchedLines(pipe[1], lines_waiting_max=3)
    for n in range(5):
        handler.add(json.dumps(_entry(n)))
    handler.flush()  # what logging does at exit: at once, not on the thread's next round
    lines = _read_lines(pipe[0], 4)
    assert [json.loads(line).get("request_id") for line in lines[:3]] == \
        ["req-0", "req-1", "req-2"]
    assert json.loads(lines[3]) == {"access_log_lines_dropped": 2}
    handler.add("after")
    handler.flush()
    assert _read_lines(pipe[0], 1) == ["after"]


def test_a_record_logged_the_ordinary_way_is_written_too(pipe: tuple[int, int]) -> None:
    handler = BatchedLines(pipe[1])
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(logging.LogRecord("yufu.access", logging.INFO, __file__, 1, "a line", (),
                                     None))
    handler.flush()
    assert _read_lines(pipe[0], 1) == ["a line"]


def test_a_closed_descriptor_loses_the_lines_quietly(serve_logging: None) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    handler = BatchedLines(write_fd)
    handler.add("nobody reads this")
    handler.flush()  # EPIPE: no exception
    os.close(write_fd)
    assert handler.lines == []


def test_serve_sets_one_batched_handler_however_often_asked(serve_logging: None) -> None:
    log_access_to_stderr()
    log_access_to_stderr()
    assert [type(h) for h in access_log.handlers if isinstance(h, BatchedLines)] == \
        [BatchedLines]
    assert access_log.isEnabledFor(logging.INFO) and not access_log.propagate
