"""The webhook inbox: deliveries persisted before they are acknowledged, processed later.

Unique on (client, SHOPLINE webhook id), so a re-delivery — even a concurrent one — adds
nothing. Workers claim pending events in batches: the claim's UPDATE takes only rows that are
still claimable and marks them with a token of its own, then reads back the rows bearing that
token, so two concurrent runs never take the same event. On PostgreSQL the selection is
``FOR UPDATE SKIP LOCKED`` as well, so a second run skips the rows a first one is taking instead
of waiting for them; on SQLite, writes are serialised by the database. A claim left behind by a
crashed run expires and is taken again: a live run renews its claims (`renew`, from the
heartbeat of `stokline.store.heartbeat`), so `CLAIM_EXPIRY` can be short and a killed run's
deliveries are taken again within about a minute. (A run also leases the orders it handles, in
`stokline.store.leases`, since an order reaches it through the sweep too.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update

from stokline.store.db import aware, insert_for, now
from stokline.store.tables import inbox as table

CLAIM_EXPIRY = timedelta(seconds=60)
"""How long a claim outlives its last renewal: a live run renews every `HEARTBEAT` seconds
(`stokline.store.heartbeat`), so only a run that died leaves a claim this old."""


@dataclass(frozen=True)
class InboxEvent:
    id: int
    client: str
    webhook_id: str
    topic: str
    shop_domain: str | None
    body: bytes
    status: str
    received_at: datetime
    attempts: int
    claimed_by: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> InboxEvent:
        m = row._mapping
        return cls(
            id=m["id"],
            client=m["client"],
            webhook_id=m["webhook_id"],
            topic=m["topic"],
            shop_domain=m["shop_domain"],
            body=bytes(m["body"]),
            status=m["status"],
            received_at=aware(m["received_at"]),  # type: ignore[arg-type]
            attempts=m["attempts"],
            claimed_by=m["claimed_by"],
        )


def _claimable(client: str, at: datetime, topics: Iterable[str] | None) -> Any:
    """Events a claim may take at ``at``: pending ones, and claims a crashed run left behind."""
    condition = and_(
        table.c.client == client,
        or_(
            table.c.status == "pending",
            and_(table.c.status == "processing", table.c.claimed_at < at - CLAIM_EXPIRY),
        ),
    )
    if topics is not None:
        condition = and_(condition, table.c.topic.in_(list(topics)))
    return condition


class Inbox:
    def __init__(self, engine: Engine):
        self._engine = engine

    def add(
        self,
        client: str,
        webhook_id: str,
        topic: str,
        body: bytes,
        *,
        shop_domain: str | None = None,
        status: str = "pending",
        error: str | None = None,
    ) -> bool:
        """Store a delivery. False when this webhook id was already stored (a re-delivery)."""
        stmt = insert_for(self._engine, table).values(
            client=client,
            webhook_id=webhook_id,
            topic=topic,
            shop_domain=shop_domain,
            body=body,
            status=status,
            error=error,
            received_at=now(),
            attempts=0,
        )
        with self._engine.begin() as conn:
            return (
                conn.execute(stmt.on_conflict_do_nothing().returning(table.c.id)).first()
                is not None
            )

    def claim(
        self,
        client: str,
        worker: str,
        limit: int = 100,
        *,
        topics: Iterable[str] | None = None,
    ) -> list[InboxEvent]:
        """Take up to ``limit`` pending events (oldest first) for this worker.

        ``topics`` restricts the claim to those topics, so one sync never takes (and has to hand
        back) the deliveries another sync processes.
        """
        at = now()
        token = f"{worker}:{uuid.uuid4().hex[:12]}"
        claimable = _claimable(client, at, topics)
        query = select(table.c.id).where(claimable).order_by(table.c.id).limit(limit)
        if self._engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        with self._engine.begin() as conn:
            ids = [r.id for r in conn.execute(query)]
            if not ids:
                return []
            conn.execute(
                update(table)
                .where(table.c.id.in_(ids), claimable)
                .values(
                    status="processing",
                    claimed_by=token,
                    claimed_at=at,
                    attempts=table.c.attempts + 1,
                )
            )
            rows = conn.execute(
                select(table).where(table.c.id.in_(ids), table.c.claimed_by == token)
            )
            return sorted((InboxEvent.from_row(r) for r in rows), key=lambda e: e.id)

    def pending(
        self, client: str, *, topics: Iterable[str] | None = None, limit: int | None = None
    ) -> list[InboxEvent]:
        """The events a claim would take now, oldest first, without claiming them (dry runs)."""
        query = select(table).where(_claimable(client, now(), topics))
        query = query.order_by(table.c.id).limit(limit)
        with self._engine.connect() as conn:
            return [InboxEvent.from_row(r) for r in conn.execute(query)]

    def claimable(self, client: str, *, topics: Iterable[str] | None = None) -> int:
        """How many events a claim would take now, counted without reading or claiming them:
        one indexed COUNT, cheap enough for a watcher to ask every second or two."""
        query = select(func.count()).select_from(table)
        query = query.where(_claimable(client, now(), topics))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def renew(self, tokens: Iterable[str]) -> int:
        """Keep the claims made under ``tokens`` (`InboxEvent.claimed_by`) alive; how many.

        Only rows still claimed under those tokens are touched: a claim that expired and was
        taken by another run stays that run's.
        """
        chosen = sorted({t for t in tokens if t})
        if not chosen:
            return 0
        with self._engine.begin() as conn:
            return conn.execute(
                update(table)
                .where(table.c.status == "processing", table.c.claimed_by.in_(chosen))
                .values(claimed_at=now())
            ).rowcount

    def done(self, ids: list[int]) -> None:
        if ids:
            with self._engine.begin() as conn:
                conn.execute(
                    update(table)
                    .where(table.c.id.in_(ids))
                    .values(status="done", processed_at=now(), error=None)
                )

    def release(self, event_id: int, error: str) -> None:
        """Hand an event back for the next run (a transient failure)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.id == event_id)
                .values(status="pending", claimed_by=None, error=error)
            )

    def poison(self, event_id: int, error: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.id == event_id)
                .values(status="poison", processed_at=now(), error=error)
            )

    def get(self, event_id: int) -> InboxEvent | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == event_id)).one_or_none()
        return InboxEvent.from_row(row) if row else None

    def count(self, client: str, status: str | None = None) -> int:
        query = select(func.count()).select_from(table).where(table.c.client == client)
        if status:
            query = query.where(table.c.status == status)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def oldest_pending(self, client: str) -> datetime | None:
        """When the oldest unprocessed event arrived: the inbox's lag at a glance."""
        query = select(func.min(table.c.received_at)).where(
            table.c.client == client, table.c.status.in_(("pending", "processing"))
        )
        with self._engine.connect() as conn:
            return aware(conn.execute(query).scalar_one())
