"""Crash the service and its database under the POS mix; prove afterwards that nothing was lost.

N clients drive the POS mix (sales, consumptions, refunds) against a real `yufu serve` on a
fresh embedded PostgreSQL (fsync on). Every write carries an Idempotency-Key and is retried
with the same key until a definite answer: a 2xx, or a 4xx other than 429. A 429 or 503 (with
Retry-After), any other 5xx, a connection error or a timeout means "retry". Meanwhile the
service is killed with SIGKILL at random moments and restarted, and PostgreSQL is stopped by an
immediate shutdown and by a SIGKILL of its postmaster, then started again.

Afterwards, reading the database: every acknowledged write is there exactly once (its
idempotency record and its entity), no Idempotency-Key was written twice, nothing that was not
acknowledged was written, every card's remaining value is its start minus its acknowledged
consumptions and refund, `yufu verify` and scripts/verify_audit.py pass, and no 500 was
answered for a write that was recorded. Prints the figures and a verdict line; records them in
docs/reliability.md (section "The crash harness") unless --no-write.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import bisect
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench

from api.settings import embedded_settings
from ledger.db.embedded import (
    EmbeddedPostgres,
    _ensure_system_user,
    find_bin_dir,
)

ROOT = bench.ROOT
card_start_fen = 300_000  # the bench product's price: a card's value when sold
request_timeout_s = 30  # an answer slower than this is treated as a lost connection
write_give_up_s = 180  # a write still without a definite answer after this is "unresolved"
recover_timeout_s = 120  # a fault after which no write is acknowledged for this long fails
pg_outage_s = 2.0  # how long PostgreSQL stays down before it is started again
children_exit_s = 15  # how long a killed postmaster's backends get to notice and exit
retry_after_s_max = 2.0
reconnect_pause_s = 0.2
DEFINITE_4XX_EXCEPT = (429,)
PG_FAULTS = ("pg-immediate", "pg-sigkill")
MARKER = "<!-- crashtest-runs -->"
SECTION = "## The crash harness"


@dataclass
class Write:
    key: str
    kind: str  # sale, consume, refund
    merchant: int
    card: str = ""
    statuses: list[int | str] = field(default_factory=list)  # every attempt's answer
    final: int = 0  # the definite answer's status, 0 if none came
    replayed: bool = False  # the definite answer was a replay of an earlier attempt's
    refused_unrecorded: int = 0  # attempts answered 503 `recorded: no` (nothing recorded)
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fault:
    kind: str  # kill, pg-immediate, pg-sigkill
    at_s: float  # since the start of the run
    recover_s: float = float("nan")  # until the first write acknowledged after the fault
    note: str = ""


@dataclass
class Run:
    writes: list[Write] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    acked_at: list[float] = field(default_factory=list)  # monotonic times of 2xx answers
    sent_at: list[float] = field(default_factory=list)  # and when their attempts were sent
    started: float = 0.0
    seconds: float = 0.0
    setup_cards: list[str] = field(default_factory=list)


class CrashService(bench.Service):
    """bench's Service, with its PostgreSQL started here (so the harness can stop and start
    it) and everything stopped and removed on exit, also at interpreter exit."""

    def __init__(self) -> None:
        super().__init__(workers=1, prefix="yufu-crash-")
        self.pg = EmbeddedPostgres(self.home / "pg", embedded_settings())
        self.closed = False
        atexit.register(self.close)

    def __enter__(self) -> CrashService:
        self.pg.start()
        super().__enter__()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL
        self.process.wait()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(Exception):
            self.pg.stop()
        if self.log is not None:
            self.log.close()
        if os.environ.get("YUFU_CRASH_KEEP_LOG"):
            print((self.home / "serve.log").read_text(errors="replace")[-8000:])
        shutil.rmtree(self.home, ignore_errors=True)


def pg_stop_immediate(pg: EmbeddedPostgres) -> str:
    user = _ensure_system_user()
    command = [str(find_bin_dir() / "pg_ctl"), "-D", str(pg.pgdata), "-m", "immediate", "-w",
               "stop"]
    if user is None:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    else:
        done = subprocess.run(command, capture_output=True, text=True, check=False, user=user,
                              group=user, extra_groups=[])
    return "" if done.returncode == 0 else f"pg_ctl stop -m immediate: {done.stderr.strip()}"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def pg_sigkill(pg: EmbeddedPostgres) -> str:
    """SIGKILL the postmaster; its backends notice and exit (any left are killed too, as a
    power cut would)."""
    pid = int((pg.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    children = _children(pid)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + children_exit_s
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [c for c in children if _alive(c)]
    for c in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(c, signal.SIGKILL)
    return f"{len(left)} backend(s) outlived the postmaster and were killed" if left else ""


class Till:
    """One client's connections, one per merchant, remade after a connection error."""

    def __init__(self, port: int, keys: list[str]) -> None:
        self.port, self.keys = port, keys
        self.clients: list[bench.Client | None] = [None] * len(keys)

    async def attempt(self, n: int, path: str, body: dict[str, Any], key: str
                      ) -> tuple[int | str, dict[str, Any], dict[str, str]]:
        client = self.clients[n]
        try:
            if client is None:
                client = bench.Client("127.0.0.1", self.port, self.keys[n])
                await asyncio.wait_for(client.connect(), request_timeout_s)
                self.clients[n] = client
            status, answer = await asyncio.wait_for(
                client.request("POST", path, body, {"Idempotency-Key": key}), request_timeout_s)
            return status, answer, client.headers
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError,
                IndexError) as error:
            self.drop(n)
            return f"connection:{type(error).__name__}", {}, {}
        except TimeoutError:
            self.drop(n)
            return "timeout", {}, {}

    def drop(self, n: int) -> None:
        client, self.clients[n] = self.clients[n], None
        if client is not None and client.writer is not None:
            client.writer.close()


