"""The exceptions queue: every failure becomes a visible, owned record that replays itself.

One row per (client, reason code, entity). Raising the same exception again counts an attempt
and refreshes it instead of adding a row; an exception that was resolved and comes back is
reopened; an ignored one stays ignored (someone decided), but its last-seen time moves.
Statuses: open → retrying (a replay is under way) → resolved, or ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, select, update

from stokline.store.db import aware, insert_for, now
from stokline.store.tables import exceptions as table

STATUSES = ("open", "retrying", "resolved", "ignored")
ACTIVE = ("open", "retrying")


@dataclass(frozen=True)
class Reason:
    severity: str  # critical | high | medium | low, by operational impact
    action: str  # what the owning team does about it, in a sentence


# Reason codes, with the severity of their operational impact and what to do.
REASONS: dict[str, Reason] = {
    "unmapped_sku": Reason(
        "critical",
        "Add the SKU to Stokly, or add an override under skus.overrides; the order imports by itself on the next run.",
    ),
    "unknown_shopline_sku": Reason(
        "medium", "Create the item in Stokly or correct the variant's SKU in SHOPLINE."
    ),
    "sku_collision": Reason(
        "high",
        "Give the colliding Stokly items distinct SKUs, or match SKUs more strictly (skus.match).",
    ),
    "unknown_location": Reason(
        "high", "Map the SHOPLINE location under locations:, or mark a default location."
    ),
    "unmapped_shipping": Reason(
        "high", "Add the shipping line under shipping.methods, or give shipping.default."
    ),
    "tax_mismatch": Reason(
        "high",
        "Add a tax rule for this line under tax.rules, or check the rate charged in SHOPLINE.",
    ),
    "unmapped_gateway": Reason("high", "Map the payment gateway under payments.gateways."),
    "customer_conflict": Reason(
        "medium", "Merge or correct the Stokly customers sharing this email and phone, then retry."
    ),
    "order_changed": Reason(
        "high", "Apply the SHOPLINE change to the Stokly sale order by hand, then resolve."
    ),
    "api_rejected": Reason(
        "high", "Read the API's message; correct the data or the mapping, then retry."
    ),
    "poison_message": Reason(
        "medium",
        "Inspect the stored delivery or record; each run retries it and closes the exception"
        " once the API's copy reads cleanly (a missing order is imported by the next sweep).",
    ),
    "stale_fulfilment": Reason(
        "high", "Check why the shipment has not reached SHOPLINE; the customer sees no tracking."
    ),
    "oversell_risk": Reason(
        "critical", "SHOPLINE offers more than Stokly can fulfil: check the stock pass and pushes."
    ),
    "template_failed": Reason(
        "high", "Fix the field template in the mapping (it reads a field this record lacks)."
    ),
    "ledger_imbalance": Reason(
        "critical", "Nothing was posted: review the journal's lines and the ledger accounts."
    ),
    "payout_variance": Reason(
        "high",
        "Compare the listed orders in SHOPLINE and the Stokly ledger, and correct the side at fault.",
    ),
}


@dataclass(frozen=True)
class ExceptionRecord:
    id: int
    client: str
    code: str
    severity: str
    team: str
    status: str
    entity_kind: str
    entity_id: str
    message: str
    action: str
    payload: Any
    attempts: int
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    resolution: str | None

    @classmethod
    def from_row(cls, row: Any) -> ExceptionRecord:
        data = dict(row._mapping)
        for key in ("first_seen", "last_seen", "resolved_at"):
            data[key] = aware(data[key])
        return cls(**data)


class Exceptions:
    def __init__(self, engine: Engine):
        self._engine = engine

    def raise_(
        self,
        client: str,
        code: str,
        entity_kind: str,
        entity_id: str,
        message: str,
        *,
        team: str,
        payload: Any = None,
    ) -> ExceptionRecord:
        """Record (or refresh) an exception. Returns it as stored."""
        if code not in REASONS:
            raise ValueError(f"unknown exception code {code!r}; known: {', '.join(REASONS)}")
        reason = REASONS[code]
        at = now()
        key = and_(
            table.c.client == client,
            table.c.code == code,
            table.c.entity_kind == entity_kind,
            table.c.entity_id == entity_id,
        )
        with self._engine.begin() as conn:
            insert = insert_for(self._engine, table).values(
                client=client,
                code=code,
                severity=reason.severity,
                team=team,
                status="open",
                entity_kind=entity_kind,
                entity_id=entity_id,
                message=message,
                action=reason.action,
                payload=payload,
                attempts=1,
                first_seen=at,
                last_seen=at,
            )
            inserted = conn.execute(insert.on_conflict_do_nothing().returning(table.c.id)).first()
            if not inserted:
                row = conn.execute(select(table.c.status).where(key)).one()
                changes: dict[str, Any] = {
                    "attempts": table.c.attempts + 1,
                    "last_seen": at,
                    "message": message,
                    "payload": payload,
                    "team": team,
                }
                if row.status in ("resolved", "retrying"):
                    changes.update(status="open", resolved_at=None, resolution=None)
                conn.execute(update(table).where(key).values(**changes))
            return ExceptionRecord.from_row(conn.execute(select(table).where(key)).one())

    def get(self, exception_id: int) -> ExceptionRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == exception_id)).one_or_none()
        return ExceptionRecord.from_row(row) if row else None

    def list(
        self,
        *,
        client: str | None = None,
        code: str | None = None,
        team: str | None = None,
        status: str | tuple[str, ...] | None = None,
        entity_kind: str | None = None,
    ) -> list[ExceptionRecord]:
        query = select(table).order_by(table.c.id)
        if client:
            query = query.where(table.c.client == client)
        if code:
            query = query.where(table.c.code == code)
        if team:
            query = query.where(table.c.team == team)
        if entity_kind:
            query = query.where(table.c.entity_kind == entity_kind)
        if status:
            statuses = (status,) if isinstance(status, str) else status
            query = query.where(table.c.status.in_(statuses))
        with self._engine.connect() as conn:
            return [ExceptionRecord.from_row(r) for r in conn.execute(query)]

    def _set_status(self, exception_id: int, status: str, note: str | None = None) -> bool:
        values: dict[str, Any] = {"status": status}
        if status in ("resolved", "ignored"):
            values.update(resolved_at=now(), resolution=note)
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    update(table).where(table.c.id == exception_id).values(**values)
                ).rowcount
            )

    def mark_retrying(self, exception_id: int) -> bool:
        return self._set_status(exception_id, "retrying")

    def resolve(self, exception_id: int, note: str = "resolved") -> bool:
        return self._set_status(exception_id, "resolved", note)

    def ignore(self, exception_id: int, note: str) -> bool:
        return self._set_status(exception_id, "ignored", note)

    def resolve_entity(self, client: str, entity_kind: str, entity_id: str, note: str) -> list[int]:
        """Resolve every active exception of one entity (e.g. an order that has now imported)."""
        where = and_(
            table.c.client == client,
            table.c.entity_kind == entity_kind,
            table.c.entity_id == entity_id,
            table.c.status.in_(ACTIVE),
        )
        with self._engine.begin() as conn:
            ids = [r.id for r in conn.execute(select(table.c.id).where(where))]
            if ids:
                conn.execute(
                    update(table)
                    .where(table.c.id.in_(ids))
                    .values(status="resolved", resolved_at=now(), resolution=note)
                )
        return ids
