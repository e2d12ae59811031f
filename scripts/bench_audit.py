"""The audit benchmark: a 1,000,000-entry journal, proof latency over HTTP, verifier speed.

1. Starts a real `yufu serve` (fresh embedded PostgreSQL, fsync on; see scripts/bench.py).
2. Appends the journal through the production write path (`execute_resilient`, `Batch`:
   canonical bytes, hash chain, Merkle nodes at flush) in big group commits, straight to
   the service's database, with entries the size of a card sale; an operator signs a tree
   head every --head-every entries (POST /v1/audit/tree-heads).
3. Asks one keep-alive HTTP client for inclusion proofs (random entry, latest head) and
   consistency proofs (random earlier size to the latest head), one request at a time.
4. Runs scripts/verify_audit.py over the whole journal, as an auditor would, and reads its
   throughput; then once more with --strict.

Prints the figures and records them in docs/benchmarks.md (--no-write: print only).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # scripts/bench.py: the service and the HTTP client

from api.runtime import connect
from ledger.commands import Books, Command
from ledger.db.writer import WriteRequest, execute_resilient

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- audit-bench-runs -->"
entries_per_commit = 20_000
# Targets of the issue: proofs served at p99 <= 10 ms, the verifier >= 100,000 entries/s.
proof_latency_ms_p99_max = 10.0
verifier_entries_per_s_min = 100_000


@dataclass(frozen=True)
class Filler(Command):
    """`count` entries shaped like a card sale (~700 bytes), appended as any command does."""

    first: int
    count: int

    def run(self, books: Books) -> dict[str, Any]:
        for n in range(self.first, self.first + self.count):
            books.append("bench.card_sold", sale_payload(n))
        return {"appended": self.count}


def sale_payload(n: int) -> dict[str, Any]:
    paid, custody = 100_000 + n % 997, 40_000 + n % 991
    return {"card_id": f"card_{n:016x}", "merchant_id": f"m_{n % 500:016x}",
            "product_id": f"prod_{n % 2000:016x}",
            "consumer_id": hashlib.sha256(n.to_bytes(8, "big")).hexdigest(), "named": True,
            "kind": "stored_value", "paid_fen": paid, "custody_fen": custody,
            "direct_fen": paid - custody, "total_units": paid, "rule_set_id": 3,
            "card_account_id": 1000 + n, "sold_on": "2026-11-23", "expires_on": "2027-02-23",
            "memo": "card sale", "reverses": None,
            "postings": [{"account_id": 10 + n % 500, "amount_fen": custody, "currency": "CNY"},
                         {"account_id": 20 + n % 500, "amount_fen": paid - custody,
                          "currency": "CNY"},
                         {"account_id": 1000 + n, "amount_fen": -paid, "currency": "CNY"}]}


async def build_journal(service: bench.Service, admin: bench.Client, entries: int,
                        head_every: int) -> float:
    """Append `entries` entries; sign a head every `head_every`. Returns seconds taken."""
    engine = connect(service.database_url)
    started, done = time.perf_counter(), 0
    with engine.connect() as conn:
        while done < entries:
            count = min(entries_per_commit, entries - done, head_every - done % head_every)
            request = WriteRequest(Filler(done, count), 200)
            execute_resilient(conn, [request])
            request.future.result()
            done += count
            if done % head_every == 0 or done == entries:
                status, head = await admin.request("POST", "/v1/audit/tree-heads")
                assert status == 200, head
                print(f"  {done:,} entries, tree head {head['tree_size']:,} "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
    engine.dispose()
    return time.perf_counter() - started


async def proof_latencies(client: bench.Client, size: int, requests: int
                          ) -> dict[str, bench.Result]:
    rng = random.Random(9162)
    kinds = {
        "inclusion": lambda: f"/v1/audit/proofs/inclusion?seq={rng.randint(1, size)}"
                             f"&tree_size={size}",
        "consistency": lambda: f"/v1/audit/proofs/consistency?first={rng.randint(1, size)}"
                               f"&second={size}",
    }
    results = {}
    for name, path in kinds.items():
        result = bench.Result(f"GET /v1/audit/proofs/{name}", 0.0, note="1 client")
        began = time.perf_counter()
        for _ in range(requests):
            started = time.perf_counter()
            status, _ = await client.request("GET", path())
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.operations += 1
            result.units += 1
            result.errors += status != 200
        result.seconds = time.perf_counter() - began
        results[name] = result
    return results


# default: the journal downloaded over HTTP while checked; --export: from a file downloaded
# beforehand (the verifier's own speed); --strict: every entry's canonical form too.
VERIFIER_MODES = ("default", "--export", "--strict")


@dataclass
class VerifierRun:
    mode: str
    code: int
    seconds: float
    journal_entries_per_s: float
    output: str


def run_verifier(service: bench.Service, key: str, pem: Path, mode: str) -> VerifierRun:
    command = [sys.executable, str(ROOT / "scripts" / "verify_audit.py"),
               "--url", f"http://127.0.0.1:{service.port}", "--key", key,
               "--public-key", str(pem), "--sample", "1000"]
    if mode == "--strict":
        command.append("--strict")
    if mode == "--export":
        command += ["--export", str(download_export(service, key))]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    found = re.search(r"\(([\d,]+) entries/s\)", done.stdout)
    rate = float(found[1].replace(",", "")) if found else 0.0
    return VerifierRun(mode, done.returncode, seconds, rate, done.stdout + done.stderr)


def download_export(service: bench.Service, key: str) -> Path:
    """The journal export saved to a file, as an auditor would keep it."""
    path = service.home / "journal.jsonl"
    request = urllib.request.Request(f"http://127.0.0.1:{service.port}/v1/audit/journal/export",
                                     headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request) as answer, path.open("wb") as out:
        shutil.copyfileobj(answer, out, 1 << 20)
    return path


def database_sizes(service: bench.Service) -> str:
    from sqlalchemy import text

    engine = connect(service.database_url)
    with engine.connect() as conn:
        sizes = {table: conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size("
                                          ":t))"), {"t": table}).scalar_one()
                 for table in ("journal_entries", "merkle_nodes")}
    engine.dispose()
    return ", ".join(f"{table} {size}" for table, size in sizes.items())


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def record(args: argparse.Namespace, built_s: float, proofs: dict[str, bench.Result],
           runs: list[VerifierRun], sizes: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(r.row() for r in proofs.values())
    p99_ok = all(r.percentile(0.99) <= proof_latency_ms_p99_max and not r.errors
                 for r in proofs.values())
    verify_rows = "\n".join(
        f"| verify_audit.py {r.mode} | {'OK' if r.code == 0 else f'exit {r.code}'} | "
        f"{r.seconds:.1f} | {r.journal_entries_per_s:,.0f} | "
        f"{args.entries / r.seconds:,.0f} |" for r in runs)
    rates = {r.mode: r.journal_entries_per_s for r in runs}
    return (
        f"### Audit run of {stamp}\n\nMachine: {bench.machine()}. PostgreSQL: embedded "
        f"(pgserver wheel), fsync on, same machine. Journal: {args.entries:,} entries of "
        f"~700 bytes (card-sale shaped), appended through the write path in commits of "
        f"{entries_per_commit:,} in {built_s:.0f} s ({args.entries / built_s:,.0f} entries/s, "
        f"Merkle nodes included); a tree head every {args.head_every:,} entries. On disk: "
        f"{sizes}.\n\nProofs against the {args.entries:,}-entry head, {args.requests:,} "
        f"requests each, one keep-alive client, one at a time:\n\n"
        "| request | proofs/s | requests/s | p50 ms | p95 ms | p99 ms | errors | notes |\n"
        f"|---|---|---|---|---|---|---|---|\n{rows}\n\n"
        "The auditor's verifier over the whole journal: signatures, chain, every head's root, "
        "consistency between heads, 1,000 inclusion proofs. `default` downloads the journal "
        "over HTTP from the service on the same machine while it checks it; `--export` "
        "checks a file downloaded beforehand; `--strict` also re-encodes every entry:\n\n"
        "| run | result | seconds | journal check, entries/s | whole run, entries/s |\n"
        f"|---|---|---|---|---|\n{verify_rows}\n\n"
        f"Targets: proofs p99 <= {proof_latency_ms_p99_max:.0f} ms: {verdict(p99_ok)}; "
        f"verifier >= {verifier_entries_per_s_min:,} entries/s (journal check): over HTTP "
        f"{verdict(rates['default'] >= verifier_entries_per_s_min)}, from a file "
        f"{verdict(rates['--export'] >= verifier_entries_per_s_min)}.\n")


def write_doc(section: str) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if MARKER not in text:
        text = text.rstrip("\n") + f"\n\n## Audit: proofs and the verifier\n\n{MARKER}\n"
    head, _, tail = text.partition(MARKER)
    doc.write_text(f"{head}{MARKER}\n\n{section}\n{tail.lstrip()}")


async def run(args: argparse.Namespace, service: bench.Service) -> str:
    admin = bench.Client("127.0.0.1", service.port, service.key)
    await admin.connect()
    print(f"building a journal of {args.entries:,} entries ...", flush=True)
    built_s = await build_journal(service, admin, args.entries, args.head_every)
    status, head = await admin.request("POST", "/v1/audit/tree-heads")
    assert status == 200, head
    status, regulator = await admin.request("POST", "/v1/keys", {"role": "regulator"})
    assert status == 201, regulator
    client = bench.Client("127.0.0.1", service.port, regulator["key"])
    await client.connect()
    print("measuring proof latency ...", flush=True)
    proofs = await proof_latencies(client, head["tree_size"], args.requests)
    status, public = await admin.request("GET", "/v1/audit/public-key")
    pem = service.home / "audit-public.pem"
    pem.write_text(public["public_key_pem"])
    runs = []
    for mode in VERIFIER_MODES:
        print(f"running verify_audit.py {mode} ...", flush=True)
        runs.append(run_verifier(service, regulator["key"], pem, mode))
        print(runs[-1].output, flush=True)
    return record(args, built_s, proofs, runs, database_sizes(service))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--head-every", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000, help="proof requests per kind")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    with bench.Service() as service:
        section = asyncio.run(run(args, service))
    print(section)
    if not args.no_write:
        write_doc(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
