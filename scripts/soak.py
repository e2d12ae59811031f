"""Soak: the POS mix for a long while with the scheduled jobs running; is the service steady?

N clients drive the POS mix of scripts/bench.py against a real `yufu serve` on a fresh
embedded PostgreSQL (fsync on). Meanwhile the jobs run on their schedules, as an operator's
cron would run them: every `--jobs-every` seconds an auto-confirmation sweep and a release run
(the soak's rule sets make silence confirm the same day and periods last one day, so both do
real work), and the service's own tree-head signer on its interval. Every `--sample-every`
seconds the soak samples the service's resident memory (its processes, not PostgreSQL's), its
open file descriptors, the database's client connections, and the window's p99.

After a warm-up, it checks: memory stays within `memory_growth_pct_max` of the first sample
after the warm-up; connections and file descriptors never exceed their warm-up peak (no leak);
each window's p99 stays within `p99_window_ratio_max` of the windows' median (steady); no write
failed; every scheduled job answered 200; the tree heads were signed on schedule; and
`yufu verify` passes. Prints the figures and a verdict; records them in docs/reliability.md
("The soak") unless --no-write.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench

from api.context import china_today
from ledger import limits

memory_growth_pct_max = 10
p99_window_ratio_max = 2.0  # a window's p99 against the median window's
# After the warm-up, connections, threads and descriptors may not pass the warm-up's peak by
# more than these: the pool and the thread pool open a few more on a busier moment, a leak
# opens them without end.
connections_slack = 2
threads_slack = 4
descriptors_slack = 8  # a few descriptors come and go with the clients' keep-alives
settle_s = 3  # after the clients stop: every connection must be back in its pool by then
job_poll_s = 0.5  # a scheduled job answered 202 is polled this often
window_s = 60  # the p99 is taken per window of this length
signing_slack = 2  # heads the signer may miss at the start and the end of the run
MARKER = "<!-- soak-runs -->"
SECTION = "## The soak"
SOAK_RULES = {"confirmation_silence_working_days": 0, "release_cadence_days": 1}


@dataclass
class Sample:
    at_s: float
    rss_kib: int
    descriptors: int
    threads: int
    connections: int
    in_transaction: int  # connections idle in a transaction: a checked-out one never returned


@dataclass
class Soak:
    started: float = 0.0
    writes: list[tuple[float, float, bool]] = field(default_factory=list)  # at, ms, ok
    samples: list[Sample] = field(default_factory=list)
    jobs: list[tuple[str, int, int]] = field(default_factory=list)  # name, status, done
    settled: Sample | None = None  # taken settle_s after the clients stopped


def service_pids(root_pid: int) -> list[int]:
    """`yufu serve` and its descendants, PostgreSQL's processes left out."""
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        if not name.startswith("postgres"):
            pids.append(pid)
        todo += [int(c) for c in children]
    return pids


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def take_sample(soak: Soak, service: bench.Service, engine: Engine) -> Sample:
    assert service.process is not None
    pids = service_pids(service.process.pid)
    with engine.connect() as conn:
        connections, in_transaction = conn.execute(text(
            "SELECT count(*) - 1, count(*) FILTER (WHERE state = 'idle in transaction') "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend'")).one()
    return Sample(time.monotonic() - soak.started, sum(rss_kib(p) for p in pids),
                  sum(len(os.listdir(f"/proc/{p}/fd")) for p in pids),
                  sum(len(os.listdir(f"/proc/{p}/task")) for p in pids), int(connections),
                  int(in_transaction))


async def sampler(soak: Soak, service: bench.Service, every_s: float, stop_at: float) -> None:
    engine = create_engine(service.database_url.replace("postgresql://",
                                                        "postgresql+psycopg2://"),
                           pool_size=1, max_overflow=0)
    try:
        while time.monotonic() < stop_at:
            soak.samples.append(await asyncio.to_thread(take_sample, soak, service, engine))
            await asyncio.sleep(every_s)
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()) + settle_s)
        soak.settled = await asyncio.to_thread(take_sample, soak, service, engine)
    finally:
        engine.dispose()


async def jobs(soak: Soak, admin: bench.Client, every_s: float, stop_at: float) -> None:
    """The operator's cron: an auto-confirmation sweep and a release run, each keyed."""
    tomorrow = china_today() + timedelta(days=1)  # the period [today, tomorrow) is due
    while time.monotonic() + every_s < stop_at:
        await asyncio.sleep(every_s)
        status, body = await scheduled(admin, "/v1/consumptions/auto-confirm", {})
        soak.jobs.append(("auto-confirm", status, len(body.get("confirmed", []))))
        status, body = await scheduled(admin, "/v1/releases/run",
                                       {"as_of": tomorrow.isoformat()})
        soak.jobs.append(("release run", status, len(body.get("releases", []))))


