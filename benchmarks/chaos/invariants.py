"""What must hold after the campaign, checked against what both systems and the store hold.

Both campaigns — the reduced one in `make test` and the full one in `make chaos` — end by taking a
`Snapshot` (the sandboxes' documents as they are stored, the state store's rows, and two reads
through stokline's own code: the stock reconciliation and a dry run of the ledger) and passing it
to `check`. The checks read the systems' records, not stokline's reports of what it did, so a
sync that says "imported" without importing, or imports twice, fails them:

- **orders**: every paid SHOPLINE order placed during the campaign is exactly one Stokly sale
  order (by channel and SHOPLINE order id) — or is held by an exception with a known cause; no
  SHOPLINE order is ever in Stokly twice; no unpaid one is there; one cancelled in SHOPLINE is
  removed in Stokly (or held by an exception); the store's link names that sale order;
- **shipments**: every Stokly shipment of such an order is exactly one live SHOPLINE fulfillment
  (the same tracking numbers), and SHOPLINE shows no fulfillment Stokly did not ship;
- **stock**: every SHOPLINE level equals the sellable stock computed from Stokly
  (`stokline.sync.stock.reconcile.reconcile_stock`: on hand − quarantined − allocated − buffer − paid orders not
  yet imported);
- **ledger**: each batch is one Stokly journal (one per reference), balanced to the penny, and
  recorded as posted in the store; nothing is stuck half-posted; a dry run finds nothing left
  to post, so the journals cover all of SHOPLINE's money;
- **inbox**: every webhook the receiver acknowledged is in the inbox and processed; every
  delivery was acknowledged in the end;
- **exceptions**: every open exception has a known, expected cause, verified against the data
  (a SKU Stokly really does not know, an order really cancelled after the warehouse started).

Each check returns an `Invariant` with counts and, when it fails, the first problems found.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stokline.store import ExceptionRecord
from stokline.store.records import LedgerBatch
from stokline.sync.stock.reconcile import StockReconciliation

__all__ = ["Cause", "InboxRow", "Invariant", "Snapshot", "check", "explain_exceptions"]

MAX_PROBLEMS = 12
"""Problems listed per invariant (the counts cover all of them)."""
CENT = Decimal("0.01")


@dataclass(frozen=True)
class InboxRow:
    """One stored webhook delivery, as the state store's inbox holds it."""

    webhook_id: str
    topic: str
    status: str
    order_id: str | None


