"""A throwaway PostgreSQL server for the test suite, and the marker that runs a test on both backends.

`PostgresServer.start()` runs ``initdb`` into a fresh temporary directory and starts ``postgres``
on a free loopback port, its unix socket in that directory too, tuned for tests (no fsync, no
full-page writes: a crash loses nothing a test needs). Each test then gets a database of its own
(`database`), dropped afterwards. PostgreSQL refuses to run as root, so when the suite runs as
root the server runs as the ``postgres`` system user (Debian's package creates it), else as
``nobody``; the temporary directory is handed to that user.

The binaries are looked for on PATH, then in Debian's /usr/lib/postgresql/<version>/bin (newest
first). `make test` runs scripts/ensure-postgres first, which installs Debian's ``postgresql``
package when they are missing and it may; otherwise the tests that need PostgreSQL fail with
a message saying what to install — never skipped in silence.

``STOKLINE_TEST_POSTGRES_URL`` (``postgresql+psycopg://user@host:port/db``, a user allowed to
create databases) uses an existing server instead of starting one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARIES = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "stokline"
EXTERNAL_URL_VARIABLE = "STOKLINE_TEST_POSTGRES_URL"
MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or in "
    "/usr/lib/postgresql/*/bin. Install them — on Debian/Ubuntu `apt-get install postgresql` "
    "(scripts/ensure-postgres does it when run as root), on macOS `brew install postgresql` — or "
    f"point {EXTERNAL_URL_VARIABLE} at a server where the user may create databases."
)
# Settings for a server whose data is thrown away: fast to start, fast to write.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "60",
    "shared_buffers": "32MB",
    "logging_collector": "off",
}

BACKENDS = ("sqlite", "postgresql")
BOTH_BACKENDS = pytest.mark.parametrize("database_url", BACKENDS, indirect=True)
"""Run a test (or, as ``pytestmark``, a module) whose fixtures use ``database_url`` on both."""


class PostgresUnavailable(RuntimeError):
    """The server could not be found or started; the message says why and what to do."""


def find_binaries() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    on_path = [shutil.which(name) for name in BINARIES]
    if all(on_path):
        return Path(on_path[0]).resolve().parent  # type: ignore[arg-type]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for directory in candidates:
        if all((directory / name).is_file() for name in BINARIES):
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: None (ourselves) unless we are root, whom postgres refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable(
        "running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL"
    )


def _admin_dsn(url: str) -> str:
    """A libpq URL for psycopg from a SQLAlchemy one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class PostgresServer:
    """A running server (ours or an external one) where tests create their databases."""

    url: str  # SQLAlchemy URL of the maintenance database
    root: Path | None = None  # our temporary directory, None for an external server
    bin_dir: Path | None = None
    user: pwd.struct_passwd | None = None
    _names = itertools.count(1)

    @classmethod
    def start(cls) -> PostgresServer:
        external = os.environ.get(EXTERNAL_URL_VARIABLE)
        if external:
            return cls(url=external)
        bin_dir = find_binaries()
        if bin_dir is None:
            raise PostgresUnavailable(MISSING)
        user = _server_user()
        # The server's user must reach its directory: under root's own TMPDIR it might not.
        base = "/tmp" if user is not None and os.path.isdir("/tmp") else None
        root = Path(tempfile.mkdtemp(prefix="stokline-pg-", dir=base))
        server = cls(url="", root=root, bin_dir=bin_dir, user=user)
        try:
            server._init()
            server._launch()
        except BaseException:
            server.stop()
            raise
        return server

    # -- running the binaries ------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert self.bin_dir is not None and self.root is not None
        options: dict[str, object] = {}
        if self.user is not None:
            options = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **options,  # type: ignore[arg-type]
        )

    @property
    def _data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def _init(self) -> None:
        assert self.root is not None
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.root.chmod(0o700)
        done = self._run(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--no-locale",
            "--encoding=UTF8",
            "--no-sync",
        )
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {(done.stderr or done.stdout).strip()}")

    def _launch(self) -> None:
        assert self.root is not None
        base = (self._data / "postgresql.conf").read_text()
        for _attempt in range(3):
            port = _free_port()
            settings = {
                **SETTINGS,
                "listen_addresses": "'127.0.0.1'",
                "port": str(port),
                "unix_socket_directories": f"'{self.root}'",
            }
            extra = "".join(f"{key} = {value}\n" for key, value in settings.items())
            (self._data / "postgresql.conf").write_text(base + "\n# tests\n" + extra)
            log = self.root / "server.log"
            done = self._run(
                "pg_ctl", "-D", str(self._data), "-l", str(log), "-w", "-t", "60", "start"
            )
            if done.returncode == 0:
                self.url = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/postgres"
                return
            text = log.read_text(errors="replace") if log.exists() else done.stderr
            if "already in use" not in text:  # a port taken meanwhile is worth another try
                break
        raise PostgresUnavailable(f"postgres did not start: {text.strip()[-2000:]}")

    def stop(self) -> None:
        if self.root is None:
            return
        if (self._data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    # -- databases -----------------------------------------------------------------------------

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(_admin_dsn(self.url), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new, empty database for one test; its SQLAlchemy URL. Dropped afterwards."""
        name = f"stokline_test_{os.getpid()}_{next(self._names)}_{int(time.time())}"
        self._admin(f'CREATE DATABASE "{name}"')
        try:
            yield self.url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            # WITH (FORCE): a connection a failed test left open must not keep the database.
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def database_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty state-store database on ``backend``, for one test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown database backend {backend!r}; known: {', '.join(BACKENDS)}")
    server: PostgresServer = request.getfixturevalue("postgres")
    with server.database() as url:
        yield url
