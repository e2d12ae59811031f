"""Health, readiness and metrics (docs/reliability.md, "Observing the service")."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any, Final

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api import metrics, problems
from api.context import Authed, context_of
from api.openapi import keyed_read, open_read
from api.schemas import Health, Ready
from ledger.access import require_overseer
from ledger.db import health_queries, queries

router = APIRouter(prefix="/v1")
metrics_router = APIRouter()
log = logging.getLogger("yufu.api")


@router.get("/health", response_model=Health, **open_read())
def health(request: Request) -> dict[str, Any]:
    """Alive: the process answers and can read the chain head."""
    with context_of(request).engine.connect() as conn:
        seq, entry_hash = queries.chain_head(conn)
    return {"status": "ok", "journal_head_seq": seq, "journal_head_hash": entry_hash.hex()}


@cache
def code_revision() -> str | None:
    """The migrations' head in this code (one, the history is linear)."""
    from api.runtime import alembic_config

    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


NOT_READY: Final = problems.ProblemType(503, "not_ready", "Not ready")
CHECK_FAILED = {"database": "not reachable within the statement timeout",
                "migrations": "the database's migration is not this code's head",
                "writer": "the writer is not running"}


@router.get("/ready", response_model=Ready, **open_read(503))
def ready(request: Request) -> JSONResponse:
    """Can writes succeed: the database reachable, its migrations this code's, the writer
    running. 200 with the three checks if all hold, else 503 not_ready, its `errors` naming
    the ones that failed. Open, as /health is: it says nothing of anybody's data."""
    ctx = context_of(request)
    database = migrations = False
    try:
        with ctx.engine.begin() as conn:
            revision = health_queries.database_revision(conn)
        database = True
        migrations = revision is not None and revision == code_revision()
    except Exception as error:  # unreachable, or too slow: not ready
        log.warning("readiness: the database check failed: %s", type(error).__name__)
    checks = {"database": database, "migrations": migrations, "writer": ctx.writer.running}
    failed = [name for name, passed in checks.items() if not passed]
    if failed:
        return problems.problem(NOT_READY, f"not ready: {', '.join(failed)}", errors=[
            {"field": name, "reason": CHECK_FAILED[name]} for name in failed],
            errors_count=len(failed))
    return JSONResponse({"status": "ready", "checks": checks})


@metrics_router.get("/metrics", include_in_schema=False, **keyed_read())
async def metrics_page(request: Request, who: Authed) -> Response:
    """The Prometheus page, for the operator's and regulators' keys: counts and times of the
    whole service, no label naming a merchant, bank, key or card (api/metrics.py)."""
    require_overseer(who)
    ctx = context_of(request)
    body = await run_in_threadpool(metrics.render, ctx.engine, ctx.writer)
    return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)
