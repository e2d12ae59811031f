"""The tests' PostgreSQL: start or stop an embedded cluster, and check the migrations.

`python -m tests.testdb start DIR` prints a URL; `stop DIR` stops it; `check URL` migrates a
scratch database and runs `alembic check` against it.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, make_url, text

from api.runtime import alembic_config, upgrade
from ledger.db.embedded import EmbeddedPostgres
from ledger.db.engine import normalise_url

# Durability is not under test here, speed is welcome: no fsync for the test cluster.
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                 "max_connections": "200", "shared_buffers": "128MB"}


def start(home: Path) -> str:
    return EmbeddedPostgres(home, TEST_SETTINGS).start()


def stop(home: Path) -> None:
    EmbeddedPostgres(home, TEST_SETTINGS).stop()


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    url = make_url(normalise_url(server_url))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def check(server_url: str) -> None:
    scratch = create_database(server_url, f"alembic_check_{uuid.uuid4().hex[:8]}")
    upgrade(scratch)
    command.check(alembic_config(scratch))
    print("alembic check: the migrations match the models")


if __name__ == "__main__":
    action, arg = sys.argv[1], sys.argv[2]
    if action == "start":
        print(start(Path(arg)))
    elif action == "stop":
        stop(Path(arg))
    else:
        check(arg)
