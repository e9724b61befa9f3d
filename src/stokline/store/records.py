"""Links between the systems' ids, sync cursors, pushed stock levels, ledger batches, audit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, select, tuple_, update

from stokline.store.db import aware, insert_for, now
from stokline.store.tables import audit, cursors, ledger_batches, links, pushed_levels

# SQL parameter lists are bounded (SQLite: 32,766); look-ups go in chunks well below that.
_CHUNK = 500


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass(frozen=True)
class Link:
    kind: str
    shopline_id: str
    stokly_id: str
    data: Any


class Links:
    """The same thing in both systems: (client, kind, SHOPLINE id) ↔ Stokly id."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def put(
        self, client: str, kind: str, shopline_id: str, stokly_id: str, data: Any = None
    ) -> None:
        at = now()
        stmt = insert_for(self._engine, links).values(
            client=client,
            kind=kind,
            shopline_id=shopline_id,
            stokly_id=stokly_id,
            data=data,
            created_at=at,
            updated_at=at,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["client", "kind", "shopline_id"],
            set_={"stokly_id": stokly_id, "data": data, "updated_at": at},
        )
        with self._engine.begin() as conn:
            conn.execute(stmt)

    def get(self, client: str, kind: str, shopline_id: str) -> Link | None:
        return self.get_many(client, kind, [shopline_id]).get(shopline_id)

    def get_many(self, client: str, kind: str, shopline_ids: Iterable[str]) -> dict[str, Link]:
        found: dict[str, Link] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(shopline_ids))):
                query = select(links).where(
                    links.c.client == client, links.c.kind == kind, links.c.shopline_id.in_(chunk)
                )
                for r in conn.execute(query):
                    found[r.shopline_id] = Link(r.kind, r.shopline_id, r.stokly_id, r.data)
        return found

    def by_stokly(self, client: str, kind: str, stokly_id: str) -> Link | None:
        query = select(links).where(
            links.c.client == client, links.c.kind == kind, links.c.stokly_id == stokly_id
        )
        with self._engine.connect() as conn:
            r = conn.execute(query).first()
        return Link(r.kind, r.shopline_id, r.stokly_id, r.data) if r else None

    def by_stokly_many(self, client: str, kind: str, stokly_ids: Iterable[str]) -> list[Link]:
        """Every link of ``kind`` to one of ``stokly_ids`` (an item may have several)."""
        found: list[Link] = []
        with self._engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(stokly_ids))):
                query = select(links).where(
                    links.c.client == client, links.c.kind == kind, links.c.stokly_id.in_(chunk)
                )
                found += [
                    Link(r.kind, r.shopline_id, r.stokly_id, r.data) for r in conn.execute(query)
                ]
        return found

    def all(self, client: str, kind: str) -> list[Link]:
        query = (
            select(links).where(links.c.client == client, links.c.kind == kind).order_by(links.c.id)
        )
        with self._engine.connect() as conn:
            return [Link(r.kind, r.shopline_id, r.stokly_id, r.data) for r in conn.execute(query)]


class Cursors:
    """Where each sync got to, as text (ISO times, feed positions)."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def get(self, client: str, sync: str, name: str = "default") -> str | None:
        query = select(cursors.c.value).where(
            cursors.c.client == client, cursors.c.sync == sync, cursors.c.name == name
        )
        with self._engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def set(self, client: str, sync: str, value: str, name: str = "default") -> None:
        at = now()
        stmt = insert_for(self._engine, cursors).values(
            client=client, sync=sync, name=name, value=value, updated_at=at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["client", "sync", "name"], set_={"value": value, "updated_at": at}
        )
        with self._engine.begin() as conn:
            conn.execute(stmt)


class PushedLevels:
    """The last available quantity pushed per (inventory item, location): stock pushes are deltas."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def all(self, client: str) -> dict[tuple[str, str], int]:
        query = select(pushed_levels).where(pushed_levels.c.client == client)
        with self._engine.connect() as conn:
            return {(r.inventory_item_id, r.location_id): r.available for r in conn.execute(query)}

    def stamps(
        self, client: str, keys: Iterable[tuple[str, str]] | None = None
    ) -> dict[tuple[str, str], tuple[int, datetime]]:
        """(value, when recorded) per level (of ``keys``, else all): compared before a write, a
        stamp that changed says another pass recorded or forgot the level meanwhile."""
        query = select(pushed_levels).where(pushed_levels.c.client == client)
        wanted = None if keys is None else list(keys)
        if wanted is not None and not wanted:
            return {}
        found: dict[tuple[str, str], tuple[int, datetime]] = {}
        with self._engine.connect() as conn:
            for chunk in [None] if wanted is None else _chunks(wanted):
                chosen = query
                if chunk is not None:
                    pair = tuple_(pushed_levels.c.inventory_item_id, pushed_levels.c.location_id)
                    chosen = query.where(pair.in_(chunk))
                for r in conn.execute(chosen):
                    found[(r.inventory_item_id, r.location_id)] = (r.available, r.pushed_at)
        return found

    def record(self, client: str, levels: Iterable[tuple[str, str, int]]) -> None:
        rows = [
            {
                "client": client,
                "inventory_item_id": i,
                "location_id": loc,
                "available": a,
                "pushed_at": now(),
            }
            for i, loc, a in levels
        ]
        if not rows:
            return
        stmt = insert_for(self._engine, pushed_levels)
        stmt = stmt.on_conflict_do_update(
            index_elements=["client", "inventory_item_id", "location_id"],
            set_={"available": stmt.excluded.available, "pushed_at": stmt.excluded.pushed_at},
        )
        with self._engine.begin() as conn:
            for chunk in _chunks(rows):
                conn.execute(stmt, chunk)

    def forget(self, client: str, keys: Iterable[tuple[str, str]]) -> None:
        """Drop remembered levels so the next pass pushes them again (e.g. after drift)."""
        pairs = list(keys)
        with self._engine.begin() as conn:
            for chunk in _chunks(pairs):
                conn.execute(
                    pushed_levels.delete().where(
                        pushed_levels.c.client == client,
                        tuple_(pushed_levels.c.inventory_item_id, pushed_levels.c.location_id).in_(
                            chunk
                        ),
                    )
                )


