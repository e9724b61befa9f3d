"""``stokline.exception.opened``: one Prefect event per new exception, for the spike alert.

Every sync opens exceptions through the state store, so the store is where new ones are found,
in one place for all syncs: each pass of the status flow emits an event for every exception
created since the previous pass (a cursor in the store holds the highest id already signalled).
The reason code is a label of the event's resource, which is what the alert's ``for_each``
counts by; team and severity ride along as labels too. An exception that is raised again or
reopened is not new and is not signalled again.

The first pass (no cursor yet) signals only exceptions first seen within the spike window, so
deploying alerts onto a store with history does not fire at once. At most ``per_code`` events go
out per code per pass — enough to cross the spike threshold, never a flood of thousands.
Event ids derive from the exception, so a retried pass cannot count one exception twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from stokline.ops.alerts import CODE_LABEL, EXCEPTION_OPENED, client_resource
from stokline.store import Store
from stokline.store.db import aware, now
from stokline.store.tables import exceptions as table

CURSOR_SYNC = "alerts"
CURSOR_NAME = "exceptions-signalled"


@dataclass(frozen=True)
class OpenedException:
    id: int
    code: str
    team: str
    severity: str
    entity_kind: str
    entity_id: str
    first_seen: datetime


def _new_rows(store: Store, client: str, after: int | None, since: datetime) -> list[Any]:
    query = select(table).where(table.c.client == client).order_by(table.c.id)
    query = query.where(table.c.id > after) if after is not None else query
    query = query.where(table.c.first_seen >= since) if after is None else query
    with store.engine.connect() as conn:
        return list(conn.execute(query))


def _highest_id(store: Store, client: str) -> int:
    query = select(func.max(table.c.id)).where(table.c.client == client)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one() or 0)


def new_exceptions(
    store: Store, client: str, window: timedelta, *, at: datetime | None = None
) -> tuple[list[OpenedException], int]:
    """Exceptions opened since the last pass, and the cursor to save once they are signalled."""
    raw = store.cursors.get(client, CURSOR_SYNC, CURSOR_NAME)
    after = int(raw) if raw and raw.isdigit() else None
    rows = _new_rows(store, client, after, (at or now()) - window)
    found = [
        OpenedException(
            r.id, r.code, r.team, r.severity, r.entity_kind, r.entity_id, aware(r.first_seen)
        )  # type: ignore[arg-type]
        for r in rows
        if r.status in ("open", "retrying")
    ]
    cursor = max([after or 0, _highest_id(store, client), *(r.id for r in rows)])
    return found, cursor


def opened_event(client: str, record: OpenedException) -> dict[str, Any]:
    """The keyword arguments of `prefect.events.emit_event` for one new exception."""
    return {
        "event": EXCEPTION_OPENED,
        "resource": {
            "prefect.resource.id": client_resource(client),
            "prefect.resource.name": client,
            CODE_LABEL: record.code,
            "stokline.exception.team": record.team,
            "stokline.exception.severity": record.severity,
        },
        "related": [
            {
                "prefect.resource.id": f"stokline.exception.{client}.{record.id}",
                "prefect.resource.role": "exception",
            }
        ],
        "payload": {
            "exception_id": record.id,
            "code": record.code,
            "team": record.team,
            "severity": record.severity,
            "entity_kind": record.entity_kind,
            "entity_id": record.entity_id,
            "first_seen": record.first_seen.isoformat(timespec="seconds"),
        },
        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"stokline:{client}:exception:{record.id}:opened"),
    }


def signal_new_exceptions(
    store: Store,
    client: str,
    window: timedelta,
    per_code: int,
    emit: Callable[..., Any],
) -> dict[str, int]:
    """Emit ``stokline.exception.opened`` for each new exception; returns events sent per code.

    ``emit`` is `prefect.events.emit_event` in a flow; the cursor moves only after every emit.
    """
    found, cursor = new_exceptions(store, client, window)
    sent: dict[str, int] = {}
    for record in found:
        if sent.get(record.code, 0) >= per_code:
            continue
        emit(**opened_event(client, record))
        sent[record.code] = sent.get(record.code, 0) + 1
    store.cursors.set(client, CURSOR_SYNC, str(cursor), CURSOR_NAME)
    return sent
