"""`yufu breaks resolve`: the operator resolves many reconciliation breaks with one
resolution, as `POST /v1/breaks/resolve` does: named by id, or picked by a filter (bank,
merchant, kind, opened before a day). A filter that picks more than one command resolves
(`breaks_resolved_per_request_max`) is sent again until it picks none."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import date
from typing import Any

from api.runtime import run_command, service_engine
from api.settings import Settings
from ledger.auth import LOCAL_OPERATOR, cli_actor
from ledger.bank.reconciliation import BreakKind
from ledger.bank.store import BreakSelection
from ledger.flows.instructions import ResolveBreaks, breaks_resolved_per_request_max


def add_commands(sub: Any) -> None:
    """Register `breaks` on the `yufu` parser's subcommands."""
    breaks = sub.add_parser("breaks", help="reconciliation breaks").add_subparsers(
        dest="breaks_command", required=True)
    resolve = breaks.add_parser("resolve", help="resolve breaks by id or by a filter, with "
                                                "one resolution")
    resolve.add_argument("--resolution", required=True, help="how they were resolved")
    resolve.add_argument("--id", dest="ids", type=int, action="append", default=[],
                         help=f"a break's id (repeat it; at most "
                              f"{breaks_resolved_per_request_max})")
    resolve.add_argument("--bank", help="the open breaks at this bank")
    resolve.add_argument("--merchant", help="the open breaks of this merchant")
    resolve.add_argument("--kind", choices=[k.value for k in BreakKind])
    resolve.add_argument("--opened-before", type=date.fromisoformat,
                         help="the open breaks opened before this day (YYYY-MM-DD)")


def run(args: argparse.Namespace) -> int:
    selection = None
    if args.bank or args.merchant or args.kind or args.opened_before:
        selection = BreakSelection(args.bank, args.merchant,
                                   BreakKind(args.kind) if args.kind else None,
                                   args.opened_before)
    command = ResolveBreaks(LOCAL_OPERATOR, args.resolution, tuple(args.ids), selection)
    resolved: list[dict[str, Any]] = []
    with service_engine(Settings()) as engine:
        while True:
            body = run_command(engine, command, 200, cli_actor(getpass.getuser()))
            resolved += body["resolved"]
            if not body["more"]:
                break
    print(json.dumps({"resolved": resolved, "count": len(resolved)}, ensure_ascii=False,
                     indent=2))
    return 0
