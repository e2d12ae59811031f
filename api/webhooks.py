"""Webhook deliveries of alerts (预警推送): a background worker of `yufu serve`.

Every alert a subscription's department or street covers becomes a delivery row; the worker
POSTs each due one to its URL, signed with HMAC-SHA-256 over the exact body with the
subscription's secret (`X-Yufu-Signature: sha256=<hex>`), and records every attempt (count,
the receiver's status or the error): a 2xx answer delivers it, anything else retries after
a backoff that doubles, until `webhook_attempts_max` attempts (then `failed`). Nothing is
sent inside a write's transaction: an alert is committed first, delivered after.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine

from ledger.db import supervision_queries as deliveries

log = logging.getLogger("yufu.webhooks")
webhook_poll_interval_s = 5.0  # how often `yufu serve`'s worker looks for due deliveries
webhook_timeout_s = 10.0  # one attempt's connect and read
webhook_batch_max = 50  # deliveries one pass sends
SIGNATURE_HEADER = "X-Yufu-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(delivery: dict[str, Any]) -> bytes:
    return json.dumps({"delivery_id": delivery["delivery_id"], "alert": delivery["alert"]},
                      ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def attempt(client: httpx.Client, delivery: dict[str, Any]) -> tuple[int | None, str | None]:
    body = body_of(delivery)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(
        delivery["secret"], body), "X-Yufu-Delivery": str(delivery["delivery_id"])}
    try:
        response = client.post(delivery["url"], content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    ok = 200 <= response.status_code < 300
    return response.status_code, None if ok else f"answered {response.status_code}"


def deliver_due(engine: Engine, now: datetime | None = None,
                client: httpx.Client | None = None) -> list[dict[str, Any]]:
    """One pass: schedule what new alerts call for, then try every due delivery once, each
    attempt recorded in its own transaction. Returns what was tried."""
    at = now or datetime.now(UTC)
    with engine.begin() as conn:
        deliveries.schedule_deliveries(conn, at)
    tried = []
    own = client is None
    http = client or httpx.Client(timeout=webhook_timeout_s, follow_redirects=False)
    try:
        for _ in range(webhook_batch_max):
            # One delivery a transaction: its row locked while it is tried (another worker
            # skips it), its attempt committed before the next.
            with engine.begin() as conn:
                due = deliveries.due_deliveries(conn, at, 1)
                if not due:
                    break
                delivery = due[0]
                answer, error = attempt(http, delivery)
                status = deliveries.record_attempt(conn, deliveries.Attempt(
                    delivery["delivery_id"], delivery["attempts"] + 1, answer, error), at)
            tried.append({"delivery_id": delivery["delivery_id"], "status": status,
                          "answer": answer, "error": error})
    finally:
        if own:
            http.close()
    return tried


async def run_worker(engine: Engine, interval_s: float) -> None:
    """`yufu serve`'s loop: a pass every `interval_s`, off the event loop."""
    while True:
        try:
            await asyncio.to_thread(deliver_due, engine)
        except Exception:  # a database outage: the next pass tries again; logged, not lost
            log.exception("webhook delivery pass failed")
        await asyncio.sleep(interval_s)
