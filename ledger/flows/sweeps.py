"""The release run and the auto-confirmation sweep in slices (ledger/jobs.py): each slice is
one command and one group commit over at most `release_slice_merchants_max` merchants or
`auto_confirm_slice_consumptions_max` consumptions, so tills' writes get the writer between
two. Both resume by themselves when run again for the same date: a merchant's period is
released once (`release_exists`), and a consumption confirmed is no longer due.

Each yields its slices' commands (`ledger.jobs.run_steps` runs them) and adds `progress` to
each slice's answer (for a progress bar and the job metrics); it returns the answer the
one-command run gave: {"as_of", "releases"} or {"as_of", "confirmed"}.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ledger.auth import Principal
from ledger.flows.consumption import AutoConfirm
from ledger.flows.releases import RunReleases
from ledger.jobs import JobKind, Step

release_slice_merchants_max = 50  # merchants a slice of the release run instructs
auto_confirm_slice_consumptions_max = 200  # consumptions a slice of the sweep confirms


def release_steps(principal: Principal, as_of: date, merchant_id: str | None = None,
                  merchants_max: int = release_slice_merchants_max) -> Step:
    releases: list[dict[str, Any]] = []
    after: str | None = ""
    done = slices = 0
    while after is not None:
        answer = yield RunReleases(principal, as_of, merchant_id, after, merchants_max)
        releases.extend(answer["releases"])
        done, slices = done + answer["merchants"], slices + 1
        after = None if merchant_id else answer["next_after"]
        answer["progress"] = progress(JobKind.release_run, done, slices)
    return {"as_of": as_of.isoformat(), "releases": releases}


def auto_confirm_steps(principal: Principal, as_of: date,
                       consumptions_max: int = auto_confirm_slice_consumptions_max) -> Step:
    confirmed: list[int] = []
    slices = 0
    while True:
        answer = yield AutoConfirm(principal, as_of, consumptions_max)
        confirmed.extend(answer["confirmed"])
        slices += 1
        if len(answer["confirmed"]) < consumptions_max:  # none due is left
            return {"as_of": as_of.isoformat(), "confirmed": confirmed}
        answer["progress"] = progress(JobKind.auto_confirm, len(confirmed), slices)


def progress(kind: JobKind, done: int, slices: int) -> dict[str, Any]:
    """How far a run without a job row got (its total is known only at its end)."""
    return {"kind": kind.value, "done": done, "total": None, "slices": slices}
