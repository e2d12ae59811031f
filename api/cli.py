"""The `yufu` command: serve, db upgrade, keys create, verify, export, audit, backup."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine

from api import audit_cli, backup_cli, banks_cli, breaks_cli, reports_cli, runtime
from api.checks import report, verify_books
from api.context import china_today
from api.messages import OUTBOX_FILE_NAME, read_outbox, sender_from_environment
from api.profiles import ProfileFileError, load_profiles, profile_named
from api.progress import Progress
from api.runtime import (
    audit_signing_key,
    bootstrap_operator_key,
    check_audit_key,
    connect,
    database,
    ensure_default_rule_sets,
    migrate,
    pseudonym_key,
    run_command,
    service_engine,
    settle_heap,
)
from api.settings import Settings
from api.statement_view import parsed_view
from api.webhooks import webhook_poll_interval_s
from ledger.auth import ISSUED_ROLES, LOCAL_OPERATOR, Role, cli_actor
from ledger.bank.model import ParsedFile
from ledger.bank.statements import read_file, read_statement
from ledger.custody.settlement import check_as_of, release_run_ahead_days_max
from ledger.db import queries
from ledger.db.embedded import EmbeddedUnavailable
from ledger.db.privileges import UnsafeRoles
from ledger.errors import InvalidInput, LedgerError
from ledger.flows.imports import StageImport, import_steps
from ledger.flows.sweeps import auto_confirm_steps, release_steps, supervision_steps
from ledger.jobs import Step, run_steps
from ledger.journal import (
    PREV_RE,
    StoredEntry,
    canonical_json,
    check_chain,
    decode_entry,
)
from ledger.service import IssueKey
from ledger.trust_service import RevokeKey

log = logging.getLogger("yufu")

cli_keys_listed_max: Final = 100_000
CODE_IN_TEXT = re.compile(r"([0-9]{6})")

# POS terminals keep a connection open between sales; uvicorn's default closes it after 5 s.
keep_alive_s = 75


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"serve": _serve, "db": _db, "keys": _keys, "verify": _verify, "export": _export,
                "releases": _releases, "consumptions": _auto_confirm,
                "supervision": _supervision_sweep, "audit": audit_cli.run,
                "reconcile": _reconcile, "banks": banks_cli.run, "outbox": _outbox,
                "backup": backup_cli.run, "restore": backup_cli.run, "reports": reports_cli.run,
                "statements": _statements, "breaks": breaks_cli.run}
    try:
        return handlers[args.command](args)
    except LedgerError as refusal:  # an expected refusal: say it, no traceback
        where = f" ({refusal.field})" if refusal.field else ""
        print(f"refused: {refusal.detail}{where}", file=sys.stderr)
        return 2
    except EmbeddedUnavailable as missing:  # no PostgreSQL to start: say what to install
        print(f"yufu: {missing}", file=sys.stderr)
        return 2
    except UnsafeRoles as unsafe:  # the service's role could rewrite history: do not serve
        print(f"yufu: {unsafe}", file=sys.stderr)
        return 2
    except ProfileFileError as broken:  # a data file that cannot be used: fix it first
        print(f"yufu: {broken}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    """Every command and its options, in the order `yufu --help` lists them."""
    parser = argparse.ArgumentParser(prog="yufu", description="Yufu custody ledger")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="start the HTTP API (and the embedded PostgreSQL)")
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command",
                                                                      required=True)
    db.add_parser("upgrade", help="apply migrations")
    _add_keys_commands(sub)
    banks_cli.add_commands(sub)
    outbox = sub.add_parser("outbox", help="messages the development sender wrote "
                                           "(one-time codes)")
    outbox.add_argument("--to", help="only messages to this phone or external id")
    outbox.add_argument("--code", action="store_true",
                        help="print only the newest message's code")
    verify = sub.add_parser("verify", help="recompute the journal's hash chain")
    verify.add_argument("--file", type=Path, help="verify an export offline (no database)")
    export = sub.add_parser("export", help="write the journal as JSON Lines")
    export.add_argument("--out", type=Path, required=True)
    _add_daily_commands(sub)
    for commands in (audit_cli, reports_cli, backup_cli, breaks_cli):  # each its own module
        commands.add_commands(sub)
    reconcile = sub.add_parser("reconcile", help="bank statements").add_subparsers(
        dest="reconcile_command", required=True)
    imported = reconcile.add_parser("import", help="import and match a statement file")
    imported.add_argument("file", type=Path)
    imported.add_argument("--bank", required=True, help="the bank id the file comes from")
    imported.add_argument("--all-or-nothing", action="store_true",
                          help="refuse the whole file if any statement of it is refused")
    statements = sub.add_parser("statements", help="statement files, offline").add_subparsers(
        dest="statements_command", required=True)
    parse = statements.add_parser("parse", help="show a statement file as read; no database")
    parse.add_argument("file", type=Path)
    parse.add_argument("--json", action="store_true", help="as JSON (the default is a summary)")
    for command in (imported, parse):
        command.add_argument("--profile", help="the bank profile to read the file by (a bank's "
                                               "own export; default: the one whose header the "
                                               "file has)")
    return parser


def _add_keys_commands(sub: Any) -> None:
    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys_command",
                                                                  required=True)
    create = keys.add_parser("create", help="issue a key; prints it once")
    create.add_argument("--role", required=True, choices=[r.value for r in ISSUED_ROLES])
    create.add_argument("--merchant")
    create.add_argument("--bank")
    create.add_argument("--label", default="")
    create.add_argument("--department", help="a regulator key's department, e.g. 区文旅体局")
    create.add_argument("--street", help="a regulator key's street (属地), e.g. 望京街道")
    create.add_argument("--expires-at", type=_aware_datetime,
                        help="ISO 8601 with a time zone, e.g. 2027-06-30T00:00:00+08:00")
    listed = keys.add_parser("list", help="every key: scope, expiry, revocation (no secrets)")
    listed.add_argument("--role", choices=[r.value for r in Role])
    revoke = keys.add_parser("revoke", help="revoke a key; effective on the next request")
    revoke.add_argument("key_id", type=int)
    revoke.add_argument("--reason", default="")


def _add_daily_commands(sub: Any) -> None:
    """The day's jobs: the release run and the auto-confirmation of silent consumptions."""
    releases = sub.add_parser("releases", help="release cycles").add_subparsers(
        dest="releases_command", required=True)
    run = releases.add_parser("run", help="create release instructions for the period")
    run.add_argument("--as-of", type=date.fromisoformat, help="YYYY-MM-DD (default: today)")
    consumptions = sub.add_parser("consumptions", help="consumptions").add_subparsers(
        dest="consumptions_command", required=True)
    auto = consumptions.add_parser("auto-confirm", help="silence past the period confirms")
    auto.add_argument("--as-of", type=date.fromisoformat, help="YYYY-MM-DD (default: today)")
    supervision = sub.add_parser("supervision", help="the four checks (四查)").add_subparsers(
        dest="supervision_command", required=True)
    swept = supervision.add_parser("sweep", help="assess every active merchant: signals, "
                                                 "tiers, alerts")
    swept.add_argument("--as-of", type=date.fromisoformat, help="YYYY-MM-DD (default: today)")


