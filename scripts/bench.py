"""Drive a real `yufu serve` over HTTP with concurrent clients; print and record the figures.

The service runs on a fresh embedded PostgreSQL with durable settings (fsync on), on this
machine; the clients are raw asyncio HTTP/1.1 keep-alive connections in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.db.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
startup_timeout_s = 120
latency_buckets = 100


@dataclass
class Result:
    name: str
    seconds: float
    operations: int = 0
    units: int = 0  # transactions (a batch request carries many)
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    note: str = ""

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def row(self) -> str:
        return (f"| {self.name} | {self.units / self.seconds:,.0f} | "
                f"{self.operations / self.seconds:,.0f} | {self.percentile(0.50):.1f} | "
                f"{self.percentile(0.95):.1f} | {self.percentile(0.99):.1f} | {self.errors} | "
                f"{self.note} |")


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port, self.key = host, port, key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.headers: dict[str, str] = {}  # the last answer's, names in lower case

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: object | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, dict]:
        assert self.reader is not None and self.writer is not None
        payload = json.dumps(body).encode() if body is not None else b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}",
                 f"Authorization: Bearer {self.key}", f"Content-Length: {len(payload)}",
                 "Content-Type: application/json"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError(f"the server closed the connection ({method} {path})")
        status = int(status_line.split()[1])
        self.headers = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            self.headers[name.strip().lower()] = value.strip()
        data = await self.reader.readexactly(int(self.headers.get("content-length", "0")))
        return status, (json.loads(data) if data else {})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`yufu serve` on a fresh YUFU_HOME; stopped (with its database) on exit."""

    def __init__(self, workers: int = 1, prefix: str = "yufu-bench-") -> None:
        self.workers = workers
        self.home = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.key = ""
        self.log: Any = None

    def __enter__(self) -> Service:
        self.log = (self.home / "serve.log").open("wb")
        self.spawn()
        return self

    def spawn(self) -> None:
        """Start `yufu serve` and wait until it answers (again, after a crash)."""
        env = {**os.environ, "YUFU_HOME": str(self.home), "YUFU_PORT": str(self.port),
               "YUFU_WORKERS": str(self.workers)}
        env.pop("YUFU_DATABASE_URL", None)
        self.process = subprocess.Popen([str(ROOT / ".venv/bin/yufu"), "serve"], env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + startup_timeout_s
        key_file = self.home / "operator.key"
        while time.monotonic() < deadline:
            if key_file.exists() and _port_open(self.port):
                self.key = key_file.read_text().strip()
                return
            if self.process.poll() is not None:
                out = (self.home / "serve.log").read_text(errors="replace")
                raise SystemExit(f"yufu serve exited early:\n{out}")
            time.sleep(0.2)
        raise SystemExit("yufu serve did not start in time")

    @property
    def database_url(self) -> str:
        """The service role's URL on the service's embedded PostgreSQL (docs/database.md):
        what the benchmarks write through directly is held to what the service may do."""
        return EmbeddedPostgres(self.home / "pg", {}).service_url

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        if os.environ.get("YUFU_BENCH_KEEP_LOG"):
            print((self.home / "serve.log").read_text(errors="replace")[-5000:])
        shutil.rmtree(self.home, ignore_errors=True)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def drive(name: str, clients: list[Client], seconds: float,
                step: Callable[[Client], Awaitable[tuple[int, int]]], note: str = "") -> Result:
    """Each client runs `step` back to back for `seconds`; step returns (units, errors)."""
    stop_at = time.perf_counter() + seconds
    return await drive_while(name, clients, lambda: time.perf_counter() < stop_at, step, note)


async def drive_while(name: str, clients: list[Any], going: Callable[[], bool],
                      step: Callable[[Any], Awaitable[tuple[int, int]]], note: str = ""
                      ) -> Result:
    """Each client runs `step` back to back while `going()`."""
    result = Result(name, 0.0, note=note)

    async def loop(client: Any) -> None:
        while going():
            started = time.perf_counter()
            units, errors = await step(client)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.operations += 1
            result.units += units
            result.errors += errors

    began = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in clients))
    result.seconds = time.perf_counter() - began
    return result


async def open_accounts(client: Client, count: int) -> tuple[int, list[int]]:
    status, cash = await client.request("POST", "/v1/accounts",
                                        {"kind": "asset", "name": "custody cash"})
    assert status == 201, cash
    cards = []
    for i in range(count):
        status, card = await client.request("POST", "/v1/accounts", {
            "kind": "liability", "name": f"card {i}"})
        assert status == 201, card
        cards.append(card["id"])
    return cash["id"], cards


