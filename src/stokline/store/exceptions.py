"""The exceptions queue: every failure becomes a visible, owned record that replays itself.

One row per (client, reason code, entity). Raising the same exception again counts an attempt
and refreshes it instead of adding a row; an exception that was resolved and comes back is
reopened; an ignored one stays ignored (someone decided), but its last-seen time moves.
Statuses: open → retrying (a replay is under way) → resolved, or ignored.

Each record also has a **key fact** (`key_fact`): the few words an operator acts on — the SKU, the
gateway, the shipping line, the tax line, the location — read from what the raising sync stored
(its payload, else its message), one small function per family of codes (`KEY_FACTS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
        "Give the colliding Stokly items distinct SKUs, or match SKUs more strictly (skus.match); "
        "for one Stokly item behind several SHOPLINE variants, remove the extra variant or the "
        "override that points it at the item, or choose the variant that shows its stock under "
        "skus.show_stock_on.",
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

    @property
    def order(self) -> str | None:
        """The SHOPLINE order's name (``#1001``) the exception concerns, when the sync stored it."""
        name = _payload(self).get("order")
        return str(name) if name not in (None, "") else None

    @property
    def key_fact(self) -> str | None:
        """What to act on, in a few words (a SKU, a gateway, a tax line...); None when unknown."""
        return KEY_FACTS.get(self.code, _stored)(self) or _journal(self)


# -- key facts ------------------------------------------------------------------------------------
# Each reads the payload first, then the sentences the syncs write (`stokline.mapping.translate`
# and each sync's own); tests/store/test_exception_facts.py holds them to the real wording.


def _payload(record: ExceptionRecord) -> dict[str, Any]:
    return record.payload if isinstance(record.payload, dict) else {}


def _sentences(record: ExceptionRecord) -> list[str]:
    """What was said of the record's own code: an order's problems of that code, else the message."""
    problems = _payload(record).get("problems")
    own = [
        str(p["message"])
        for p in problems or ()
        if isinstance(p, dict) and p.get("code") == record.code and p.get("message")
    ]
    return own or [record.message or ""]


Pattern = tuple[re.Pattern[str], str]


def _said(record: ExceptionRecord, *patterns: Pattern) -> str | None:
    """The matches of the first pattern found in each sentence, shaped; distinct ones joined."""
    found: list[str] = []
    for sentence in _sentences(record):
        for pattern, shape in patterns:
            matches = [shape.format(*m.groups()) for m in pattern.finditer(sentence)]
            if matches:
                found.extend(matches)
                break
    return ", ".join(dict.fromkeys(found)) or None


def _stored(record: ExceptionRecord) -> str | None:
    """Any code: the SKU, gateway or webhook topic the payload names."""
    payload = _payload(record)
    for key in ("sku", "gateway", "topic"):
        if payload.get(key) not in (None, "", "(none)"):
            return str(payload[key])
    return None


_SKU: tuple[Pattern, ...] = (
    (re.compile(r"\bSKU ([^;]+?) (?:matches (?:no|several) Stokly|is overridden to)"), "{}"),
    (re.compile(r"carries (.+?), which match no line"), "{}"),
    (re.compile(r"\bline (.+?) carries no SKU"), "no SKU (line {})"),
    (re.compile(r"the line has no SKU"), "no SKU"),
    (re.compile(r"Stokly items (.+?) are the same SKU"), "{}"),
)


def _sku(record: ExceptionRecord) -> str | None:
    """unmapped_sku, unknown_shopline_sku, sku_collision: the SKU(s)."""
    sku = _payload(record).get("sku")
    return str(sku) if sku else _said(record, *_SKU)


def _gateway(record: ExceptionRecord) -> str | None:
    """unmapped_gateway: the SHOPLINE payment gateway."""
    return _stored(record) or _said(
        record, (re.compile(r"payment gateway (.+?) is not mapped"), "{}")
    )


def _shipping(record: ExceptionRecord) -> str | None:
    """unmapped_shipping: the shipping line's title (or code)."""
    return _said(record, (re.compile(r"shipping line (.+?) matches no shipping method"), "{}"))


