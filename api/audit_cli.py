"""`yufu audit ...`: verify a service as an auditor would, sign a tree head, show the key.

`yufu audit verify` runs scripts/verify_audit.py itself (loaded by path: the script must stay
one file that imports nothing of ours, so that auditors can run it without this package).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

from api.runtime import (
    PROJECT_ROOT,
    audit_signing_key,
    check_audit_key,
    run_command,
    service_engine,
)
from api.settings import Settings
from ledger import audit
from ledger.audit_service import SignTreeHead

VERIFIER_PATH = PROJECT_ROOT / "scripts" / "verify_audit.py"


def add_commands(sub: Any) -> None:
    """Register `audit` on the `yufu` parser's subcommands."""
    audit_cmd = sub.add_parser("audit", help="signed tree heads and the auditor's verifier")
    commands = audit_cmd.add_subparsers(dest="audit_command", required=True)
    commands.add_parser("verify", parents=[load_verifier().parser(add_help=False)],
                        help="verify a service over HTTP: the checks of "
                             "scripts/verify_audit.py")
    commands.add_parser("sign", help="sign a tree head over the journal now")
    commands.add_parser("public-key", help="print the tree-head public key and its key id")


def run(args: argparse.Namespace) -> int:
    if args.audit_command == "verify":
        return int(load_verifier().run_args(args))
    settings = Settings()
    key = audit_signing_key(settings)
    if args.audit_command == "public-key":
        print(audit.public_key_pem(key.public_key()), end="")
        print(f"key id {audit.key_id(key.public_key())}", file=sys.stderr)
        return 0
    with service_engine(settings) as engine:
        check_audit_key(engine, key, settings.audit_key_rotate)
        body = run_command(engine, SignTreeHead(key), 200)
    print(json.dumps(body, indent=2))
    return 0


@functools.cache
def load_verifier() -> ModuleType:
    spec = importlib.util.spec_from_file_location("yufu_verify_audit", VERIFIER_PATH)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the verifier at {VERIFIER_PATH}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