def pause_for(status: int | str, headers: dict[str, str]) -> float:
    if status in (429, 503):
        with contextlib.suppress(ValueError):
            return min(float(headers.get("retry-after", "1")), retry_after_s_max)
        return 1.0
    return reconnect_pause_s * (0.5 + random.random())


async def send(run: Run, till: Till, write: Write, path: str, body: dict[str, Any]) -> None:
    """Until a definite answer: a 2xx, or a 4xx other than 429."""
    give_up = time.monotonic() + write_give_up_s
    while time.monotonic() < give_up:
        sent = time.monotonic()
        status, answer, headers = await till.attempt(write.merchant, path, body, write.key)
        write.statuses.append(status)
        if status == 503 and answer.get("recorded") == "no":
            write.refused_unrecorded += 1
        if isinstance(status, int) and (200 <= status < 300 or (
                400 <= status < 500 and status not in DEFINITE_4XX_EXCEPT)):
            write.final, write.body = status, answer
            write.replayed = headers.get("idempotent-replayed") == "true"
            if status < 300:
                run.acked_at.append(time.monotonic())
                run.sent_at.append(sent)
            return
        await asyncio.sleep(pause_for(status, headers))


async def client_loop(run: Run, world: bench.PosWorld, till: Till, stop_at: float) -> None:
    """The POS mix of scripts/bench.py: 70% consume, 25% sell, 5% refund."""
    while time.monotonic() < stop_at:
        roll = random.random()
        key = f"crash-{uuid.uuid4()}"
        if roll < 0.70 and world.cards:
            n, card = random.choice(world.cards)
            write = Write(key, "consume", n, card)
            run.writes.append(write)
            await send(run, till, write, f"/v1/cards/{card}/consumptions",
                       {"amount_fen": random.randint(1, 50)})
        elif roll < 0.95 or len(world.cards) < 10:
            n = random.randrange(len(world.merchants))
            write = Write(key, "sale", n)
            run.writes.append(write)
            await send(run, till, write, "/v1/cards", {
                "product_id": world.merchants[n][2],
                "consumer": {"external_id": f"c{random.random()}"}})
            if write.final == 201:
                write.card = write.body["card_id"]
                world.cards.append((n, write.card))
        else:
            n, card = world.cards.pop(random.randrange(len(world.cards)))
            write = Write(key, "refund", n, card)
            run.writes.append(write)
            await send(run, till, write, f"/v1/cards/{card}/refunds", {"reason": "balance"})