def _exit_on_sigterm() -> None:
    """uvicorn shuts down gracefully on SIGTERM (systemd, Docker, Kubernetes), then re-raises
    it to the handler it found. The default one ends the process at once, before `database()`
    stops the embedded PostgreSQL; this one unwinds, as Ctrl-C does."""
    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _serve(_: argparse.Namespace) -> int:
    import uvicorn

    _exit_on_sigterm()
    settings = Settings()
    profiles = load_profiles(settings.bank_profiles_dir)  # a broken one stops the start now
    if settings.workers > 1:  # before prometheus-client is imported (api/metrics.py)
        _metrics_directory(settings.home)
    from api.app import create_app
    from api.logs import log_service_to_stderr

    log_service_to_stderr()
    with database(settings) as db:
        migrate(db)
        # Everything from here on, the bootstrap's writes too, goes through the service role.
        engine = connect(db.service_url)
        ensure_default_rule_sets(engine)
        runtime.ensure_default_department_maps(engine)
        key = bootstrap_operator_key(engine, settings.home)
        audit_key = audit_signing_key(settings)
        check_audit_key(engine, audit_key, settings.audit_key_rotate)
        base = f"http://{settings.host}:{settings.port}"
        print(f"Yufu is serving on {base}  (API docs: {base}/docs)", flush=True)
        if key:
            print(f"Bootstrap operator key (shown once; also in {settings.home}/operator.key):\n"
                  f"  {key}", flush=True)
        options = uvicorn_options(settings.host, settings.port)
        _log_start(settings, db.service_url)
        if settings.workers > 1:
            # Each worker process builds its own app (and appender) on the same database;
            # they serialise on the chain head, so the HTTP work spreads over the cores.
            engine.dispose()
            # The workers get the service's URL only: none of them needs the owner's.
            os.environ["YUFU_DATABASE_URL"] = db.service_url
            os.environ.pop("YUFU_MIGRATION_DATABASE_URL", None)
            os.environ["YUFU_HOME"] = str(settings.home.resolve())
            with _stop_logged():
                uvicorn.run("api.app:app_from_environment", factory=True,
                            workers=settings.workers, **options)
            return 0
        app = create_app(engine, pseudonym_key=pseudonym_key(settings.home),
                         audit_key=audit_key, rate_limits=settings.rate_limits,
                         sender=sender_from_environment(settings.home), bank_profiles=profiles,
                         webhook_interval_s=webhook_poll_interval_s)
        settle_heap()
        with _stop_logged():
            uvicorn.run(app, **options)
    return 0


