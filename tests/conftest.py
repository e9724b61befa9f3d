"""Fixtures every test package may use: the state store's database, on SQLite or PostgreSQL.

``database_url`` is a fresh SQLite file unless a test is parametrized over both backends with
`tests.pg.BOTH_BACKENDS`; then its PostgreSQL run gets a database of its own on the session's
server (started once, on first use, and stopped at the end; see tests/pg.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.pg import PostgresServer, PostgresUnavailable, database_for

# Hypothesis profiles for every property-based test, chosen by HYPOTHESIS_PROFILE. `ci` (the
# default, what `make test` runs) is bounded and reproducible: a fixed number of examples, the
# same ones every run, no per-example deadline a loaded machine would trip, no example database
# written into the tree. `thorough` explores ten times further with fresh randomness and keeps
# the failures it finds (in .hypothesis/) to replay them first next time.
settings.register_profile(
    "ci", max_examples=200, derandomize=True, deadline=None, database=None, print_blob=True
)
settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
