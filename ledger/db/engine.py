"""Engines and the database URL."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from ledger import limits

# A connection to a database that does not answer fails within bounds rather than hanging:
# its making (connect_timeout), and over TCP data the server never acknowledges
# (tcp_user_timeout, in ms) or a silent peer on an idle connection (keepalives). On a Unix
# socket only connect_timeout applies. docs/reliability.md.
# Every prepared query (a foreign key's check, a query inside a PL/pgSQL trigger) planned
# afresh at each run rather than once for the connection's life: a plan made while a table
# was small is a sequential scan, and the writer's connection lives as long as the service
# (migration 0014: 2,000 breaks read the whole journal twice each).
CONNECT_ARGS = {"connect_timeout": limits.database_connect_timeout_s,
                "tcp_user_timeout": limits.database_connect_timeout_s * 1000,
                "keepalives": 1, "keepalives_idle": limits.database_keepalive_idle_s,
                "keepalives_interval": limits.database_keepalive_interval_s,
                "keepalives_count": limits.database_keepalive_probes_max,
                "options": "-c plan_cache_mode=force_custom_plan"}


def normalise_url(url: str) -> str:
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


def make_engine(url: str, pool_size: int = 10) -> Engine:
    # values_plus_batch turns executemany UPDATEs into a few round trips, not one per row.
    return create_engine(normalise_url(url), pool_size=pool_size, max_overflow=20,
                         pool_pre_ping=False, executemany_mode="values_plus_batch",
                         insertmanyvalues_page_size=1000, connect_args=CONNECT_ARGS)
