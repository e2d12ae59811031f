"""An embedded PostgreSQL for `scripts/serve`, `scripts/test` and `scripts/bench`.

Binaries come from the `pgserver` wheel; where it is missing (Python 3.13+, an unusual
platform), from `initdb`/`pg_ctl` on PATH or under /usr/lib/postgresql. PostgreSQL refuses
to run as root, so as root the cluster belongs to an unprivileged system user.

Only Yufu can enter it (docs/database.md): every connection proves a password (SCRAM), the
passwords live in a libpq password file only the caller can read, the socket's directory
belongs to the cluster's user alone (mode 0700), and there is no TCP unless a setting asks.
Two roles: the superuser `postgres` owns the schema and runs the migrations; the service
connects as `yufu_service`, which may only do what ledger/db/privileges.py grants it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2.extensions import quote_ident
from sqlalchemy import URL

INSTALL_HINT = (
    "No PostgreSQL found: install the pgserver wheel (pip install pgserver, Python 3.9-3.12) "
    "or PostgreSQL's server binaries (Debian: apt-get install postgresql), or point "
    "YUFU_DATABASE_URL at a running server."
)
system_user = "yufu-pg"
start_timeout_s = 60
connect_timeout_s = 10
socket_path_chars_max = 90
# A password is this many random bytes (URL-safe base64: no ':' or '\' to escape in the file).
password_bytes = 32

OWNER_ROLE = "postgres"  # the superuser initdb makes: owns every table, runs the migrations
SERVICE_ROLE = "yufu_service"
PASSFILE_NAME = "pgpass"  # libpq's password file format: host:port:database:user:password
# Written on every start. A cluster made before it (initdb --auth=trust) is moved onto it.
HBA = """\
# Written by Yufu (ledger/db/embedded.py): every connection proves its password (SCRAM).
local  all  all                scram-sha-256
host   all  all  127.0.0.1/32  scram-sha-256
host   all  all  ::1/128       scram-sha-256
"""
# Fixed after the caller's settings, which may not loosen them: only the cluster's own user
# (and root) may open the socket, and passwords are stored as SCRAM verifiers.
GUARD_SETTINGS = {"unix_socket_permissions": "0700",
                  "password_encryption": "scram-sha-256"}


class EmbeddedUnavailable(RuntimeError):
    pass


def find_bin_dir() -> Path:
    # Locate the wheel's binaries without importing it: its import has side effects.
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        wheel_bin = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (wheel_bin / "pg_ctl").exists():
            return wheel_bin
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise EmbeddedUnavailable(INSTALL_HINT)


def _ensure_system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(system_user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        system_user], check=True, capture_output=True)
    return system_user


@dataclass
class EmbeddedPostgres:
    """A cluster under `home/pgdata`, reached over a Unix socket in `socket_dir`, with the
    roles' passwords in `home/pgpass`."""

    home: Path
    settings: dict[str, str]

    def __post_init__(self) -> None:
        # The server runs in its data directory: every path it is given must be absolute.
        self.home = self.home.resolve()

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def passfile(self) -> Path:
        return self.home / PASSFILE_NAME

    @property
    def socket_dir(self) -> Path:
        own = self.home / "run"
        if len(str(own)) <= socket_path_chars_max:
            return own
        # The same name in every process (str's hash() is salted per process).
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return Path("/tmp") / f"yufu-{digest}"

    def url(self, role: str) -> str:
        """The role's URL: the password comes from the password file, never from the URL."""
        return URL.create("postgresql+psycopg2", username=role, database="postgres",
                          query={"host": str(self.socket_dir),
                                 "passfile": str(self.passfile)}).render_as_string()

    @property
    def owner_url(self) -> str:
        return self.url(OWNER_ROLE)

    @property
    def service_url(self) -> str:
        return self.url(SERVICE_ROLE)

    def _run(self, args: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
        # Drop root's groups too: with gid 0 a root-owned 0701 parent would still be closed.
        if user is None:
            return subprocess.run(args, check=False, capture_output=True, text=True,
                                  timeout=start_timeout_s)
        return subprocess.run(args, check=False, capture_output=True, text=True,
                              timeout=start_timeout_s, user=user, group=user, extra_groups=[])

    def start(self) -> list[str]:
        """Start the cluster (made first if there is none) and see that only Yufu can enter:
        passwords, the service role, the socket's directory. Safe to call when it runs.
        Returns what it recovered from a crash (empty after a clean stop)."""
        recovered = self._clear_stale_lock()
        bin_dir = find_bin_dir()
        user = _ensure_system_user()
        self.home.mkdir(parents=True, exist_ok=True)
        if user is not None:
            shutil.chown(self.home, user, user)
            _make_traversable(self.home)
        self._own_socket_dir(user)
        passwords = self._passwords()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bin_dir, user, passwords[OWNER_ROLE])
        if not self.is_running(bin_dir, user):
            log_size = self._log.stat().st_size if self._log.exists() else 0
            self._pg_ctl(bin_dir, user, "start")
            if recovered:
                recovered += self._replayed(log_size)
        if self._hba_file.read_text() != HBA:
            self._leave_trust(bin_dir, user, passwords[OWNER_ROLE])
        self._ensure_service_role(passwords[SERVICE_ROLE])
        return recovered

    @property
    def _log(self) -> Path:
        return self.home / "postgres.log"

    def _clear_stale_lock(self) -> list[str]:
        """After a crash of everything (a SIGKILL, a power cut) `postmaster.pid` outlives its
        server, and both pg_ctl and the server trust it while its process id still names a
        process: a zombie nobody reaped, or another program that got the number. Such a lock
        is removed (with the socket's), so the server starts and recovers from its WAL."""
        lock = self.pgdata / "postmaster.pid"
        try:
            pid = int(lock.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return []
        why = _not_a_live_postmaster(pid, self.pgdata)
        if why is None:
            return []
        lock.unlink(missing_ok=True)
        for stale in self.socket_dir.glob(".s.PGSQL.*"):
            stale.unlink(missing_ok=True)
        return [f"PostgreSQL had stopped without a shutdown: removed the lock of its server "
                f"process {pid} ({why})"]

    def _replayed(self, log_from: int) -> list[str]:
        """What the server's start says of its crash recovery, from its log."""
        if not self._log.exists():
            return []
        with self._log.open("rb") as stream:
            stream.seek(log_from)
            text = stream.read().decode(errors="replace")
        return [line.split(":  ", 1)[-1].strip() for line in text.splitlines()
                if any(mark in line for mark in RECOVERY_LOG_MARKS)]

    def _own_socket_dir(self, user: str | None) -> None:
        """The socket's directory: the cluster user's alone, 0700 (root can still enter)."""
        path = self.socket_dir
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = os.lstat(path)
        if not stat.S_ISDIR(found.st_mode):  # a symlink or a file planted under /tmp
            raise EmbeddedUnavailable(f"{path} is not a directory: remove it")
        try:
            if user is not None:
                shutil.chown(path, user, user)
            os.chmod(path, 0o700)
        except PermissionError as refused:  # someone else's, made before us
            raise EmbeddedUnavailable(f"the socket directory {path} is not ours: remove it"
                                      ) from refused
        found = os.lstat(path)
        uid = pwd.getpwnam(user).pw_uid if user is not None else os.geteuid()
        if found.st_uid != uid or stat.S_IMODE(found.st_mode) != 0o700:
            raise EmbeddedUnavailable(f"the socket directory {path} is not the cluster's own "
                                      "(owner and mode 0700): remove it")

    def _passwords(self) -> dict[str, str]:
        """The roles' passwords from the password file, made with new ones if missing."""
        if not self.passfile.exists():
            lines = "".join(f"*:*:*:{role}:{secrets.token_urlsafe(password_bytes)}\n"
                            for role in (OWNER_ROLE, SERVICE_ROLE))
            _write_private(self.passfile, lines, owner=None)
        found = {}
        for line in self.passfile.read_text().splitlines():
            *_, role, password = line.split(":")
            found[role] = password
        return found

    def _initdb(self, bin_dir: Path, user: str | None, owner_password: str) -> None:
        # initdb reads the superuser's password from a file the cluster's user can read,
        # gone when it is done: never on a command line, where `ps` would show it.
        pwfile = self.home / "initdb-password"
        _write_private(pwfile, owner_password + "\n", owner=user)
        try:
            done = self._run([str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", OWNER_ROLE,
                              "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                              f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C"], user)
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise EmbeddedUnavailable(f"initdb failed: {done.stderr.strip()}")
        _write_private(self._hba_file, HBA, owner=user)

    @property
    def _hba_file(self) -> Path:
        return self.pgdata / "pg_hba.conf"

    def _leave_trust(self, bin_dir: Path, user: str | None, owner_password: str) -> None:
        """A cluster made before passwords (initdb --auth=trust), upgraded in place: the
        owner's password is set while trust still lets us in, then every connection must
        prove one. A restart, not a reload, so no connection after this is let in on the
        old rules."""
        with self._connect(OWNER_ROLE) as conn:
            set_password(conn, OWNER_ROLE, owner_password)
        _write_private(self._hba_file, HBA, owner=user)
        self._pg_ctl(bin_dir, user, "restart")

    def _ensure_service_role(self, password: str) -> None:
        with self._connect(OWNER_ROLE) as conn:
            ensure_service_role(conn, SERVICE_ROLE, password)

    @contextlib.contextmanager
    def _connect(self, role: str) -> Iterator[Any]:
        try:
            conn = psycopg2.connect(host=str(self.socket_dir), dbname="postgres", user=role,
                                    passfile=str(self.passfile),
                                    connect_timeout=connect_timeout_s)
        except psycopg2.OperationalError as refused:
            raise EmbeddedUnavailable(
                f"cannot connect to the embedded PostgreSQL as {role}: {refused}".strip()
                + f" (its passwords are in {self.passfile}: restore that file if it was "
                  "lost or replaced)") from refused
        try:
            conn.autocommit = True
            yield conn
        finally:
            conn.close()

    def _all_settings(self) -> dict[str, str]:
        base = {"listen_addresses": "''", "unix_socket_directories": f"'{self.socket_dir}'",
                "max_connections": "100", "shared_buffers": "256MB"}
        base.update(self.settings)
        base.update(GUARD_SETTINGS)
        return base

    def _pg_ctl(self, bin_dir: Path, user: str | None, action: str) -> None:
        options = " ".join(f"-c {k}={v}" for k, v in self._all_settings().items())
        log = self._log
        done = self._run([str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(log),
                          "-o", options, "-m", "fast", "-w", "-t", str(start_timeout_s),
                          action], user)
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedUnavailable(f"pg_ctl {action} failed: {done.stderr.strip()}\n{tail}")

    def is_running(self, bin_dir: Path | None = None, user: str | None = None) -> bool:
        lock = self.pgdata / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, ValueError):
            if _not_a_live_postmaster(int(lock.read_text().split("\n", 1)[0]),
                                      self.pgdata) is not None:
                return False  # pg_ctl would trust a zombie's or another program's pid
        bin_dir = bin_dir or find_bin_dir()
        # pg_ctl refuses to run as root, which would read as "not running".
        user = user or _ensure_system_user()
        done = self._run([str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), "status"], user)
        return done.returncode == 0

    def stop(self) -> None:
        if not (self.pgdata / "PG_VERSION").exists():
            return
        bin_dir = find_bin_dir()
        user = _ensure_system_user()
        self._run([str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w",
                   "stop"], user)
        deadline = time.monotonic() + start_timeout_s
        while self.is_running(bin_dir, user) and time.monotonic() < deadline:
            time.sleep(0.1)


