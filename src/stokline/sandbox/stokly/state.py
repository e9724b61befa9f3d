"""The Stokly sandbox's state: documents in a `DocStore`, mirrored in memory for fast queries.

Every collection is loaded once and then written through: reads (filters over 20,000 items or
80,000 inventory rows) never touch SQLite, while every change is persisted at once, so a new app
on the same data directory sees the same account. One re-entrant lock serialises all changes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from stokline.sandbox.common import DocStore

__all__ = ["UNASSIGNED", "Collection", "StoklyState", "iso", "utcnow"]

#: The bin id of stock held at a location but not in any bin [C].
UNASSIGNED = "UNASSIGNED"

KINDS = (
    "token",
    "item",
    "location",
    "bin",
    "inventory",
    "channel",
    "listing",
    "customer",
    "saleorder",
    "invoice",
    "shipment",
    "refund",
    "payment",
    "journal",
)


def utcnow() -> datetime:
    """The real clock (tests pass their own)."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and ``Z``, as Stokly writes timestamps."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class Collection:
    """One kind of document: an insertion-ordered dict backed by the store."""

    def __init__(self, store: DocStore, kind: str) -> None:
        self.store = store
        self.kind = kind
        self.docs: dict[str, dict[str, Any]] = {}

    def load(self, id_field: str) -> None:
        self.docs = {doc[id_field]: doc for doc in self.store.list(self.kind)}

    def __len__(self) -> int:
        return len(self.docs)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self.docs.values()))

    def get(self, doc_id: str) -> dict[str, Any] | None:
        return self.docs.get(doc_id)

    def add(self, doc_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        self.store.insert(self.kind, doc, id=doc_id)
        self.docs[doc_id] = doc
        return doc

    def add_many(self, pairs: Iterable[tuple[str, dict[str, Any]]]) -> None:
        pairs = list(pairs)
        self.store.insert_many(self.kind, pairs)
        self.docs.update(pairs)

    def save(self, doc_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Persist a changed document (insert when new)."""
        if doc_id in self.docs:
            self.store.update(self.kind, doc_id, doc)
        else:
            self.store.insert(self.kind, doc, id=doc_id)
        self.docs[doc_id] = doc
        return doc

    def remove(self, doc_id: str) -> None:
        self.store.delete(self.kind, doc_id)
        self.docs.pop(doc_id, None)


_ID_FIELDS = {
    "token": "tokenHash",
    "item": "itemId",
    "location": "locationId",
    "bin": "binId",
    "inventory": "key",
    "channel": "channelId",
    "listing": "listingId",
    "customer": "customerId",
    "saleorder": "saleOrderId",
    "invoice": "saleInvoiceId",
    "shipment": "shipmentId",
    "refund": "refundId",
    "payment": "paymentId",
    "journal": "journalId",
}


class StoklyState:
    """All collections of one sandbox account, plus its clock, ids and change feed."""

    def __init__(self, store: DocStore, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock
        self.lock = threading.RLock()
        self.c = {kind: Collection(store, kind) for kind in KINDS}
        self.reload()

    # -- collections -----------------------------------------------------------------------

    @property
    def tokens(self) -> Collection:
        return self.c["token"]

    @property
    def items(self) -> Collection:
        return self.c["item"]

    @property
    def locations(self) -> Collection:
        return self.c["location"]

    @property
    def bins(self) -> Collection:
        return self.c["bin"]

    @property
    def inventory(self) -> Collection:
        return self.c["inventory"]

    @property
    def channels(self) -> Collection:
        return self.c["channel"]

    @property
    def listings(self) -> Collection:
        return self.c["listing"]

    @property
    def customers(self) -> Collection:
        return self.c["customer"]

    @property
    def saleorders(self) -> Collection:
        return self.c["saleorder"]

    @property
    def invoices(self) -> Collection:
        return self.c["invoice"]

    @property
    def shipments(self) -> Collection:
        return self.c["shipment"]

    @property
    def refunds(self) -> Collection:
        return self.c["refund"]

    @property
    def payments(self) -> Collection:
        return self.c["payment"]

    @property
    def journals(self) -> Collection:
        return self.c["journal"]

    def reload(self) -> None:
        """Re-read everything from the store (after a reset or an external seed)."""
        with self.lock:
            for kind, collection in self.c.items():
                collection.load(_ID_FIELDS[kind])
            self._reindex()

    def _reindex(self) -> None:
        self.item_by_sku: dict[str, str] = {}
        for item in self.items.docs.values():
            if item.get("status") != 1:
                self.item_by_sku[item["sku"]] = item["itemId"]
        self.inventory_by_item: dict[str, list[str]] = {}
        self.inventory_by_location: dict[str, list[str]] = {}
        for key, rec in self.inventory.docs.items():
            self._index_inventory(key, rec)

    def _index_inventory(self, key: str, rec: dict[str, Any]) -> None:
        self.inventory_by_item.setdefault(rec["itemId"], []).append(key)
        self.inventory_by_location.setdefault(rec["locationId"], []).append(key)

    def clear(self) -> None:
        """Forget the whole account."""
        with self.lock:
            self.store.clear()
            self.reload()

    # -- ids and time ------------------------------------------------------------------------

    def now(self) -> str:
        return iso(self.clock())

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    def nice_id(self, kind: str) -> int:
        """The next human number of a kind (persisted, starts at 1001)."""
        key = f"nice:{kind}"
        value = int(self.store.get_meta(key, "1000") or "1000") + 1
        self.store.set_meta(key, str(value))
        return value

    def reserve_nice_ids(self, kind: str, count: int) -> int:
        """Reserve `count` human numbers at once; return the first (seeding)."""
        key = f"nice:{kind}"
        first = int(self.store.get_meta(key, "1000") or "1000") + 1
        self.store.set_meta(key, str(first + count - 1))
        return first

    # -- inventory -------------------------------------------------------------------------

    @staticmethod
    def inventory_key(item_id: str, location_id: str, bin_id: str) -> str:
        return f"{item_id}|{location_id}|{bin_id}"

    def inventory_record(self, item_id: str, location_id: str, bin_id: str) -> dict[str, Any]:
        """The stored stock row, created empty when missing (not yet persisted)."""
        key = self.inventory_key(item_id, location_id, bin_id)
        rec = self.inventory.get(key)
        if rec is None:
            rec = {
                "key": key,
                "itemId": item_id,
                "locationId": location_id,
                "binId": bin_id,
                "onHand": 0,
                "quarantined": 0,
            }
        return rec

    def save_inventory(self, rec: dict[str, Any]) -> None:
        new = rec["key"] not in self.inventory.docs
        self.inventory.save(rec["key"], rec)
        if new:
            self._index_inventory(rec["key"], rec)

    def add_inventory_many(self, recs: list[dict[str, Any]]) -> None:
        self.inventory.add_many((rec["key"], rec) for rec in recs)
        for rec in recs:
            self._index_inventory(rec["key"], rec)

    def save_item(self, item: dict[str, Any]) -> None:
        old = self.items.get(item["itemId"])
        if old is not None and self.item_by_sku.get(old["sku"]) == old["itemId"]:
            del self.item_by_sku[old["sku"]]
        self.items.save(item["itemId"], item)
        if item.get("status") != 1:
            self.item_by_sku[item["sku"]] = item["itemId"]

    def add_items_many(self, items: list[dict[str, Any]]) -> None:
        self.items.add_many((item["itemId"], item) for item in items)
        for item in items:
            if item.get("status") != 1:
                self.item_by_sku[item["sku"]] = item["itemId"]

    # -- change feed -------------------------------------------------------------------------

    def emit(self, event_type: str, data: dict[str, Any]) -> int:
        """Append an event to the change feed; return its cursor (a store sequence number)."""
        doc = {"eventId": self.new_id(), "type": event_type, "occurredAt": self.now(), "data": data}
        return int(self.store.insert("event", doc))

    def events_after(self, cursor: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        return self.store.scan("event", after_seq=cursor, limit=limit)