@dataclass(frozen=True)
class LedgerBatch:
    batch_key: str
    status: str
    journal_id: str | None
    totals: Any
    posted_at: datetime | None


class LedgerBatches:
    """One row per batch key; a batch is claimed before posting and never rewritten after."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def claim(self, client: str, batch_key: str, totals: Any = None) -> bool:
        """True when this call owns the batch; False when it exists (posting or posted)."""
        stmt = insert_for(self._engine, ledger_batches).values(
            client=client, batch_key=batch_key, status="posting", totals=totals, created_at=now()
        )
        with self._engine.begin() as conn:
            return (
                conn.execute(stmt.on_conflict_do_nothing().returning(ledger_batches.c.id)).first()
                is not None
            )

    def mark_posted(self, client: str, batch_key: str, journal_id: str, totals: Any = None) -> None:
        """The batch reached the ledger as ``journal_id``; ``totals``, when given, replace the
        ones claimed (what was posted is what counts, e.g. a journal found after a crash)."""
        where = and_(ledger_batches.c.client == client, ledger_batches.c.batch_key == batch_key)
        values: dict[str, Any] = {"status": "posted", "journal_id": journal_id, "posted_at": now()}
        if totals is not None:
            values["totals"] = totals
        with self._engine.begin() as conn:
            conn.execute(update(ledger_batches).where(where).values(**values))

    def get(self, client: str, batch_key: str) -> LedgerBatch | None:
        where = and_(ledger_batches.c.client == client, ledger_batches.c.batch_key == batch_key)
        with self._engine.connect() as conn:
            r = conn.execute(select(ledger_batches).where(where)).one_or_none()
        return (
            LedgerBatch(r.batch_key, r.status, r.journal_id, r.totals, aware(r.posted_at))
            if r
            else None
        )

    def list(self, client: str, prefix: str = "") -> list[LedgerBatch]:
        """The client's batches whose key starts with ``prefix`` (literally), oldest first."""
        query = (
            select(ledger_batches)
            .where(
                ledger_batches.c.client == client,
                ledger_batches.c.batch_key.startswith(prefix, autoescape=True),
            )
            .order_by(ledger_batches.c.id)
        )
        with self._engine.connect() as conn:
            return [
                LedgerBatch(r.batch_key, r.status, r.journal_id, r.totals, aware(r.posted_at))
                for r in conn.execute(query)
            ]


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    system: str
    action: str
    business_key: str
    entity_id: str | None
    details: Any


class Audit:
    """Every write made to either system. Callers pass business data only, never credentials."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def record(
        self,
        client: str,
        actor: str,
        system: str,
        action: str,
        business_key: str,
        entity_id: str | None = None,
        details: Any = None,
    ) -> None:
        if system not in ("stokly", "shopline"):
            raise ValueError(f"system must be stokly or shopline, not {system!r}")
        with self._engine.begin() as conn:
            conn.execute(
                audit.insert().values(
                    at=now(),
                    client=client,
                    actor=actor,
                    system=system,
                    action=action,
                    business_key=business_key,
                    entity_id=entity_id,
                    details=details,
                )
            )

    def list(self, client: str, business_key: str | None = None) -> list[AuditEntry]:
        query = select(audit).where(audit.c.client == client).order_by(audit.c.id)
        if business_key:
            query = query.where(audit.c.business_key == business_key)
        with self._engine.connect() as conn:
            return [
                AuditEntry(
                    aware(r.at), r.actor, r.system, r.action, r.business_key, r.entity_id, r.details
                )  # type: ignore[arg-type]
                for r in conn.execute(query)
            ]