@contextmanager
def _stop_logged() -> Iterator[None]:
    """The stop line after a clean stop: uvicorn returned, or re-raised SIGTERM (as
    SystemExit, _exit_on_sigterm) or Ctrl-C after its graceful shutdown. A crash logs none."""
    try:
        yield
    except (SystemExit, KeyboardInterrupt):
        _log_stop()
        raise
    _log_stop()


def _log_stop() -> None:
    log.info("stopped", extra={"fields": {"event": "stop"}})
    for handler in log.handlers:  # the batched handler writes every 0.2 s: now, before exit
        handler.flush()


def _log_start(settings: Settings, service_url: str) -> None:
    """The start line: the version, the workers, where the database is (never a password)."""
    from importlib.metadata import PackageNotFoundError, version

    from sqlalchemy.engine import make_url

    url = make_url(service_url)
    host = url.host or url.query.get("host") or "local socket"
    try:
        yufu_version = version("yufu")
    except PackageNotFoundError:
        yufu_version = "unknown"
    log.info("started", extra={"fields": {
        "event": "start", "version": yufu_version, "workers": settings.workers,
        "database_host": str(host), "database_port": url.port, "database": url.database,
        "listen": f"{settings.host}:{settings.port}"}})


def _metrics_directory(home: Path) -> None:
    """Several workers: prometheus-client's multiprocess mode (api/metrics.py), its files
    in a directory emptied at each start (a previous run's counts are not this one's)."""
    directory = (home / "metrics").resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """How `yufu serve` runs uvicorn. Its own access log is off: the edge writes ours
    (api/edge.py, logger yufu.access, on stderr). No proxy headers: the client address the
    rate limits key on is the peer's. The protocol bounds the request head (api/protocol.py)."""
    from api.protocol import BoundedHttpToolsProtocol

    return {"host": host, "port": port, "log_level": "warning", "access_log": False,
            "proxy_headers": False, "timeout_keep_alive": keep_alive_s,
            "http": BoundedHttpToolsProtocol}


def _releases(args: argparse.Namespace) -> int:
    today = china_today()
    as_of = check_as_of(args.as_of or today, today, release_run_ahead_days_max)
    return _slices(release_steps(LOCAL_OPERATOR, as_of))


def _supervision_sweep(args: argparse.Namespace) -> int:
    today = china_today()
    return _slices(supervision_steps(LOCAL_OPERATOR, check_as_of(args.as_of or today, today, 0)))


def _reconcile(args: argparse.Namespace) -> int:
    """The same file again resumes an import that was interrupted."""
    data = read_statement_file(args.file)
    return _slices(import_steps(StageImport(LOCAL_OPERATOR, args.bank, args.file.name, data,
                                            china_today(), _read(args, data),
                                            args.all_or_nothing, args.profile)))


def _read(args: argparse.Namespace, data: bytes) -> ParsedFile:
    """The file read by the profile named, or by the one whose header it has."""
    profiles = load_profiles(Settings().bank_profiles_dir)
    return read_file(data, args.file.name, profile_named(profiles, args.profile),
                     tuple(profiles.values()))


def _statements(args: argparse.Namespace) -> int:
    """`statements parse`: the file as read, every statement, balance and line; exit 1 when
    a statement of it is refused (the file as a whole refused exits 2, like any refusal)."""
    parsed = _read(args, read_statement_file(args.file))
    view = parsed_view(parsed)
    if args.json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
    else:
        for item in view["statements"]:
            print(_statement_line(item))
    return 1 if parsed.refused else 0


def _statement_line(item: dict[str, Any]) -> str:
    if not item["read"]:
        return f"{item['position']}: refused: {item['reason']} ({item['field']})"
    return (f"{item['position']}: {item['format']} {item['kind']} account {item['account']} "
            f"number {item['statement_id']!r}, {len(item['entries'])} entries, opening "
            f"{item['opening_booked_fen']} fen on {item['opening_date']}, closing "
            f"{item['closing_booked_fen']} fen on {item['closing_date']}")


