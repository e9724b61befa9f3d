"""The options several commands share, each defined once: its flag, help text and type, and
what its value means once parsed (`quiet_retries` for ``--verbose``, `CsvTarget` for ``--csv``).

A command adds the ones it takes (``options.add_mapping(parser)``); what only one command takes
stays in that command's module.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

from stokline.cli import Exit

# -- mapping files ------------------------------------------------------------------------------


def add_mapping(parser: argparse.ArgumentParser) -> None:
    """``--mapping FILE``, required: the one client a command works on."""
    parser.add_argument(
        "--mapping", required=True, metavar="FILE", help="the client's mapping file"
    )


def add_mappings(parser: argparse.ArgumentParser) -> None:
    """``--mapping FILE``, repeatable: the clients a command works on (none given: all)."""
    parser.add_argument(
        "--mapping",
        action="append",
        default=[],
        metavar="FILE",
        help="a client's mapping file; repeat for several (default: mappings/*.yaml)",
    )


def add_paths(parser: argparse.ArgumentParser) -> None:
    """``PATH...``: mapping files or folders to check (none given: all)."""
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="mapping files or folders (default: mappings/*.yaml)",
    )


# -- the APIs -----------------------------------------------------------------------------------


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """``-v``/``--verbose``: see `quiet_retries`."""
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also show each HTTP retry on stderr"
    )


def quiet_retries(verbose: bool) -> None:
    """Retries are the clients' business; a user sees them only when asking, so an unreachable
    API ends in one line rather than a screenful of attempts."""
    log = logging.getLogger("stokline.connectors")
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    else:
        log.setLevel(logging.ERROR)


def add_prefect_url(parser: argparse.ArgumentParser) -> None:
    """``--prefect-url URL``: resolved by `stokline.ops.prefect_api.api_url`."""
    parser.add_argument(
        "--prefect-url",
        metavar="URL",
        help="the Prefect API (default: PREFECT_API_URL, else http://127.0.0.1:4200/api)",
    )


# -- a period of days ---------------------------------------------------------------------------


def add_period(parser: argparse.ArgumentParser, *, first: str, last: str, not_a_date: str) -> None:
    """``--from DATE`` and ``--to DATE`` (as ``start`` and ``end``): days in the client's
    timezone. ``first`` and ``last`` are their help texts; ``not_a_date`` is the usage error for
    a value that is not YYYY-MM-DD, with ``{text}`` standing for the value quoted."""

    def day(text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(not_a_date.format(text=repr(text))) from None

    parser.add_argument("--from", dest="start", type=day, metavar="DATE", help=first)
    parser.add_argument("--to", dest="end", type=day, metavar="DATE", help=last)


# -- CSV ----------------------------------------------------------------------------------------


def add_csv(parser: argparse.ArgumentParser, rows: str) -> None:
    """``--csv FILE`` (``-``: the CSV alone, on stdout); ``rows`` says which rows it holds."""
    parser.add_argument(
        "--csv",
        metavar="FILE",
        help=f"also write {rows} as CSV to FILE; '-' writes only the CSV, to stdout",
    )


@dataclass(frozen=True)
class CsvTarget:
    """Where ``--csv`` sends the rows: nowhere (None), stdout alone (``-``) or a file.

    A file is checked before the work (`check`) and written after it (`save`), so a run that
    fails leaves no empty or truncated file behind.
    """

    given: str | None

    @property
    def stdout_only(self) -> bool:
        return self.given == "-"

    @property
    def path(self) -> Path | None:
        return Path(self.given) if self.given and self.given != "-" else None

    def check(self, prog: str) -> None:
        """A usage error (`Exit` 2) when the file cannot be written: it is a folder, or its
        folder is missing or read-only."""
        path = self.path
        if path is None:
            return
        folder = path.parent
        if path.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
            print(f"{prog}: error: cannot write {self.given}", file=sys.stderr)
            raise Exit(2)

    def save(self, prog: str, write: Callable[[IO[str]], Any], done: Callable[[Any], str]) -> None:
        """Write the file with ``write(stream)``, then say ``done(what write returned)`` on
        stderr; `Exit` (1), the error said, when it cannot be written. Without a file: nothing."""
        path = self.path
        if path is None:
            return
        try:
            with path.open("w", encoding="utf-8", newline="") as stream:
                written = write(stream)
        except OSError as exc:
            print(
                f"{prog}: error: cannot write {self.given}: {exc.strerror or exc}", file=sys.stderr
            )
            raise Exit(1) from None
        print(done(written), file=sys.stderr)
