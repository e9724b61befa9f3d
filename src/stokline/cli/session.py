"""What a command holds around its work on a client's systems: the state store, and the APIs'
failures said in one line each.

The state store is STOKLINE_DATABASE_URL, else .stokline/state.db; a command that only reads
never creates one (where none exists yet it works on an empty one in memory). A secret that is
not set, an API that cannot be reached and one that refuses end the command with one line and
exit status 1, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stokline.cli import Exit


def state_store(read_only: bool) -> Any:
    """The state store; for a read-only command with no store yet, an in-memory one (no file is
    created). One that cannot be opened raises the store's `StoreError`, which `main` says in one
    line (exit status 2); a command that writes is refused a store it cannot write."""
    from stokline.store import Store
    from stokline.store.db import DEFAULT_PATH, URL_VARIABLE

    if read_only and not os.environ.get(URL_VARIABLE) and not Path(DEFAULT_PATH).exists():
        return Store("sqlite://")
    return Store(read_only=read_only)


def unreachable(exc: Exception, mapping: Any) -> str:
    """An API that could not be reached, named with the mapping's address for it."""
    service = getattr(exc, "service", "") or "an API"
    conns = mapping.connections
    url = conns.stokly.base_url if "stokly" in service.lower() else conns.shopline.base_url
    where = f" at {url}" if url else ""
    return f"cannot reach {service}{where} ({exc})"


@contextmanager
def api_failures(prog: str, mapping: Any) -> Iterator[None]:
    """Say an unset secret, an unreachable API or a refusing one as ``prog: error: ...`` and
    end the command with exit status 1."""
    from stokline.config import SecretUnavailable
    from stokline.connectors import ConnectorError, TransportError

    try:
        yield
    except SecretUnavailable as exc:
        why = str(exc)
    except TransportError as exc:
        why = unreachable(exc, mapping)
    except ConnectorError as exc:
        why = str(exc)
    else:
        return
    print(f"{prog}: error: {why}", file=sys.stderr)
    raise Exit(1)