def _slices(steps: Step) -> int:
    """A long write in slices, each its own group commit (ledger/jobs.py), with its progress
    on stderr; its answer on stdout."""
    progress = Progress()
    with service_engine(Settings()) as engine:
        try:
            body = run_steps(steps, lambda c: _cli_command(engine, c, 200), progress)
        finally:
            progress.close()
    print(json.dumps(body, ensure_ascii=False, indent=2))
    return 0


def read_statement_file(path: Path) -> bytes:
    with path.open("rb") as stream:
        return read_statement(stream)


def _auto_confirm(args: argparse.Namespace) -> int:
    today = china_today()
    return _slices(auto_confirm_steps(LOCAL_OPERATOR, check_as_of(args.as_of or today, today, 0)))


def _db(_: argparse.Namespace) -> int:
    with database(Settings()) as db:
        migrate(db)
    print("database is at the latest migration")
    return 0


def _keys(args: argparse.Namespace) -> int:
    with service_engine(Settings()) as engine:
        if args.keys_command == "list":
            with engine.connect() as conn:
                page = queries.keys_page(conn, 0, cli_keys_listed_max, args.role)
            for item in page["items"]:
                print(json.dumps(item, ensure_ascii=False))
            return 0
        if args.keys_command == "revoke":
            command: object = RevokeKey(None, args.key_id, args.reason)
            print(json.dumps(_cli_command(engine, command, 200), ensure_ascii=False))
            return 0
        body = _cli_command(engine, IssueKey(Role(args.role), args.merchant, args.bank, args.label,
                                             args.expires_at, args.department, args.street))
    print(body["key"])
    print(f"(key id {body['key_id']}, role {body['role']}; only its hash is stored)",
          file=sys.stderr)
    return 0


def _cli_command(engine: Engine, command: object, status_code: int = 201) -> dict[str, Any]:
    """A write made from the command line: attributed to the OS account that ran it."""
    return run_command(engine, command, status_code, cli_actor(getpass.getuser()))


def _aware_datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. +08:00")
    if moment <= datetime.now(UTC):
        raise argparse.ArgumentTypeError("must be in the future")
    return moment


def _outbox(args: argparse.Namespace) -> int:
    """The development sender's outbox (YUFU_HOME/outbox.jsonl): what a real SMS gateway
    would have delivered. Readable only by whoever can read YUFU_HOME: the operator."""
    messages = read_outbox(Settings().home / OUTBOX_FILE_NAME, args.to)
    if args.code:
        codes = [m["text"] for m in messages]
        found = CODE_IN_TEXT.search(codes[-1]) if codes else None
        if found is None:
            print("no code in the outbox", file=sys.stderr)
            return 1
        print(found.group(1))
        return 0
    for message in messages:
        print(json.dumps(message, ensure_ascii=False))
    return 0


def _verify(args: argparse.Namespace) -> int:
    if args.file is not None:
        try:
            return report(check_chain(_entries_from_file(args.file)))[0]
        except _MalformedLine as bad:
            print(f"BROKEN at sequence number {bad.seq}: line {bad.seq} of the file is "
                  f"malformed ({bad.reason})")
            return 1
    with database(Settings()) as db:
        engine = connect(db.service_url)
        with engine.connect() as conn:
            return verify_books(conn)


class _MalformedLine(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq, self.reason = seq, reason


def _entries_from_file(path: Path) -> Iterator[StoredEntry]:
    """The export's lines as stored entries. Line n must hold entry n; its entry object is
    re-encoded canonically, so only a change of content (not of spacing) breaks its hash."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or set(record) != {"entry", "hash"}:
                    raise ValueError('not an object {"entry": ..., "hash": ...}')
                recorded = record["hash"]
                if not isinstance(recorded, str) or not PREV_RE.match(recorded):
                    raise ValueError("no hash of 64 lower-case hex digits")
                body = canonical_json(record["entry"])
            except (ValueError, RecursionError) as exc:
                raise _MalformedLine(number, str(exc)) from exc
            try:
                entry = decode_entry(body)
            except InvalidInput:
                # check_chain decodes it again and reports why, at this line.
                yield StoredEntry(number, "", b"", bytes.fromhex(recorded), body)
                continue
            yield StoredEntry(entry.seq, entry.kind, entry.prev_hash, bytes.fromhex(recorded),
                              body)


def _export(args: argparse.Namespace) -> int:
    count = 0
    with database(Settings()) as db, connect(db.service_url).connect() as conn, \
            args.out.open("wb") as out:
        for stored in queries.stored_entries(conn):
            out.write(b'{"entry":' + stored.body + b',"hash":"' +
                      stored.entry_hash.hex().encode() + b'"}\n')
            count += 1
    print(f"wrote {count} entries to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
