"""The FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypedDict, Unpack

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.types import ASGIApp

from api import openapi, problems
from api.access_records import AccessRecorder
from api.context import Context
from api.edge import Edge
from api.jobs import JobRunner
from api.lane import Lane, LaneRoute, lane_routes
from api.messages import MessageSender
from api.metrics import WriterMetrics
from api.profiles import load_profiles
from api.ratelimit import RateLimits, limiter_or_none
from api.reports import ReportScheduler
from api.routes import audit as audit_routes
from api.routes import banks as bank_routes
from api.routes import bans as ban_routes
from api.routes import complaints as complaint_routes
from api.routes import custody as custody_routes
from api.routes import dashboard as dashboard_routes
from api.routes import departments as department_routes
from api.routes import jobs as job_routes
from api.routes import ledger as ledger_routes
from api.routes import public as public_routes
from api.routes import register as register_routes
from api.routes import reports as report_routes
from api.routes import supervision as supervision_routes
from api.routes import system
from api.routes import trust as trust_routes
from api.settings import Settings
from api.signer import TreeHeadSigner
from api.webhooks import run_worker, webhook_poll_interval_s
from ledger import limits
from ledger.bank.profile import BankProfile
from ledger.db.writer import Writer
from ledger.supervision.routines import report_schedule_interval_s


class YufuApp(FastAPI):
    """FastAPI, with the edge (api/edge.py: request ids, hostile input, body limit, rate
    limits, access log) and then the till's lane (api/lane.py) outermost: a till's write then
    passes through none of FastAPI's own middleware layers (its error, telemetry and
    body-limit wrappers, each of which wraps every message sent). The lane answers its own
    failures as problem+json; everything else goes through the whole stack as before."""

    lane_routes: tuple[LaneRoute, ...] | None = None  # None: no lane
    rate_limits = RateLimits()

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        if self.lane_routes is not None:
            inner = Lane(inner, self.lane_routes)
        return Edge(inner, self.state, self.rate_limits)


# FastAPI's OpenTelemetry hooks (newer releases) look for a provider on every request; the
# service configures none, so they are switched off rather than asked ~1,000 times a second.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})


# Pseudonyms of consumers in development and tests; `yufu serve` passes its own
# (api/runtime.py pseudonym_key).
DEVELOPMENT_PSEUDONYM_KEY = b"yufu-development-pseudonym-key"


# Every route the app serves, by router; the dashboard's last: its page and files
# (api/dashboard/), and the JSON routes only its panels needed.
class AppOptions(TypedDict, total=False):
    """What create_app may be given beyond the engine, by keyword; each one left out takes
    the default named here."""

    pseudonym_key: bytes  # DEVELOPMENT_PSEUDONYM_KEY
    audit_key: Ed25519PrivateKey | None  # None: a throwaway key, tree heads on demand only
    tree_head_interval_s: float | None  # limits.tree_head_interval_s (with an audit key)
    # routines.report_schedule_interval_s with an audit key; None: reports on demand only
    report_schedule_interval_s: float | None
    lane: bool  # True
    rate_limits: RateLimits  # RateLimits()
    sender: MessageSender | None  # None
    bank_profiles: Mapping[str, BankProfile]  # load_profiles(Settings().bank_profiles_dir)
    webhook_interval_s: float | None  # None: no delivery worker (`yufu serve` runs one)


@asynccontextmanager
async def in_background(work: Coroutine[Any, Any, None] | None) -> AsyncIterator[None]:
    """`work` (the signer's loop, the reports' scheduler) as a task for as long as the block,
    cancelled at its end; nothing when there is no work."""
    task = asyncio.create_task(work) if work is not None else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# Every route of the service, by resource: a new resource adds its router here.
ROUTERS = (system.router, system.metrics_router, trust_routes.router, ledger_routes.router,
           custody_routes.router, department_routes.router, register_routes.router,
           audit_routes.router, bank_routes.router, job_routes.router, public_routes.router,
           dashboard_routes.api_router, dashboard_routes.router, ban_routes.router,
           complaint_routes.router, report_routes.router, supervision_routes.router)


def create_app(engine: Engine, **options: Unpack[AppOptions]) -> FastAPI:
    """The app. Without an audit key (tests) it signs tree heads with a throwaway key, and
    only on demand; `yufu serve` passes the configured key and signs on the interval too.
    `lane` serves the till's writes on the short path of api/lane.py. After each answer the
    edge calls `app.state.on_request(record)` with the access-log record, if it is set."""
    unknown = options.keys() - AppOptions.__annotations__.keys()
    if unknown:  # as a misspelt parameter would have been
        raise TypeError(f"create_app() got unexpected keyword arguments {sorted(unknown)}")
    rate_limits = options.get("rate_limits", RateLimits())
    audit_key = options.get("audit_key")
    writer = Writer(engine)
    writer.observer = WriterMetrics()
    signer = TreeHeadSigner(audit_key, options.get("tree_head_interval_s",
                                                   limits.tree_head_interval_s)) \
        if audit_key is not None else TreeHeadSigner(Ed25519PrivateKey.generate(), None)
    # The routines' reports on schedule (日管控 daily, 周排查 Mondays, 月调度 the 1st, 季度报告
    # each quarter) where heads are signed on schedule too: `yufu serve`.
    scheduler = ReportScheduler(options.get("report_schedule_interval_s",
                                            report_schedule_interval_s)
                                if audit_key is not None else None)

    # Read before anything starts: a broken profile file stops the start, naming itself.
    profiles = options.get("bank_profiles")
    if profiles is None:
        profiles = load_profiles(Settings().bank_profiles_dir)
    ctx = Context(engine, writer, options.get("pseudonym_key", DEVELOPMENT_PSEUDONYM_KEY),
                  sender=options.get("sender"), bank_profiles=profiles,
                  code_attempts=limiter_or_none(rate_limits.code_rate_per_s,
                                                rate_limits.code_burst),
                  lookups=limiter_or_none(rate_limits.lookup_rate_per_s,
                                          rate_limits.lookup_burst))
    access = AccessRecorder(engine)
    jobs = JobRunner()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        writer.start()
        ctx.keys.start()
        access.start()
        signing = signer.run(writer) if signer.interval_s else None
        reporting = scheduler.run(engine, writer, signer) if scheduler.interval_s else None
        task = asyncio.create_task(signer.run(writer)) if signer.interval_s else None
        interval = options.get("webhook_interval_s")
        worker = asyncio.create_task(run_worker(engine, interval)) if interval else None
        try:
            async with in_background(signing), in_background(reporting), \
                    jobs.running(engine, writer, profiles):
                yield
        finally:
            for running in (task, worker):
                if running is not None:
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await running
            access.stop()
            ctx.keys.stop()
            writer.stop()

    # No redirect_slashes: its redirect to the path with(out) the slash is built from the
    # request's Host header, which would echo whatever a client sends there. FastAPI's own
    # /docs and /redoc load their scripts from a CDN: api/openapi.py serves them instead.
    app = YufuApp(title="Yufu custody ledger", version="1", lifespan=lifespan, **_NO_TELEMETRY,
                  redirect_slashes=False, docs_url=None, redoc_url=None,
                  description="Prepaid-fund custody ledger: double entry in integer fen, "
                              "a hash-chained journal, custody flows. Errors are RFC 9457 "
                              "problem+json; writes take an Idempotency-Key header.")
    app.state.ctx = ctx
    app.state.jobs = jobs
    app.state.signer = signer
    app.state.reports = scheduler
    app.state.access = access
    app.state.on_request = access.note  # reads by banks and regulators are kept
    problems.install(app)
    openapi.install(app)
    app.rate_limits = rate_limits
    for router in ROUTERS:
        app.include_router(router)
    # Here, not with the middleware (built at the first message, where a lifespan's failure
    # may pass for "lifespan unsupported"): a lane that cannot serve its routes stops the start.
    app.lane_routes = lane_routes(app.routes) if options.get("lane", True) else None
    return app


def app_from_environment() -> FastAPI:
    """The app of one `yufu serve` worker process: everything from the environment, which
    the parent process prepared (database migrated, keys made)."""
    from api.logs import log_service_to_stderr
    from api.messages import sender_from_environment
    from api.runtime import audit_signing_key, connect, pseudonym_key, settle_heap

    settings = Settings()
    assert settings.database_url is not None, "the parent process sets YUFU_DATABASE_URL"
    log_service_to_stderr()  # in this process: the parent's logging does not reach a worker
    app = create_app(connect(settings.database_url), pseudonym_key=pseudonym_key(settings.home),
                     audit_key=audit_signing_key(settings), rate_limits=settings.rate_limits,
                     sender=sender_from_environment(settings.home),
                     bank_profiles=load_profiles(settings.bank_profiles_dir),
                     webhook_interval_s=webhook_poll_interval_s)
    settle_heap()
    return app
