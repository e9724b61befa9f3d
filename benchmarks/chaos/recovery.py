"""How long a killed run's orders wait: from the SIGKILL to another run having handled them.

At each kill the probe notes the orders the killed runs held — those leased to a run and those of
webhook deliveries claimed by one — that are not in Stokly yet. A thread then looks at the state
store every `POLL_SECONDS`: an order counts as recovered when another run has handled it, that
is when it is linked to a Stokly sale order, or when a run has (re)raised an exception on it
after the kill (an order held by an unknown SKU is handled too: it waits for a person, not for a
lease). The figures are the seconds from the kill to that moment; orders never handled before the
campaign ends are counted apart.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from stokline.store import Store
from stokline.store.tables import exceptions as exceptions_table
from stokline.store.tables import inbox as inbox_table
from stokline.store.tables import leases as leases_table
from stokline.store.tables import links as links_table

__all__ = ["RecoveryProbe"]

POLL_SECONDS = 2.0
TARGET_P95_SECONDS = 120.0


class RecoveryProbe:
    def __init__(self, store: Store, client: str) -> None:
        self.store = store
        self.client = client
        # order id → (kill number, monotonic time of the kill, wall time of the kill)
        self.pending: dict[str, tuple[int, float, datetime]] = {}
        self.waits: list[float] = []
        self.held_at_kill: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="recovery probe", daemon=True)
        self._thread.start()

    # -- at a kill ------------------------------------------------------------------------------

    def _held(self) -> set[str]:
        """Orders a run holds now: leased, or named by a delivery a run has claimed."""
        with self.store.engine.connect() as conn:
            leased = {
                r.key
                for r in conn.execute(
                    select(leases_table.c.key).where(
                        leases_table.c.client == self.client, leases_table.c.kind == "order"
                    )
                )
            }
            bodies = conn.execute(
                select(inbox_table.c.body).where(
                    inbox_table.c.client == self.client, inbox_table.c.status == "processing"
                )
            )
            claimed = set()
            for (body,) in bodies:
                try:
                    order_id = json.loads(bytes(body)).get("id")
                except (ValueError, AttributeError):
                    continue
                if isinstance(order_id, str | int):
                    claimed.add(str(order_id))
        return leased | claimed

    def _linked(self, order_ids: list[str]) -> set[str]:
        if not order_ids:
            return set()
        query = select(links_table.c.shopline_id).where(
            links_table.c.client == self.client,
            links_table.c.kind == "order",
            links_table.c.shopline_id.in_(order_ids),
        )
        with self.store.engine.connect() as conn:
            return {r.shopline_id for r in conn.execute(query)}

    def killed(self, number: int) -> int:
        """Note what the runs just killed held; how many orders that is."""
        held = sorted(self._held())
        waiting = set(held) - self._linked(held)
        at, wall = time.monotonic(), datetime.now(UTC)
        with self._lock:
            for order_id in waiting:
                self.pending.setdefault(order_id, (number, at, wall))
        self.held_at_kill.append(len(waiting))
        return len(waiting)

    # -- afterwards -----------------------------------------------------------------------------

    def _handled_since(self, order_ids: list[str]) -> dict[str, datetime]:
        """Orders a run raised or touched an exception on, with when it last did."""
        if not order_ids:
            return {}
        query = select(exceptions_table.c.entity_id, exceptions_table.c.last_seen).where(
            exceptions_table.c.client == self.client,
            exceptions_table.c.entity_kind == "order",
            exceptions_table.c.entity_id.in_(order_ids),
        )
        seen: dict[str, datetime] = {}
        with self.store.engine.connect() as conn:
            for r in conn.execute(query):
                last = r.last_seen if r.last_seen.tzinfo else r.last_seen.replace(tzinfo=UTC)
                seen[r.entity_id] = max(last, seen.get(r.entity_id, last))
        return seen

    def look(self) -> None:
        with self._lock:
            pending = dict(self.pending)
        if not pending:
            return
        ids = sorted(pending)
        linked = self._linked(ids)
        touched = self._handled_since(ids)
        now = time.monotonic()
        with self._lock:
            for order_id in ids:
                _, at, wall = pending[order_id]
                if order_id in linked or touched.get(order_id, wall) > wall:
                    self.waits.append(now - at)
                    self.pending.pop(order_id, None)

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.look()
            except Exception:  # a busy database: look again at the next poll
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(POLL_SECONDS * 3)
        self.look()

    def summary(self) -> dict[str, Any]:
        waits = sorted(self.waits)

        def at(q: float) -> float | None:
            if not waits:
                return None
            return round(waits[min(len(waits) - 1, round(q * (len(waits) - 1)))], 1)

        return {
            "orders_held_at_kills": self.held_at_kill,
            "recovered": len(waits),
            "not_recovered": len(self.pending),
            "p50_seconds": at(0.5),
            "p95_seconds": at(0.95),
            "max_seconds": round(waits[-1], 1) if waits else None,
            "mean_seconds": round(statistics.fmean(waits), 1) if waits else None,
            "target_p95_seconds": TARGET_P95_SECONDS,
        }
