"""Which mapping files a command works on: the paths given, or every mappings/*.yaml."""

from __future__ import annotations

from pathlib import Path

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
