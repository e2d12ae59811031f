"""`yufu verify` and `yufu export` against a journal changed behind the database's back.

The changes are made as the owner with triggers off (session_replication_role = replica),
as an insider with the owner's password could (the service's role cannot:
tests/ledger/db/test_database_roles.py); each is undone afterwards, so every test starts from the
same sound journal. This module has its own database.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from api.cli import main
from api.runtime import run_command
from ledger import journal
from ledger.auth import Role
from ledger.db import queries
from ledger.service import IssueKey, PostTransaction, ReverseTransaction
from tests.support.db import file_merchant, open_account

YUFU = Path(sys.executable).with_name("yufu")


@dataclass(frozen=True)
class History:
    cash: int
    card: int
    payments: list[int]  # transaction ids (= seq) of "pay 1" .. "pay 6"
    count: int  # entries in the journal
    head: str  # head hash, hex


@pytest.fixture(scope="module")
def history(engine: Engine) -> History:
    cash = open_account(engine, "asset", non_negative=True, name="备付金")
    card = open_account(engine, "liability", non_negative=True)
    run_command(engine, IssueKey(Role.merchant, merchant_id=file_merchant(engine, "B1"),
                                 label="收银台"))
    payments = []
    for n in range(1, 7):
        body = run_command(engine, PostTransaction.parse({"memo": f"pay {n}", "postings": [
            {"account_id": cash, "amount_fen": 100 * n},
            {"account_id": card, "amount_fen": -100 * n}]}))
        payments.append(int(body["id"]))  # type: ignore[call-overload]
    run_command(engine, ReverseTransaction(payments[1]))
    with engine.connect() as conn:
        count, head = queries.chain_head(conn)
    return History(cash, card, payments, count, head.hex())


def yufu(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YUFU_DATABASE_URL": database_url}
    return subprocess.run([str(YUFU), *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def verify(database_url: str, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> Any:
    """`yufu verify ARGS` in this process (the subprocess tests cover the real command)."""
    monkeypatch.setenv("YUFU_DATABASE_URL", database_url)

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["verify", *args])
        return code, capsys.readouterr().out

    return run


def ok_output(history: History) -> str:
    return (f"OK: {history.count} entries verified; head hash {history.head}\n"
            f"chain head at {history.count} ({history.head}); account balances equal postings\n")


# --- changing rows with the triggers off ---------------------------------------------------
@contextmanager
def triggers_off(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        # LOCAL: the pooled connection must not keep the triggers off after this transaction.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        yield conn


COLUMNS = ("seq", "ts", "kind", "prev_hash", "entry_hash", "body")


def journal_row(engine: Engine, seq: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT {', '.join(COLUMNS)} FROM journal_entries "
                                "WHERE seq = :seq"), {"seq": seq}).one()
    return {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row._mapping.items()}


@contextmanager
def journal_row_changed(engine: Engine, seq: int, **changes: Any) -> Iterator[dict[str, Any]]:
    original = journal_row(engine, seq)
    assignments = ", ".join(f"{column} = :{column}" for column in changes)
    with triggers_off(engine) as conn:
        conn.execute(text(f"UPDATE journal_entries SET {assignments} WHERE seq = :seq"),
                     {**changes, "seq": seq})
    try:
        yield original
    finally:
        with triggers_off(engine) as conn:
            conn.execute(text(f"UPDATE journal_entries SET {assignments} WHERE seq = :seq"),
                         {**{c: original[c] for c in changes}, "seq": seq})


@contextmanager
def journal_row_deleted(engine: Engine, seq: int) -> Iterator[None]:
    original = journal_row(engine, seq)
    with triggers_off(engine) as conn:
        conn.execute(text("DELETE FROM journal_entries WHERE seq = :seq"), {"seq": seq})
    try:
        yield
    finally:
        with triggers_off(engine) as conn:
            conn.execute(text(f"INSERT INTO journal_entries ({', '.join(COLUMNS)}) VALUES "
                              f"({', '.join(':' + c for c in COLUMNS)})"), original)


def forged(body: bytes, old: bytes, new: bytes) -> tuple[bytes, bytes]:
    """The body with one change, and the hash a careful forger would store with it."""
    assert body.count(old) == 1
    changed = body.replace(old, new)
    return changed, hashlib.sha256(changed).digest()


# --- verify over the database -----------------------------------------------------------
def test_verify_of_an_untouched_journal_exits_0_with_count_and_head(
        database_url: str, history: History) -> None:
    done = yufu(database_url, "verify")
    assert (done.returncode, done.stdout) == (0, ok_output(history))


def test_verify_names_the_entry_whose_body_was_changed(
        database_url: str, owner_engine: Engine, history: History, verify: Any) -> None:
    seq = history.payments[2]
    body = journal_row(owner_engine, seq)["body"]
    changed, _ = forged(body, b'"memo":"pay 3"', b'"memo":"pay 9"')
    with journal_row_changed(owner_engine, seq, body=changed):
        done = yufu(database_url, "verify")
    assert (done.returncode, done.stdout) == (
        1, f"BROKEN at sequence number {seq}: entry hash does not match the entry's bytes\n")
    assert verify() == (0, ok_output(history))


def test_verify_names_the_entry_whose_kind_was_changed(
        owner_engine: Engine, history: History, verify: Any) -> None:
    seq = history.payments[0]
    with journal_row_changed(owner_engine, seq, kind="account.opened"):
        assert verify() == (
            1, f"BROKEN at sequence number {seq}: stored columns disagree with the entry's bytes\n")
    assert verify() == (0, ok_output(history))


def test_verify_names_the_entry_whose_amount_was_changed_with_a_fresh_hash_by_the_next_link(
        owner_engine: Engine, history: History, verify: Any) -> None:
    seq = history.payments[3]
    body = journal_row(owner_engine, seq)["body"]
    changed, digest = forged(body, b'"amount_fen":400,', b'"amount_fen":4000,')
    with journal_row_changed(owner_engine, seq, body=changed, entry_hash=digest):
        assert verify() == (1, f"BROKEN at sequence number {seq + 1}: previous hash does not "
                               "match the hash of the entry before\n")


def test_verify_names_a_deleted_entry_by_its_missing_number(
        owner_engine: Engine, history: History, verify: Any) -> None:
    seq = history.payments[4]
    with journal_row_deleted(owner_engine, seq):
        assert verify() == (1, f"BROKEN at sequence number {seq}: expected sequence number "
                               f"{seq}, found {seq + 1} (gap or reorder)\n")
    assert verify() == (0, ok_output(history))


def test_verify_sees_the_last_entry_deleted_through_the_chain_head(
        owner_engine: Engine, history: History, verify: Any) -> None:
    last = history.count
    before_last = journal_row(owner_engine, last - 1)["entry_hash"].hex()
    with journal_row_deleted(owner_engine, last):
        assert verify() == (1, f"OK: {last - 1} entries verified; head hash {before_last}\n"
                               f"BROKEN at sequence number {last}: the chain head says entry "
                               f"{last} ({history.head}) but the journal ends at entry "
                               f"{last - 1} ({before_last})\n")


def test_verify_sees_the_last_entry_rewritten_with_a_fresh_hash_through_the_chain_head(
        owner_engine: Engine, history: History, verify: Any) -> None:
    last = history.count
    body = journal_row(owner_engine, last)["body"]
    changed, digest = forged(body, b'"memo":"reversal of transaction',
                             b'"memo":"refund of transaction')
    with journal_row_changed(owner_engine, last, body=changed, entry_hash=digest):
        assert verify() == (1, f"OK: {last} entries verified; head hash {digest.hex()}\n"
                               f"BROKEN at sequence number {last}: the chain head says entry "
                               f"{last} ({history.head}) but the journal ends at entry {last} "
                               f"({digest.hex()})\n")


def test_verify_sees_a_cached_balance_that_differs_from_the_postings(
        engine: Engine, history: History, verify: Any) -> None:
    # No trigger stands in the way: the cached balance is the one column that may change.
    change = "UPDATE accounts SET balance_fen = balance_fen + :d WHERE id = :id"
    with engine.begin() as conn:
        conn.execute(text(change), {"d": 1, "id": history.cash})
    try:
        code, out = verify()
    finally:
        with engine.begin() as conn:
            conn.execute(text(change), {"d": -1, "id": history.cash})
    assert (code, out.splitlines()[-1]) == (
        1, f"BROKEN: cached balances differ from postings for accounts [{history.cash}]")
    assert verify() == (0, ok_output(history))


# --- export, and verify of an export --------------------------------------------------------
@pytest.fixture(scope="module")
def export(database_url: str, history: History, tmp_path_factory: pytest.TempPathFactory
           ) -> list[bytes]:
    out = tmp_path_factory.mktemp("export") / "journal.jsonl"
    done = yufu(database_url, "export", "--out", str(out))
    assert (done.returncode, done.stdout) == (0, f"wrote {history.count} entries to {out}\n")
    return out.read_bytes().splitlines(keepends=True)


def test_export_writes_one_canonical_line_per_entry(engine: Engine, history: History,
                                                    export: list[bytes]) -> None:
    with engine.connect() as conn:
        stored = list(queries.stored_entries(conn))
    assert export == [b'{"entry":' + s.body + b',"hash":"' + s.entry_hash.hex().encode() + b'"}\n'
                      for s in stored]
    assert len(export) == history.count
    for line in export:
        assert journal.canonical_json(json.loads(line)) + b"\n" == line
        body, recorded = line[9:-76], line[-67:-3]
        assert hashlib.sha256(body).hexdigest().encode() == recorded


def write(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"".join(lines))
    return str(path)


def test_verify_file_of_an_export_exits_0_and_of_an_edited_one_exits_1_naming_the_entry(
        database_url: str, history: History, export: list[bytes], tmp_path: Path) -> None:
    done = yufu(database_url, "verify", "--file", write(tmp_path / "intact.jsonl", export))
    assert (done.returncode, done.stdout) == (
        0, f"OK: {history.count} entries verified; head hash {history.head}\n")
    seq = history.payments[2]
    edited = list(export)
    assert edited[seq - 1].count(b'"amount_fen":300') == 1
    edited[seq - 1] = edited[seq - 1].replace(b'"amount_fen":300', b'"amount_fen":30000')
    done = yufu(database_url, "verify", "--file", write(tmp_path / "edited.jsonl", edited))
    assert (done.returncode, done.stdout) == (
        1, f"BROKEN at sequence number {seq}: entry hash does not match the entry's bytes\n")


def line_edit(export: list[bytes], seq: int, old: bytes, new: bytes) -> list[bytes]:
    lines = list(export)
    assert lines[seq - 1].count(old) == 1
    lines[seq - 1] = lines[seq - 1].replace(old, new)
    return lines


def test_verify_file_names_the_entry_at_fault(history: History, export: list[bytes],
                                             tmp_path: Path, verify: Any) -> None:
    k = history.payments[1]
    rehashed = json.loads(export[k - 1])
    rehashed["entry"]["payload"]["memo"] = "pay 200"
    rehashed["hash"] = hashlib.sha256(journal.canonical_json(rehashed["entry"])).hexdigest()
    cases = {
        "dropped": (export[:k - 1] + export[k:],
                    f"{k}: expected sequence number {k}, found {k + 1} (gap or reorder)"),
        "swapped": ([*export[:k - 1], export[k], export[k - 1], *export[k + 1:]],
                    f"{k}: expected sequence number {k}, found {k + 1} (gap or reorder)"),
        "float": (line_edit(export, k, b'"amount_fen":200', b'"amount_fen":200.0'),
                  f"{k}: entry hash does not match the entry's bytes"),
        "hash": (line_edit(export, k, b'"hash":"', b'"hash":"0'),
                 f"{k}: line {k} of the file is malformed (no hash of 64 lower-case hex digits)"),
        "rehashed": ([*export[:k - 1], journal.canonical_json(rehashed) + b"\n", *export[k:]],
                     f"{k + 1}: previous hash does not match the hash of the entry before"),
    }
    for name, (lines, reason) in cases.items():
        assert verify("--file", write(tmp_path / f"{name}.jsonl", lines)) == (
            1, f"BROKEN at sequence number {reason}\n"), name


def test_verify_file_reports_a_line_that_is_not_json_by_its_number(
        history: History, export: list[bytes], tmp_path: Path, verify: Any) -> None:
    k = history.payments[5]
    cut = [*export[:k - 1], export[k - 1][:40] + b"\n", *export[k:]]
    code, out = verify("--file", write(tmp_path / "cut.jsonl", cut))
    assert code == 1
    assert out.startswith(f"BROKEN at sequence number {k}: line {k} of the file is malformed (")


def test_verify_file_ignores_spacing_but_not_content(history: History, export: list[bytes],
                                                    tmp_path: Path, verify: Any) -> None:
    spaced = [json.dumps(json.loads(line), indent=None, ensure_ascii=True).encode() + b"\n"
              for line in export]
    assert spaced != export
    assert verify("--file", write(tmp_path / "spaced.jsonl", spaced)) == (
        0, f"OK: {history.count} entries verified; head hash {history.head}\n")


def test_verify_file_of_a_cut_off_export_still_verifies_up_to_its_end(
        history: History, export: list[bytes], tmp_path: Path, verify: Any) -> None:
    # Documented: only a trusted head hash shows that entries are missing at the end.
    head = json.loads(export[-2])["hash"]
    assert verify("--file", write(tmp_path / "short.jsonl", export[:-1])) == (
        0, f"OK: {history.count - 1} entries verified; head hash {head}\n")