def schedule(args: argparse.Namespace) -> list[Fault]:
    """The faults at random moments, one per slot between 10% and 85% of the run."""
    kinds = ["kill"] * args.kills + [PG_FAULTS[i % 2] for i in range(args.pg_stops)]
    random.shuffle(kinds)
    slot_s = args.seconds * 0.75 / max(1, len(kinds))
    return [Fault(kind, args.seconds * 0.10 + slot_s * (i + 0.6 * random.random()))
            for i, kind in enumerate(kinds)]


async def chaos(run: Run, service: CrashService, faults: list[Fault]) -> None:
    for fault in faults:
        await asyncio.sleep(max(0.0, run.started + fault.at_s - time.monotonic()))
        if fault.kind == "kill":
            service.kill()
            down = time.monotonic()  # no write can be acknowledged from here until a restart
            await asyncio.to_thread(service.spawn)
        else:
            stop = pg_stop_immediate if fault.kind == "pg-immediate" else pg_sigkill
            fault.note = await asyncio.to_thread(stop, service.pg)
            down = time.monotonic()  # no commit from here until PostgreSQL is started again
            await asyncio.sleep(pg_outage_s)
            recovered = await asyncio.to_thread(service.pg.start)
            fault.note = "; ".join(filter(None, [fault.note, *recovered[:1]]))
        run.faults.append(fault)
        fault.recover_s = await recovered_after(run, down)
        print(f"  {fault.kind} at {fault.at_s:.1f} s: recovered in {fault.recover_s:.2f} s"
              f"{'; ' + fault.note if fault.note else ''}", flush=True)


async def recovered_after(run: Run, down: float) -> float:
    """Seconds from `down` to the first acknowledgement of an attempt sent after it (an answer
    already on its way when the service died does not count), NaN if none came in time."""
    while time.monotonic() < down + recover_timeout_s:
        for i in range(bisect.bisect_right(run.acked_at, down), len(run.acked_at)):
            if run.sent_at[i] > down:
                return run.acked_at[i] - down
        await asyncio.sleep(0.05)
    return float("nan")


async def drive(args: argparse.Namespace, service: CrashService, run: Run) -> None:
    admin = bench.Client("127.0.0.1", service.port, service.key)
    await admin.connect()
    world = await bench.pos_setup(admin, service.port, args.merchants, args.cards_per_merchant)
    run.setup_cards = [card for _, card in world.cards]
    keys = [key for _, key, _ in world.merchants]
    run.started = time.monotonic()
    stop_at = run.started + args.seconds
    tills = [Till(service.port, keys) for _ in range(args.clients)]
    await asyncio.gather(chaos(run, service, schedule(args)),
                         *(client_loop(run, world, till, stop_at) for till in tills))
    run.seconds = time.monotonic() - run.started
    for till in tills:
        for n in range(len(keys)):
            till.drop(n)


# -- the proof ------------------------------------------------------------------------------


