"""`yufu banks register|list`: the custodian banks, from the command line."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

from sqlalchemy import Connection

from api.runtime import run_command, service_engine
from api.settings import Settings
from ledger import limits
from ledger.auth import cli_actor
from ledger.db import queries
from ledger.trust_service import RegisterBank


def add_commands(sub: Any) -> None:
    """Register `banks` on the `yufu` parser's subcommands."""
    banks = sub.add_parser("banks", help="custodian banks").add_subparsers(
        dest="banks_command", required=True)
    register = banks.add_parser("register", help="register a custodian bank")
    register.add_argument("bank_id")
    register.add_argument("--name", required=True)
    register.add_argument("--code", required=True, help="CNAPS code (12 digits) or BIC")
    banks.add_parser("list", help="the registered banks")


def run(args: argparse.Namespace) -> int:
    with service_engine(Settings()) as engine:
        if args.banks_command == "list":
            with engine.connect() as conn:
                body = {"items": every_bank(conn)}
        else:
            body = run_command(engine, RegisterBank(args.bank_id, args.name, args.code), 201,
                               cli_actor(getpass.getuser()))
    print(json.dumps(body, ensure_ascii=False, indent=2))
    return 0


def every_bank(conn: Connection) -> list[dict[str, Any]]:
    """Every bank, read a page at a time (as /v1/banks answers them)."""
    items: list[dict[str, Any]] = []
    page = queries.Page("", limits.list_page_items_max)
    while page.after is not None:
        answer = queries.banks(conn, page)
        items += answer["items"]
        page = page._replace(after=answer["next_after"])
    return items