async def scheduled(admin: bench.Client, path: str, body: dict[str, str]
                    ) -> tuple[int, dict[str, Any]]:
    """A keyed job, and its answer: a big one answers 202 with the job, polled here until
    it is over (200 and its result when done, its status otherwise)."""
    once = {"Idempotency-Key": f"soak-{uuid.uuid4()}"}
    status, answer = await admin.request("POST", path, body, once)
    while status == 202 and answer.get("status") == "running":
        await asyncio.sleep(job_poll_s)
        status, answer = await admin.request("GET", f"/v1/jobs/{answer['job_id']}")
        status = 202 if status == 200 else status
    if status == 202:
        if answer.get("status") == "done":
            return 200, answer["result"]
        return answer["result"]["problem"]["status"], answer  # failed: its problem
    return status, answer


async def till(soak: Soak, world: bench.PosWorld, clients: list[bench.Client],
               stop_at: float) -> None:
    while time.monotonic() < stop_at:
        sent = time.monotonic()
        _, errors = await bench.pos_step(world, clients)
        soak.writes.append((sent - soak.started, (time.monotonic() - sent) * 1000, errors == 0))


async def soak_rules(admin: bench.Client) -> None:
    """A new version of each rule set the bench's merchants fall under, with SOAK_RULES."""
    status, body = await admin.request("GET", "/v1/rule-sets?limit=1000")
    assert status == 200, body
    latest = {(r["jurisdiction"], r["industry"]): r["rules"] for r in body["items"]}
    for (jurisdiction, industry), rules in latest.items():
        status, body = await admin.request("POST", "/v1/rule-sets", {
            "jurisdiction": jurisdiction, "industry": industry,
            "rules": {**rules, **SOAK_RULES}})
        assert status == 201, body


async def drive(args: argparse.Namespace, service: bench.Service, soak: Soak) -> None:
    admin = bench.Client("127.0.0.1", service.port, service.key)
    await admin.connect()
    await soak_rules(admin)
    world = await bench.pos_setup(admin, service.port, args.merchants, args.cards_per_merchant)
    tills = await bench.pos_clients(world, service.port, args.clients)
    soak.started = time.monotonic()
    stop_at = soak.started + args.minutes * 60
    await asyncio.gather(sampler(soak, service, args.sample_every, stop_at),
                         jobs(soak, admin, args.jobs_every, stop_at),
                         *(till(soak, world, clients, stop_at) for clients in tills))


