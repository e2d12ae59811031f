"""The embedded PostgreSQL after a crash of everything (issue 13): a SIGKILL of the server and
every process of it leaves `postmaster.pid` behind, naming a process that is gone or a zombie
nobody collected. The next start removes that lock, lets the server recover from its WAL, and
says what it recovered; what was committed before the crash is still there."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import psycopg2
import pytest

from ledger.db import embedded
from ledger.db.embedded import OWNER_ROLE, EmbeddedPostgres
from tests.support.testdb import TEST_SETTINGS, own_cluster

kill_settle_s = 0.5
# A commit must reach the operating system before it is acknowledged (not the suite's
# synchronous_commit=off): a SIGKILL loses what only the server's memory held, never what
# the operating system has (fsync stays off: the machine itself does not crash here).
CRASH_SETTINGS = {**TEST_SETTINGS, "synchronous_commit": "on"}


@pytest.fixture
def cluster() -> Iterator[EmbeddedPostgres]:
    with own_cluster("yufu-test-crash-", CRASH_SETTINGS) as made:
        yield made


def owner_sql(cluster: EmbeddedPostgres, sql: str) -> list[tuple[object, ...]]:
    conn = psycopg2.connect(host=str(cluster.socket_dir), dbname="postgres", user=OWNER_ROLE,
                            passfile=str(cluster.passfile),
                            connect_timeout=embedded.connect_timeout_s)
    conn.autocommit = True
    with conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []


def kill_everything(cluster: EmbeddedPostgres) -> int:
    """SIGKILL the server and every process it started, as a power cut would stop them."""
    pid = int((cluster.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                              check=False).stdout.split()
    for victim in (pid, *map(int, children)):
        os.kill(victim, signal.SIGKILL)
    time.sleep(kill_settle_s)
    return pid


def test_a_start_after_a_crash_of_everything_recovers_and_says_so(
        cluster: EmbeddedPostgres) -> None:
    owner_sql(cluster, "CREATE TABLE crashed (n int); INSERT INTO crashed VALUES (7)")
    pid = kill_everything(cluster)
    assert (cluster.pgdata / "postmaster.pid").exists()  # the lock outlived its server
    assert not cluster.is_running()

    recovered = cluster.start()

    assert cluster.is_running()
    assert recovered[0].startswith("PostgreSQL had stopped without a shutdown: removed the "
                                   f"lock of its server process {pid} (")
    assert any("redo" in note or "recovery" in note for note in recovered[1:]), recovered
    assert owner_sql(cluster, "SELECT n FROM crashed") == [(7,)]  # the commit survived


def test_a_clean_start_recovers_nothing(cluster: EmbeddedPostgres) -> None:
    cluster.stop()
    assert cluster.start() == []
    assert cluster.start() == []  # and a start while it runs changes nothing


def test_a_lock_naming_another_program_is_not_trusted(cluster: EmbeddedPostgres) -> None:
    """The process number reused by something else (here: this test's own process)."""
    kill_everything(cluster)
    lock = cluster.pgdata / "postmaster.pid"
    lines = lock.read_text().split("\n")
    lock.write_text("\n".join([str(os.getpid()), *lines[1:]]))
    assert not cluster.is_running()
    recovered = cluster.start()
    assert f"server process {os.getpid()} (the number now belongs to another program" \
        in recovered[0]
    assert cluster.is_running()
