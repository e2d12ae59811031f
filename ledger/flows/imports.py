"""A statement import as a job (ledger/jobs.py): a file of any size, in slices, each its own
group commit, so a till's write gets the writer between two.

- `StageImport` checks the file, journals `statement.imported`, stores the file (its hash is
  the job's key) and starts the job with its plan: the fresh statements, each with its
  merchant and its number of lines. Sent again, it finds the job and answers where it
  stands: so the same file sent again resumes an interrupted import.
- `ImportSlice` decides and applies a slice's lines of one statement (`SliceSizes`: from
  `import_slice_lines_min` while a till's write waits, doubled while none does, up to
  `import_slice_lines_max`):
  its queries read only the open items those lines can match (by reference, or by amount
  near their booking days), so a slice costs what its lines cost, whatever the merchant has
  open. It applies only if the job stands where it starts (`is_next`): never twice. The
  slice that ends a statement cross-verifies its closing balance.
- `FinishImport` flags the overdue deposits the file did not clear, and ends the job with
  the answer a one-command import gives (ledger/flows/statements.py): the same body.

The lines a slice carries are parsed by its caller, off the writer: `import_steps` yields the
commands one after the other, and the API or the CLI runs them (`ledger.jobs.run_steps`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.access import require_bank
from ledger.auth import Principal
from ledger.bank.accounts import custody_currency
from ledger.bank.identity import fingerprints
from ledger.bank.matching import OWN_REFERENCE_RE, Line, lines_of
from ledger.bank.model import Direction, ParsedFile, Statement, StatementEntry
from ledger.bank.store import MerchantItems, StatementFile
from ledger.commands import Books, Command, IdKind
from ledger.errors import Conflict, Refused, require
from ledger.flows.reconcile import Decided, Import, apply_lines
from ledger.flows.sorting import (
    Sorted,
    StatementOutcome,
    check_importable,
    sort_statements,
)
from ledger.flows.statements import (
    check_filename,
    decide_lines,
    duplicate_file,
    flag_overdue,
    named_items,
    overdue_by,
    statement_rows,
)
from ledger.jobs import Job, JobKind, JobStatus, SliceSizes, Step, is_next

# Statement lines a slice decides and applies: the least, ~25 ms of the writer, while a till's
# write waits for it; doubled each slice while none does, up to the most (`SliceSizes`): about
# 0.2 s of the writer, the longest a till arriving in the middle of a grown slice waits.
import_slice_lines_min = 50
import_slice_lines_max = 5_000


@dataclass(frozen=True)
class StageImport(Command):
    principal: Principal
    bank_id: str
    filename: str
    data: bytes
    today: date
    parsed: ParsedFile
    all_or_nothing: bool = False
    profile: str | None = None  # the bank profile it was read by, if named: to resume by
    prints: tuple[bytes | None, ...] | None = None  # the statements' fingerprints, if made

    def run(self, books: Books) -> dict[str, Any]:
        require_bank(self.principal, self.bank_id)
        check_filename(self.filename)
        digest = hashlib.sha256(self.data).digest()
        job = books.jobs.by_key(JobKind.statement_import, digest.hex())
        if job is not None and job.state["bank_id"] != self.bank_id:
            raise Conflict("this very file is being imported from another bank: a custody "
                           "statement comes from its own bank", field="file")
        if job is not None and job.status is not JobStatus.done:
            _check_read_alike(job, self.parsed, self.prints)
            if job.status is JobStatus.failed:
                # Its statements are known by their fingerprints already: only this job can
                # still bring in their lines, so the file sent again takes it up where it
                # stopped (and, refused again, it fails again, saying why).
                books.jobs.restart(job.id, job.total, job.created_by, job.state)
                books.jobs.advance(job.id, job.done, job.state)
                job = books.jobs.job(job.id)
            return staged(job)
        earlier = books.bank.file_by_hash(digest)
        sorted_ = sort_statements(books, self.bank_id, self.parsed, self.prints)  # last query
        if earlier is not None:
            return duplicate_file(earlier, digest, self.bank_id, sorted_)
        check_importable(sorted_, all_or_nothing=self.all_or_nothing)
        file_id = books.draw_id(IdKind.statement_file)
        entry = books.append("statement.imported", {
            "file_id": file_id, "bank_id": self.bank_id, "sha256": digest.hex(),
            "format": self.parsed.format, "filename": self.filename,
            "statements": [s.view() for s in sorted_]})
        fresh = [(index, s) for index, s in enumerate(sorted_)
                 if s.outcome is StatementOutcome.imported]
        refs = [books.draw_id(IdKind.bank_statement) for _ in fresh]
        plan = _plan(fresh, refs)
        total = sum(p["lines"] for p in plan)
        job = books.jobs.start(JobKind.statement_import, digest.hex(), total,
                               self.principal.key_id, {
                                   "bank_id": self.bank_id, "file_id": file_id,
                                   "sha256": digest.hex(), "journal_seq": entry.seq,
                                   "today": self.today.isoformat(), "statements": plan,
                                   "profile": self.profile,
                                   "sorted": [s.view() for s in sorted_],
                                   "cursor": [0, 0], "results": [_result(p) for p in plan]})
        # Last, straight to the database: the file, then its statements.
        books.bank.write_file(StatementFile(file_id, self.bank_id, digest, self.parsed.format,
                                            self.filename, self.data, len(sorted_), total,
                                            entry.seq))
        books.bank.write_statements(statement_rows([s for _, s in fresh], refs, self.bank_id,
                                                   file_id, entry.seq))
        return staged(job)


@dataclass(frozen=True)
class ImportSlice(Command):
    """Lines `cursor[1]` on of the plan's statement `cursor[0]` (at most a slice's worth)."""

    principal: Principal
    job_id: int
    cursor: tuple[int, int]
    lines: tuple[Line, ...]

    def run(self, books: Books) -> dict[str, Any]:
        job = books.jobs.job(self.job_id)
        require_bank(self.principal, job.state["bank_id"])
        if not is_next(job, list(self.cursor)):
            return staged(job)  # applied already: the job says where it stands
        number, offset = self.cursor
        plan = job.state["statements"][number]
        require(offset + len(self.lines) <= plan["lines"], "a slice lies inside its statement")
        lines = list(self.lines)
        # Every query first: a query after the first change would be refused.
        mine = _items(books, plan["merchant_id"], lines)
        decided = Decided(_statement(plan), plan["merchant_id"], lines,
                          decide_lines(lines, mine), mine, plan["statement_ref"])
        deposits, instructions = named_items(books, [decided])
        run = Import(books, job.state["bank_id"], date.fromisoformat(job.state["today"]),
                     job.state["file_id"], deposits, instructions)
        applying, cleared, outcome = apply_lines(run, decided, books.bank.line_ids(len(lines)))
        result = _added(job.state["results"][number], len(lines), cleared, outcome)
        ends = offset + len(lines) == plan["lines"]
        if ends:
            result["cross_verification"] = applying.cross_verify()
        results = list(job.state["results"])
        results[number] = result
        cursor = [number + 1, 0] if ends else [number, offset + len(lines)]
        books.jobs.advance(job.id, job.done + len(lines),
                           {**job.state, "cursor": cursor, "results": results})
        books.bank.write_lines(run.lines, run.cleared)  # last: straight to the database
        return staged(books.jobs.job(job.id))


@dataclass(frozen=True)
class FinishImport(Command):
    principal: Principal
    job_id: int

    def run(self, books: Books) -> dict[str, Any]:
        job = books.jobs.job(self.job_id)
        state = job.state
        require_bank(self.principal, state["bank_id"])
        if job.status is JobStatus.done and job.result is not None:
            return dict(job.result)  # a retry
        if state["cursor"] != [len(state["statements"]), 0]:
            raise Refused(f"job {job.id} has lines still to import", field="job_id")
        overdue = overdue_by(books, [(p["merchant_id"], _closing(p))
                                     for p in state["statements"]])  # the query: first
        run = Import(books, state["bank_id"], date.fromisoformat(state["today"]),
                     state["file_id"], {}, {})
        result = {"duplicate": False, "file_id": state["file_id"], "sha256": state["sha256"],
                  "journal_seq": state["journal_seq"],
                  "statements": _answers(state["sorted"], state["results"]),
                  "overdue_breaks": flag_overdue(run, overdue)}
        books.jobs.finish(job.id, JobStatus.done, result)
        return result


def import_steps(stage: StageImport, sizes: SliceSizes | int | None = None) -> Step:
    """The import's commands one after the other, each sent the answer to the one before;
    returns the import's answer. Splitting the lines of a statement happens here, in the
    caller, not in a command: it costs the writer nothing. `sizes`: the slices' (a number:
    all of that size; none: from the least to the most, nobody else waiting)."""
    if sizes is None:
        sizes = SliceSizes(import_slice_lines_min, import_slice_lines_max)
    elif isinstance(sizes, int):
        require(sizes > 0, "a slice holds a line at least")
        sizes = SliceSizes.fixed(sizes)
    principal, items = stage.principal, stage.parsed.items
    answer = yield stage
    if "job" not in answer:
        return answer  # the file was imported before
    lines: dict[int, list[Line]] = {}
    while answer["cursor"][0] < len(answer["plan"]):
        number, offset = answer["cursor"]
        if number not in lines:
            item = items[answer["plan"][number]["index"]]
            require(isinstance(item, Statement), "a planned statement was read")
            assert isinstance(item, Statement)  # for mypy: required just above
            lines = {number: lines_of(item.entries)}
        chunk = tuple(lines[number][offset:offset + sizes.next()])
        answer = yield ImportSlice(principal, answer["job"]["job_id"], (number, offset), chunk)
    return (yield FinishImport(principal, answer["job"]["job_id"]))


def staged(job: Job) -> dict[str, Any]:
    """Where an import job stands: the job, its plan and the next slice's start."""
    return {"job": job.view(), "plan": job.state["statements"], "cursor": job.state["cursor"],
            "progress": job.progress()}


