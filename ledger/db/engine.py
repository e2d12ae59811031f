"""Engines and the database URL."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine


def normalise_url(url: str) -> str:
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


def make_engine(url: str, pool_size: int = 10) -> Engine:
    # values_plus_batch turns executemany UPDATEs into a few round trips, not one per row.
    return create_engine(normalise_url(url), pool_size=pool_size, max_overflow=20,
                         pool_pre_ping=False, executemany_mode="values_plus_batch",
                         insertmanyvalues_page_size=1000)
