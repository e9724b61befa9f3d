"""Keeping a client's stock passes apart SKU by SKU, so a stock event never waits for a full pass.

A full pass of a large catalogue writes for minutes; a goods receipt must reach SHOPLINE in
seconds all the same. Two passes writing one level at once would go wrong, though: each adjusts
by the difference from the level *it* read, so both differences would land. So the passes keep
apart on Stokly SKUs, with leases in the state store (`stokline.store.leases`):

- The event path holds its few SKUs for its whole pass, read and writes alike, taking all of
  them or none (`hold_all`; two event batches never wait on each other holding half), and
  waiting at most `WAIT` for a full pass to finish the levels it is writing.
- A full pass claims its levels `CLAIM_SIZE` at a time, just before writing them (`claim`):
  a level whose SKU another pass holds is left to that pass, and so is a level whose pushed
  value was recorded or forgotten by another pass since this one started (`stamps`), since its
  difference would be taken from a stale read and its target from older figures. The event
  path's pass records every level it read, even one already right, so its newer figures always
  win over the full pass's older ones.

A full pass never waits, so it holds no more than two claims at once: an event waits for at
most those levels' writes (a few seconds at SHOPLINE's 4 requests a second). Leases expire
`stokline.store.leases.LEASE_TIME` after the last renewal, which a live pass does every
`stokline.store.leases.HEARTBEAT`: a pass that dies frees its SKUs within a minute.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from datetime import datetime

from stokline.config import Mapping
from stokline.config.skus import sku_key
from stokline.store import Store
from stokline.sync.stock.translate import DesiredLevel

__all__ = ["CLAIM_SIZE", "LEASE", "WAIT", "Claims"]

LEASE = "stock_sku"
CLAIM_SIZE = 16
"""Levels a full pass claims at once: a few seconds of writes at SHOPLINE's pace."""
WAIT = 30.0
"""Seconds the event path waits for its SKUs before it gives its batch back for a retry."""
POLL = 0.1


class Claims:
    """One pass's leases on the client's Stokly SKUs, and the pushed levels it started from."""

    def __init__(self, mapping: Mapping, store: Store, holder_kind: str) -> None:
        self._mapping = mapping
        self._store = store
        self.client = mapping.client.name
        self.holder = f"stock-{holder_kind}:{uuid.uuid4().hex[:12]}"
        self.started: dict[tuple[str, str], tuple[int, datetime]] = {}

    def key(self, level: DesiredLevel) -> str:
        """The lease key of a level: its Stokly SKU (a zeroed variant has none: its own)."""
        return self.sku_key(level.stokly_sku or level.shopline_sku)

    def sku_key(self, sku: str) -> str:
        return sku_key(sku, self._mapping.skus.match)

    def start(self) -> dict[tuple[str, str], int]:
        """Take the pushed levels as they are now; the value last pushed per level."""
        self.started = self._store.levels.stamps(self.client)
        return {key: value for key, (value, _) in self.started.items()}

    async def hold_all(self, skus: Iterable[str], wait: float = WAIT) -> bool:
        """Lease every one of ``skus`` (Stokly SKUs), or none: False after ``wait`` seconds."""
        keys = {self.sku_key(s) for s in skus}
        deadline = time.monotonic() + wait
        while True:
            taken = self._store.leases.acquire(self.client, LEASE, keys, self.holder)
            if taken == keys:
                return True
            self._store.leases.release(self.holder, taken)
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL)

    def claim(self, levels: list[DesiredLevel]) -> tuple[list[DesiredLevel], list[DesiredLevel]]:
        """Of ``levels``, those this pass may write now, and those left to another pass."""
        keys = {self.key(level) for level in levels}
        taken = self._store.leases.acquire(self.client, LEASE, keys, self.holder)
        mine = [level for level in levels if self.key(level) in taken]
        now = self._store.levels.stamps(self.client, [level.key for level in mine])
        ours = [level for level in mine if now.get(level.key) == self.started.get(level.key)]
        kept = {id(level) for level in ours}
        return ours, [level for level in levels if id(level) not in kept]

    def give_back(self, levels: Iterable[DesiredLevel]) -> None:
        self._store.leases.release(self.holder, {self.key(level) for level in levels})

    def renew(self) -> None:
        self._store.leases.renew(self.holder)

    def release(self) -> None:
        self._store.leases.release(self.holder)
