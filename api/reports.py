"""Making the routines' reports (日管控、周排查、月调度, 季度报告): on demand and on schedule;
and their downloads (XLSX and CSV, Chinese headers or English).

Making one: sign a tree head over the journal as it is (the signer's command, through the
appender, like every write), then compute the figures in one read-only snapshot that names the
latest head at or below its journal size (ledger/db/report_queries.py). If writes landed in
between, the head does not cover the snapshot: sign again and recompute, up to
`report_snapshot_attempts_max` times; after that the report keeps the head it saw and the
snapshot's journal size (both stored, so a checker recomputes at that size and proves it with
the next head). Then `MakeReport` stores it and journals `report.made`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.concurrency import run_in_threadpool
from openpyxl import Workbook
from sqlalchemy import Engine

from api.signer import TreeHeadSigner
from ledger.auth import SYSTEM_ACTOR
from ledger.db.report_queries import Computed, compute, scheduled_made
from ledger.db.writer import Writer, WriteRequest
from ledger.errors import Conflict
from ledger.flows.reports import MakeReport
from ledger.supervision.routines import (
    DISTRICT,
    ReportAsk,
    ReportKind,
    due,
    report_schedule_interval_s,
    report_snapshot_attempts_max,
)

log = logging.getLogger("yufu.reports")

# An XLSX sheet's name is at most 31 characters (Excel's limit).
sheet_name_chars_max = 31


async def computed_at_a_head(engine: Engine, writer: Writer, signer: TreeHeadSigner,
                             ask: ReportAsk) -> Computed:
    """The report computed in one snapshot, after signing a head over the journal so far."""
    computed = None
    for _ in range(report_snapshot_attempts_max):
        await signer.sign(writer)
        computed = await run_in_threadpool(compute, engine, ask)
        if computed.head_covers_snapshot:
            break
    assert computed is not None
    return computed


@dataclass
class ReportScheduler:
    """Makes the district's scheduled reports as their periods close (ledger/supervision/
    routines.py `due`): a background task of `yufu serve`, beside the tree-head signer."""

    interval_s: float | None = report_schedule_interval_s

    async def tick(self, engine: Engine, writer: Writer, signer: TreeHeadSigner,
                   now: datetime) -> list[int]:
        """Make every report due at `now` not made yet; the ids made."""
        wanted = [(d.kind, d.period.label) for d in due(now, ())]
        made = await run_in_threadpool(_made, engine, wanted)
        ids = []
        for d in due(now, made):
            computed = await computed_at_a_head(
                engine, writer, signer, ReportAsk(d.kind, d.period, DISTRICT, scheduled=True))
            request = WriteRequest(MakeReport(None, computed.report), actor=SYSTEM_ACTOR)
            try:
                outcome = await asyncio.wrap_future(writer.submit(request))
            except Conflict:  # another worker made it first
                continue
            ids.append(int(outcome.body["id"]))
            log.info("made the %s report of %s (id %s)", d.kind.value, d.period.label, ids[-1])
        return ids

    async def run(self, engine: Engine, writer: Writer, signer: TreeHeadSigner) -> None:
        assert self.interval_s is not None
        while True:
            # Sleep first, as the signer does: a start (or a test's app) writes nothing at once.
            await asyncio.sleep(self.interval_s)
            try:
                await self.tick(engine, writer, signer, datetime.now(UTC))
            except Exception:
                log.exception("making the scheduled reports failed; retrying next time")


def _made(engine: Engine, wanted: list[tuple[ReportKind, str]]) -> set[tuple[ReportKind, str]]:
    with engine.connect() as conn:
        return scheduled_made(conn, wanted)


# --- downloads -------------------------------------------------------------------------------

_HEAD_LABELS = {
    "kind": ("报告类型", "Report"), "period": ("期间", "Period"), "scope": ("范围", "Scope"),
    "tree_size": ("签名树头大小", "Signed tree head: size"),
    "root_hash": ("树根哈希", "Signed tree head: root hash"),
    "timestamp": ("签名时间", "Signed tree head: signed at"),
    "key_id": ("签名密钥", "Signed tree head: key id"),
    "signature": ("签名", "Signed tree head: signature"),
    "journal_size": ("日志条数", "Journal size"), "as_of": ("计算时间", "Computed at"),
    "figures_sha256": ("数据摘要 SHA-256", "Figures SHA-256")}
_SCOPES = {"district": ("全区", "district"), "department": ("部门", "department"),
           "street": ("属地", "street")}


def _pick(pair: Mapping[str, str] | Sequence[str], lang: str) -> str:
    if isinstance(pair, Mapping):
        return pair[lang]
    return pair[0] if lang == "zh" else pair[1]


def heading(report: Mapping[str, Any], lang: str) -> list[tuple[str, str]]:
    """What the report is and the head it names, as (label, value) pairs."""
    figures = report["figures"]
    scope = figures["scope"]
    where = _pick(_SCOPES[scope["kind"]], lang) + (f" {scope['name']}" if scope["name"] else "")
    head = figures["tree_head"]
    values = {"kind": _pick(figures["kind_name"], lang), "period": figures["period"]["label"],
              "scope": where, **{k: str(head[k]) for k in ("tree_size", "root_hash",
                                                            "timestamp", "key_id",
                                                            "signature")},
              "journal_size": str(figures["journal_size"]), "as_of": figures["as_of"],
              "figures_sha256": report["figures_sha256"]}
    return [(_pick(_HEAD_LABELS[k], lang), v) for k, v in values.items()]


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sections(report: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from report["figures"]["sections"]


def render_csv(report: Mapping[str, Any], lang: str) -> bytes:
    """The report as one CSV: its heading, then each section: its title, its header row, its
    rows, and a blank line. UTF-8 with a byte-order mark, which spreadsheet programs need to
    read Chinese."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for label, value in heading(report, lang):
        writer.writerow([label, value])
    writer.writerow([])
    for section in _sections(report):
        writer.writerow([_pick(section["title"], lang)])
        writer.writerow([_pick(column, lang) for column in section["columns"]])
        writer.writerows([[cell_text(v) for v in row] for row in section["rows"]])
        writer.writerow([])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _append(sheet: Any, values: Sequence[Any]) -> None:
    """A row of values as they are: openpyxl takes text that begins with "=" for a formula,
    and a merchant named "=HYPERLINK(...)" must stay a name in a regulator's spreadsheet."""
    sheet.append(list(values))
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str) and cell.value.startswith("="):
            cell.data_type = "s"


