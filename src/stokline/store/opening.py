"""Opening the state store: its folder, its tables and, for a SQLite store that will be written, a
first write, each failure said in one line (`StoreUnavailable`, `StoreConfigError`).

A SQLite file that cannot be written is refused when it is opened, not halfway through a run: a
sync that had already created a sale order in Stokly could not record the link, and the next run
would create it again. The write is tried in a transaction that is rolled back (SQLite's header
rewritten with the value it holds), so it changes nothing. (On PostgreSQL, connecting and
creating the tables is the check.)

Nothing is left on disk by a URL that does not work: the folders made for a SQLite file are
removed again when it cannot be opened, and a SQLite URI (``?uri=true``) gets no folder at all.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from stokline.store.db import PG_CONNECT_TIMEOUT, SUPPORTED, sqlite_file
from stokline.store.errors import StoreConfigError, StoreUnavailable
from stokline.store.tables import metadata


def open_database(engine: Engine, setting: str, *, read_only: bool) -> None:
    """Create the store's tables in ``engine``'s database and, unless ``read_only``, check that a
    SQLite file can be written; raise a `StoreError` naming ``setting`` when it cannot be used."""
    url = engine.url
    path = sqlite_file(url) if url.get_backend_name() == "sqlite" else None
    created: list[Path] = []
    try:
        if path is not None and url.query.get("uri") != "true":
            created = _make_folder(path, setting)
        _create_tables(engine)
        if path is not None and not read_only:
            _try_a_write(engine)
    except (DBAPIError, sqlite3.Error) as exc:  # sqlite3's own from the write tried
        engine.dispose()
        _remove(created)
        raise StoreUnavailable(setting, explain(exc, url, path)) from exc
    except ImportError as exc:  # postgresql+psycopg2:// without psycopg2
        engine.dispose()
        _remove(created)
        raise StoreConfigError(
            setting,
            f"the driver of '{url.drivername}' is not installed ({exc.name}): {SUPPORTED}",
        ) from exc
    except TypeError as exc:  # an option of the URL the driver does not take
        engine.dispose()
        _remove(created)
        problem = _redact(str(exc), url.password)
        raise StoreConfigError(setting, f"the URL's options are not accepted: {problem}") from exc
    except BaseException:
        engine.dispose()
        _remove(created)
        raise


def _create_tables(engine: Engine) -> None:
    """The store's tables, created where missing. Two processes (or two runs of one worker)
    opening a new store at once both find a table missing and one of them then fails to create
    it ("already exists"): the loser looks again and goes on from there. Each round at least one
    of them creates the table they met on, so one round per table always ends it."""
    attempts = len(metadata.tables) + 2
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except DBAPIError as exc:
            said = str(exc.orig).lower()
            # PostgreSQL may say it as a clash in its catalogue of types instead.
            raced = "already exists" in said or "pg_type_typname_nsp_index" in said
            if attempt == attempts - 1 or not raced:
                raise
            time.sleep(random.uniform(0.0, 0.02))  # out of step with the others


def _make_folder(path: Path, setting: str) -> list[Path]:
    """Create the SQLite file's folder; return the folders created, outermost first."""
    folder = Path(os.path.abspath(path)).parent
    missing: list[Path] = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    missing.reverse()
    for each in missing:
        try:
            each.mkdir()
        except FileExistsError:  # made meanwhile by another process, or a file
            if not each.is_dir():
                _remove(missing[: missing.index(each)])
                raise StoreUnavailable(
                    setting,
                    f"cannot create the folder {folder} of the SQLite file: {each} is a file",
                ) from None
        except OSError as exc:
            _remove(missing[: missing.index(each)])
            raise StoreUnavailable(
                setting,
                f"cannot create the folder {folder} of the SQLite file: {exc.strerror}",
            ) from None
    return missing


def _remove(folders: list[Path]) -> None:
    """Remove the folders made for a store that could not be opened, innermost first, as long
    as they are still empty."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _try_a_write(engine: Engine) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            version = cursor.execute("PRAGMA user_version").fetchone()[0]
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(f"PRAGMA user_version = {int(version)}")
        finally:
            raw.rollback()
            cursor.close()
    finally:
        raw.close()


def explain(exc: Exception, url: URL, path: Path | None) -> str:
    """What went wrong with the database behind ``url``, in words, without its password."""
    orig = getattr(exc, "orig", None) or exc
    if url.get_backend_name() == "sqlite":
        return _sqlite_problem(orig, url, path)
    return _postgres_problem(orig, url)


def _sqlite_problem(orig: BaseException, url: URL, path: Path | None) -> str:
    name = getattr(orig, "sqlite_errorname", "") or ""
    text = str(orig)
    if path is None:
        return f"cannot use the SQLite database in memory: {text}"
    where = Path(os.path.abspath(path))
    if name == "SQLITE_NOTADB" or "file is not a database" in text:
        return f"the file {where} is not a SQLite database"
    if name == "SQLITE_READONLY_DIRECTORY":
        return (
            f"cannot write the SQLite file {where}: {text} (its folder {where.parent} is"
            " read-only, and SQLite writes its journal beside the file)"
        )
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        if url.query.get("mode") == "ro":
            return f"cannot write the SQLite file {where}: {text} (the URL says mode=ro)"
        return f"cannot write the SQLite file {where}: {text}"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open database file" in text:
        return _cannot_open(where, url, text)
    return f"cannot use the SQLite file {where}: {text}"


def _cannot_open(where: Path, url: URL, text: str) -> str:
    if where.is_dir():
        return f"cannot open the SQLite file {where}: it is a folder"
    if where.parent.exists() and not where.parent.is_dir():
        return f"cannot open the SQLite file {where}: {where.parent} is a file, not a folder"
    if not where.parent.is_dir():
        return f"cannot open the SQLite file {where}: the folder {where.parent} does not exist"
    if not where.exists():
        if url.query.get("mode") in ("ro", "rw"):
            return f"cannot open the SQLite file {where}: it does not exist"
        if not os.access(where.parent, os.W_OK):
            return f"cannot create the SQLite file {where}: its folder {where.parent} is read-only"
        return f"cannot create the SQLite file {where}: {text}"
    if not os.access(where, os.R_OK):
        return f"cannot read the SQLite file {where}: permission denied"
    return f"cannot open the SQLite file {where}: {text}"


def _postgres_problem(orig: BaseException, url: URL) -> str:
    where = f"{url.host}:{url.port or 5432}" if url.host else "the local socket"
    text = _redact(str(orig), url.password)
    low = text.lower()
    if "connection refused" in low:
        return f"PostgreSQL at {where} refused the connection"
    if "failed to resolve host" in low or "could not translate host name" in low:
        return f"cannot find the PostgreSQL host {url.host!r} (name not known)"
    if "timeout expired" in low:
        timeout = url.query.get("connect_timeout", PG_CONNECT_TIMEOUT)
        return f"PostgreSQL at {where} did not answer within {timeout} s"
    if not url.host and "no such file or directory" in low:
        return "no PostgreSQL server listens on the local socket"
    fatal = re.search(r"FATAL:\s*(.+)", text)
    if fatal:
        return f"PostgreSQL at {where} refused the connection: {fatal.group(1).strip()}"
    first = text.strip().splitlines()[0] if text.strip() else type(orig).__name__
    return f"PostgreSQL at {where}: {first}"


def _redact(text: str, password: str | None) -> str:
    if password:
        from urllib.parse import quote

        for form in {password, quote(password, safe="")}:
            text = text.replace(form, "***")
    return text
