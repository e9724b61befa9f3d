"""How long a killed run's orders wait: from the SIGKILL to another run having taken them over.

At each kill the probe notes the orders the killed runs held — those leased to a run and those of
webhook deliveries claimed by one — that are not in Stokly yet, with the lease holders and claim
tokens of the dead runs. A thread then looks at the state store every `POLL_SECONDS`: an order
counts as recovered when another run has taken it over — none of its leases is the dead run's
any more and none of its deliveries is still claimed by it — or when it is in Stokly, or when a
run has (re)raised an exception on it after the kill. The figures are the seconds from the kill
to that moment (`imported` counts those that are in Stokly by the end); orders never taken over
before the campaign ends are counted apart.
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

__all__ = ["RecoveryProbe"]

POLL_SECONDS = 2.0
TARGET_P95_SECONDS = 120.0


class RecoveryProbe:
    def __init__(self, store: Store, client: str) -> None:
        self.store = store
        self.client = client
        # order id → (kill number, monotonic time of the kill, wall time of the kill)
        self.pending: dict[str, tuple[int, float, datetime]] = {}
        # what the dead runs held: order id → lease holders, and → (inbox row, claim token)
        self.dead_leases: dict[str, set[str]] = {}
        self.dead_claims: dict[str, set[tuple[int, str]]] = {}
        self.recovered: set[str] = set()
        self.waits: list[float] = []
        self.held_at_kill: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="recovery probe", daemon=True)
        self._thread.start()

    # -- at a kill ------------------------------------------------------------------------------

    def _leases(self, conn: Any) -> dict[str, set[str]]:
        rows = conn.execute(
            select(leases_table.c.key, leases_table.c.holder).where(
                leases_table.c.client == self.client, leases_table.c.kind == "order"
            )
        )
        found: dict[str, set[str]] = {}
        for r in rows:
            found.setdefault(r.key, set()).add(r.holder)
        return found

    def _claims(self, conn: Any) -> dict[str, set[tuple[int, str]]]:
        rows = conn.execute(
            select(inbox_table.c.id, inbox_table.c.body, inbox_table.c.claimed_by).where(
                inbox_table.c.client == self.client, inbox_table.c.status == "processing"
            )
        )
        found: dict[str, set[tuple[int, str]]] = {}
        for r in rows:
            try:
                order_id = json.loads(bytes(r.body)).get("id")
            except (ValueError, AttributeError):
                continue
            if isinstance(order_id, str | int):
                found.setdefault(str(order_id), set()).add((r.id, r.claimed_by or ""))
        return found

    def _held(self) -> set[str]:
        """Orders the runs hold now (leased, or named by a claimed delivery), noting by whom."""
        with self.store.engine.connect() as conn:
            leases, claims = self._leases(conn), self._claims(conn)
        for order_id, holders in leases.items():
            self.dead_leases.setdefault(order_id, set()).update(holders)
        for order_id, held in claims.items():
            self.dead_claims.setdefault(order_id, set()).update(held)
        return set(leases) | set(claims)

    def _linked(self, order_ids: list[str]) -> set[str]:
        return set(self.store.links.get_many(self.client, "order", order_ids))

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
        with self.store.engine.connect() as conn:
            leases, claims = self._leases(conn), self._claims(conn)
        now = time.monotonic()
        with self._lock:
            for order_id in ids:
                _, at, wall = pending[order_id]
                dead_lease = leases.get(order_id, set()) & self.dead_leases.get(order_id, set())
                dead_claim = claims.get(order_id, set()) & self.dead_claims.get(order_id, set())
                taken_over = not dead_lease and not dead_claim
                if taken_over or order_id in linked or touched.get(order_id, wall) > wall:
                    self.waits.append(now - at)
                    self.recovered.add(order_id)
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

        imported = len(self._linked(sorted(self.recovered)))
        return {
            "orders_held_at_kills": self.held_at_kill,
            "recovered": len(waits),
            "imported": imported,
            "not_recovered": len(self.pending),
            "p50_seconds": at(0.5),
            "p95_seconds": at(0.95),
            "max_seconds": round(waits[-1], 1) if waits else None,
            "mean_seconds": round(statistics.fmean(waits), 1) if waits else None,
            "target_p95_seconds": TARGET_P95_SECONDS,
        }
