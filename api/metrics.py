"""The service's metrics, in the Prometheus text format (`GET /metrics`; docs/reliability.md,
"Observing the service", lists them).

Two kinds:
- observed as things happen: requests by route template, method and status, request latency
  (the edge, api/edge.py, calls `observe_request` once per request); the writer's batch sizes,
  batch and flush times and the time from a write's submission to its answer (`WriterMetrics`,
  the writer's Observer, ledger/db/pipeline.py). prometheus-client's own counters and
  histograms: under `yufu serve --workers N` in its multiprocess mode (below).
- read at scrape time (`Live`): the writer's queue depth, running flag and `counts`, and from
  the database, with one statement timeout (ledger/db/health_queries.py), the open
  reconciliation breaks and the signer lag.

No label names a merchant, a bank, a key or a card: a route is its template
(`/v1/cards/{card_id}`), a path that matched no route is "unmatched", and a method outside
the HTTP verbs is "other". So the label sets are bounded, and the page leaks nobody's data.

Several workers: `yufu serve --workers N` sets PROMETHEUS_MULTIPROC_DIR (a fresh directory
under YUFU_HOME) before any worker starts, and prometheus-client's multiprocess mode then
keeps each worker's counters and histograms in files there and sums them on a scrape, so
whichever worker answers /metrics shows the whole service's requests. The scrape-time gauges
of the writer are the answering worker's own (each worker has its own writer), labelled with
its pid; the database's gauges are the service's whatever worker answers.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from ledger import limits
from ledger.db import health_queries
from ledger.db.group_commit import WriteRequest
from ledger.db.writer import Writer
from ledger.jobs import JobKind

__all__ = ["CONTENT_TYPE_LATEST", "WriterMetrics", "observe_request", "render"]

log = logging.getLogger("yufu.metrics")
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds: a till's write is a few ms, a statement import may take many seconds.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                     10.0, 30.0)
# Requests in one group commit: powers of two up to its bound.
BATCH_BUCKETS = tuple(float(2 ** i) for i in range(9)
                      if 2 ** i <= limits.group_commit_requests_max)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_registry = CollectorRegistry(auto_describe=True)
requests_total = Counter("yufu_http_requests", "HTTP requests answered, by route template, "
                         "method and status", ("route", "method", "status"), registry=_registry)
request_seconds = Histogram("yufu_http_request_seconds", "HTTP request latency at the edge, "
                            "by route template", ("route",), buckets=LATENCY_BUCKETS_S,
                            registry=_registry)
batch_requests = Histogram("yufu_writer_batch_requests", "Requests per group commit",
                           buckets=BATCH_BUCKETS, registry=_registry)
batch_seconds = Histogram("yufu_writer_batch_seconds", "Time to run a group commit's "
                          "commands and make its flush", buckets=LATENCY_BUCKETS_S,
                          registry=_registry)
flush_seconds = Histogram("yufu_writer_flush_seconds", "Time a group commit's flush (writes "
                          "and commit) took in the database", buckets=LATENCY_BUCKETS_S,
                          registry=_registry)
append_seconds = Histogram("yufu_chain_append_seconds", "Time from a write's submission to "
                           "the writer until its answer (queue wait, batch, commit)",
                           buckets=LATENCY_BUCKETS_S, registry=_registry)
job_slices = Counter("yufu_job_slices", "Slices of long jobs (ledger/jobs.py) committed, by "
                     "kind of job", ("kind",), registry=_registry)
job_units = Counter("yufu_job_units", "What long jobs carried out, by kind of job: statement "
                    "lines, merchants, consumptions or cards", ("kind",), registry=_registry)

# One pair of children per (route, method, status) seen: after the first request of a kind,
# the edge's cost is one dict lookup, an increment and an observation.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
UNMATCHED_ROUTE = "unmatched"


def observe_request(route: str | None, method: str, status: int, latency_s: float) -> None:
    """Count one answered request (the edge calls this for every one)."""
    pair = _children.get((route or UNMATCHED_ROUTE, method, status))
    if pair is None:
        pair = _new_children(route or UNMATCHED_ROUTE, method, status)
    pair[0].inc()
    pair[1].observe(latency_s)


def _new_children(route: str, method: str, status: int) -> tuple[Any, Any]:
    # The key keeps what was asked, so an odd method is looked up once too; the label is
    # bounded: a method outside HTTP's is "other".
    label = method if method in HTTP_METHODS else "other"
    pair = (requests_total.labels(route, label, str(status)), request_seconds.labels(route))
    _children[(route, method, status)] = pair
    return pair


def observe_slices(kind: str, slices: int, units: int) -> None:
    """Slices of a long job committed, and what they carried out (lines, merchants, ...)."""
    if slices > 0:
        job_slices.labels(kind).inc(slices)
        job_units.labels(kind).inc(units)


NS_PER_S = 1_000_000_000  # the writer reports integer nanoseconds


class WriterMetrics:
    """The writer's Observer (ledger/db/pipeline.py): its reports as histograms."""

    def batch(self, requests: int, run_ns: int) -> None:
        batch_requests.observe(requests)
        batch_seconds.observe(run_ns / NS_PER_S)

    def flushed(self, flush_ns: int) -> None:
        flush_seconds.observe(flush_ns / NS_PER_S)

    def answered(self, requests: Sequence[WriteRequest], now_ns: int) -> None:
        for request in requests:
            if request.submitted_ns:  # run outside the writer's queue: no wait to measure
                append_seconds.observe((now_ns - request.submitted_ns) / NS_PER_S)