def transfer(cash: int, cards: list[int]) -> dict:
    amount = random.randint(1, 10_000)
    return {"postings": [{"account_id": cash, "amount_fen": amount},
                         {"account_id": random.choice(cards), "amount_fen": -amount}],
            "memo": "card sale"}


async def scenario_single(clients: list[Client], seconds: float, cash: int,
                          cards: list[int]) -> Result:
    async def step(client: Client) -> tuple[int, int]:
        status, _ = await client.request("POST", "/v1/transactions", transfer(cash, cards))
        return (1, 0) if status == 201 else (0, 1)

    return await drive("POST /v1/transactions (2 postings)", clients, seconds, step,
                       f"{len(clients)} clients")


async def scenario_batch(clients: list[Client], seconds: float, cash: int, cards: list[int],
                         size: int) -> Result:
    async def step(client: Client) -> tuple[int, int]:
        body = {"transactions": [transfer(cash, cards) for _ in range(size)]}
        status, answer = await client.request("POST", "/v1/transactions/batch", body)
        if status != 200:
            return 0, size
        return answer["posted"], size - answer["posted"]

    return await drive(f"POST /v1/transactions/batch ({size} per request)", clients, seconds,
                       step, f"{len(clients)} clients; throughput in transactions/s")


def credit_code(n: int) -> str:
    """A valid unified social credit code (GB 32100-2015 check character) for merchant n."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    base = f"9111010{n:010d}"
    total = sum(alphabet.index(ch) * w for ch, w in zip(base, weights, strict=True))
    check = (31 - total % 31) % 31
    return base + alphabet[check]


@dataclass
class PosWorld:
    merchants: list[tuple[str, str, str]] = field(default_factory=list)  # id, key, product
    cards: list[tuple[int, str]] = field(default_factory=list)  # merchant index, card id


async def pos_setup(admin: Client, port: int, merchants: int, cards_each: int) -> PosWorld:
    world = PosWorld()
    offset = random.randrange(10**9)  # fresh credit codes, so setup can run twice on one server
    status, bank = await admin.request("POST", "/v1/banks", {
        "id": "BENCH-BANK", "name": "bench bank", "code": "102100099996"})
    assert status in (201, 409), bank  # 409: registered by an earlier setup on this server
    for n in range(merchants):
        industry = "餐饮" if n % 2 else "体育健身"
        status, m = await admin.request("POST", "/v1/merchants", {
            "name": f"bench merchant {n}", "credit_code": credit_code(offset + n),
            "industry": industry, "bank_id": "BENCH-BANK", "custody_account": f"62{n:08d}"})
        assert status == 201, m
        status, key = await admin.request("POST", "/v1/keys", {
            "role": "merchant", "merchant_id": m["id"]})
        merchant = Client("127.0.0.1", port, key["key"])
        await merchant.connect()
        status, product = await merchant.request(
            "POST", f"/v1/merchants/{m['id']}/products",
            {"kind": "stored_value", "name": "储值卡", "price_fen": 300_000, "bonus_units": 0,
             "validity_months": 3})
        assert status == 201, product
        world.merchants.append((m["id"], key["key"], product["id"]))
        for _ in range(cards_each):
            status, sale = await merchant.request("POST", "/v1/cards", {
                "product_id": product["id"], "consumer": {"external_id": f"c{random.random()}"}})
            assert status == 201, sale
            world.cards.append((n, sale["card_id"]))
    return world


async def pos_step(world: PosWorld, clients: list[Client]) -> tuple[int, int]:
    """One till's write of the POS mix: (done, failed)."""
    # Every write carries an Idempotency-Key, as a till that may retry must send.
    once = {"Idempotency-Key": f"pos-{uuid.uuid4()}"}
    roll = random.random()
    if roll < 0.70 and world.cards:
        n, card = random.choice(world.cards)
        status, _ = await clients[n].request(
            "POST", f"/v1/cards/{card}/consumptions", {"amount_fen": random.randint(1, 50)},
            once)
        return (1, 0) if status == 201 else (0, 1)
    if roll < 0.95 or len(world.cards) < 10:
        n = random.randrange(len(world.merchants))
        status, sale = await clients[n].request("POST", "/v1/cards", {
            "product_id": world.merchants[n][2],
            "consumer": {"external_id": f"c{random.random()}"}}, once)
        if status == 201:
            world.cards.append((n, sale["card_id"]))
        return (1, 0) if status == 201 else (0, 1)
    n, card = world.cards.pop(random.randrange(len(world.cards)))
    status, _ = await clients[n].request("POST", f"/v1/cards/{card}/refunds",
                                         {"reason": "balance"}, once)
    return (1, 0) if status == 201 else (0, 1)


