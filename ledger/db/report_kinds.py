"""Which sections each kind of report shows, in order (ledger/db/report_sections.py for the
money side's, ledger/db/report_supervision.py for supervision's)."""

from __future__ import annotations

from collections.abc import Mapping

from ledger.db.report_sections import (
    ACTIONS,
    DEPARTMENTS,
    INDUSTRIES,
    MERCHANTS,
    SWEEP,
    TOTALS,
    Section,
)
from ledger.db.report_supervision import ALERTS, COMPLAINTS, SIGNALS, TIERS
from ledger.supervision.routines import ReportKind

# Each kind's sections, in the order the report shows them.
SECTIONS: Mapping[ReportKind, tuple[Section, ...]] = {
    ReportKind.daily: (MERCHANTS, SIGNALS, ALERTS),
    ReportKind.weekly: (SWEEP,),
    ReportKind.monthly: (DEPARTMENTS, COMPLAINTS, ACTIONS),
    ReportKind.quarterly: (DEPARTMENTS, INDUSTRIES, TOTALS, TIERS, COMPLAINTS, ACTIONS),
}
