"""`yufu reports make KIND [--period P] [--department D | --street S]`: make a report of the
routines (日管控 daily, 周排查 weekly, 月调度 monthly, 季度报告 quarterly) now, offline, as
the service would on demand: sign a tree head, compute in one snapshot, store and journal."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
from datetime import UTC, datetime
from typing import Any

from api.runtime import audit_signing_key, check_audit_key, run_command, service_engine
from api.settings import Settings
from ledger.audit_service import SignTreeHead
from ledger.auth import LOCAL_OPERATOR, cli_actor
from ledger.db.report_queries import Computed, compute
from ledger.errors import Refused
from ledger.flows.reports import MakeReport
from ledger.supervision.routines import (
    DISTRICT,
    ReportAsk,
    ReportKind,
    Scope,
    ScopeKind,
    report_snapshot_attempts_max,
    resolve_period,
)


def add_commands(sub: Any) -> None:
    reports = sub.add_parser("reports", help="the routines' reports (日管控、周排查、月调度、"
                                             "季度报告)")
    commands = reports.add_subparsers(dest="reports_command", required=True)
    make = commands.add_parser("make", help="make a report now, at a tree head signed for it")
    make.add_argument("kind", choices=[k.value for k in ReportKind])
    make.add_argument("--period", help="YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-Qn (default: "
                                       "the latest closed one, in China time)")
    scope = make.add_mutually_exclusive_group()
    scope.add_argument("--department", help="one supervising department's report")
    scope.add_argument("--street", help="one street's (属地) report")


def run(args: argparse.Namespace) -> int:
    kind = ReportKind(args.kind)
    period = resolve_period(kind, args.period, datetime.now(UTC))
    scope = DISTRICT
    if args.department:
        scope = Scope(ScopeKind.department, args.department)
    elif args.street:
        scope = Scope(ScopeKind.street, args.street)
    settings = Settings()
    key = audit_signing_key(settings)
    with service_engine(settings) as engine:
        check_audit_key(engine, key, settings.audit_key_rotate)
        computed: Computed | None = None
        for _ in range(report_snapshot_attempts_max):
            with contextlib.suppress(Refused):  # an empty journal: compute says why
                run_command(engine, SignTreeHead(key), 200)
            computed = compute(engine, ReportAsk(kind, period, scope))
            if computed.head_covers_snapshot:
                break
        assert computed is not None
        body = run_command(engine, MakeReport(LOCAL_OPERATOR, computed.report), 201,
                           cli_actor(getpass.getuser()))
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0