# What PostgreSQL's log says when it starts after a crash (its messages, in English: the
# cluster is made with the C locale by initdb here).
RECOVERY_LOG_MARKS = ("was interrupted", "not properly shut down", "redo starts at",
                      "redo done at", "automatic recovery in progress")


def _not_a_live_postmaster(pid: int, pgdata: Path) -> str | None:
    """Why `pid` is not this cluster's running server, or None if it may be. Read from /proc
    (Linux); elsewhere every lock is trusted, as pg_ctl trusts it."""
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():
        return None
    try:
        status = (proc / "status").read_text()
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return "no such process"
    except PermissionError:
        return None
    state = next((line.split()[1] for line in status.splitlines()
                  if line.startswith("State:")), "")
    if state == "Z":
        return "a zombie: it died and nobody collected it"
    if "postgres" not in command or str(pgdata) not in command:
        return f"the number now belongs to another program: {command[:80]!r}"
    return None


def ensure_service_role(conn: Any, role: str, password: str) -> None:
    """A role for the service, on a psycopg2 connection of a role that may make roles: it
    logs in and nothing more; its table privileges are granted after each migration run
    (ledger/db/privileges.py)."""
    with conn.cursor() as cursor:
        name = quote_ident(role, cursor)
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE ROLE {name}")
        cursor.execute(f"ALTER ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                       "NOREPLICATION NOBYPASSRLS")
    set_password(conn, role, password)


def set_password(conn: Any, role: str, password: str) -> None:
    """The role's password, sent as a SCRAM verifier made here: the password itself never
    reaches the server, its logs or a command line."""
    verifier = psycopg2.extensions.encrypt_password(password, role, conn, "scram-sha-256")
    with conn.cursor() as cursor:
        cursor.execute(f"ALTER ROLE {quote_ident(role, cursor)} PASSWORD %s", (verifier,))


def _write_private(path: Path, content: str, owner: str | None) -> None:
    """Write a file only its owner can read (0600 from the moment it exists), replacing it
    whole. The directory may belong to the cluster's user: the new file is made under a
    fresh name (O_EXCL, no symlink followed) and renamed over, so a planted link cannot
    send root's write elsewhere."""
    fresh = path.with_name(path.name + ".new")
    fresh.unlink(missing_ok=True)
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(content)
    if owner is not None:
        shutil.chown(fresh, owner, owner)
    os.replace(fresh, path)


def _make_traversable(path: Path) -> None:
    """The server's user must reach its data directory through our parents."""
    for parent in [path, *path.resolve().parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)
