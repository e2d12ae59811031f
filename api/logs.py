"""The service's own log lines as JSON, one a line, on stderr under `yufu serve`.

Every logger under `yufu` (the writer, the signer, the API's errors, the start and stop
lines) goes through the access log's batched handler (api/accesslog.py), so its lines and
the access lines never interleave mid-line; each line carries the request id of the request
it was logged in (the edge sets it, api/edge.py), null outside one (the writer's thread, a
job). The access lines keep their own shape (api/accesslog.py): they are already JSON.
"""

from __future__ import annotations

import json
import logging
import time

from api.accesslog import BatchedLines, access_log, log_access_to_stderr
from api.problems import REQUEST_ID

service_log = logging.getLogger("yufu")


class JsonLines(logging.Formatter):
    """A record as one JSON line: time, level, logger, message, request_id, and the
    exception's traceback when there is one. An access line passes as it is."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == access_log.name:
            return record.getMessage()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = {"time": f"{stamp}.{int(record.msecs):03d}Z", "level": record.levelname,
                "logger": record.name, "message": record.getMessage(),
                "request_id": REQUEST_ID.get()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def log_service_to_stderr() -> None:
    """`yufu serve`: the `yufu` loggers' lines as JSON on stderr, through the access log's
    batched handler (once per process)."""
    log_access_to_stderr()
    handler = next(h for h in access_log.handlers if isinstance(h, BatchedLines))
    handler.setFormatter(JsonLines())
    if handler not in service_log.handlers:
        service_log.addHandler(handler)
    service_log.setLevel(logging.INFO)
    service_log.propagate = False