@dataclass
class Snapshot:
    """Everything the invariants look at, read once at the end of a campaign.

    ``baseline_orders`` are the SHOPLINE orders that existed before the campaign (the demo
    seed's history, which a freshly installed integration does not import); ``known_skus`` the
    SHOPLINE SKUs that name a Stokly item (directly, case-insensitively, or through an override).
    """

    client: str
    channel_id: str
    import_when: frozenset[str]
    known_skus: frozenset[str]
    baseline_orders: frozenset[str]
    shopline_orders: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    stokly_saleorders: list[dict[str, Any]]
    stokly_shipments: list[dict[str, Any]]
    stokly_journals: list[dict[str, Any]]
    inbox: list[InboxRow]
    order_links: dict[str, str]
    exceptions: list[ExceptionRecord]
    batches: list[LedgerBatch]
    stock: StockReconciliation | None
    unposted: list[str] = field(default_factory=list)
    """Batch keys a dry run of the ledger would still post (or why it could not run)."""

    # -- derived views ---------------------------------------------------------------------------

    def campaign_orders(self) -> list[dict[str, Any]]:
        return [o for o in self.shopline_orders if str(o["id"]) not in self.baseline_orders]

    def sale_orders_by_source(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for sale in self.stokly_saleorders:
            if sale.get("sourceId") == self.channel_id and sale.get("sourceReferenceId"):
                found[str(sale["sourceReferenceId"])].append(sale)
        return found

    def active_exceptions(self, entity_kind: str, entity_id: str) -> list[ExceptionRecord]:
        return [
            e
            for e in self.exceptions
            if e.entity_kind == entity_kind and e.entity_id == str(entity_id)
        ]

    def sku_known(self, sku: str | None) -> bool:
        return bool(sku) and str(sku).casefold() in self.known_skus


@dataclass
class Invariant:
    """One property of the end state: held or not, with counts and the problems found."""

    key: str
    title: str
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: int = 0

    @property
    def passed(self) -> bool:
        return self.failures == 0

    def fail(self, problem: str) -> None:
        self.failures += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "passed": self.passed,
            "failures": self.failures,
            "counts": self.counts,
            "problems": self.problems,
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------
# Exceptions and their causes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cause:
    """Why an exception is open: a known, expected cause verified in the data, or not;
    ``detail`` names what it concerns (the SKUs Stokly does not know)."""

    expected: bool
    text: str
    detail: tuple[str, ...] = ()


_SKU_IN_MESSAGE = re.compile(r"SKU (\S+)")


def _skus_of(record: ExceptionRecord) -> list[str]:
    payload = record.payload if isinstance(record.payload, dict) else {}
    skus = [str(payload[k]) for k in ("sku", "shopline_sku") if payload.get(k)]
    return skus or _SKU_IN_MESSAGE.findall(record.message)


def _cause(snapshot: Snapshot, record: ExceptionRecord, orders: dict[str, dict]) -> Cause:
    code = record.code
    if code in ("unmapped_sku", "unknown_shopline_sku"):
        if record.entity_kind == "order":
            order = orders.get(record.entity_id)
            lines = (order or {}).get("line_items") or []
            unknown = sorted(
                {str(li.get("sku")) for li in lines if not snapshot.sku_known(li.get("sku"))}
            )
        else:
            unknown = sorted({s for s in _skus_of(record) if not snapshot.sku_known(s)})
        if unknown:
            return Cause(
                True, "SKU unknown to Stokly (a deliberate gap of the demo seed)", tuple(unknown)
            )
        return Cause(False, "names SKUs that Stokly does know")
    if code == "order_changed" and record.entity_kind == "order":
        order = orders.get(record.entity_id) or {}
        sales = snapshot.sale_orders_by_source().get(record.entity_id, [])
        started = any(
            line.get("quantityCollected") or line.get("quantityDispatched")
            for sale in sales
            for line in sale.get("items") or []
        )
        if order.get("cancelled_at") and started:
            return Cause(True, "cancelled in SHOPLINE after the warehouse started on it")
        return Cause(False, "an order change with no cancellation after picking to explain it")
    if code == "order_changed" and record.entity_kind == "shipment":
        shipment = next(
            (s for s in snapshot.stokly_shipments if s.get("shipmentId") == record.entity_id), {}
        )
        order = orders.get(str(shipment.get("sourceReferenceId") or "")) or {}
        if shipment.get("status") != "cancelled" and order.get("cancelled_at"):
            return Cause(True, "cancelled in SHOPLINE after Stokly shipped it")
        return Cause(False, "a shipment change with no cancelled order to explain it")
    return Cause(False, f"no known cause for {code}")


def explain_exceptions(snapshot: Snapshot) -> list[tuple[ExceptionRecord, Cause]]:
    """Each active exception with its cause."""
    orders = {str(o["id"]): o for o in snapshot.shopline_orders}
    return [(record, _cause(snapshot, record, orders)) for record in snapshot.exceptions]


def _held(
    snapshot: Snapshot, entity_kind: str, entity_id: str, causes: dict[int, Cause]
) -> str | None:
    """The expected cause holding an entity back, or None when nothing accounts for it."""
    for record in snapshot.active_exceptions(entity_kind, entity_id):
        cause = causes.get(record.id)
        if cause is not None and cause.expected:
            return f"{record.code}: {cause.text}"
    return None


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def _must_import(snapshot: Snapshot, order: dict[str, Any]) -> bool:
    """Paid, not cancelled: money was taken and goods are owed. A partial refund does not
    change that (the rest of the order still ships)."""
    if order.get("cancelled_at") or order.get("status") == "cancelled":
        return False
    status = order.get("financial_status")
    paid = set(snapshot.import_when)
    if "paid" in paid:
        paid.add("partially_refunded")
    return status in paid


def check_orders(snapshot: Snapshot, causes: dict[int, Cause]) -> Invariant:
    inv = Invariant("orders", "every paid order exactly once in Stokly")
    by_source = snapshot.sale_orders_by_source()
    for source, sales in by_source.items():
        if len(sales) > 1:
            ids = ", ".join(s["saleOrderId"] for s in sales)
            inv.fail(f"SHOPLINE order {source} is {len(sales)} Stokly sale orders: {ids}")
    counts: Counter[str] = Counter()
    for order in snapshot.campaign_orders():
        order_id, name = str(order["id"]), order.get("name") or order["id"]
        sales = by_source.get(order_id, [])
        status = order.get("financial_status")
        if len(sales) == 1 and snapshot.order_links.get(order_id) != sales[0]["saleOrderId"]:
            # Unlinked, the sale order is invisible to the syncs: no payment, refund or
            # cancellation of the SHOPLINE order ever reaches it.
            link = snapshot.order_links.get(order_id)
            inv.fail(
                f"{name} ({order_id}, {status}) is Stokly sale order {sales[0]['saleOrderId']}, "
                f"but the store links it to {link or 'nothing'}"
            )
        if _must_import(snapshot, order):
            counts["paid"] += 1
            if len(sales) == 1:
                counts["in_stokly_once"] += 1
            elif not sales:
                held = _held(snapshot, "order", order_id, causes)
                if held:
                    counts["held_by_exception"] += 1
                else:
                    inv.fail(
                        f"{name} ({order_id}) is {status} and not in Stokly, with no exception "
                        "to say why"
                    )
        elif order.get("cancelled_at"):
            counts["cancelled"] += 1
            live = [s for s in sales if s.get("stage") != "removed"]
            if live and not _held(snapshot, "order", order_id, causes):
                inv.fail(
                    f"{name} was cancelled in SHOPLINE; Stokly sale order "
                    f"{live[0]['saleOrderId']} is still {live[0].get('stage')}"
                )
        elif status in ("unpaid", "pending", None):
            counts["unpaid"] += 1
            if sales and status not in snapshot.import_when:
                inv.fail(f"{name} is {status} and yet in Stokly as {sales[0]['saleOrderId']}")
        else:  # refunded in full (or voided) before anything was owed
            counts[f"{status}"] += 1
    inv.counts = {"campaign_orders": len(snapshot.campaign_orders()), **counts}
    inv.counts["duplicates"] = sum(1 for s in by_source.values() if len(s) > 1)
    if not counts["paid"]:
        inv.fail("no paid order was placed: the campaign proved nothing about orders")
    return inv


def _tracking(values: Iterable[Any]) -> frozenset[str]:
    return frozenset(str(v).strip() for v in values if str(v or "").strip())


def check_shipments(snapshot: Snapshot, causes: dict[int, Cause]) -> Invariant:
    inv = Invariant("shipments", "every shipment exactly once in SHOPLINE")
    orders = {str(o["id"]): o for o in snapshot.campaign_orders()}
    counts: Counter[str] = Counter()
    matched: dict[str, set[str]] = defaultdict(set)
    for shipment in snapshot.stokly_shipments:
        order_id = str(shipment.get("sourceReferenceId") or "")
        if shipment.get("sourceId") != snapshot.channel_id or order_id not in orders:
            continue
        if shipment.get("status") == "cancelled":
            counts["cancelled_in_stokly"] += 1
            continue
        counts["shipments"] += 1
        numbers = _tracking(shipment.get("trackingNumbers") or [])
        live = [
            f for f in orders[order_id].get("_fulfillments") or [] if f.get("status") != "cancelled"
        ]
        same = [
            f
            for f in live
            if _tracking(t.get("tracking_number") for t in f.get("tracking_info_list") or [])
            == numbers
        ]
        name = orders[order_id].get("name")
        if len(same) == 1:
            counts["in_shopline_once"] += 1
            matched[order_id].add(str(same[0]["id"]))
        elif not same:
            held = _held(snapshot, "shipment", shipment["shipmentId"], causes) or _held(
                snapshot, "order", order_id, causes
            )
            if held:
                counts["held_by_exception"] += 1
            else:
                inv.fail(
                    f"shipment {shipment['shipmentId']} of {name} ({', '.join(sorted(numbers))}) is not in SHOPLINE"
                )
        else:
            inv.fail(
                f"shipment {shipment['shipmentId']} of {name} is {len(same)} fulfillments in SHOPLINE"
            )
    for order_id, order in orders.items():
        for fulfillment in order.get("_fulfillments") or []:
            if (
                fulfillment.get("status") == "cancelled"
                or str(fulfillment["id"]) in matched[order_id]
            ):
                continue
            numbers = sorted(
                _tracking(
                    t.get("tracking_number") for t in fulfillment.get("tracking_info_list") or []
                )
            )
            inv.fail(
                f"{order.get('name')}: SHOPLINE fulfillment {fulfillment['id']} ({', '.join(numbers)}) matches no Stokly shipment"
            )
            counts["extra_fulfillments"] += 1
    inv.counts = dict(counts)
    return inv


def check_stock(snapshot: Snapshot) -> Invariant:
    inv = Invariant("stock", "SHOPLINE stock equals sellable stock computed from Stokly")
    found = snapshot.stock
    if found is None:
        inv.fail("the stock reconciliation could not be read")
        return inv
    for error in found.errors:
        inv.fail(error)
    for comparison in found.comparisons:
        if comparison.differs:
            inv.fail(
                f"{comparison.shopline_sku} at {comparison.location}: SHOPLINE shows "
                f"{comparison.shopline}, Stokly can sell {comparison.sellable}"
            )
    inv.counts = {
        "levels_compared": found.compared,
        "differ": found.differences,
        "oversell_risk": found.oversell_risk,
        "unmatched_variants": found.unmatched,
    }
    if not found.compared:
        inv.fail("no level was compared")
    return inv


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def check_ledger(snapshot: Snapshot) -> Invariant:
    inv = Invariant("ledger", "each finance batch posted once and balanced")
    prefix = f"{snapshot.client}:"
    journals = [
        j for j in snapshot.stokly_journals if str(j.get("reference", "")).startswith(prefix)
    ]
    by_reference: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for journal in journals:
        by_reference[journal["reference"]].append(journal)
    for reference, found in by_reference.items():
        if len(found) > 1:
            inv.fail(f"{reference} is posted {len(found)} times")
    for journal in journals:
        debits = sum((_money(line.get("debit")) for line in journal.get("lines") or []), Decimal(0))
        credits = sum(
            (_money(line.get("credit")) for line in journal.get("lines") or []), Decimal(0)
        )
        if debits != credits:
            inv.fail(f"{journal['reference']}: debits {debits} ≠ credits {credits}")
    ids = {j["journalId"]: j["reference"] for j in journals}
    recorded = set()
    for batch in snapshot.batches:
        recorded.add(batch.batch_key)
        if batch.status != "posted":
            inv.fail(f"batch {batch.batch_key} is left {batch.status}")
        elif ids.get(batch.journal_id or "") != batch.batch_key:
            inv.fail(
                f"batch {batch.batch_key} is recorded as journal {batch.journal_id}, which Stokly does not hold under that reference"
            )
    for reference in by_reference:
        if reference not in recorded:
            inv.fail(f"journal {reference} is in Stokly but not recorded in the store")
    for key in snapshot.unposted:
        inv.fail(f"a dry run would still post {key}: the ledger does not cover SHOPLINE's money")
    paid = any(
        _must_import(snapshot, o) or o.get("financial_status") == "refunded"
        for o in snapshot.campaign_orders()
    )
    if paid and not journals:
        inv.fail("money moved in SHOPLINE and no journal was posted")
    inv.counts = {
        "journals": len(journals),
        "adjustments": sum(1 for r in by_reference if ":adj" in r),
        "batches": len(snapshot.batches),
    }
    return inv


def _accepted(delivery: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in delivery.get("attempts") or [] if a.get("status") == 200]


def check_inbox(snapshot: Snapshot, causes: dict[int, Cause]) -> Invariant:
    inv = Invariant("inbox", "no webhook event lost")
    inbox = {row.webhook_id: row for row in snapshot.inbox}
    counts: Counter[str] = Counter()
    for delivery in snapshot.deliveries:
        counts["deliveries"] += 1
        accepted = _accepted(delivery)
        counts["acknowledged_copies"] += len(accepted)
        counts["failed_attempts"] += sum(
            1 for a in delivery.get("attempts") or [] if a.get("status") != 200
        )
        if delivery.get("state") != "delivered":
            inv.fail(
                f"{delivery['topic']} {delivery['id']} is still {delivery.get('state')} at the end"
            )
            continue
        row = inbox.get(delivery["id"])
        if row is None:
            inv.fail(
                f"{delivery['topic']} {delivery['id']} was acknowledged but is not in the inbox: lost"
            )
        elif row.status == "done":
            counts["done"] += 1
        elif row.status == "poison" and _held(snapshot, "webhook", row.webhook_id, causes):
            counts["poison_accounted"] += 1
        else:
            inv.fail(
                f"{row.topic} {row.webhook_id} (order {row.order_id}) is left {row.status} in the inbox"
            )
    counts["duplicate_copies"] = (
        counts["acknowledged_copies"] - counts["done"] - counts["poison_accounted"]
    )
    counts["reordered"] = _reordered(snapshot.deliveries)
    inv.counts = dict(counts)
    if not counts["deliveries"]:
        inv.fail("no webhook was delivered: the campaign proved nothing about the inbox")
    return inv


def _reordered(deliveries: list[dict[str, Any]]) -> int:
    """Deliveries acknowledged after an event of the same order that was emitted later.

    ``deliveries`` are in the order SHOPLINE emitted them (the sandbox stores them so)."""
    by_order: dict[str, list[float]] = defaultdict(list)
    for delivery in deliveries:
        accepted = _accepted(delivery)
        if not accepted:
            continue
        try:
            order_id = str(json.loads(delivery.get("body") or "{}").get("id"))
        except ValueError:
            continue
        by_order[order_id].append(min(a["at"] for a in accepted))
    late = 0
    for arrived in by_order.values():
        late += sum(1 for i in range(1, len(arrived)) if arrived[i] < max(arrived[:i]))
    return late


def check_exceptions(
    snapshot: Snapshot, explained: list[tuple[ExceptionRecord, Cause]]
) -> Invariant:
    inv = Invariant("exceptions", "every exception accounted for")
    counts: Counter[str] = Counter()
    for record, cause in explained:
        counts[record.code] += 1
        if not cause.expected:
            inv.fail(
                f"#{record.id} {record.code} on {record.entity_kind} {record.entity_id}: {cause.text} — {record.message}"
            )
    expected: dict[tuple[str, str], list[Cause]] = defaultdict(list)
    for record, cause in explained:
        if cause.expected:
            expected[(record.code, cause.text)].append(cause)
    for (code, text), found in sorted(expected.items(), key=lambda kv: -len(kv[1])):
        details = sorted({d for cause in found for d in cause.detail})
        listed = ", ".join(details[:8]) + (
            f" and {len(details) - 8} more" if len(details) > 8 else ""
        )
        inv.notes.append(f"{len(found)} × {code}: {text}" + (f": {listed}" if listed else ""))
    inv.counts = {"open": len(explained), **counts}
    return inv


def check(snapshot: Snapshot) -> list[Invariant]:
    """Every invariant, in the order they are printed."""
    explained = explain_exceptions(snapshot)
    causes = {record.id: cause for record, cause in explained}
    return [
        check_orders(snapshot, causes),
        check_shipments(snapshot, causes),
        check_stock(snapshot),
        check_ledger(snapshot),
        check_inbox(snapshot, causes),
        check_exceptions(snapshot, explained),
    ]
