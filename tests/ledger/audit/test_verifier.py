"""scripts/verify_audit.py and `yufu audit verify` against a live service: a sound journal
passes every check, and each tampering is caught and named at its first failure.

The tamperings are made as the database's owner with triggers off
(session_replication_role = replica), as an insider with the owner's password could (the
service's role cannot), and undone afterwards. This module has its own database
(tests/conftest.py gives one per module).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from api.cli import main as yufu
from ledger import audit, journal, merkle
from ledger.auth import Role
from tests.support import ROOT
from tests.support.audit import (
    doc_key,
    memory_tree,
    post_transfers,
    run_verifier,
    sign_head,
    verifier,
)
from tests.support.db import file_merchant, head_seq, issue_key
from tests.support.http import live_server

VERIFIER = ROOT / "scripts" / "verify_audit.py"
SAMPLE = "25"


@dataclass(frozen=True)
class Service:
    url: str
    key: str  # a regulator's API key
    heads: list[int]  # the signed tree sizes
    size: int  # journal entries

    def args(self, *extra: str) -> list[str]:
        return ["--url", self.url, "--key", self.key, "--sample", SAMPLE, "--seed", "7", *extra]


@pytest.fixture(scope="module")
def service(engine: Engine) -> Iterator[Service]:
    heads = []
    for count in (40, 20, 10):
        post_transfers(engine, count)
        heads.append(sign_head(engine, doc_key())["tree_size"])
    post_transfers(engine, 3)  # entries after the latest head
    key = issue_key(engine, Role.regulator)
    app = create_app(engine, audit_key=doc_key(), tree_head_interval_s=None)
    with live_server(app) as url:
        yield Service(url, key, heads, head_seq(engine))


def _fails(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAIL")]


# --- a sound journal ---------------------------------------------------------------------------


def test_the_verifier_passes_a_sound_journal(service: Service, tmp_path: Path) -> None:
    pem = tmp_path / "yufu-audit.pem"
    pem.write_text(audit.public_key_pem(doc_key().public_key()))
    code, out = run_verifier(*service.args("--public-key", str(pem)))
    assert code == 0, out
    assert f"ok   [key] the service signs with the pinned key " \
           f"{audit.key_id(doc_key().public_key())}" in out
    assert f"ok   [heads] 3 signed tree heads, sizes {service.heads[0]} to " \
           f"{service.heads[-1]}" in out
    assert f"ok   [journal] {service.size} entries: hashes and chain intact" in out
    assert f"note [journal] {service.size - service.heads[-1]} entries after tree head " \
           f"{service.heads[-1]} are not yet under a signed head" in out
    assert "ok   [consistency] 2 consistency proofs" in out
    # The sample always holds the first and the last entry of the latest head.
    assert re.search(r"ok   \[inclusion\] 2[5-7] sampled entries proved included in tree head "
                     f"{service.heads[-1]}", out)
    assert out.rstrip().splitlines()[-1].startswith("OK: every check passed")


def test_strict_mode_checks_every_entrys_canonical_form(service: Service) -> None:
    code, out = run_verifier(*service.args("--strict", "--key-id",
                                           audit.key_id(doc_key().public_key())))
    assert code == 0, out
    assert "ok   [format] every entry in canonical form" in out


def test_yufu_audit_verify_runs_the_same_checks(service: Service,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert yufu(["audit", "verify", *service.args()]) == 0
    out = capsys.readouterr().out
    assert f"ok   [journal] {service.size} entries" in out
    assert "note [key] key" in out  # not pinned: the verifier says so


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(VERIFIER.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


def test_another_pinned_key_fails_the_key_check(service: Service, tmp_path: Path) -> None:
    other = audit.load_private_key_pem(audit.generate_private_key_pem())
    pem = tmp_path / "other.pem"
    pem.write_text(audit.public_key_pem(other.public_key()))
    code, out = run_verifier(*service.args("--public-key", str(pem)))
    assert code == 1, out
    assert _fails(out) == [f"FAIL [key] the service now signs with key "
                           f"{audit.key_id(doc_key().public_key())}, not with a pinned key "
                           f"({audit.key_id(other.public_key())})"]


def test_a_key_that_may_not_read_the_journal_cannot_verify(service: Service,
                                                           engine: Engine) -> None:
    merchant = issue_key(engine, Role.merchant, file_merchant(engine, "B1"))
    code, out = run_verifier("--url", service.url, "--key", merchant)
    assert code == 2, out
    assert "ERROR could not verify" in out and "403" in out


# --- tamperings --------------------------------------------------------------------------------


@contextmanager
def tampered(owner_engine: Engine, table: str, key: str, keys: list[int], sql: str,
             params: dict[str, Any] | None = None) -> Iterator[None]:
    """Run `sql` as the owner with triggers off, then put the rows with these keys back as
    they were."""
    with owner_engine.connect() as conn:
        saved = [dict(r._mapping) for r in conn.execute(
            text(f"SELECT * FROM {table} WHERE {key} = ANY(:keys)"), {"keys": keys})]
    _as_insider(owner_engine, lambda conn: conn.execute(text(sql), params or {}))
    try:
        yield
    finally:
        def restore(conn: Connection) -> None:
            conn.execute(text(f"DELETE FROM {table} WHERE {key} = ANY(:keys)"), {"keys": keys})
            columns = list(saved[0])
            conn.execute(text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                              f"({', '.join(':' + c for c in columns)})"), saved)
        _as_insider(owner_engine, restore)


def _as_insider(owner_engine: Engine, action: Any) -> None:
    with owner_engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        action(conn)


# Every amount of the entry gains a leading digit: 150 fen becomes 1150.
ALTER = ("UPDATE journal_entries SET body = convert_to(replace(convert_from(body, 'UTF8'), "
         ":old, :new), 'UTF8') WHERE seq = :seq")
AMOUNT_X10 = {"old": '"amount_fen":', "new": '"amount_fen":1'}
# The positive legs only (100 + n fen: they start with 1), so the body stays canonical JSON
# whichever entries the verifier's sample reads in full: only the link can catch it.
POSITIVE_AMOUNT_X10 = {"old": '"amount_fen":1', "new": '"amount_fen":11'}


def test_an_altered_entry_is_caught_and_named(service: Service, owner_engine: Engine) -> None:
    seq = service.heads[0] - 5
    with tampered(owner_engine, "journal_entries", "seq", [seq], ALTER, {"seq": seq, **AMOUNT_X10}):
        code, out = run_verifier(*service.args())
    assert code == 1, out
    assert _fails(out) == [_fails(out)[0]]
    assert _fails(out)[0].startswith(f"FAIL [journal] entry {seq} was altered: its bytes "
                                     "hash to")


def test_an_altered_entry_with_its_hash_rewritten_breaks_the_next_link(
        service: Service, owner_engine: Engine) -> None:
    seq = service.heads[0] - 5
    sql = ALTER + "; UPDATE journal_entries SET entry_hash = sha256(body) WHERE seq = :seq"
    changed = {"seq": seq, **POSITIVE_AMOUNT_X10}
    with tampered(owner_engine, "journal_entries", "seq", [seq], sql, changed):
        code, out = run_verifier(*service.args())
    assert code == 1, out
    assert _fails(out)[0].startswith(f"FAIL [journal] entry {seq + 1} does not link to entry "
                                     f"{seq}: it names")


def test_a_dropped_entry_is_caught_and_named(service: Service, owner_engine: Engine) -> None:
    seq = service.heads[1] - 3
    with tampered(owner_engine, "journal_entries", "seq", [seq],
                  "DELETE FROM journal_entries WHERE seq = :seq", {"seq": seq}):
        code, out = run_verifier(*service.args())
    assert code == 1, out
    assert _fails(out) == [f"FAIL [journal] entry {seq} is missing: entry {seq - 1} is "
                           f"followed by entry {seq + 1} (an entry was dropped)"]


def test_two_swapped_entries_are_caught_and_named(service: Service, owner_engine: Engine) -> None:
    seq = service.heads[1] - 3
    parked = 10**12  # a free sequence number, so the two can trade places
    swap = ("UPDATE journal_entries SET seq = :parked WHERE seq = :a; "
            "UPDATE journal_entries SET seq = :a WHERE seq = :b; "
            "UPDATE journal_entries SET seq = :b WHERE seq = :parked")
    with tampered(owner_engine, "journal_entries", "seq", [seq, seq + 1], swap,
                  {"a": seq, "b": seq + 1, "parked": parked}):
        code, out = run_verifier(*service.args())
    assert code == 1, out
    assert _fails(out) == [f"FAIL [journal] entries out of order: entry {seq + 1} stands "
                           f"where entry {seq} belongs, and entry {seq} comes later "
                           "(swapped or moved)"]


def test_entries_removed_from_the_end_are_caught(service: Service, owner_engine: Engine) -> None:
    last = service.heads[-1]
    gone = list(range(last - 2, service.size + 1))
    with tampered(owner_engine, "journal_entries", "seq", gone,
                  "DELETE FROM journal_entries WHERE seq >= :first", {"first": gone[0]}):
        code, out = run_verifier(*service.args())
    assert code == 1, out
    assert _fails(out) == [f"FAIL [journal] the journal ends at entry {gone[0] - 1}, but tree "
                           f"head {last} was signed over {last} entries: entries were removed "
                           "from its end"]


def _forged_root(engine: Engine, size: int) -> bytes:
    """The root of a different tree of the same size: its last entry replaced."""
    tree = memory_tree(engine)
    leaves = [tree.node(0, i) for i in range(size - 1)]
    other = journal.encode_entry(size, "2026-11-23T02:00:00.000000Z", "forged.entry", {},
                                 bytes(32))
    return merkle.root_from_leaves([*leaves, merkle.leaf_hash(other)])


def test_a_forked_history_is_caught_and_named(service: Service, engine: Engine,
                                              owner_engine: Engine) -> None:
    size = service.heads[1]
    with engine.connect() as conn:
        ts = conn.execute(text("SELECT ts FROM tree_heads WHERE tree_size = :s"),
                          {"s": size}).scalar_one()
    forged = audit.sign_tree_head(doc_key(), size, _forged_root(engine, size),
                                  journal.format_ts(ts))
    assert audit.verify_tree_head(doc_key().public_key(), forged)  # a valid signature
    with tampered(owner_engine, "tree_heads", "tree_size", [size],
                  "UPDATE tree_heads SET root_hash = :root, signature = :sig "
                  "WHERE tree_size = :size",
                  {"root": forged.head.root_hash, "sig": forged.signature, "size": size}):
        code, out = run_verifier(*service.args())
    assert code == 1, out
    assert _fails(out) == [f"FAIL [journal] forked history: tree head {size} signs the root "
                           f"{forged.head.root_hash.hex()}, but the Merkle root of the entries "
                           f"1..{size} served is {merkle.root(size, memory_tree(engine)).hex()}"]


def test_a_head_with_a_bad_signature_is_caught(service: Service, owner_engine: Engine) -> None:
    size = service.heads[0]
    with tampered(owner_engine, "tree_heads", "tree_size", [size],
                  "UPDATE tree_heads SET signature = :sig WHERE tree_size = :size",
                  {"sig": bytes(64), "size": size}):
        code, out = run_verifier(*service.args())
    assert code == 1, out
    assert _fails(out) == [f"FAIL [heads] tree head {size}: the signature is not valid"]


def test_the_verifier_passes_again_once_every_tampering_is_undone(service: Service) -> None:
    code, out = run_verifier(*service.args())
    assert code == 0, out


def test_an_entry_altered_to_bytes_that_are_not_utf8_is_exported_and_caught(
        service: Service, owner_engine: Engine) -> None:
    seq = service.heads[0] - 1
    with tampered(owner_engine, "journal_entries", "seq", [seq],
                  "UPDATE journal_entries SET body = body || '\\xff'::bytea WHERE seq = :seq",
                  {"seq": seq}):
        code, out = run_verifier(*service.args())
    assert code == 1, out
    assert _fails(out)[0].startswith(f"FAIL [journal] entry {seq} was altered")


def test_the_verifier_checks_an_export_file(service: Service, tmp_path: Path) -> None:
    export = tmp_path / "journal.jsonl"
    code, _ = run_verifier(*service.args())
    assert code == 0
    api = verifier().Api(service.url, service.key)
    export.write_bytes(b"".join(line + b"\n" for line in
                                api.stream_lines("/v1/audit/journal/export")))
    code, out = run_verifier(*service.args("--export", str(export)))
    assert code == 0, out
    assert f"ok   [journal] {service.size} entries" in out
    # A file cut after the second head: the last head is beyond it, and says so.
    lines = export.read_bytes().splitlines(keepends=True)
    export.write_bytes(b"".join(lines[:service.heads[1] + 1]))
    code, out = run_verifier(*service.args("--export", str(export)))
    assert code == 0, out
    assert f"note [journal] 1 tree heads are beyond the export's {service.heads[1] + 1} " \
           "entries and were not checked" in out
    assert "ok   [consistency] 1 consistency proofs" in out
    code, out = run_verifier(*service.args("--export", str(tmp_path / "missing.jsonl")))
    assert code == 2 and "cannot read --export" in out
