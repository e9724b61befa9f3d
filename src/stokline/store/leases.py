"""Leases: which run is working on a business key (a SHOPLINE order) right now.

The inbox's row claims keep two runs from taking the same webhook event, but an order also
reaches a run through the sweep and the exception replay. A run leases every order it is about
to handle, and leaves alone those another run holds, so two runs of the same sync — two workers,
a webhook-triggered run beside a scheduled one — never both search Stokly for an order, find
nothing and both create it.

Taking a lease is one ``INSERT … ON CONFLICT DO UPDATE … WHERE`` per batch of keys, atomic on
PostgreSQL (a concurrent insert waits for the other transaction, then re-checks the condition)
and on SQLite (writes are serialised): a key is taken when it is free, expired, or already ours.
``RETURNING`` says which keys were taken. A lease is released at the end of the run and renewed
while the run is alive — every `HEARTBEAT` by `stokline.store.heartbeat`, whatever the run is
doing — so it can expire soon after a run dies: a killed run's orders are free again after
`LEASE_TIME`. Before it writes, a run confirms it still holds its keys (`acquire` again), so a
lease lost to a stalled heartbeat can never let two runs create the same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import Engine, delete, or_, select, update

from stokline.store.db import insert_for, now
from stokline.store.tables import leases as table

LEASE_TIME = timedelta(seconds=60)
"""How long a lease outlives its last renewal; a live holder renews it every `HEARTBEAT`."""
HEARTBEAT = timedelta(seconds=15)
"""How often a live run renews its leases and inbox claims: four times within their expiry."""
_CHUNK = 500  # keys per statement: well inside SQLite's and PostgreSQL's parameter limits


class Leases:
    def __init__(self, engine: Engine):
        self._engine = engine

    def acquire(
        self,
        client: str,
        kind: str,
        keys: Iterable[str],
        holder: str,
        ttl: timedelta | None = None,
    ) -> set[str]:
        """Lease ``keys`` to ``holder`` for ``ttl`` (`LEASE_TIME`); returns those it now holds
        (the others are someone's)."""
        ttl = LEASE_TIME if ttl is None else ttl
        # Sorted: concurrent upserts lock their rows in one order, so they cannot deadlock.
        wanted = sorted({str(k) for k in keys})
        taken: set[str] = set()
        at = now()
        for start in range(0, len(wanted), _CHUNK):
            rows = [
                {
                    "client": client,
                    "kind": kind,
                    "key": key,
                    "holder": holder,
                    "expires_at": at + ttl,
                }
                for key in wanted[start : start + _CHUNK]
            ]
            insert = insert_for(self._engine, table).values(rows)
            stmt = insert.on_conflict_do_update(
                index_elements=[table.c.client, table.c.kind, table.c.key],
                set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
                where=or_(table.c.expires_at < at, table.c.holder == insert.excluded.holder),
            ).returning(table.c.key)
            with self._engine.begin() as conn:
                taken.update(r.key for r in conn.execute(stmt))
        return taken

    def renew(self, holder: str, ttl: timedelta | None = None) -> int:
        """Push back the expiry of every lease ``holder`` has by ``ttl`` (`LEASE_TIME`); how
        many it has."""
        ttl = LEASE_TIME if ttl is None else ttl
        with self._engine.begin() as conn:
            return conn.execute(
                update(table).where(table.c.holder == holder).values(expires_at=now() + ttl)
            ).rowcount

    def release(self, holder: str, keys: Iterable[str] | None = None) -> None:
        """Give up ``holder``'s leases (all of them, or those on ``keys``)."""
        query = delete(table).where(table.c.holder == holder)
        if keys is not None:
            chosen = [str(k) for k in keys]
            if not chosen:
                return
            query = query.where(table.c.key.in_(chosen))
        with self._engine.begin() as conn:
            conn.execute(query)

    def orphaned(self, client: str, kind: str, limit: int = _CHUNK) -> list[str]:
        """Keys whose lease expired and that nobody took since: the work of a run that died
        (a run that ends, even by an error, releases its leases). Oldest expiry first."""
        query = (
            select(table.c.key)
            .where(table.c.client == client, table.c.kind == kind, table.c.expires_at < now())
            .order_by(table.c.expires_at)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [r.key for r in conn.execute(query)]

    def holders(self, client: str, kind: str, keys: Iterable[str]) -> dict[str, str]:
        """Who holds a live lease on each of ``keys`` (for reports and tests)."""
        chosen = [str(k) for k in keys]
        if not chosen:
            return {}
        query = select(table.c.key, table.c.holder).where(
            table.c.client == client,
            table.c.kind == kind,
            table.c.key.in_(chosen),
            table.c.expires_at >= now(),
        )
        with self._engine.connect() as conn:
            return {r.key: r.holder for r in conn.execute(query)}