def line_count(entries: Sequence[StatementEntry]) -> int:
    """How many lines `lines_of` makes of the entries, without making them."""
    return sum(len(e.details) or 1 for e in entries)


def _plan(fresh: list[tuple[int, Sorted]], refs: list[int]) -> list[dict[str, Any]]:
    """The statements to import, each with its place in the file and the id of its row."""
    plan = []
    for (index, s), statement_ref in zip(fresh, refs, strict=True):
        st = s.statement
        require(st is not None, "an imported statement is read")
        assert st is not None  # for mypy: required just above
        require(s.fingerprint is not None, "an imported statement has its fingerprint")
        plan.append({"index": index, "statement_ref": statement_ref, "format": st.format,
                     "fingerprint": (s.fingerprint or b"").hex(),
                     "account": st.account, "statement_id": st.statement_id,
                     "merchant_id": s.merchant_id, "lines": line_count(st.entries),
                     "closing_booked_fen": st.closing_booked_fen,
                     "closing_date": st.closing_date.isoformat() if st.closing_date else None})
    return plan


def _check_read_alike(job: Job, parsed: ParsedFile,
                      prints: Sequence[bytes | None] | None) -> None:
    """A running import goes on only with its file read as it was when it began: the same
    bytes read by another profile (or, a zip, under another name) would slice other lines
    into its plan."""
    made = prints if prints is not None else fingerprints(parsed)
    for planned in job.state["statements"]:
        index = planned["index"]
        now = made[index] if index < len(made) else None
        if planned.get("fingerprint") not in (None, now.hex() if now else None):
            raise Conflict(f"this file's import (job {job.id}) began with it read otherwise: "
                           f"its statement {index + 1} (account {planned['account']}) reads "
                           f"differently now; send it as the first time (the same profile)",
                           field="profile")


