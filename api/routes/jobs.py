"""Long jobs (ledger/jobs.py): the job a 202 answer names, to poll."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from api.context import Authed, context_of
from api.openapi import keyed_read
from api.schemas import JobView
from ledger.access import require_job_reader, require_job_role
from ledger.db import job_queries
from ledger.errors import NotFound

router = APIRouter(prefix="/v1")
JobId = Annotated[int, Path(ge=1, le=2 ** 63 - 1)]


@router.get("/jobs/{job_id}", response_model=JobView, **keyed_read(404))
def get_job(request: Request, job_id: JobId, who: Authed) -> dict[str, Any]:
    """A long job: its kind, status and progress, and its answer once done."""
    require_job_role(who)  # before the id is looked at: roles answer first
    missing = NotFound(f"job {job_id} does not exist", field="job_id")
    with context_of(request).engine.connect() as conn:
        job = job_queries.job(conn, job_id)
    if job is None:
        raise missing
    require_job_reader(who, job.kind, job.state.get("bank_id"), missing)
    return job.view()
