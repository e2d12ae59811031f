"""The edge's cost per request: the rate limiter's `hit`, and the edge middleware (api/edge.py)
called in a loop around a trivial ASGI app, in this process (no server, no database).

Each figure is the best of --repeats runs of --calls calls, in microseconds per call; the
edge's own cost is its figure less the trivial app's alone. Prints the figures and records
them in docs/benchmarks.md with the machine (--no-write: print only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench  # scripts/bench.py: the machine and the doc writer
from starlette.datastructures import State
from starlette.types import Message, Receive, Scope, Send

from api.accesslog import BatchedLines, access_log
from api.edge import Edge
from api.ratelimit import Limiter, RateLimits
from api.runtime import settle_heap

MARKER = "<!-- edge-bench-runs -->"
HEADING = """## The edge: cost per request (`scripts/bench_edge`)

`scripts/bench_edge` times the rate limiter's `hit` and the edge middleware (api/edge.py:
request id, path and query checks, body limit and JSON check, rate limits, and the access
log through api/accesslog.py's batched handler, to /dev/null) around a trivial ASGI app that
reads the body and answers 201, in one process; the edge's cost is the difference from the
trivial app alone. Best of several runs, microseconds per call, with the garbage collector
set as `yufu serve` sets it (api/runtime.py settle_heap).

"""
limiter_keys_many = 100_000
# A till's sale as scripts/bench sends it (its headers, its body's size and shape).
KEY = "yufu_0123456789abcdef_" + "s" * 43
SALE = json.dumps({"product_id": "p_0123456789abcdef",
                   "consumer": {"external_id": "c0.8444218515250481"}}).encode()
# A consumer's name as a client that escapes all but ASCII sends it: 😀 is a surrogate pair,
# so the edge parses this body and walks it.
SALE_ESCAPED = json.dumps({"product_id": "p_0123456789abcdef",
                           "consumer": {"external_id": "张三 😀"}}).encode()


def http_scope(method: str, path: str, query: bytes, body: bytes) -> Scope:
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {KEY}".encode()),
               (b"content-length", str(len(body)).encode()),
               (b"content-type", b"application/json"),
               (b"idempotency-key", b"pos-2b1c5f0e-8d3a-4d8e-9a51-6c1e8f0b7a42")]
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
            "query_string": query, "headers": headers, "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000), "scheme": "http", "http_version": "1.1",
            "root_path": ""}


async def trivial(scope: Scope, receive: Receive, send: Send) -> None:
    """What any route does at the least: read the body, answer."""
    await receive()
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def per_request_us(app: Callable[[Scope, Receive, Send], Awaitable[None]],
                         scope: Scope, body: bytes, calls: int) -> float:
    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> Message:
        return message

    async def send(_: Message) -> None:
        return None

    started = time.perf_counter()
    for _ in range(calls):
        await app(scope, receive, send)
    return (time.perf_counter() - started) / calls * 1e6


def best_us(repeats: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeats))


def limiter_figures(calls: int, repeats: int) -> dict[str, float]:
    one = Limiter(1e12, 10**9)  # never empties: every hit is the allowed path
    many = Limiter(1e12, 10**9)  # keys_max keys, each hit past it evicts the oldest
    keys = [f"{n:016x}" for n in range(limiter_keys_many + calls)]
    empty = Limiter(1e-9, 1)
    empty.hit("k")

    def timed(call: Callable[[str], object], chosen: list[str]) -> float:
        started = time.perf_counter()
        for key in chosen:
            call(key)
        return (time.perf_counter() - started) / len(chosen) * 1e6

    for key in keys[:limiter_keys_many]:
        many.hit(key)
    return {
        "Limiter.hit, one key (allowed)": best_us(repeats, lambda: timed(one.hit,
                                                                         ["k"] * calls)),
        f"Limiter.hit, {limiter_keys_many:,} keys tracked, a new key each call (evicts)":
            best_us(1, lambda: timed(many.hit, keys[limiter_keys_many:])),
        "Limiter.hit, refused": best_us(repeats, lambda: timed(empty.hit, ["k"] * calls)),
        "Limiter.check": best_us(repeats, lambda: timed(one.check, ["k"] * calls)),
    }


def edge_figures(calls: int, repeats: int) -> dict[str, float]:
    sale = http_scope("POST", "/v1/cards", b"", SALE)
    query = http_scope("GET", "/v1/releases", b"status=pending&bank=ICBC%2DBJ", b"")
    # One key sends every call, far faster than any till: with the default per-key rate the
    # calls past its burst would be 429s. The limiter still runs on every call.
    edge = Edge(trivial, State({"on_request": None}),
                RateLimits(key_rate_per_s=1e12, key_burst=10**9))

    def run(app: Any, scope: Scope, body: bytes) -> float:
        return asyncio.run(per_request_us(app, scope, body, calls))

    figures = {"trivial app alone (baseline)": best_us(repeats, lambda: run(trivial, sale,
                                                                            SALE))}
    access_log.disabled = True
    figures["edge, a till's sale, access log off"] = best_us(repeats, lambda: run(edge, sale,
                                                                                  SALE))
    figures["edge, a sale with escaped non-ASCII (parsed, walked), log off"] = \
        best_us(repeats, lambda: run(edge, sale, SALE_ESCAPED))
    figures["edge, a GET with an escaped query string, log off"] = \
        best_us(repeats, lambda: run(edge, query, b""))
    access_log.disabled = False
    devnull = os.open(os.devnull, os.O_WRONLY)
    handler = BatchedLines(devnull)  # as `yufu serve` has it on stderr (api/accesslog.py)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    figures["edge, a till's sale, access log on (a JSON line, batched)"] = \
        best_us(repeats, lambda: run(edge, sale, SALE))
    access_log.removeHandler(handler)
    handler.flush()
    os.close(devnull)
    return figures


def record(figures: dict[str, float], args: argparse.Namespace) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    baseline = figures["trivial app alone (baseline)"]
    rows = []
    for name, us in figures.items():
        over = f"{us - baseline:.2f}" if name.startswith("edge") else ""
        rows.append(f"| {name} | {us:.2f} | {over} |")
    return (f"### Edge run of {stamp}\n\nMachine: {platform.machine()}, {bench.machine()}. "
            f"Best of {args.repeats} runs of {args.calls:,} calls.\n\n"
            "| what | µs per call | the edge's own µs |\n|---|---|---|\n" + "\n".join(rows) +
            "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    settle_heap()  # the collector as `yufu serve` sets it
    figures = {**limiter_figures(args.calls, args.repeats),
               **edge_figures(args.calls, args.repeats)}
    width = max(map(len, figures))
    for name, us in figures.items():
        print(f"{name:<{width}}  {us:8.2f} µs")
    section = record(figures, args)
    if not args.no_write:
        bench.write_doc(section, MARKER, HEADING)
        print(f"recorded in {bench.ROOT / 'docs' / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
