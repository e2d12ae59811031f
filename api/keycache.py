"""Authenticated keys, kept in memory per worker, and dropped the moment one is revoked.

A revocation inserts a row whose trigger notifies `yufu_key_revoked` at commit (migration
0010). Each worker listens on its own connection and forgets the key on notice; while that
connection is down it trusts no cached key and reads every key from the database, so a
revocation takes effect on the next request in every worker either way.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine

from ledger.auth import Principal, secret_matches, split_key
from ledger.db import queries
from ledger.errors import Unauthorized

log = logging.getLogger("yufu.keys")
# A backstop: a cached key is re-read at least this often even if no notice ever came.
key_cache_ttl_s: Final = 60.0
listen_poll_s: Final = 1.0
listen_retry_s: Final = 1.0
REVOKED_CHANNEL: Final = "yufu_key_revoked"


@dataclass(frozen=True, slots=True)
class _Cached:
    read_at: float
    secret_hash: bytes
    principal: Principal
    expires_at: datetime | None


class KeyCache:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._keys: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self._listening = False
        # Bumped by every forget: a key read from the database before a revocation's notice
        # was handled must not be cached after it (the read may predate the revocation).
        self._generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- authentication ---------------------------------------------------------------
    def cached(self, presented: str) -> Principal | None:
        """The key's principal if it is cached and current (no I/O), else None."""
        prefix, secret = split_key(presented)
        found = self._keys.get(prefix)
        if found is None or not self._listening or \
                time.monotonic() - found.read_at > key_cache_ttl_s:
            return None
        return _checked(found, secret)

    def authenticate(self, presented: str) -> Principal:
        prefix, secret = split_key(presented)
        found = self.cached(presented)
        if found is not None:
            return found
        generation = self._generation
        with self.engine.connect() as conn:
            stored = queries.key_for_prefix(conn, prefix)
        if stored is None or not secret_matches(secret, stored.secret_hash):
            raise Unauthorized("unknown API key")
        if stored.revoked:
            raise Unauthorized("this API key was revoked")
        cached = _Cached(time.monotonic(), stored.secret_hash, stored.principal,
                         stored.expires_at)
        with self._lock:
            if generation == self._generation:
                self._keys[prefix] = cached
        return _checked(cached, secret)

    def forget(self, key_id: int) -> None:
        with self._lock:
            self._generation += 1
            for prefix in [p for p, c in self._keys.items() if c.principal.key_id == key_id]:
                del self._keys[prefix]

    # -- revocation notices -----------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen_loop, name="yufu-keys",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as error:  # the database went away: trust no cached key
                if self._listening:
                    log.warning("key revocation notices lost (%s): reading keys from the "
                                "database until they are back", error)
                self._listening = False
                self._stop.wait(listen_retry_s)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            assert dbapi is not None
            dbapi.autocommit = True
            with dbapi.cursor() as cursor:
                cursor.execute(f"LISTEN {REVOKED_CHANNEL}")
            with self._lock:  # whatever was revoked before we listened is forgotten too
                self._keys.clear()
                self._generation += 1
            self._listening = True
            while not self._stop.is_set():
                if select.select([dbapi], [], [], listen_poll_s)[0]:
                    dbapi.poll()
                    while dbapi.notifies:
                        notice = dbapi.notifies.pop(0)
                        with contextlib.suppress(ValueError):
                            self.forget(int(notice.payload))
        finally:
            self._listening = False
            with contextlib.suppress(Exception):
                raw.invalidate()


def _checked(cached: _Cached, secret: str) -> Principal:
    if not secret_matches(secret, cached.secret_hash):
        raise Unauthorized("unknown API key")
    if cached.expires_at is not None and datetime.now(UTC) >= cached.expires_at:
        raise Unauthorized("this API key has expired")
    return cached.principal
