"""Long jobs over HTTP (ledger/jobs.py): each slice handed to the writer as a write of its
own, so tills' writes are served between two; a small job answered at once, a big one with
202 and the job to poll (`GET /v1/jobs/{id}`), carried on in the background.

A job's steps are a generator of commands (e.g. `ledger.flows.imports.import_steps`): here
they run on the event loop, each awaited on the writer, never on a thread of their own.
The request's Idempotency-Key keeps the answer it was given first (`Answer`): the job's own
slices go without one, each finding in the books where the job stands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import date
from typing import Any, NamedTuple

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine, text

from api.context import context_of, idempotency_key_of, write
from api.metrics import observe_slices
from api.problems import ledger_problem
from api.profiles import profile_named
from ledger import limits
from ledger.auth import Principal, Role
from ledger.bank.profile import BankProfile
from ledger.bank.statements import read_file
from ledger.commands import Command
from ledger.db import job_queries
from ledger.db.group_commit import Seen, prefetch_idempotency
from ledger.db.writer import Writer, WriteRequest, request_fingerprint
from ledger.errors import Busy, DatabaseUnavailable, IdempotencyConflict, LedgerError
from ledger.flows.closure import closure_steps
from ledger.flows.imports import (
    StageImport,
    import_slice_lines_max,
    import_slice_lines_min,
    import_steps,
)
from ledger.flows.sweeps import auto_confirm_steps, release_steps
from ledger.jobs import Answer, FailJob, Finished, Job, JobKind, SliceSizes, Step, next_step

log = logging.getLogger("yufu.jobs")
slice_rest_per_slice = 2  # after a slice, the job waits this many times as long as it took
NS_PER_S = 1_000_000_000


class JobRunner:
    """The jobs this worker carries on in the background, kept so that none is collected
    half done and all stop with the service (a job stopped resumes: ledger/jobs.py)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[dict[str, Any]]] = set()

    def carry_on(self, writer: Writer, principal: Principal, steps: Step,
                 command: Command, job: JobAt) -> None:
        task = asyncio.create_task(_logged(run_job(writer, principal, steps, command, job)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @contextlib.asynccontextmanager
    async def running(self, engine: Engine, writer: Writer,
                      profiles: Mapping[str, BankProfile]) -> AsyncIterator[None]:
        """While the service runs: the jobs a stop interrupted resumed, in the background;
        at its stop, every job this worker carries on stopped (to resume on the next)."""
        resuming = asyncio.create_task(resume_jobs(engine, writer, profiles))
        try:
            yield
        finally:
            resuming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await resuming
            await self.stop()

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _logged(running: Any) -> dict[str, Any]:
    try:
        body: dict[str, Any] = await running
    except asyncio.CancelledError:
        raise
    except Exception:  # the job stays running, and resumes when sent again or on start
        log.exception("a long job stopped; it resumes when sent again or on the next start")
        return {}
    return body


async def run_steps(writer: Writer, principal: Principal, steps: Step, command: Command,
                    counted: tuple[int, int] | None = None) -> dict[str, Any]:
    """Run `command` and the steps after it, each a write of its own; the last answer.
    `counted`: the slices and units of the job already counted in the metrics."""
    following: Command | Finished = command
    while not isinstance(following, Finished):
        started_ns = time.perf_counter_ns()
        answer = await slice_of(writer, principal, following)
        following = next_step(steps, answer)  # which may add the answer's `progress`
        counted = _count(answer.get("progress"), counted, "job" in answer)
        if writer.queue_depth() > 0:
            # Others are writing: the job rests as long as its slice took, so their writes,
            # and their answers on this event loop, get at least as much of the service as
            # the job does. Alone, it goes on at once.
            await asyncio.sleep((time.perf_counter_ns() - started_ns) * slice_rest_per_slice
                                / NS_PER_S)
    return following.answer


def import_slices(writer: Writer, least: int = import_slice_lines_min,
                  most: int = import_slice_lines_max) -> SliceSizes:
    """An import's slices on this writer: the least whenever another write (a till's, any)
    came since the job's last slice was sent, or waits in the queue; growing while none
    does. The queue alone would miss a till's write the appender took into a batch in the
    moment between two slices."""
    return SliceSizes(least, most, OthersWriting(writer))


class OthersWriting:
    """Whether writes other than the job's own came to the writer since the last asking: the
    job sends one write (its slice) between two askings."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.seen = writer.submitted

    def __call__(self) -> bool:
        now, before = self.writer.submitted, self.seen
        self.seen = now
        return now - before > 1 or self.writer.queue_depth() > 0


class JobAt(NamedTuple):
    job_id: int
    counted: tuple[int, int] | None = None  # its slices and units already in the metrics


async def run_job(writer: Writer, principal: Principal, steps: Step, command: Command,
                  job: JobAt) -> dict[str, Any]:
    """`run_steps` for `job`: a slice refused for good (a typed domain error) ends the
    job `failed`, with the problem in its result, so that a poller learns it and no start
    resumes it; then the refusal goes on up. An outage (the database away, the writer
    full) leaves it running: it resumes when sent again or on the next start."""
    try:
        return await run_steps(writer, principal, steps, command, job.counted)
    except (DatabaseUnavailable, Busy):
        raise
    except LedgerError as refused:
        problem = json.loads(bytes(ledger_problem(refused).body))
        await slice_of(writer, principal, FailJob(job.job_id, problem))
        raise


def _count(progress: dict[str, Any] | None, counted: tuple[int, int] | None,
           first: bool) -> tuple[int, int] | None:
    """Count in the metrics the slices `progress` shows beyond `counted`. A job's first
    answer (an import's stage) is where it stood: slices before a resume are not counted
    again."""
    if progress is None:
        return counted
    now = (progress["slices"], progress["done"])
    if counted is None:
        counted = now if first else (0, 0)
    observe_slices(progress["kind"], now[0] - counted[0], now[1] - counted[1])
    return now


async def slice_of(writer: Writer, principal: Principal, command: Command) -> dict[str, Any]:
    """One step of a job as its own group commit, without an Idempotency-Key."""
    pending = WriteRequest(command, 200, principal.key_id, None, None, principal.actor)
    outcome = await asyncio.wait_for(asyncio.wrap_future(writer.submit(pending)),
                                     timeout=limits.request_timeout_s)
    return outcome.body


async def answer_job(request: Request, who: Principal, steps: Step, slice_max: int,
                     status_code: int = 201) -> JSONResponse:
    """All the steps now and their answer; or, where the first step starts (or finds) a job
    with more than `slice_max` left to do, 202 with the job, and the rest in the background.
    A slice refused for good ends the job `failed` (`run_job`)."""
    ctx = context_of(request)
    replayed = await _answered_before(request, who)
    if replayed is not None:  # a retry: its steps would find everything done, or refuse
        steps.close()
        return replayed
    first = next(steps)
    staged = await slice_of(ctx.writer, who, first)
    command = next_step(steps, staged)
    if isinstance(command, Finished):  # nothing to do (a file imported before)
        return await write(request, who, Answer(command.answer), status_code)
    job, progress = staged["job"], staged["progress"]
    counted = (progress["slices"], progress["done"])
    if progress["total"] - progress["done"] <= slice_max:
        body = await run_job(ctx.writer, who, steps, command, JobAt(job["job_id"], counted))
        return await write(request, who, Answer(body), status_code)
    request.app.state.jobs.carry_on(ctx.writer, who, steps, command,
                                    JobAt(job["job_id"], counted))
    answer = await write(request, who, Answer(job), 202)
    answer.headers["Location"] = f"/v1/jobs/{job['job_id']}"
    return answer


async def _answered_before(request: Request, who: Principal) -> JSONResponse | None:
    """The first answer kept under the request's Idempotency-Key, if there is one (read, not
    written: the last step's `Answer` writes it, and a retry racing it still writes once)."""
    key = idempotency_key_of(request)
    if key is None:
        return None
    fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
    asked = WriteRequest(Answer({}), 200, who.key_id, key, fingerprint)
    engine = context_of(request).engine

    def read() -> Seen:
        with engine.connect() as conn:
            return prefetch_idempotency(conn, [asked])

    seen = (await run_in_threadpool(read)).get((who.key_id, key))
    if seen is None:
        return None
    first_hash, first = seen
    if first_hash != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was used before with a different "
                                  "request", field="Idempotency-Key")
    headers = {"Idempotent-Replayed": "true"}
    if first.status_code == 202:
        headers["Location"] = f"/v1/jobs/{first.body['job_id']}"
    return JSONResponse(first.body, status_code=first.status_code, headers=headers)


# An advisory lock (session level) that one worker holds while it resumes the jobs a stop
# interrupted: with several workers, one resumes them (a slice applies once in any case, see
# ledger/jobs.py; the lock saves the others the work).
RESUME_LOCK_KEY = 0x59554655_0012  # "YUFU", migration 0012


async def resume_jobs(engine: Engine, writer: Writer,
                      profiles: Mapping[str, BankProfile] | None = None) -> int:
    """Carry on every job a stop interrupted, one after the other, as if it were sent again
    (it finds its job and goes on): an import from its stored file, a closure by its
    merchant, a release run or sweep by its date. The number resumed; none if another worker
    holds the lock."""
    with engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                            {"k": RESUME_LOCK_KEY}).scalar_one():
            return 0
        try:
            jobs = job_queries.running(conn)
            conn.commit()
            for job in jobs:
                # As the operator: who started it may have been a bank's key, since revoked.
                who = Principal(job.created_by, Role.operator)
                try:
                    steps = await _steps_of(conn, writer, who, job, profiles or {})
                except LedgerError as refused:
                    # Its file no longer reads (a profile since removed, say): that job
                    # ends failed, saying why, and the others still resume.
                    conn.rollback()
                    problem = json.loads(bytes(ledger_problem(refused).body))
                    await _logged(slice_of(writer, who, FailJob(job.id, problem)))
                    continue
                conn.commit()
                await _logged(run_job(writer, who, steps, next(steps), JobAt(job.id)))
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RESUME_LOCK_KEY})
            conn.commit()
    return len(jobs)


async def _steps_of(conn: Connection, writer: Writer, who: Principal, job: Job,
                    profiles: Mapping[str, BankProfile]) -> Step:
    """The steps of an interrupted job, from what its row keeps."""
    if job.kind is JobKind.closure:
        return closure_steps(who, job.key)
    if job.kind is JobKind.release_run:
        return release_steps(who, date.fromisoformat(job.state["as_of"]),
                             job.state["merchant_id"])
    if job.kind is JobKind.auto_confirm:
        return auto_confirm_steps(who, date.fromisoformat(job.state["as_of"]))
    filename, data = job_queries.statement_file(conn, job.state["file_id"])
    # Read as it was the first time: by the profile it was named, or by its header.
    named = profile_named(profiles, job.state.get("profile") or "")
    parsed = await asyncio.to_thread(read_file, data, filename or None, named,
                                     tuple(profiles.values()))
    return import_steps(StageImport(who, job.state["bank_id"], filename, data,
                                    date.fromisoformat(job.state["today"]), parsed,
                                    profile=job.state.get("profile")),
                        import_slices(writer))
