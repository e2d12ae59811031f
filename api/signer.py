"""The tree-head signer: on demand (POST /v1/audit/tree-heads) and on an interval.

Signing is a write, so it goes through the appender like any other (ledger/audit_service.py
says why it journals nothing). The interval loop signs only when the journal has grown: the
command returns the latest head unchanged otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import audit, limits
from ledger.audit_service import SignTreeHead
from ledger.db.writer import Writer, WriteRequest
from ledger.errors import Refused

log = logging.getLogger("yufu.signer")


@dataclass(frozen=True)
class TreeHeadSigner:
    key: Ed25519PrivateKey
    # None: sign on demand only (an app made without a configured key, as in tests).
    interval_s: float | None = limits.tree_head_interval_s

    @property
    def key_id(self) -> str:
        return audit.key_id(self.key.public_key())

    def public_view(self) -> dict[str, Any]:
        return {"algorithm": "Ed25519", "key_id": self.key_id,
                "public_key_pem": audit.public_key_pem(self.key.public_key())}

    def command(self) -> SignTreeHead:
        return SignTreeHead(self.key)

    async def sign(self, writer: Writer) -> dict[str, Any] | None:
        """Sign a head now if the journal grew; None while the journal is empty."""
        future = writer.submit(WriteRequest(self.command(), status_code=200))
        try:
            outcome = await asyncio.wait_for(asyncio.wrap_future(future),
                                             timeout=limits.request_timeout_s)
        except Refused:
            return None
        return outcome.body

    async def run(self, writer: Writer) -> None:
        """Sign every interval until cancelled; a failure is logged and retried next time."""
        assert self.interval_s is not None
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                body = await self.sign(writer)
            except Exception:
                log.exception("signing a tree head failed; retrying at the next interval")
                continue
            if body is not None and body["created"]:
                log.info("signed tree head %s", body["tree_size"])