def check_database(run: Run, url: str) -> list[str]:
    """What the database says against what the clients were told; the failures found."""
    failures: list[str] = []
    acked = [w for w in run.writes if 200 <= w.final < 300]
    refused = [w for w in run.writes if 400 <= w.final < 500]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            records: dict[str, int] = dict(conn.execute(text(
                "SELECT key, count(*) FROM idempotency_records WHERE key LIKE 'crash-%' "
                "GROUP BY key")).all())
            cards = {r.id: r for r in conn.execute(text(
                "SELECT id, paid_fen, consumed_paid_fen, status FROM cards"))}
            consumptions = {r.id: r for r in conn.execute(text(
                "SELECT id, card_id, paid_fen FROM consumptions"))}
            refunds = {r.id: r for r in conn.execute(text(
                "SELECT id, card_id, claim_fen FROM refund_instructions"))}
    finally:
        engine.dispose()
    twice = [k for k, count in records.items() if count > 1]
    if twice:
        failures.append(f"{len(twice)} Idempotency-Key(s) written twice, e.g. {twice[0]}")
    lost = [w.key for w in acked if records.get(w.key) != 1]
    if lost:
        failures.append(f"{len(lost)} acknowledged write(s) without their idempotency record, "
                        f"e.g. {lost[0]}")
    stray = [w.key for w in refused if w.key in records]
    if stray:
        failures.append(f"{len(stray)} refused write(s) recorded anyway, e.g. {stray[0]}")
    unasked = set(records) - {w.key for w in acked}
    if unasked:
        failures.append(f"{len(unasked)} write(s) recorded that no client saw acknowledged")
    failures += check_entities(run, acked, cards, consumptions, refunds)
    return failures


def check_entities(run: Run, acked: list[Write], cards: dict[str, Any],
                   consumptions: dict[int, Any], refunds: dict[int, Any]) -> list[str]:
    failures: list[str] = []
    sold = [w.body["card_id"] for w in acked if w.kind == "sale"]
    consumed = [w for w in acked if w.kind == "consume"]
    refunded = [w for w in acked if w.kind == "refund"]
    expected_cards = set(run.setup_cards) | set(sold)
    if len(sold) != len(set(sold)) or set(cards) != expected_cards:
        failures.append(f"cards: {len(cards)} in the database, {len(expected_cards)} sold and "
                        "acknowledged (with the setup's)")
    for name, rows, writes, id_field in (
            ("consumptions", consumptions, consumed, "consumption_id"),
            ("refunds", refunds, refunded, "refund_id")):
        ids = [w.body[id_field] for w in writes]
        card_of = {w.body[id_field]: w.card for w in writes}
        missing = [i for i in ids if i not in rows or rows[i].card_id != card_of[i]]
        if missing or len(rows) != len(ids) or len(set(ids)) != len(ids):
            failures.append(f"{name}: {len(rows)} in the database, {len(ids)} acknowledged, "
                            f"{len(missing)} acknowledged missing")
    spent: Counter[str] = Counter()
    for w in consumed:
        spent[w.card] += w.body["paid_fen"]
    claimed = {w.card: w.body["claim_fen"] for w in refunded}
    refund_of = {r.card_id: r.claim_fen for r in refunds.values()}
    wrong = []
    for card_id in expected_cards & set(cards):
        row = cards[card_id]
        refund = refund_of.get(card_id, 0)
        remaining_fen = row.paid_fen - row.consumed_paid_fen - refund
        expected_fen = card_start_fen - spent[card_id] - claimed.get(card_id, 0)
        refund_state_ok = (row.status in ("refund_pending", "refunded")) == (card_id in claimed)
        if remaining_fen != expected_fen or row.paid_fen != card_start_fen or not refund_state_ok:
            wrong.append(card_id)
    if wrong:
        failures.append(f"{len(wrong)} card(s) whose remaining value is not their start minus "
                        f"their acknowledged consumptions and refund, e.g. {wrong[0]}")
    return failures


def check_answers(run: Run) -> tuple[list[str], dict[str, int]]:
    """A 500 (or 503) for a write that was recorded: the key's definite answer was a replay,
    so an earlier attempt had recorded it, or the one that answered 5xx did. A 503 that said
    `recorded: no` was wrong if every attempt before the replay was one: then one of them
    recorded it."""
    lies = "503 `recorded: no` for a recorded write (every earlier attempt so answered)"
    figures = {"500 for a recorded write": 0, "503 for a recorded write": 0, lies: 0,
               "unresolved writes": 0}
    for w in run.writes:
        if w.final == 0:
            figures["unresolved writes"] += 1
        if 200 <= w.final < 300 and w.replayed:
            for code in (500, 503):
                if code in w.statuses:
                    figures[f"{code} for a recorded write"] += 1
            if w.refused_unrecorded and w.refused_unrecorded == len(w.statuses) - 1:
                figures[lies] += 1
    failures = []
    if figures[lies]:
        failures.append(f"{figures[lies]} recorded write(s) answered 503 recorded: no")
    if figures["500 for a recorded write"]:
        failures.append(f"{figures['500 for a recorded write']} recorded write(s) answered 500")
    if figures["unresolved writes"]:
        failures.append(f"{figures['unresolved writes']} write(s) without a definite answer "
                        f"after {write_give_up_s} s")
    return failures, figures


