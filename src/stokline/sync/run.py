"""What every sync run starts from and what it costs, in one place.

A run of any sync works for one client with the same four things — the client's mapping, the two
API clients and the state store — and a pass that may write adds whether it is a dry run, why it
runs and whom to tell of its progress. `SyncContext` and `SyncRun` hold these; each sync's pass
subclasses one of them and sets up its own state in ``__post_init__``. `RunCost` is started when
the work begins and charged to the report when it ends: the API calls the run sent (as the
clients' counting pacers saw them, `stokline.sync.clients.api_calls`) and the seconds it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.store import Store
from stokline.sync.clients import api_calls

__all__ = ["RunCost", "SyncContext", "SyncRun"]


@dataclass(eq=False, repr=False)
class SyncContext:
    """The mapping, both API clients and the state store one client's run works with.

    Enough for a reader that writes nothing (a reconciliation, the stock read). Not compared and
    not printed: a run is one piece of work, and its clients hold credentials.
    """

    mapping: Mapping
    shopline: ShoplineClient
    stokly: StoklyClient
    store: Store

    def __post_init__(self) -> None:
        """Where a subclass sets up its own state (the generated ``__init__`` calls it)."""

    @property
    def client(self) -> str:
        """The client's name, as the store and the reports know it."""
        return self.mapping.client.name


@dataclass(eq=False, repr=False)
class SyncRun(SyncContext):
    """One pass of a sync that may write: a `SyncContext`, and how this pass was asked for.

    ``dry`` reads everything and writes nothing anywhere; ``trigger`` says why it runs (a
    schedule, a webhook, a person); ``progress(done, total)`` hears of long work.
    """

    dry: bool
    trigger: str
    progress: Callable[[int, int], None] | None


class _Costed(Protocol):
    api_calls: int
    seconds: float


Costed = TypeVar("Costed", bound=_Costed)


class RunCost:
    """What a run has cost since it was started: API requests sent and seconds on the clock."""

    def __init__(self, *clients: ShoplineClient | StoklyClient) -> None:
        self._clients = clients
        self._started = time.monotonic()
        self._calls_before = api_calls(*clients)

    def charge(self, report: Costed) -> Costed:
        """Set ``report.api_calls`` and ``report.seconds`` to the cost so far; returns ``report``."""
        report.api_calls = api_calls(*self._clients) - self._calls_before
        report.seconds = time.monotonic() - self._started
        return report
