"""The mappings a command works on: the files given (or every mappings/*.yaml), loaded and checked.

What goes wrong is said here, once for every command: a usage error in one line (exit status 2),
a mapping's problems one per line with their places (exit status 1), raised as `Exit` once said.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from stokline.cli import Exit

if TYPE_CHECKING:
    from stokline.config import Mapping, Problem

DEFAULT_DIR = Path("mappings")


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit code 2."""


def mapping_paths(given: list[str]) -> list[Path]:
    """Expand directories to their *.yaml files; with nothing given, use mappings/*.yaml."""
    if not given:
        found = sorted(DEFAULT_DIR.glob("*.yaml"))
        if not found:
            raise UsageError(
                f"no mapping files in {DEFAULT_DIR}/ (run from the project root or pass paths)"
            )
        return found
    paths: list[Path] = []
    for item in given:
        path = Path(item)
        if path.is_dir():
            inside = sorted(path.glob("*.yaml"))
            if not inside:
                raise UsageError(f"no *.yaml files in {item}")
            paths += inside
        else:
            paths.append(path)
    return paths


def mapping_files(prog: str, given: list[str]) -> list[Path]:
    """`mapping_paths`, or `Exit` (2) with the usage error said as ``prog: error: ...``."""
    try:
        return mapping_paths(given)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise Exit(2) from None


def print_problems(problems: Iterable[Problem], stream: IO[str] | None = None) -> None:
    """A mapping's problems, one ``FILE:LINE:COLUMN: /pointer: message`` line each (on stderr)."""
    print("\n".join(p.format() for p in problems), file=stream or sys.stderr)


def valid_mappings(prog: str, given: list[str]) -> list[Mapping]:
    """Every mapping given (default: mappings/*.yaml), checked; `Exit` (1) once the problems of
    every invalid one are said, `Exit` (2) for a usage error."""
    from stokline.config import check_file

    mappings, invalid = [], False
    for path in mapping_files(prog, given):
        result = check_file(path)
        if result.mapping is None:
            print_problems(result.problems)
            invalid = True
        else:
            mappings.append(result.mapping)
    if invalid:
        raise Exit(1)
    return mappings


def client_mapping(path: str) -> Mapping:
    """The one client's mapping, credentials not in the environment read from .env.demo first;
    `Exit` (1) once its problems are said."""
    from stokline.config import MappingInvalid, load_mapping
    from stokline.envfile import load_env_file

    load_env_file(".env.demo")
    try:
        return load_mapping(path)
    except MappingInvalid as exc:
        print_problems(exc.problems)
        raise Exit(1) from None