def _answers(sorted_views: list[dict[str, Any]], results: list[dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """Every statement of the file in file order: an imported one with what its lines did."""
    imported = iter(results)
    return [{**view, **next(imported)} if view["status"] == StatementOutcome.imported.value
            else view for view in sorted_views]


def _closing(plan: dict[str, Any]) -> date | None:
    return date.fromisoformat(plan["closing_date"]) if plan["closing_date"] else None


def _statement(plan: dict[str, Any]) -> Statement:
    """The statement as applying a slice needs it: its names and closing balance."""
    return Statement(plan["format"], None, plan["statement_id"], plan["account"],
                     custody_currency, None, plan["closing_booked_fen"], _closing(plan), None,
                     ())


def _result(plan: dict[str, Any]) -> dict[str, Any]:
    """A statement's answer before its first slice."""
    return {"account": plan["account"], "statement_id": plan["statement_id"],
            "statement_ref": plan["statement_ref"], "merchant_id": plan["merchant_id"],
            "lines": 0, "deposits_cleared_fen": 0,
            "outcome": {}, "cross_verification": None}


def _added(result: dict[str, Any], lines: int, cleared_fen: int, outcome: dict[str, int]
           ) -> dict[str, Any]:
    counts = dict(result["outcome"])
    for kind, count in outcome.items():
        counts[kind] = counts.get(kind, 0) + count
    return {**result, "lines": result["lines"] + lines,
            "deposits_cleared_fen": result["deposits_cleared_fen"] + cleared_fen,
            "outcome": counts}


def _items(books: Books, merchant_id: str, lines: list[Line]) -> MerchantItems:
    """What these lines can match (`ledger.bank.matching.decide`): the items their
    references name, and for a credit with no reference of ours, the sales of its amount
    near its booking day. The rest of the merchant's open items would match none of them."""
    references: set[str] = set()
    amounts: set[int] = set()
    days: list[date] = []
    for line in lines:
        if not line.booked or line.reversal:
            continue  # decided without open items
        refs = line.references()
        references.update(refs)
        if line.direction is Direction.credit and line.booking_date is not None \
                and not any(OWN_REFERENCE_RE.match(ref) for ref in refs):
            amounts.add(line.amount_fen)
            days.append(line.booking_date)
    booked = (min(days), max(days)) if days else None
    return books.bank.items_named(merchant_id, references, amounts, booked)
