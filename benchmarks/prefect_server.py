"""A throwaway Prefect server for a benchmark: `prefect server start` on a free port.

Its database lives in a temporary ``PREFECT_HOME``; the flows under measurement run in other
processes that reach it through ``PREFECT_API_URL`` (see `PrefectServer.env`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.common import Child, demo_env, free_port, http_ok, wait_until


class PrefectServer:
    """`prefect server start` in a child process; `stop` ends it (and only it)."""

    def __init__(
        self,
        home: Path,
        log: Path,
        timeout: float = 180.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """``extra_env`` for the server only, e.g. its database
        (``PREFECT_SERVER_DATABASE_CONNECTION_URL``; SQLite under ``home`` without it)."""
        self.home = home
        self.extra_env = dict(extra_env or {})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        argv = [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.child = Child(
            "prefect-server",
            argv,
            log,
            env=self.env(PREFECT_SERVER_UI_ENABLED="false", **self.extra_env),
        )
        try:
            wait_until(lambda: http_ok(f"{self.url}/health"), "Prefect server", timeout, self.child)
        except BaseException:
            self.child.stop()
            raise

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process that talks to this server."""
        return demo_env(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.url,
            PREFECT_LOGGING_LEVEL="WARNING",
            **extra,
        )

    def stop(self) -> None:
        self.child.stop()

    def __enter__(self) -> PrefectServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