def window_p99s(soak: Soak, warmup_s: float) -> list[float]:
    windows: dict[int, list[float]] = {}
    for at, ms, _ in soak.writes:
        if at >= warmup_s:
            windows.setdefault(int((at - warmup_s) // window_s), []).append(ms)
    full = [sorted(v) for k, v in sorted(windows.items()) if k < max(windows, default=0)]
    return [v[min(len(v) - 1, int(0.99 * len(v)))] for v in full or windows.values()]


def signed_heads(service: bench.Service) -> int:
    engine = create_engine(service.database_url.replace("postgresql://",
                                                        "postgresql+psycopg2://"))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM tree_heads")).scalar_one())
    finally:
        engine.dispose()


def judge(args: argparse.Namespace, soak: Soak, heads: int) -> list[tuple[str, str, bool]]:
    """(figure, value, within its bound) for every check."""
    warmup_s = args.warmup_minutes * 60
    warm = [s for s in soak.samples if s.at_s < warmup_s] or soak.samples[:1]
    after = [s for s in soak.samples if s.at_s >= warmup_s] or soak.samples[-1:]
    base = after[0].rss_kib
    growth = (max(s.rss_kib for s in after) - base) * 100 / base
    p99s = window_p99s(soak, warmup_s)
    median = statistics.median(p99s)
    failed = sum(1 for _, _, ok in soak.writes if not ok)
    heads_due = max(0, int(args.minutes * 60 // limits.tree_head_interval_s) - signing_slack)
    settled = soak.settled or soak.samples[-1]
    return [
        ("memory (RSS of the service's processes) after the warm-up",
         f"{base / 1024:.1f} MiB first, {max(s.rss_kib for s in after) / 1024:.1f} MiB max, "
         f"{after[-1].rss_kib / 1024:.1f} MiB last: growth {growth:.1f}% "
         f"(bound {args.memory_growth_pct_max:g}%)", growth <= args.memory_growth_pct_max),
        _peak_row("database client connections", "connections", warm, after,
                  connections_slack),
        ("connections idle in a transaction once the clients stopped",
         f"{settled.in_transaction} of {settled.connections}", settled.in_transaction == 0),
        _peak_row("threads", "threads", warm, after, threads_slack),
        _peak_row("open file descriptors", "descriptors", warm, after, descriptors_slack),
        (f"p99 per {window_s} s window after the warm-up (ms)",
         f"median {median:.1f}, max {max(p99s):.1f}, min {min(p99s):.1f} "
         f"(bound: max <= {p99_window_ratio_max} x median)",
         max(p99s) <= p99_window_ratio_max * median),
        ("writes (failed)", f"{len(soak.writes):,} ({failed})", failed == 0),
        ("scheduled jobs (answered other than 200)",
         f"{len(soak.jobs)} ({sum(1 for _, status, _ in soak.jobs if status != 200)})",
         bool(soak.jobs) and all(status == 200 for _, status, _ in soak.jobs)),
        ("consumptions auto-confirmed / releases instructed by the jobs",
         f"{sum(n for name, _, n in soak.jobs if name == 'auto-confirm'):,} / "
         f"{sum(n for name, _, n in soak.jobs if name == 'release run')}", True),
        ("tree heads signed by the service's interval", f"{heads} (at least {heads_due})",
         heads >= heads_due),
    ]


def _peak_row(name: str, attribute: str, warm: list[Sample], after: list[Sample],
              slack: int) -> tuple[str, str, bool]:
    """Never past the warm-up's peak by more than `slack`: a leak grows without end."""
    peak = max(getattr(s, attribute) for s in warm)
    most = max(getattr(s, attribute) for s in after)
    return (name, f"warm-up peak {peak}, after: max {most}, last {getattr(after[-1], attribute)}",
            most <= peak + slack)


def report(args: argparse.Namespace, soak: Soak, checks: list[tuple[str, str, bool]],
           verified: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    verdict = "PASS" if all(ok for _, _, ok in checks) else "FAIL"
    rows = "\n".join(f"| {name} | {value} | {'ok' if ok else 'FAILED'} |"
                     for name, value, ok in checks)
    memory = ", ".join(f"{s.rss_kib / 1024:.0f}" for s in soak.samples[::max(1, len(
        soak.samples) // 12)])
    return (f"### Run of {stamp}: {verdict}\n\nMachine: {bench.machine()}; load average at the "
            f"end {os.getloadavg()[0]:.2f}. `scripts/soak --minutes {args.minutes:g} "
            f"--warmup-minutes {args.warmup_minutes:g} --clients {args.clients}`; jobs every "
            f"{args.jobs_every:g} s, samples every {args.sample_every:g} s.\n\n"
            f"| figure | value | check |\n|---|---|---|\n{rows}\n| `yufu verify` | {verified} "
            f"| ok |\n\nMemory through the run (MiB, evenly spaced samples): {memory}.\n")


def write_doc(section: str) -> None:
    doc = bench.ROOT / "docs" / "reliability.md"
    text_ = doc.read_text()
    if MARKER not in text_:
        text_ = text_.rstrip("\n") + f"\n\n{SECTION}\n\n{MARKER}\n"
    head, _, tail = text_.partition(MARKER)
    doc.write_text(f"{head}{MARKER}\n\n{section}\n{tail.lstrip()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup-minutes", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--merchants", type=int, default=20)
    parser.add_argument("--cards-per-merchant", type=int, default=20)
    parser.add_argument("--jobs-every", type=float, default=60.0, help="seconds")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds")
    parser.add_argument("--memory-growth-pct-max", type=float, default=memory_growth_pct_max,
                        help="the bound on memory growth after the warm-up (a short run is "
                        "all warm-up: the suite's short form loosens it)")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    soak = Soak()
    with bench.Service(prefix="yufu-soak-") as service:
        asyncio.run(drive(args, service, soak))
        checks = judge(args, soak, signed_heads(service))
        verified = bench.verify(service)
    section = report(args, soak, checks, verified)
    print(section)
    if not args.no_write:
        write_doc(section)
    verdict = all(ok for _, _, ok in checks)
    print(f"VERDICT: {'PASS' if verdict else 'FAIL'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