def _tax(record: ExceptionRecord) -> str | None:
    """tax_mismatch: the tax line's title and rate, or the tax class without an account."""
    return _said(
        record,
        (re.compile(r"tax line (.+?) at rate (\S+) matches no tax rule"), "{} @ {}"),
        (re.compile(r"tax class (.+?) has no account"), "tax class {}"),
        (re.compile(r"refunds tax (\S+) but"), "refunded tax {}"),
        (re.compile(r"tax (\S+) refunded on a line with no tax line"), "refunded tax {}"),
    )


def _location(record: ExceptionRecord) -> str | None:
    """unknown_location: the SHOPLINE location, or the Stokly location that does not exist."""
    return _said(
        record,
        (re.compile(r"SHOPLINE location (.+?) is not in the mapping"), "{}"),
        (re.compile(r"Stokly has no location named (.+?) \(fulfil_from"), "Stokly {}"),
        (re.compile(r"names no location"), "no location"),
    )


def _customer(record: ExceptionRecord) -> str | None:
    """customer_conflict: which Stokly customers each identity key found."""
    return _said(record, (re.compile(r"several Stokly customers: (.+)$"), "{}"))


def _change(record: ExceptionRecord) -> str | None:
    """order_changed: what changed in SHOPLINE (or Stokly) after the import."""
    return _said(
        record,
        (re.compile(r"was (cancelled|edited) in SHOPLINE \((.*?)\)(?: after| but|$)"), "{} ({})"),
        (re.compile(r"was (cancelled|edited) in SHOPLINE"), "{}"),
        (re.compile(r"was (cancelled) in Stokly"), "shipment {} in Stokly"),
    )


def _rejected(record: ExceptionRecord) -> str | None:
    """api_rejected: which API refused what (and its HTTP status, when stored)."""
    payload = _payload(record)
    if payload.get("sku"):
        where = payload.get("location_id")
        return f"{payload['sku']} at {where}" if where else str(payload["sku"])
    said = _said(
        record,
        (re.compile(r"\b(Stokly|SHOPLINE) refused (?:to )?(?:the )?(.+?)(?:: |$)"), "{}: {}"),
        (re.compile(r"SHOPLINE has no order (\S+)"), "SHOPLINE order {} missing"),
        (re.compile(r"the (fulfillment) cannot be sent"), "{} not sendable"),
    )
    status = payload.get("status")
    return f"{said} ({status})" if said and status else said


def _poison(record: ExceptionRecord) -> str | None:
    """poison_message: the webhook topic, or that the record could not be read."""
    payload = _payload(record)
    if payload.get("topic"):
        return f"webhook {payload['topic']}"
    if payload.get("unreadable"):
        return "unreadable"
    return None


def _stale(record: ExceptionRecord) -> str | None:
    """stale_fulfilment: when Stokly shipped it."""
    dispatched = _payload(record).get("dispatched_at")
    if dispatched:
        return f"shipped {str(dispatched)[:16].replace('T', ' ')}"
    return _said(record, (re.compile(r"shipped in Stokly (\S+ h) ago"), "shipped {} ago"))


def _template(record: ExceptionRecord) -> str | None:
    """template_failed: the template that failed."""
    return _said(
        record,
        (re.compile(r"template ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\") failed"), "{}"),
        (re.compile(r"the product (title) is empty"), "empty {}"),
    )


def _journal(record: ExceptionRecord) -> str | None:
    """A ledger journal's day, gateway and currency, and how far it is off when it is."""
    payload = _payload(record)
    if not (payload.get("date") and payload.get("currency")):
        return None
    fact = " ".join(str(payload[k]) for k in ("date", "gateway", "currency") if payload.get(k))
    debits, credits = payload.get("debits"), payload.get("credits")
    if record.code == "ledger_imbalance" and debits is not None and debits != credits:
        fact += f": debits {debits}, credits {credits}"
    return fact


KEY_FACTS: dict[str, Callable[[ExceptionRecord], str | None]] = {
    "unmapped_sku": _sku,
    "unknown_shopline_sku": _sku,
    "sku_collision": _sku,
    "unknown_location": _location,
    "unmapped_shipping": _shipping,
    "tax_mismatch": _tax,
    "unmapped_gateway": _gateway,
    "customer_conflict": _customer,
    "order_changed": _change,
    "api_rejected": _rejected,
    "poison_message": _poison,
    "stale_fulfilment": _stale,
    "oversell_risk": _stored,
    "template_failed": _template,
    "ledger_imbalance": _journal,
    "payout_variance": _stored,
}
"""The key fact of each reason code (a new code in `REASONS` gets one here too)."""


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
