"""An embedded PostgreSQL for `scripts/serve`, `scripts/test` and `scripts/bench`.

Binaries come from the `pgserver` wheel; where it is missing (Python 3.13+, an unusual
platform), from `initdb`/`pg_ctl` on PATH or under /usr/lib/postgresql. PostgreSQL refuses
to run as root, so as root the cluster belongs to an unprivileged system user.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "No PostgreSQL found: install the pgserver wheel (pip install pgserver, Python 3.9-3.12) "
    "or PostgreSQL's server binaries (Debian: apt-get install postgresql), or point "
    "YUFU_DATABASE_URL at a running server."
)
system_user = "yufu-pg"
start_timeout_s = 60
socket_path_chars_max = 90


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
    """A cluster under `home/pgdata`, reached over a Unix socket."""

    home: Path
    settings: dict[str, str]

    def __post_init__(self) -> None:
        # The server runs in its data directory: every path it is given must be absolute.
        self.home = self.home.resolve()

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def socket_dir(self) -> Path:
        own = self.home / "run"
        if len(str(own)) <= socket_path_chars_max:
            return own
        return Path("/tmp") / f"yufu-{abs(hash(str(self.home.resolve())))}"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@/postgres?host={self.socket_dir}"

    def _run(self, args: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
        # Drop root's groups too: with gid 0 a root-owned 0701 parent would still be closed.
        if user is None:
            return subprocess.run(args, check=False, capture_output=True, text=True,
                                  timeout=start_timeout_s)
        return subprocess.run(args, check=False, capture_output=True, text=True,
                              timeout=start_timeout_s, user=user, group=user, extra_groups=[])

    def start(self) -> str:
        bin_dir = find_bin_dir()
        user = _ensure_system_user()
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            for path in (self.home, self.socket_dir):
                shutil.chown(path, user, user)
            _make_traversable(self.home)
        if not (self.pgdata / "PG_VERSION").exists():
            done = self._run([str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                              "--auth=trust", "--encoding=UTF8", "--locale=C"], user)
            if done.returncode != 0:
                raise EmbeddedUnavailable(f"initdb failed: {done.stderr.strip()}")
        if self.is_running(bin_dir, user):
            return self.url
        options = " ".join(f"-c {k}={v}" for k, v in self._all_settings().items())
        log = self.home / "postgres.log"
        done = self._run([str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(log),
                          "-o", options, "-w", "-t", str(start_timeout_s), "start"], user)
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedUnavailable(f"pg_ctl start failed: {done.stderr.strip()}\n{tail}")
        return self.url

    def _all_settings(self) -> dict[str, str]:
        base = {"listen_addresses": "''", "unix_socket_directories": f"'{self.socket_dir}'",
                "max_connections": "100", "shared_buffers": "256MB"}
        base.update(self.settings)
        return base

    def is_running(self, bin_dir: Path | None = None, user: str | None = None) -> bool:
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


def _make_traversable(path: Path) -> None:
    """The server's user must reach its data directory through our parents."""
    for parent in [path, *path.resolve().parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)
