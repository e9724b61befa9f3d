"""Opening a state store that cannot be used: a `StoreError` naming the setting and the problem,
never the password, and nothing created on disk by a URL that does not work.

The command-line side (one line, exit status 2, every command) is in
tests/cli/test_store_errors_cli.py; files root could write all the same are tested there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from stokline.store import Store, StoreConfigError, StoreError, StoreUnavailable
from tests.pg import PostgresServer

PASSWORD = "s3cret-Pa55"
SETTING = "STOKLINE_DATABASE_URL"


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def configured(monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    monkeypatch.setenv(SETTING, url)
    return url


def test_a_corrupt_file(tmp_path: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(os.urandom(8192))
    configured(monkeypatch, f"sqlite:///{path}")
    with pytest.raises(StoreUnavailable) as caught:
        Store()
    assert str(caught.value) == f"{SETTING}: the file {path} is not a SQLite database"
    assert list(cwd.iterdir()) == []


def test_postgresql_refusing_the_connection(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured(monkeypatch, f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:1/x")
    with pytest.raises(StoreUnavailable) as caught:
        Store()
    assert str(caught.value) == f"{SETTING}: PostgreSQL at 127.0.0.1:1 refused the connection"
    assert list(cwd.iterdir()) == []


def test_postgresql_without_the_database(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_url(postgres.url).set(password=PASSWORD, database="no_such_db")
    configured(monkeypatch, url.render_as_string(hide_password=False))
    with pytest.raises(StoreUnavailable) as caught:
        Store()
    where = f"{url.host}:{url.port}"
    assert str(caught.value) == (
        f'{SETTING}: PostgreSQL at {where} refused the connection: database "no_such_db" does not'
        " exist"
    )
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            f"mysql://u:{PASSWORD}@db.internal/x",
            "unknown database scheme 'mysql': use sqlite:/// or postgresql+psycopg://",
        ),
        (
            f"postgres://u:{PASSWORD}@db.internal/x",
            "unknown database scheme 'postgres': use sqlite:/// or postgresql+psycopg://",
        ),
        (
            "sqlite+nonsense:///a/b.db",
            "unknown database driver 'sqlite+nonsense': use sqlite:/// or postgresql+psycopg://",
        ),
        (
            f"postgresql+asyncpg://u:{PASSWORD}@db.internal/x",
            "'postgresql+asyncpg' is an asynchronous driver: use sqlite:/// or postgresql+psycopg://",
        ),
        (
            f"foo{PASSWORD}",
            "not a database URL: use sqlite:///PATH or"
            " postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB",
        ),
    ],
)
def test_a_url_stokline_cannot_use(
    url: str, problem: str, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured(monkeypatch, url)
    with pytest.raises(StoreConfigError) as caught:
        Store()
    assert str(caught.value) == f"{SETTING}: {problem}"
    assert list(cwd.iterdir()) == []  # sqlite+nonsense:///a/b.db made a folder a/ once


def test_a_sqlite_uri_makes_no_folder(
    tmp_path: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "state.db"
    configured(monkeypatch, f"sqlite:///file:{missing}?mode=ro&uri=true")
    with pytest.raises(StoreUnavailable) as caught:
        Store()
    assert str(caught.value) == (
        f"{SETTING}: cannot open the SQLite file {missing}: the folder {missing.parent} does not"
        " exist"
    )
    assert list(cwd.iterdir()) == []
    assert not missing.parent.exists()


def test_a_read_only_uri_is_read_but_refused_for_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.db"
    with Store(f"sqlite:///{path}") as store:
        store.cursors.set("demo", "orders", "2024-01-01")
    configured(monkeypatch, f"sqlite:///file:{path}?mode=ro&uri=true")
    with Store(read_only=True) as store:
        assert store.cursors.get("demo", "orders") == "2024-01-01"
    with pytest.raises(StoreUnavailable) as caught:
        Store()
    assert str(caught.value) == (
        f"{SETTING}: cannot write the SQLite file {path}: attempt to write a readonly database"
        " (the URL says mode=ro)"
    )


def test_a_folder_that_cannot_be_made_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new" / ("x" * 300) / "state.db"  # new/ can be made, its child cannot
    configured(monkeypatch, f"sqlite:///{path}")
    with pytest.raises(StoreUnavailable) as caught:
        Store()
    assert str(caught.value) == (
        f"{SETTING}: cannot create the folder {path.parent} of the SQLite file: File name too long"
    )
    assert list(tmp_path.iterdir()) == []  # new/ was made, then removed
    (tmp_path / "plain-file").write_text("")
    configured(monkeypatch, f"sqlite:///{tmp_path / 'plain-file' / 'state.db'}")
    with pytest.raises(StoreUnavailable) as caught:
        Store()
    assert str(caught.value) == (
        f"{SETTING}: cannot open the SQLite file {tmp_path / 'plain-file' / 'state.db'}:"
        f" {tmp_path / 'plain-file'} is a file, not a folder"
    )


def test_a_missing_folder_is_still_made_for_a_url_that_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state" / "of" / "stokline.db"
    configured(monkeypatch, f"sqlite:///{path}")
    with Store() as store:
        store.cursors.set("demo", "orders", "x")
    assert path.is_file()


def test_the_error_names_where_the_url_came_from(
    tmp_path: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SETTING, raising=False)
    (cwd / ".stokline").mkdir()
    (cwd / ".stokline" / "state.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError) as unset:
        Store()
    assert str(unset.value).startswith(f"{SETTING} (not set: .stokline/state.db): the file ")
    with pytest.raises(StoreError) as given:
        Store("mysql://db.internal/x")
    assert str(given.value).startswith("state store URL: unknown database scheme 'mysql'")