async def audit_setup(service: CrashService) -> tuple[str, Path]:
    admin = bench.Client("127.0.0.1", service.port, service.key)
    await admin.connect()
    status, head = await admin.request("POST", "/v1/audit/tree-heads")
    assert status == 200, head
    status, regulator = await admin.request("POST", "/v1/keys", {"role": "regulator"})
    assert status == 201, regulator
    status, public = await admin.request("GET", "/v1/audit/public-key")
    assert status == 200, public
    pem = service.home / "audit-public.pem"
    pem.write_text(public["public_key_pem"])
    return regulator["key"], pem


def verify_all(service: CrashService) -> tuple[list[str], list[str]]:
    """`yufu verify` and scripts/verify_audit.py against the service: (lines, failures)."""
    failures, lines = [], []
    try:
        lines.append(f"`yufu verify`: {bench.verify(service)}")
    except SystemExit as failed:
        failures.append(str(failed))
    key, pem = asyncio.run(audit_setup(service))
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify_audit.py"),
                           "--url", f"http://127.0.0.1:{service.port}", "--key", key,
                           "--public-key", str(pem), "--sample", "500"],
                          capture_output=True, text=True, check=False)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode != 0:
        failures.append(f"verify_audit.py exit {done.returncode}:\n{done.stdout}{done.stderr}")
    lines.append(f"`scripts/verify_audit.py`: {last}")
    return lines, failures


# -- the figures ----------------------------------------------------------------------------


def answers_by_status(run: Run) -> Counter[str]:
    counts: Counter[str] = Counter()
    for w in run.writes:
        for s in w.statuses:
            counts[str(s) if isinstance(s, int) else s.split(":")[0]] += 1
    return counts


def report(args: argparse.Namespace, run: Run, figures: dict[str, int], lines: list[str],
           failures: list[str]) -> str:
    acked = sum(1 for w in run.writes if 200 <= w.final < 300)
    by_kind = Counter(w.kind for w in run.writes if 200 <= w.final < 300)
    attempts = sum(len(w.statuses) for w in run.writes)
    retried = sum(1 for w in run.writes if len(w.statuses) > 1)
    kinds = Counter(f.kind for f in run.faults)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(answers_by_status(run).items()))
    recover = ", ".join(f"{f.kind} {f.recover_s:.2f} s" for f in run.faults)
    verdict = "PASS" if not failures else "FAIL"
    refused = ", ".join(f"{n} {kind} {status}" for (kind, status), n in sorted(Counter(
        (w.kind, w.final) for w in run.writes if 400 <= w.final < 500).items()))
    return "\n".join([
        f"### Run of {stamp}: {verdict}", "",
        f"Machine: {bench.machine()}. `scripts/crashtest --seconds {args.seconds:.0f} "
        f"--clients {args.clients} --kills {args.kills} --pg-stops {args.pg_stops}`; "
        f"ran {run.seconds:.0f} s.", "",
        "| figure | value |", "|---|---|",
        f"| writes sent (distinct Idempotency-Keys) | {len(run.writes):,} |",
        f"| acknowledged (2xx) | {acked:,} (sales {by_kind['sale']:,}, consumptions "
        f"{by_kind['consume']:,}, refunds {by_kind['refund']:,}) |",
        f"| acknowledged by a replay (Idempotent-Replayed: an earlier attempt had recorded "
        f"it) | {sum(1 for w in run.writes if w.replayed):,} |",
        f"| refused (definite 4xx) | {refused or 0} |",
        f"| attempts / retries | {attempts:,} / {attempts - len(run.writes):,} "
        f"({retried:,} writes retried) |",
        f"| service kills (SIGKILL) and restarts | {kinds['kill']} |",
        f"| PostgreSQL immediate shutdowns / postmaster SIGKILLs | {kinds['pg-immediate']} / "
        f"{kinds['pg-sigkill']} |",
        f"| time to recover (from the fault to the next acknowledged write; PostgreSQL "
        f"stays down {pg_outage_s:.0f} s) | {recover or 'none'} |",
        f"| answers by status | {statuses} |",
        *(f"| {name} | {value} |" for name, value in figures.items()),
        "", *(f"- {line}" for line in lines),
        *(f"- FAILED: {failure.splitlines()[0]}" for failure in failures), ""])