def render_xlsx(report: Mapping[str, Any], lang: str) -> bytes:
    """The report as a workbook: a first sheet with its heading, then a sheet per section
    (a header row, then the rows, numbers as numbers)."""
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "报告" if lang == "zh" else "Report"
    for label, value in heading(report, lang):
        _append(first, [label, value])
    for section in _sections(report):
        sheet = book.create_sheet(_pick(section["title"], lang)[:sheet_name_chars_max])
        _append(sheet, [_pick(column, lang) for column in section["columns"]])
        for row in section["rows"]:
            _append(sheet, row)
    # The same report is the same bytes, whenever it is downloaded: the workbook's own dates
    # are the report's, and its zip entries carry no time of their own.
    made = _made_at(report)
    book.properties.created = book.properties.modified = made
    out = io.BytesIO()
    book.save(out)
    return _without_times(out.getvalue())


def _made_at(report: Mapping[str, Any]) -> datetime:
    signed = report.get("made_at") or report.get("tree_head", {}).get("timestamp")
    moment = datetime.fromisoformat(str(signed).replace("Z", "+00:00")) if signed \
        else datetime(2000, 1, 1, tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def _without_times(workbook: bytes) -> bytes:
    """The zip rewritten entry by entry with one fixed time (the zip format's first day)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook)) as read, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as written:
        for entry in read.infolist():
            fixed = zipfile.ZipInfo(entry.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            written.writestr(fixed, read.read(entry))
    return out.getvalue()
