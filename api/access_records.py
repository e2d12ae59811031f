"""Records of reads by banks and regulators: who read what, kept in `access_records`.

Reads are not journal entries (they change nothing), but a custody platform must be able to
say who looked at a merchant's books or a consumer's card. The edge hands every answered
request to `AccessRecorder.note`; reads by bank and regulator keys are queued and written by
a thread of their own in small batches, so a read never waits for its record. Records still
queued when the process dies are lost: the access log line (stderr) has them too.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Engine

from ledger.db import queries

log = logging.getLogger("yufu.access")
RECORDED_ROLES: Final = frozenset({"bank", "regulator"})
RECORDED_METHODS: Final = frozenset({"GET", "HEAD"})
flush_interval_s: Final = 0.5
flush_rows_max: Final = 500
# Beyond this many waiting records (the database is down), new ones are dropped and counted.
queued_records_max: Final = 100_000
path_chars_max: Final = 500
query_chars_max: Final = 1000


class AccessRecorder:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(queued_records_max)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def note(self, record: Mapping[str, Any], scope: Mapping[str, Any]) -> None:
        """Called for every answered request (api/edge.py); keeps the reads of banks and
        regulators, with the resource asked for (the scope's path and query)."""
        if record.get("role") not in RECORDED_ROLES or record.get("method") not in \
                RECORDED_METHODS or record.get("key_id") is None:
            return
        row = {"request_id": str(record.get("request_id", ""))[:64],
               "key_id": int(record["key_id"]), "role": str(record["role"]),
               "method": str(record["method"]), "route": str(record.get("route", ""))[:200],
               "path": str(scope.get("path", ""))[:path_chars_max],
               "query": bytes(scope.get("query_string", b"")).decode("latin-1")[
                   :query_chars_max],
               "status": int(record.get("status", 0))}
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="yufu-access", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        failing = False  # said once while the database is away, not every interval
        while not self._stop.wait(flush_interval_s):
            try:
                written = self.flush()
            except Exception as error:  # the database is away: keep the rows, try again
                if not failing:
                    log.warning("records of access not written yet (%s): kept, and tried "
                                "again until the database takes them", " ".join(
                                    str(error).split())[:200])
                failing = True
                continue
            if failing and written:
                log.warning("records of access written again")
                failing = False

    def flush(self) -> int:
        rows: list[dict[str, Any]] = []
        while len(rows) < flush_rows_max:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if rows:
            try:
                with self.engine.begin() as conn:
                    queries.write_access_records(conn, rows)
            except Exception:
                for row in rows:  # put back, in order, what could not be written
                    try:
                        self._queue.put_nowait(row)
                    except queue.Full:
                        self.dropped += 1
                raise
        return len(rows)
