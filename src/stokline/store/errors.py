"""What goes wrong when the state store is opened, said in one line that names the setting.

`StoreConfigError`: the URL itself is wrong (not a URL, a database stokline does not support, a
driver that is not installed). `StoreUnavailable`: the URL is fine but the database cannot be
used (a SQLite file that is not one, or that cannot be written; a PostgreSQL server that does
not answer or refuses). Both are a `StoreError`, whose text is ``<setting>: <problem>``; it never
holds the URL's password.
"""

from __future__ import annotations


class StoreError(Exception):
    """The state store cannot be opened as configured; ``str()`` is the one line to show."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class StoreConfigError(StoreError):
    """The state store's URL is not one stokline can use."""


class StoreUnavailable(StoreError):
    """The state store's database cannot be opened, read or written."""
