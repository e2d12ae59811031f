"""Long jobs: a write too big for one group commit, carried out in slices.

The writer is single (ledger/db/writer.py): a command holds it, and every till waits, for as
long as the command runs. So a statement import, a release run, an auto-confirmation sweep
and a closure each run as a job: a first command plans it and records the job, then each
slice is its own command and group commit, bounded by a named number of lines, merchants,
consumptions or cards, and a till's write gets the writer between two slices. The job's row
holds what the next slice needs (`state`) and how far it got (`done` of `total`): a slice
checks, in its own transaction, that it is the next one, so a slice sent twice (a retry, a
resumed job, two workers) is applied once. The row is unique by its kind and natural key (a
file's hash at a bank, a run's date, a merchant): a job sent again finds it and goes on.

Progress is operational, updated in place; every money effect of a job is journaled by its
slices like any other write.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from ledger.commands import Books, Command


class JobKind(StrEnum):
    statement_import = "statement_import"
    release_run = "release_run"
    auto_confirm = "auto_confirm"
    closure = "closure"
    supervision_sweep = "supervision_sweep"  # the four checks over every merchant


class JobStatus(StrEnum):
    running = "running"
    done = "done"
    failed = "failed"


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: JobKind
    key: str
    status: JobStatus
    done: int  # lines, merchants, consumptions or cards carried out
    total: int
    slices: int  # slices committed so far
    created_by: int  # the key id of who started it
    state: Mapping[str, Any]  # what the next slice needs to go on
    result: Mapping[str, Any] | None  # the job's answer, once done

    def view(self) -> dict[str, Any]:
        """The job as the API shows it."""
        return {"job_id": self.id, "kind": self.kind.value, "status": self.status.value,
                "progress": {"done": self.done, "total": self.total, "slices": self.slices},
                "result": dict(self.result) if self.result is not None else None}

    def progress(self) -> dict[str, Any]:
        """How far it got, as every step of a long write reports it (`run_steps`' `seen`)."""
        return {"kind": self.kind.value, "done": self.done, "total": self.total,
                "slices": self.slices}


class SliceSizes:
    """How much the next slice of a job carries: `least` while another write waits for the
    writer; while none does, twice the last slice's, up to `most`. So a job alone on the
    writer goes in few group commits (each slice costs a job row rewritten, a commit and a
    round trip of its own), and a till's write that arrives waits for one slice at most:
    the slice after it is `least` again. `others_waiting` is asked between two slices (the
    API's writer queue); without one, nobody waits."""

    __slots__ = ("last", "least", "most", "others_waiting")

    def __init__(self, least: int, most: int,
                 others_waiting: Callable[[], bool] | None = None) -> None:
        if least <= 0 or most <= 0:
            raise ValueError("a slice carries one unit at least")
        self.least = min(least, most)
        self.most = most
        self.others_waiting = others_waiting
        self.last = 0

    @classmethod
    def fixed(cls, size: int) -> SliceSizes:
        return cls(size, size)

    def next(self) -> int:
        waiting = self.others_waiting is not None and self.others_waiting()
        grown = min(self.most, self.last * 2) if self.last else self.least
        self.last = self.least if waiting else grown
        return self.last


def is_next(job: Job, cursor: Any) -> bool:
    """Whether a slice that starts at `cursor` (where the job's state says the next slice
    starts) is the job's next. One that is not was applied already (a retry, a resumed job,
    another worker): it changes nothing, and its caller goes on from where the job stands."""
    return job.status is JobStatus.running and job.state.get("cursor") == cursor


class JobStore(Protocol):
    """The jobs half of the doorway (`ledger.commands.Books.jobs`); ledger/db/job_store.py
    implements it. Lookups, each reading the row locked: right at any point of a command."""

    def by_key(self, kind: JobKind, key: str) -> Job | None: ...

    def job(self, job_id: int) -> Job: ...

    def start(self, kind: JobKind, key: str, total: int, created_by: int,
              state: Mapping[str, Any]) -> Job: ...

    def advance(self, job_id: int, done: int, state: Mapping[str, Any]) -> None:
        """One more slice carried out: the job now stands at `done`."""
        ...

    def finish(self, job_id: int, status: JobStatus, result: Mapping[str, Any]) -> None: ...

    def restart(self, job_id: int, total: int, created_by: int,
                state: Mapping[str, Any]) -> None:
        """A job over (done or failed) begun again from nothing: a run of the same date
        sent again as a new request (its slices find what the first did, and skip it)."""
        ...


@dataclass(frozen=True)
class Answer(Command):
    """A job's answer, handed back as a write of its own: so that the request's
    Idempotency-Key keeps it, and a retry of the request gets this first answer back."""

    body: Mapping[str, Any]

    def run(self, books: Books) -> dict[str, Any]:
        return dict(self.body)


@dataclass(frozen=True)
class FailJob(Command):
    """A job ended by a refusal that will not go away (a typed domain error, not an outage):
    `failed`, with the problem in its result, so that a poller learns it and no start resumes
    it. Nothing if the job is over already."""

    job_id: int
    problem: Mapping[str, Any]

    def run(self, books: Books) -> dict[str, Any]:
        job = books.jobs.job(self.job_id)
        if job.status is JobStatus.running:
            books.jobs.finish(job.id, JobStatus.failed, {"problem": dict(self.problem)})
            job = books.jobs.job(job.id)
        return job.view()


# A job's commands, one after the other: each is sent the answer to the one before, and the
# last answer is the job's (e.g. `ledger.flows.imports.import_steps`). Whoever runs them (the
# API on its event loop, the CLI, a test) hands each to the writer as a write of its own.
Step = Generator[Command, dict[str, Any], dict[str, Any]]


class Finished(NamedTuple):
    answer: dict[str, Any]


def next_step(steps: Step, answer: dict[str, Any]) -> Command | Finished:
    """The command that follows `answer`, or the job's answer if there is none."""
    try:
        return steps.send(answer)
    except StopIteration as finished:
        return Finished(dict(finished.value))


def run_steps(steps: Step, run: Callable[[Command], dict[str, Any]],
              seen: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run a job's commands, each through `run` (its own group commit); `seen` is shown
    every answer (a progress bar)."""
    command: Command | Finished = next(steps)
    while not isinstance(command, Finished):
        answer = run(command)
        command = next_step(steps, answer)  # which may add the answer's `progress`
        if seen is not None:
            seen(answer)
    return command.answer