def write_doc(section: str) -> None:
    """The run, newest first, in this harness's own section of docs/reliability.md."""
    doc = ROOT / "docs" / "reliability.md"
    text_ = doc.read_text() if doc.exists() else "# Reliability\n"
    if MARKER not in text_:
        text_ = text_.rstrip("\n") + f"\n\n{SECTION}\n\n{INTRO}\n{MARKER}\n"
    head, _, tail = text_.partition(MARKER)
    doc.write_text(f"{head}{MARKER}\n\n{section}\n{tail.lstrip()}")


INTRO = """`scripts/crashtest` (scripts/crashtest.py) drives the POS mix of `scripts/bench` with N
clients (default 16), every write under an Idempotency-Key and retried with the same key until
a definite answer (a 2xx, or a 4xx other than 429; a 429 or 503 with Retry-After, another 5xx,
a lost connection or a 30 s timeout mean "retry"). During the run it kills `yufu serve` with
SIGKILL at random moments and restarts it, stops the embedded PostgreSQL (fsync on) with
`pg_ctl stop -m immediate` and SIGKILLs its postmaster, then starts it again. Afterwards,
from the database: every acknowledged write is there exactly once (its idempotency record and
its card, consumption or refund), nothing unacknowledged was written, no Idempotency-Key was
written twice, every card's remaining value is its start minus its acknowledged consumptions
and refund; `yufu verify` and `scripts/verify_audit.py` pass; and no 500 answered a write that
was recorded (the key's definite answer was a replay after a 500). Answers of 500 and 503 are
counted apart. Short form (about a minute, in the test suite when reliable):
`scripts/crashtest` (60 s, 2 kills, an immediate shutdown and a postmaster SIGKILL); long
form, by hand:
`scripts/crashtest --seconds 600` (6 kills). Each run below is the one the harness wrote.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--kills", type=int, default=None,
                        help="SIGKILLs of yufu serve (default: one a 100 s, at least 2)")
    parser.add_argument("--pg-stops", type=int, default=2,
                        help="PostgreSQL faults: immediate shutdown, postmaster SIGKILL, ...")
    parser.add_argument("--merchants", type=int, default=8)
    parser.add_argument("--cards-per-merchant", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    if args.kills is None:
        args.kills = max(2, int(args.seconds // 100))
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    run = Run()
    with CrashService() as service:
        asyncio.run(drive(args, service, run))
        failures = check_database(run, service.database_url)
        answer_failures, figures = check_answers(run)
        lines, verify_failures = verify_all(service)
    failures += answer_failures + verify_failures
    missed = [f for f in run.faults if f.recover_s != f.recover_s]  # NaN: never recovered
    if missed or len(run.faults) != args.kills + args.pg_stops:
        failures.append(f"{len(missed)} fault(s) without recovery; {len(run.faults)} of "
                        f"{args.kills + args.pg_stops} done")
    section = report(args, run, figures, lines, failures)
    print(section)
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    if not args.no_write:
        write_doc(section)
    print("VERDICT: PASS" if not failures else f"VERDICT: FAIL ({len(failures)} failure(s))",
          flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
