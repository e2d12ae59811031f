"""Alembic environment: migrations are the only source of the schema."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

from ledger.db import (
    audit_tables,  # noqa: F401  (registers the audit tables)
    ban_tables,  # noqa: F401  (registers bans, lifts, premises arrivals and flags)
    bank_tables,  # noqa: F401  (registers the bank tables)
    complaint_tables,  # noqa: F401  (registers complaints, their steps and deadlines)
    custody_tables,  # noqa: F401  (registers the custody tables)
    job_tables,  # noqa: F401  (registers the jobs table)
    report_tables,  # noqa: F401  (registers the routines' reports)
    supervision_tables,  # noqa: F401  (registers signals, alerts, webhooks: 0019)
    trust_tables,  # noqa: F401  (registers banks, revocations, codes, access records)
)
from ledger.db.engine import normalise_url
from ledger.db.tables import Base

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or os.environ.get("YUFU_DATABASE_URL")
    if not url:
        raise SystemExit("set YUFU_DATABASE_URL (or run through `yufu db upgrade`)")
    return normalise_url(str(url))


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url())
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