async def pos_clients(world: PosWorld, port: int, count: int) -> list[list[Client]]:
    """For each of `count` concurrent tills, a connection per merchant (its key)."""
    workers = []
    for _ in range(count):
        clients = [Client("127.0.0.1", port, key) for _, key, _ in world.merchants]
        await asyncio.gather(*(c.connect() for c in clients))
        workers.append(clients)
    return workers


POS_MIX = "POS mix (70% consume, 25% sell, 5% refund)"


async def pos_mix(world: PosWorld, workers: list[list[Client]], going: Callable[[], bool],
                  note: str) -> Result:
    """The POS mix on every till while `going()`."""
    return await drive_while(POS_MIX, workers, going, lambda clients: pos_step(world, clients),
                             note)


async def scenario_pos(args: argparse.Namespace, service: Service) -> Result:
    admin = Client("127.0.0.1", service.port, service.key)
    await admin.connect()
    world = await pos_setup(admin, service.port, args.merchants, args.cards_per_merchant)
    workers = await pos_clients(world, service.port, args.clients)
    stop_at = time.perf_counter() + args.seconds
    return await pos_mix(world, workers, lambda: time.perf_counter() < stop_at,
                         f"{args.clients} clients, {args.merchants} merchants, every write "
                         "with an Idempotency-Key")


SCENARIOS: dict[str, Callable[..., Awaitable[Result]]] = {"pos": scenario_pos}


async def run(args: argparse.Namespace, service: Service) -> list[Result]:
    admin = Client("127.0.0.1", service.port, service.key)
    await admin.connect()
    cash, cards = await open_accounts(admin, args.accounts)
    results = []
    wanted = args.scenarios.split(",")
    if "single" in wanted:
        clients = [Client("127.0.0.1", service.port, service.key) for _ in range(args.clients)]
        await asyncio.gather(*(c.connect() for c in clients))
        results.append(await scenario_single(clients, args.seconds, cash, cards))
    if "batch" in wanted:
        clients = [Client("127.0.0.1", service.port, service.key) for _ in range(4)]
        await asyncio.gather(*(c.connect() for c in clients))
        results.append(await scenario_batch(clients, args.seconds, cash, cards, args.batch_size))
    for name, scenario in SCENARIOS.items():
        if name in wanted:
            results.append(await scenario(args, service))
    return results


def verify(service: Service) -> str:
    # The service's own YUFU_HOME: `yufu verify` finds its PostgreSQL running and leaves it so.
    env = {**os.environ, "YUFU_HOME": str(service.home)}
    env.pop("YUFU_DATABASE_URL", None)
    done = subprocess.run([str(ROOT / ".venv/bin/yufu"), "verify"], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"yufu verify FAILED after the benchmark:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[0]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{os.cpu_count()} cores ({cpu}){memory}; Python {platform.python_version()}; "
            f"{platform.system()} {platform.release()}")


def record(results: list[Result], verified: str, args: argparse.Namespace) -> str:
    header = ("| scenario | operations/s | requests/s | p50 ms | p95 ms | p99 ms | errors | "
              "notes |\n|---|---|---|---|---|---|---|---|")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"### Run of {stamp}\n\nMachine: {machine()}. PostgreSQL: embedded (pgserver "
               f"wheel), fsync on, same machine. `yufu serve` with {args.workers} worker "
               f"process(es). Duration {args.seconds:.0f} s per scenario.\n\n"
               f"{header}\n" + "\n".join(r.row() for r in results) +
               f"\n\nAfterwards `yufu verify`: {verified}\n")
    return section


def write_doc(section: str, marker: str = "<!-- bench-runs -->", heading: str = "") -> None:
    """The section, newest first, after `marker` (made at the end, under `heading`)."""
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{marker}\n"
    if marker not in text:
        text = text.rstrip("\n") + f"\n\n{heading}{marker}\n"
    head, _, tail = text.partition(marker)
    doc.write_text(f"{head}{marker}\n\n{section}\n{tail.lstrip()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--scenarios", default="single,batch,pos")
    parser.add_argument("--workers", type=int, default=1, help="yufu serve worker processes")
    parser.add_argument("--merchants", type=int, default=20)
    parser.add_argument("--cards-per-merchant", type=int, default=20)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    with Service(args.workers) as service:
        results = asyncio.run(run(args, service))
        verified = verify(service)
    section = record(results, verified, args)
    print(section)
    if not args.no_write:
        write_doc(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