class Live(Collector):
    """What is read when scraped: the writer's state, and the database's gauges."""

    def __init__(self, engine: Engine, writer: Writer) -> None:
        self.engine, self.writer = engine, writer

    def collect(self) -> Iterator[Metric]:
        worker = str(os.getpid())
        depth = GaugeMetricFamily("yufu_writer_queue_requests", "Write requests waiting for "
                                  "this worker's writer", labels=["worker"])
        depth.add_metric([worker], self.writer.queue_depth())
        yield depth
        running = GaugeMetricFamily("yufu_writer_running", "1 if this worker's writer takes "
                                    "writes", labels=["worker"])
        running.add_metric([worker], 1 if self.writer.running else 0)
        yield running
        counts = CounterMetricFamily("yufu_writer_events", "This worker's writer's counts: "
                                     "batches sent, batches run ahead and landed or run again",
                                     labels=["worker", "event"])
        for event, count in sorted(self.writer.counts.items()):
            counts.add_metric([worker, event], count)
        yield counts
        yield from self._database()

    def _database(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("yufu_database_gauges_up", "1 if the scrape read the "
                               "database's gauges within the statement timeout")
        started_s = time.perf_counter()
        try:
            with self.engine.begin() as conn:
                gauges = health_queries.gauges(conn)
                jobs = health_queries.jobs_running(conn)
        except Exception as error:  # a scrape must still show the rest
            log.warning("metrics: the database's gauges failed: %s", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("yufu_database_gauges_seconds", "Time the scrape took to read "
                                "the database's gauges", value=time.perf_counter() - started_s)
        yield GaugeMetricFamily("yufu_reconciliation_breaks_open", "Open reconciliation "
                                "breaks, every bank's", value=gauges.open_breaks)
        yield GaugeMetricFamily("yufu_journal_entries", "Entries in the journal",
                                value=gauges.journal_size)
        running = GaugeMetricFamily("yufu_jobs_running", "Long jobs started and not "
                                    "finished, by kind (ledger/jobs.py)", labels=["kind"])
        for kind in JobKind:
            running.add_metric([kind.value], jobs.get(kind.value, 0))
        yield running
        yield GaugeMetricFamily("yufu_signer_lag_entries", "Journal entries no signed tree "
                                "head covers yet", value=gauges.signer_lag)


def render(engine: Engine, writer: Writer) -> bytes:
    """The whole page: the observed metrics (every worker's, in multiprocess mode), then the
    live ones."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        from prometheus_client import multiprocess

        observed = CollectorRegistry()
        multiprocess.MultiProcessCollector(observed)  # type: ignore[no-untyped-call]
    else:
        observed = _registry
    live = CollectorRegistry(auto_describe=False)
    live.register(Live(engine, writer))
    return generate_latest(observed) + generate_latest(live)
