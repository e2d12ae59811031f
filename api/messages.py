"""Sending one-time codes to consumers: pluggable.

- `OutboxSender` (development, the default): appends each message as a JSON line to
  `YUFU_HOME/outbox.jsonl` (mode 0600), which an operator reads with `yufu outbox`.
- `WebhookSender` (production): POSTs `{"to", "channel", "text", "kind"}` as JSON to an SMS
  gateway's webhook (`YUFU_SMS_WEBHOOK_URL`), signed with HMAC-SHA256 over the body under
  `YUFU_SMS_WEBHOOK_SECRET` in the `X-Yufu-Signature` header, so the gateway can tell our
  messages from anyone else's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from ledger.errors import Busy

webhook_timeout_s: Final = 10.0
OUTBOX_FILE_NAME: Final = "outbox.jsonl"


class MessageSender(Protocol):
    """`channel`: "phone" (`to` is a mobile number, 11 digits) or "external" (`to` is an id
    the gateway resolves to its own channel)."""

    def send(self, to: str, text: str, channel: str = "phone") -> None: ...


@dataclass
class OutboxSender:
    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, to: str, text: str, channel: str = "phone") -> None:
        line = json.dumps({"ts": datetime.now(UTC).isoformat(), "to": to, "channel": channel,
                           "text": text}, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            # Created 0600: the outbox holds phone numbers and live codes.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                out.write(line)


@dataclass(frozen=True)
class WebhookSender:
    url: str
    secret: bytes

    def send(self, to: str, text: str, channel: str = "phone") -> None:
        body = json.dumps({"to": to, "channel": channel, "text": text,
                           "kind": "one_time_code"}, ensure_ascii=False).encode()
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Yufu-Signature": f"sha256={signature}"})
        try:
            with urllib.request.urlopen(request, timeout=webhook_timeout_s) as answer:
                answer.read()
        except OSError as error:
            raise Busy("the message gateway did not take the code: ask again shortly") from error


def read_outbox(path: Path, to: str | None = None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    messages = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    return [m for m in messages if to is None or m["to"] == to]


def sender_from_environment(home: Path) -> MessageSender:
    url = os.environ.get("YUFU_SMS_WEBHOOK_URL")
    if url:
        secret = os.environ.get("YUFU_SMS_WEBHOOK_SECRET", "")
        if not secret:
            raise SystemExit("YUFU_SMS_WEBHOOK_URL needs YUFU_SMS_WEBHOOK_SECRET")
        return WebhookSender(url, secret.encode())
    return OutboxSender(home / OUTBOX_FILE_NAME)
