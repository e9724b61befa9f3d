"""Fixtures every test package may use: the state store's database, on SQLite or PostgreSQL.

``database_url`` is a fresh SQLite file unless a test is parametrized over both backends with
`tests.pg.BOTH_BACKENDS`; then its PostgreSQL run gets a database of its own on the session's
server (started once, on first use, and stopped at the end; see tests/pg.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import PostgresServer, PostgresUnavailable, database_for


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    problem = None
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        problem = str(exc)
    if problem is not None:  # an error of every PostgreSQL test, saying what to install
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_for(getattr(request, "param", "sqlite"), request, tmp_path) as url:
        yield url
