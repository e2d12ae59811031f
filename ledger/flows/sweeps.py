"""The release run and the auto-confirmation sweep as jobs (ledger/jobs.py), in slices: each
slice is one command and one group commit over at most `release_slice_merchants_max`
merchants or `auto_confirm_slice_consumptions_max` consumptions, so tills' writes get the
writer between two.

- `StartSweep` starts the job, keyed by the run's date (and merchant, if it names one) or
  the sweep's date, with its total: the active merchants (one, for a merchant) or the
  consumptions due. Sent again while the job runs, it finds it and answers where it stands:
  so a run sent again, or resumed on the service's start, goes on. A job over (done, failed)
  is begun again: a new run of the same date finds what the first did and skips it.
- `SweepSlice` runs the next slice (`RunReleases` or `AutoConfirm` over at most its units),
  only if the job stands where it starts (`is_next`): never twice. The job's state keeps
  what the slices found, and the last slice ends the job with the answer the one-command run
  gave: {"as_of", "releases"} or {"as_of", "confirmed"}.

Either way nothing is done twice: a merchant's period is released once (`release_exists`),
and a consumption confirmed is no longer due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.access import require_operator
from ledger.auth import Principal
from ledger.commands import Books, Command
from ledger.flows.consumption import AutoConfirm
from ledger.flows.releases import RunReleases
from ledger.flows.supervision import SuperviseMerchants
from ledger.jobs import Job, JobKind, JobStatus, Step, is_next

release_slice_merchants_max = 50  # merchants a slice of the release run instructs
auto_confirm_slice_consumptions_max = 200  # consumptions a slice of the sweep confirms
supervision_slice_merchants_max = 50  # merchants a slice of the supervision sweep assesses
FOUND = {JobKind.release_run: "releases", JobKind.auto_confirm: "confirmed",
         JobKind.supervision_sweep: "assessed"}


@dataclass(frozen=True)
class StartSweep(Command):
    principal: Principal
    kind: JobKind  # release_run or auto_confirm
    as_of: date
    merchant_id: str | None = None  # a release run of one merchant

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        key = self.as_of.isoformat() + (f"/{self.merchant_id}" if self.merchant_id else "")
        job = books.jobs.by_key(self.kind, key)
        if job is not None and job.status is JobStatus.running:
            return where(job)  # interrupted: it goes on
        if self.merchant_id:
            books.custody.merchant(self.merchant_id)  # a merchant not found: no job
        total = self._total(books)  # the last query
        state: dict[str, Any] = {"as_of": self.as_of.isoformat(), "cursor": 0, "after": "",
                                 "merchant_id": self.merchant_id, "found": [], "held": []}
        if job is None:
            job = books.jobs.start(self.kind, key, total, self.principal.key_id, state)
        else:
            books.jobs.restart(job.id, total, self.principal.key_id, state)
        return where(books.jobs.job(job.id))

    def _total(self, books: Books) -> int:
        if self.kind is JobKind.auto_confirm:
            return books.custody.due_consumption_count(self.as_of)
        return 1 if self.merchant_id else books.custody.active_merchant_count()


@dataclass(frozen=True)
class SweepSlice(Command):
    """The job's slice number `cursor`, of at most `units_max` merchants or consumptions."""

    principal: Principal
    job_id: int
    cursor: int
    units_max: int

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        job = books.jobs.job(self.job_id)
        if not is_next(job, self.cursor):
            return where(job)  # applied already: the job says where it stands
        state = job.state
        as_of = date.fromisoformat(state["as_of"])
        held: list[str] = []
        if job.kind is JobKind.release_run:
            ran = RunReleases(self.principal, as_of, state["merchant_id"], state["after"],
                              self.units_max).run(books)
            found, units, after = ran["releases"], ran["merchants"], ran["next_after"]
            held = ran["held"]
            over = bool(state["merchant_id"]) or after is None
        elif job.kind is JobKind.supervision_sweep:
            ran = SuperviseMerchants(self.principal, as_of, state["after"],
                                     self.units_max).run(books)
            found, units, after = ran["assessed"], ran["merchants"], ran["next_after"]
            over = after is None
        else:
            found = AutoConfirm(self.principal, as_of, self.units_max).run(books)["confirmed"]
            units, after = len(found), ""
            over = units < self.units_max  # none due is left
        state = {**state, "cursor": self.cursor + 1, "after": after,
                 "found": [*state["found"], *found],
                 "held": [*state.get("held", []), *held]}
        books.jobs.advance(job.id, job.done + units, state)
        if over:
            result = {"as_of": state["as_of"], FOUND[job.kind]: state["found"]}
            if job.kind is JobKind.release_run:
                result["held"] = state["held"]  # skipped: a run-away pattern holds them
            books.jobs.finish(job.id, JobStatus.done, result)
        return where(books.jobs.job(job.id))


def where(job: Job) -> dict[str, Any]:
    """Where a run or sweep stands: the job, its progress and its next slice."""
    return {"job": job.view(), "cursor": job.state["cursor"], "progress": job.progress()}


def sweep_steps(start: StartSweep, units_max: int) -> Step:
    """The job's commands one after the other; returns its answer (its result)."""
    answer = yield start
    while answer["job"]["status"] == JobStatus.running.value:
        answer = yield SweepSlice(start.principal, answer["job"]["job_id"], answer["cursor"],
                                  units_max)
    return dict(answer["job"]["result"])


def release_steps(principal: Principal, as_of: date, merchant_id: str | None = None,
                  merchants_max: int = release_slice_merchants_max) -> Step:
    return sweep_steps(StartSweep(principal, JobKind.release_run, as_of, merchant_id),
                       merchants_max)


def supervision_steps(principal: Principal, as_of: date,
                      merchants_max: int = supervision_slice_merchants_max) -> Step:
    """The four checks over every active merchant (`POST /v1/supervision/sweep`)."""
    return sweep_steps(StartSweep(principal, JobKind.supervision_sweep, as_of), merchants_max)


def auto_confirm_steps(principal: Principal, as_of: date,
                       consumptions_max: int = auto_confirm_slice_consumptions_max) -> Step:
    return sweep_steps(StartSweep(principal, JobKind.auto_confirm, as_of), consumptions_max)
