"""Read KEY=VALUE files such as .env.demo into the environment, never overriding what is set."""

from __future__ import annotations

import os
from pathlib import Path


def load_env_file(path: str | Path, *, environ: dict[str, str] | None = None) -> list[str]:
    """Set each variable of the file that the environment does not already have.

    Returns the names set. Blank lines and ``#`` comments are skipped; values may be quoted.
    A missing file sets nothing.
    """
    env = os.environ if environ is None else environ
    target = Path(path)
    if not target.is_file():
        return []
    names = []
    for raw in target.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        name, value = name.strip().removeprefix("export ").strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if name and name not in env:
            env[name] = value
            names.append(name)
    return names
