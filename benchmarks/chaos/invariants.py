"""What must hold after the campaign, checked against what both systems and the store hold.

Both campaigns — the reduced one in `make test` and the full one in `make chaos` — end by taking a
`Snapshot` (the sandboxes' documents as they are stored, the state store's rows, and two reads
through stokline's own code: the stock reconciliation and a dry run of the ledger) and passing it
to `check`. The checks read the systems' records, not stokline's reports of what it did, so a
sync that says "imported" without importing, or imports twice, fails them:

- **orders**: every paid SHOPLINE order placed during the campaign is exactly one Stokly sale
  order (by channel and SHOPLINE order id) — or is held by an exception with a known cause; no
  SHOPLINE order is ever in Stokly twice; no unpaid one, and no authorised one not yet captured
  (not owed yet), is there; one cancelled in SHOPLINE is removed in Stokly (or held by an
  exception); one refunded in full before its import is never created; the store's link names
  that sale order;
- **refunded goods never ship silently**: for each order, the units the Stokly warehouse
  dispatched of each SKU never exceed the units SHOPLINE sold less those refunded as not
  shipped *before that dispatch*, and the units a live sale order still has to ship never exceed
  what SHOPLINE still sells — or the excess is named by an open ``order_changed`` exception of
  that order (a person was told to stop it);
- **money to the penny**: each imported sale order's total is SHOPLINE's ``total_price`` less the
  share of the units refunded before the import (the rule of `stokline.sync.orders.translate`:
  a line's price and discounts shared by quantity, an order-level discount spread over the
  lines), its units are those sold less those refunded before the import, and its payments are
  what SHOPLINE had captured when it was imported; an order edited after its import (which
  Stokly's API cannot follow) is named by its ``order_changed`` exception instead;
- **shipments**: every Stokly shipment of such an order is exactly one live SHOPLINE fulfillment
  (the same tracking numbers), and SHOPLINE shows no fulfillment Stokly did not ship;
- **stock**: every SHOPLINE level equals the sellable stock computed from Stokly
  (`stokline.sync.stock.reconcile.reconcile_stock`: on hand − quarantined − allocated − buffer − paid orders not
  yet imported);
- **one Stokly item, one sellable figure**: for every Stokly item and synced SHOPLINE location,
  the SHOPLINE levels of all the variants that resolve to the item (through the mapping's
  overrides and match rule: an override beside the item's own SKU, SKUs differing in case, one
  SKU on two products) add up to no more than Stokly's sellable figure, worked out here from the
  sandboxes' records (on hand − quarantined − allocated − buffer − shippable units of paid
  orders not yet imported, never below 0), not through stokline's stock code; and each item
  several variants sell has exactly one open ``sku_collision`` exception naming all of them;
- **ledger**: each batch is one Stokly journal (one per reference), balanced to the penny, and
  recorded as posted in the store; nothing is stuck half-posted; a dry run finds nothing left
  to post, so the journals cover all of SHOPLINE's money;
- **inbox**: every webhook the receiver acknowledged is in the inbox and processed; every
  delivery was acknowledged in the end;
- **exceptions**: every open exception has a known, expected cause, verified against the data
  (a SKU Stokly really does not know, an order really cancelled after the warehouse started,
  really refunded with units still to ship, really edited after import; money held out of the
  journals only for orders really not in Stokly, each for a reason: placed before the
  integration, cancelled, refunded in full before import, not captured yet, or held by an
  expected exception of its own).

Each check returns an `Invariant` with counts and, when it fails, the first problems found.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from stokline.config.skus import sku_key
from stokline.mapping.money import allocate, minor_unit
from stokline.sandbox.stokly.domain import OPEN_STAGES
from stokline.store import ExceptionRecord
from stokline.store.records import LedgerBatch
from stokline.sync.stock.read import UNIMPORTED_WINDOW
from stokline.sync.stock.reconcile import StockReconciliation
from stokline.sync.stock.sync import SHARED

__all__ = [
    "Cause",
    "InboxRow",
    "Invariant",
    "LocationRule",
    "Snapshot",
    "StockRules",
    "check",
    "explain_exceptions",
]

MAX_PROBLEMS = 12
"""Problems listed per invariant (the counts cover all of them)."""
CENT = Decimal("0.01")
SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class InboxRow:
    """One stored webhook delivery, as the state store's inbox holds it."""

    webhook_id: str
    topic: str
    status: str
    order_id: str | None


@dataclass(frozen=True)
class LocationRule:
    """One SHOPLINE location of the mapping: the Stokly locations it sells from, its buffer."""

    shopline_location: str
    stokly_locations: tuple[str, ...]
    buffer: int = 0
    synced: bool = True
    default: bool = False


@dataclass(frozen=True)
class StockRules:
    """What of the mapping decides which Stokly item a SHOPLINE variant sells, and where."""

    match: str
    overrides: dict[str, str] = field(default_factory=dict)
    """SHOPLINE SKU → Stokly SKU, as the mapping spells them."""
    never_sync: tuple[str, ...] = ()
    locations: tuple[LocationRule, ...] = ()


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
    sku_overrides: dict[str, str] = field(default_factory=dict)
    """SHOPLINE SKU → Stokly SKU of the mapping's overrides, both case-folded."""
    saleorders_created: dict[str, str] = field(default_factory=dict)
    """When Stokly created each sale order (its ``saleorder.created`` event), by sale order id."""
    stock_rules: StockRules | None = None
    shopline_products: list[dict[str, Any]] = field(default_factory=list)
    shopline_levels: list[dict[str, Any]] = field(default_factory=list)
    stokly_items: list[dict[str, Any]] = field(default_factory=list)
    stokly_inventory: list[dict[str, Any]] = field(default_factory=list)
    """Stokly's stock rows (item, location, bin: onHand, quarantined)."""
    stokly_locations: list[dict[str, Any]] = field(default_factory=list)
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))

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

    def stokly_sku(self, shopline_sku: str | None) -> str:
        """The Stokly SKU (case-folded) a SHOPLINE SKU names under the mapping."""
        sku = str(shopline_sku or "").strip().casefold()
        return self.sku_overrides.get(sku, sku)


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


# ---------------------------------------------------------------------------------------------
# Units and times of both systems' records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundLine:
    """Units of one SHOPLINE line given back by one refund, and when."""

    at: datetime | None
    line_id: str
    quantity: int
    returned: bool
    """Refunded as ``Returned`` (units that had shipped), not as ``Unshipped``."""


def _at(value: Any) -> datetime | None:
    """A timestamp of either sandbox (ISO 8601, ``Z`` or an offset) as an aware datetime."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _refund_lines(order: Mapping[str, Any]) -> list[RefundLine]:
    """Every refunded line of a SHOPLINE order (as the sandbox stores it, or as its API shows
    it), oldest first."""
    out = []
    for refund in order.get("_refunds") or order.get("refunds") or []:
        at = _at(refund.get("created_at"))
        for item in refund.get("refund_line_items") or []:
            out.append(
                RefundLine(
                    at,
                    str(item.get("line_item_id")),
                    int(item.get("quantity") or 0),
                    item.get("type") == "Returned",
                )
            )
    return sorted(out, key=lambda r: r.at or datetime.min.replace(tzinfo=UTC))


def _line_skus(snapshot: Snapshot, order: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(li.get("id")): snapshot.stokly_sku(li.get("sku"))
        for li in order.get("line_items") or []
    }


def _sold_units(snapshot: Snapshot, order: Mapping[str, Any]) -> Counter[str]:
    """Units SHOPLINE sold of each Stokly SKU (its lines' quantities, refunds not taken off)."""
    out: Counter[str] = Counter()
    for li in order.get("line_items") or []:
        if int(li.get("quantity") or 0) > 0:
            out[snapshot.stokly_sku(li.get("sku"))] += int(li["quantity"])
    return out


def _refunded_units(
    snapshot: Snapshot, order: Mapping[str, Any], lines: Iterable[RefundLine]
) -> Counter[str]:
    skus = _line_skus(snapshot, order)
    out: Counter[str] = Counter()
    for line in lines:
        out[skus.get(line.line_id, line.line_id)] += line.quantity
    return out


def _stokly_units(sale: Mapping[str, Any]) -> Counter[str]:
    """Units of each SKU (case-folded) on a Stokly sale order, as it was created."""
    out: Counter[str] = Counter()
    for line in sale.get("items") or []:
        if not line.get("parentId"):
            out[str(line.get("itemSku") or "").casefold()] += int(line.get("quantity") or 0)
    return out


def _nothing_to_ship(order: Mapping[str, Any]) -> bool:
    """Every unit of every line refunded: SHOPLINE has nothing left for anyone to ship."""
    refunded: Counter[str] = Counter()
    for r in _refund_lines(order):
        refunded[r.line_id] += r.quantity
    lines = [li for li in order.get("line_items") or [] if int(li.get("quantity") or 0) > 0]
    return bool(lines) and all(int(li["quantity"]) <= refunded[str(li["id"])] for li in lines)


def _named_refunded(snapshot: Snapshot, order: Mapping[str, Any]) -> Counter[str] | None:
    """Units per Stokly SKU that open ``order_changed`` exceptions of the order name as refunded
    and not to ship; None when one names the whole order (cancelled in SHOPLINE while Stokly had
    started on it, or shipped after the cancellation: "stop or return the goods")."""
    order_id = str(order["id"])
    out: Counter[str] = Counter()
    shipments = {
        str(s.get("shipmentId"))
        for s in snapshot.stokly_shipments
        if str(s.get("sourceReferenceId") or "") == order_id
    }
    records = [
        *snapshot.active_exceptions("order", order_id),
        *(r for sid in sorted(shipments) for r in snapshot.active_exceptions("shipment", sid)),
    ]
    for record in records:
        if record.code != "order_changed":
            continue
        if "was cancelled in SHOPLINE" in record.message and order.get("cancelled_at"):
            return None
        payload = record.payload if isinstance(record.payload, dict) else {}
        if isinstance(payload.get("refunded"), dict):
            for sku, units in payload["refunded"].items():
                out[str(sku).casefold()] = max(out[str(sku).casefold()], int(units or 0))
    return out


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
        return _order_changed(snapshot, record, orders.get(record.entity_id) or {})
    if code == "order_changed" and record.entity_kind == "shipment":
        shipment = next(
            (s for s in snapshot.stokly_shipments if s.get("shipmentId") == record.entity_id), {}
        )
        order = orders.get(str(shipment.get("sourceReferenceId") or "")) or {}
        if shipment.get("status") != "cancelled" and order.get("cancelled_at"):
            return Cause(True, "cancelled in SHOPLINE after Stokly shipped it")
        payload = record.payload if isinstance(record.payload, dict) else {}
        named = payload.get("refunded")
        if isinstance(named, dict) and named and shipment.get("status") != "cancelled":
            refunded = _refunded_units(snapshot, order, _refund_lines(order))
            if all(refunded[str(sku).casefold()] for sku in named):
                return Cause(
                    True,
                    "refunded in SHOPLINE as not shipped while Stokly shipped it (named)",
                    tuple(sorted(named)),
                )
            return Cause(False, "names shipped units SHOPLINE did not refund")
        return Cause(False, "a shipment change with no cancelled order to explain it")
    if code == "payout_variance" and record.entity_kind == "ledger_batch":
        return _money_held(snapshot, record, orders)
    if code == "sku_collision" and record.entity_kind == SHARED:
        return _shared_item(snapshot, record)
    return Cause(False, f"no known cause for {code}")


def _shared_item(snapshot: Snapshot, record: ExceptionRecord) -> Cause:
    """A ``sku_collision`` of a Stokly item: several SHOPLINE variants really resolve to it."""
    if snapshot.stock_rules is None:
        return Cause(False, "the mapping's SKU rules were not read to verify it")
    view = _StockView(snapshot, snapshot.stock_rules)
    wanted = record.entity_id.casefold()
    variants = [
        v
        for sku, found in view.by_item(on_sale_only=False).items()
        if sku.casefold() == wanted
        for v in found
    ]
    if len(variants) > 1:
        return Cause(
            True,
            "one Stokly item sold by several SHOPLINE variants (one shows its stock)",
            (record.entity_id,),
        )
    return Cause(False, f"names a Stokly item {len(variants)} SHOPLINE variant(s) sell")


def _order_changed(snapshot: Snapshot, record: ExceptionRecord, order: dict[str, Any]) -> Cause:
    """An ``order_changed`` of an order: cancelled after picking, refunded with units still to
    ship, or edited after import — each checked against both systems' records."""
    sales = snapshot.sale_orders_by_source().get(record.entity_id, [])
    started = any(
        line.get("quantityCollected") or line.get("quantityDispatched")
        for sale in sales
        for line in sale.get("items") or []
    )
    if order.get("cancelled_at") and started:
        return Cause(True, "cancelled in SHOPLINE after the warehouse started on it")
    payload = record.payload if isinstance(record.payload, dict) else {}
    named = payload.get("refunded")
    if isinstance(named, dict) and named and sales:
        refunded = _refunded_units(snapshot, order, _refund_lines(order))
        on_order: Counter[str] = Counter()
        for sale in sales:
            on_order.update(_stokly_units(sale))
        wrong = sorted(
            sku
            for sku in named
            if not refunded[str(sku).casefold()] or not on_order[str(sku).casefold()]
        )
        if not wrong:
            return Cause(
                True,
                "refunded in SHOPLINE after import with units still to ship (named for a person)",
                tuple(sorted(named)),
            )
        return Cause(False, f"names units SHOPLINE did not refund: {', '.join(wrong)}")
    if "edited in SHOPLINE (its lines" in record.message and sales:
        sold = _sold_units(snapshot, order)
        if any(sold != _stokly_units(sale) for sale in sales):
            return Cause(True, "edited in SHOPLINE after import (Stokly cannot change the lines)")
        return Cause(False, "says the lines were edited, and they equal the sale order's")
    return Cause(False, "an order change that neither system's records explain")


def _money_held(snapshot: Snapshot, record: ExceptionRecord, orders: dict[str, dict]) -> Cause:
    """A ``payout_variance`` holding money of orders not in Stokly: every order it names must
    really be out of Stokly, and for a reason the orders sync keeps it out."""
    payload = record.payload if isinstance(record.payload, dict) else {}
    rows = payload.get("unimported") or []
    if not rows:
        return Cause(False, "a payout variance that names no order held out of the journals")
    by_source = snapshot.sale_orders_by_source()
    reasons: list[str] = []
    for row in rows:
        order_id = str(row.get("shopline_id") or "")
        order = orders.get(order_id)
        live = [s for s in by_source.get(order_id, []) if s.get("stage") != "removed"]
        if order is None:
            return Cause(False, f"holds the money of {order_id}, which SHOPLINE does not have")
        name = order.get("name") or order_id
        if live or snapshot.order_links.get(order_id):
            return Cause(False, f"holds the money of {name}, which is in Stokly")
        if order_id in snapshot.baseline_orders:
            reasons.append("placed before the integration")
        elif order.get("cancelled_at") or order.get("status") == "cancelled":
            reasons.append("cancelled before import")
        elif order.get("financial_status") == "refunded":
            reasons.append("refunded in full before import")
        elif _nothing_to_ship(order):
            reasons.append("every unit refunded before import (nothing to ship)")
        elif order.get("financial_status") in ("authorized", "partially_paid", "unpaid", "pending"):
            reasons.append(f"{order.get('financial_status')}: not owed yet")
        else:
            held = [
                _cause(snapshot, other, orders)
                for other in snapshot.active_exceptions("order", order_id)
                if other.code != "payout_variance"
            ]
            if not any(c.expected for c in held):
                return Cause(
                    False,
                    f"holds the money of {name} ({order.get('financial_status')}), which is not"
                    " in Stokly for no known reason",
                )
            reasons.append("held by an exception of its own")
    return Cause(
        True,
        "money of orders not in Stokly held out of the journals",
        tuple(sorted(set(reasons))),
    )


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
            elif not sales and _nothing_to_ship(order):
                # Every unit refunded before the import (the shipping kept): nothing to create.
                counts["every_unit_refunded_before_import"] += 1
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
        elif status in ("unpaid", "pending", "authorized", None):
            # Not owed yet: nothing was paid, or an authorisation was not captured.
            counts[status or "unpaid"] += 1
            if sales and status not in snapshot.import_when:
                inv.fail(f"{name} is {status} and yet in Stokly as {sales[0]['saleOrderId']}")
        elif status == "refunded":
            live = [s for s in sales if s.get("stage") != "removed"]
            if not sales:
                counts["refunded_before_import"] += 1
            else:
                # Refunded after its import: removed, or what it still has to ship is named by
                # an exception (the invariant of refunded goods checks that).
                counts["refunded_after_import"] += 1
                if not live:
                    counts["refunded_after_import_removed"] += 1
        else:  # partly captured, an edit not yet paid in full, voided
            counts[f"{status}"] += 1
    inv.counts = {"campaign_orders": len(snapshot.campaign_orders()), **counts}
    inv.counts["duplicates"] = sum(1 for s in by_source.values() if len(s) > 1)
    if not counts["paid"]:
        inv.fail("no paid order was placed: the campaign proved nothing about orders")
    return inv


def check_refunds_not_shipped(snapshot: Snapshot) -> Invariant:
    """Refunded goods never ship silently (see the module docstring)."""
    inv = Invariant("refunds_not_shipped", "nothing shipped that was refunded")
    counts: Counter[str] = Counter()
    by_source = snapshot.sale_orders_by_source()
    shipments: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for shipment in snapshot.stokly_shipments:
        if shipment.get("status") != "cancelled":
            shipments[str(shipment.get("saleOrderId"))].append(shipment)
    for order in snapshot.campaign_orders():
        order_id, name = str(order["id"]), order.get("name") or order["id"]
        sales = by_source.get(order_id, [])
        if not sales:
            continue
        counts["orders"] += 1
        sold = _sold_units(snapshot, order)
        unshipped = [r for r in _refund_lines(order) if not r.returned]
        skus = _line_skus(snapshot, order)
        named = _named_refunded(snapshot, order)
        if unshipped:
            counts["orders_refunded_before_dispatch"] += 1
        excess: Counter[str] = Counter()
        for sale in sales:
            dispatched: Counter[str] = Counter()
            parcels = sorted(
                shipments.get(str(sale["saleOrderId"]), []),
                key=lambda s: _at(s.get("dispatchedAt")) or datetime.min.replace(tzinfo=UTC),
            )
            for parcel in parcels:
                at = _at(parcel.get("dispatchedAt"))
                carried = set()
                for item in parcel.get("items") or []:
                    sku = str(item.get("itemSku") or "").casefold()
                    dispatched[sku] += int(item["quantity"])
                    carried.add(sku)
                refunded: Counter[str] = Counter()
                for r in unshipped:
                    # SHOPLINE stamps whole seconds: a refund of the dispatch's own second may
                    # have come after it, and is not held against it.
                    if at is not None and r.at is not None and r.at + SECOND <= at:
                        refunded[skus.get(r.line_id, r.line_id)] += r.quantity
                # The SKUs of this parcel: units shipped earlier went before these refunds.
                for sku in carried:
                    excess[sku] = max(excess[sku], dispatched[sku] - (sold[sku] - refunded[sku]))
            counts["units_dispatched"] += sum(dispatched.values())
            if sale.get("stage") != "order":
                continue
            # What the sale order still has to ship must be what SHOPLINE still sells.
            refunded_now = Counter()
            for r in unshipped:
                refunded_now[skus.get(r.line_id, r.line_id)] += r.quantity
            waiting: Counter[str] = Counter()
            shipped: Counter[str] = Counter()
            for line in sale.get("items") or []:
                if line.get("parentId") or line.get("status") == "cancelled":
                    continue
                sku = str(line.get("itemSku") or "").casefold()
                waiting[sku] += int(line["quantity"]) - int(line.get("quantityDispatched") or 0)
                shipped[sku] += int(line.get("quantityDispatched") or 0)
            for sku, units in waiting.items():
                beyond = min(units, shipped[sku] + units - (sold[sku] - refunded_now[sku]))
                if beyond > 0:
                    counts["refunded_units_waiting"] += beyond
                    if named is not None and named[sku] < beyond:
                        inv.fail(
                            f"{name} ({order_id}): Stokly sale order {sale['saleOrderId']} still "
                            f"has {beyond} x {sku} to ship that SHOPLINE refunded, and no open "
                            "order_changed exception names them"
                        )
                    else:
                        counts["waiting_named_by_exception"] += beyond
        for sku, units in sorted(excess.items()):
            if units <= 0:
                continue
            counts["refunded_units_shipped"] += units
            if named is None or named[sku] >= 1:
                counts["shipped_named_by_exception"] += units
                continue
            inv.fail(
                f"{name} ({order_id}): {units} x {sku} dispatched by Stokly after SHOPLINE had "
                "refunded them, and no open order_changed exception names them"
            )
    inv.counts = dict(counts)
    return inv


def _stokly_total(sale: Mapping[str, Any]) -> Decimal:
    lines = [li for li in sale.get("items") or [] if not li.get("parentId")]
    goods = sum((_money(li.get("displayLineTotal")) for li in lines), Decimal(0))
    return goods + _money((sale.get("shipping") or {}).get("cost"))


def _refunded_share(order: Mapping[str, Any], refunded: Mapping[str, int]) -> Decimal:
    """What the units ``refunded`` (by line id) take of SHOPLINE's ``total_price``, by the rule
    of `stokline.sync.orders.translate`: each line's price and discount (its own, and its share
    of an order-level discount no line carries, spread in proportion to the lines' totals after
    their own discounts) shared between its units by quantity."""
    unit = minor_unit(str(order.get("currency") or "GBP"))
    included = order.get("taxes_included") is not False
    lines = [li for li in order.get("line_items") or [] if int(li.get("quantity") or 0) > 0]

    def value(li: Mapping[str, Any]) -> Decimal:
        amount = _money(li.get("price")) * int(li["quantity"])
        if not included:
            amount += sum((_money(t.get("price")) for t in li.get("tax_lines") or []), Decimal(0))
        return amount

    def own(li: Mapping[str, Any]) -> Decimal:
        return sum(
            (_money(d.get("amount")) for d in li.get("discount_allocations") or []), Decimal(0)
        )

    values = [max(value(li) - own(li), Decimal(0)) for li in lines]
    shipping = Decimal(0)
    for s in order.get("shipping_lines") or []:
        charged = s.get("discounted_price")
        shipping += _money(s.get("price")) - _money(
            s.get("price") if charged in (None, "") else charged
        )
    extra = Decimal(0)
    if order.get("total_discounts") not in (None, ""):
        allocated = sum((own(li) for li in lines), Decimal(0))
        extra = max(_money(order["total_discounts"]) - allocated - shipping, Decimal(0))
    spread = allocate(extra, values, unit) if lines and extra else [Decimal(0)] * len(lines)
    share = Decimal(0)
    for li, part in zip(lines, spread, strict=True):
        ordered = int(li["quantity"])
        gone = min(int(refunded.get(str(li.get("id")), 0)), ordered)
        if not gone:
            continue
        kept = ordered - gone
        weights = [Decimal(kept), Decimal(gone)]
        price_kept = allocate(_money(value(li)), weights, unit)[0] if kept else Decimal(0)
        off_kept = allocate(_money(own(li) + part), weights, unit)[0] if kept else Decimal(0)
        share += (value(li) - own(li) - part) - (price_kept - off_kept)
    return share


def check_money(snapshot: Snapshot) -> Invariant:
    """Each imported sale order's units, total and payments against SHOPLINE's, to the penny."""
    inv = Invariant("money", "every sale order's total and payments to the penny")
    counts: Counter[str] = Counter()
    slack = SECOND  # SHOPLINE stamps whole seconds
    for order in snapshot.campaign_orders():
        order_id, name = str(order["id"]), order.get("name") or order["id"]
        sales = snapshot.sale_orders_by_source().get(order_id, [])
        if len(sales) != 1:
            continue  # none, or a duplicate the orders invariant names
        sale = sales[0]
        created = _at(snapshot.saleorders_created.get(str(sale["saleOrderId"])))
        if created is None:
            counts["import_time_unknown"] += 1
            continue
        counts["sale_orders"] += 1
        sold = _sold_units(snapshot, order)
        on_order = _stokly_units(sale)
        refunds = [r for r in _refund_lines(order) if r.at is None or r.at <= created + slack]
        # The orders sync read the order before creating it: the refunds it saw are the first
        # k of those made before the sale order existed. The units on the sale order say which.
        seen: list[RefundLine] | None = None
        for k in range(len(refunds), -1, -1):
            expected = sold - _refunded_units(snapshot, order, refunds[:k])
            expected = Counter({sku: n for sku, n in expected.items() if n > 0})
            if expected == on_order:
                seen = refunds[:k]
                break
        if seen is None:
            edited = [
                r
                for r in snapshot.active_exceptions("order", order_id)
                if r.code == "order_changed" and "edited in SHOPLINE (its lines" in r.message
            ]
            if edited:
                counts["edited_after_import_reported"] += 1
                continue
            units = ", ".join(f"{k} x{v}" for k, v in sorted(on_order.items()))
            wanted = ", ".join(f"{k} x{v}" for k, v in sorted(sold.items()))
            inv.fail(
                f"{name} ({order_id}): sale order {sale['saleOrderId']} has {units}; SHOPLINE sold "
                f"{wanted} with refunds that explain no such difference"
            )
            continue
        refunded: Counter[str] = Counter()
        for r in seen:
            refunded[r.line_id] += r.quantity
        if refunded:
            counts["with_units_refunded_before_import"] += 1
        expected_total = _money(order.get("total_price")) - _refunded_share(order, refunded)
        total = _stokly_total(sale)
        if total != expected_total:
            inv.fail(
                f"{name} ({order_id}): sale order total {total}, SHOPLINE total_price "
                f"{_money(order.get('total_price'))} less {expected_total - _money(order.get('total_price'))} "
                f"refunded before import makes {expected_total}"
            )
        else:
            counts["total_to_the_penny"] += 1
        captured = sum(
            (
                _money(t.get("amount"))
                for t in order.get("_transactions") or []
                if t.get("kind") in ("sale", "capture")
                and t.get("status") == "success"
                and ((at := _at(t.get("created_at"))) is None or at <= created + slack)
            ),
            Decimal(0),
        )
        payments = sum((_money(p.get("amount")) for p in sale.get("payments") or []), Decimal(0))
        if payments != captured:
            inv.fail(
                f"{name} ({order_id}): sale order payments {payments}, SHOPLINE had captured "
                f"{captured} when it was imported"
            )
        else:
            counts["payments_to_the_penny"] += 1
    inv.counts = dict(counts)
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


# -- one Stokly item, one sellable figure -------------------------------------------------------


@dataclass(frozen=True)
class _Variant:
    variant_id: str
    inventory_item_id: str
    sku: str
    on_sale: bool
    """Its product is active: the storefront sells it."""


class _StockView:
    """Which Stokly item each SHOPLINE variant sells, and what Stokly can sell of each item at
    each SHOPLINE location, worked out from the systems' records and the mapping alone — not
    through stokline's stock code, whose output is what is being checked.

    An item is sellable when it is not deleted, holds stock (not a variable parent) and is still
    sold (``isSold`` not false). A SHOPLINE SKU names an item through an override, else by the
    match rule; SKUs the mapping never syncs name none, nor do Stokly SKUs that collide with each
    other under the match rule. Sellable at a SHOPLINE location = Σ over its Stokly locations of
    (onHand − quarantined − allocated to open sale orders) − allocations without a location −
    buffer − units of paid SHOPLINE orders not yet imported (shippable: sold less refunded), never
    below 0, whole units (DESIGN.md, "Stock arithmetic").
    """

    def __init__(self, snapshot: Snapshot, rules: StockRules) -> None:
        self.snapshot = snapshot
        self.rules = rules
        match = rules.match
        sellable_items = [
            item
            for item in snapshot.stokly_items
            if item.get("sku")
            and item.get("status") != 1
            and item.get("format") != 2
            and item.get("isSold") is not False
        ]
        index: dict[str, dict[str, Any]] = {}
        clashing: set[str] = set()
        for item in sellable_items:
            key = sku_key(str(item["sku"]), match)
            if key in index and index[key]["sku"] != item["sku"]:
                clashing.add(key)
            index.setdefault(key, item)
        self.items = {k: v for k, v in index.items() if k not in clashing}
        self.overrides = {sku_key(a, match): b for a, b in rules.overrides.items()}
        self.never = [p.casefold() for p in rules.never_sync]
        self.variants: list[tuple[_Variant, str]] = []
        """(variant, Stokly SKU) of every variant that names a sellable item."""
        self.unmatched = 0
        for product in snapshot.shopline_products:
            for v in product.get("variants") or []:
                sku = str(v.get("sku") or "")
                if not sku.strip() or not v.get("inventory_item_id"):
                    continue
                variant = _Variant(
                    str(v["id"]),
                    str(v["inventory_item_id"]),
                    sku,
                    product.get("status", "active") == "active",
                )
                target = self.stokly_sku(sku)
                if target is None:
                    self.unmatched += 1
                else:
                    self.variants.append((variant, target))

    def stokly_sku(self, shopline_sku: str) -> str | None:
        folded = shopline_sku.strip().casefold()
        if any(fnmatch.fnmatchcase(folded, p) for p in self.never):
            return None
        key = sku_key(shopline_sku, self.rules.match)
        if key in self.overrides:
            key = sku_key(self.overrides[key], self.rules.match)
        item = self.items.get(key)
        return str(item["sku"]) if item is not None else None

    def by_item(self, *, on_sale_only: bool = True) -> dict[str, list[_Variant]]:
        out: dict[str, list[_Variant]] = defaultdict(list)
        for variant, stokly_sku in self.variants:
            if variant.on_sale or not on_sale_only:
                out[stokly_sku].append(variant)
        return out

    def sellable(self) -> dict[str, dict[str, int]]:
        """Stokly SKU → SHOPLINE location → whole units Stokly can sell there, for every synced
        location whose Stokly locations all exist."""
        snapshot, rules = self.snapshot, self.rules
        location_ids = {
            str(loc.get("name") or "").strip().casefold(): str(loc.get("locationId"))
            for loc in snapshot.stokly_locations
        }
        stock: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for row in snapshot.stokly_inventory:
            key = (str(row.get("itemId")), str(row.get("locationId")))
            stock[key] += Decimal(str(row.get("onHand") or 0)) - Decimal(
                str(row.get("quarantined") or 0)
            )
        allocated: dict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
        for sale in snapshot.stokly_saleorders:
            if sale.get("stage") not in OPEN_STAGES:
                continue
            for line in sale.get("items") or []:
                left = int(line.get("quantity") or 0) - int(line.get("quantityCollected") or 0)
                if left > 0 and line.get("status") != "cancelled":
                    where = sale.get("locationId")
                    allocated[(str(line.get("referenceId")), where and str(where))] += left
        pending = self._unimported()
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for item in self.items.values():
            item_id, sku = str(item["itemId"]), str(item["sku"])
            for rule in rules.locations:
                if not rule.synced:
                    continue
                ids = [location_ids.get(n.strip().casefold()) for n in rule.stokly_locations]
                if not all(ids):
                    continue
                total = sum(
                    (stock[(item_id, i)] - allocated[(item_id, i)] for i in ids if i), Decimal(0)
                )
                total -= allocated[(item_id, None)]
                total -= rule.buffer + pending[(sku, rule.shopline_location)]
                out[sku][rule.shopline_location] = max(0, math.floor(total))
        return out

    def _unimported(self) -> Counter[tuple[str, str]]:
        """Units of paid open SHOPLINE orders no sale order is linked to yet, by (Stokly SKU,
        SHOPLINE location): the line's location, the order's, else the mapping's default."""
        snapshot = self.snapshot
        statuses = set(snapshot.import_when)
        if "paid" in statuses:
            statuses.add("partially_refunded")
        since = snapshot.taken_at - UNIMPORTED_WINDOW
        default = next((r for r in self.rules.locations if r.default), None)
        known = {r.shopline_location: r for r in self.rules.locations}
        out: Counter[tuple[str, str]] = Counter()
        for order in snapshot.shopline_orders:
            created = _at(order.get("created_at"))
            if (
                order.get("status") != "open"
                or order.get("cancelled_at")
                or order.get("financial_status") not in statuses
                or str(order["id"]) in snapshot.order_links
                or (created is not None and created < since)
            ):
                continue
            refunded: Counter[str] = Counter()
            for r in _refund_lines(order):
                refunded[r.line_id] += r.quantity
            for li in order.get("line_items") or []:
                left = int(li.get("quantity") or 0) - refunded[str(li.get("id"))]
                if li.get("fulfillable_quantity") is not None:
                    left = min(left, int(li["fulfillable_quantity"]))
                sku = self.stokly_sku(str(li.get("sku") or ""))
                if left <= 0 or sku is None:
                    continue
                where = li.get("location_id") or order.get("location_id")
                rule = known.get(str(where)) if where else None
                rule = rule or default
                if rule is not None:
                    out[(sku, rule.shopline_location)] += left
        return out


def _names_all(record: ExceptionRecord, variants: Iterable[_Variant]) -> list[_Variant]:
    """The variants an exception does not name (by id, in its payload or its message)."""
    payload = record.payload if isinstance(record.payload, dict) else {}
    named = {str(v.get("id")) for v in payload.get("variants") or [] if isinstance(v, dict)}
    return [v for v in variants if v.variant_id not in named and v.variant_id not in record.message]


def check_stock_items(snapshot: Snapshot) -> Invariant:
    """No Stokly item shown beyond its sellable figure, its variants' levels summed."""
    inv = Invariant(
        "stock_items", "no Stokly item shown beyond its sellable stock (collided variants summed)"
    )
    rules = snapshot.stock_rules
    if rules is None:
        inv.fail("the mapping's SKU and location rules were not read")
        return inv
    view = _StockView(snapshot, rules)
    sellable = view.sellable()
    levels: dict[tuple[str, str], int] = {
        (str(lv.get("inventory_item_id")), str(lv.get("location_id"))): int(
            lv.get("available") or 0
        )
        for lv in snapshot.shopline_levels
    }
    counts: Counter[str] = Counter()
    counts["variants_unmatched"] = view.unmatched
    shared = defaultdict(list)
    for record in snapshot.exceptions:
        if record.code == "sku_collision" and record.entity_kind == SHARED:
            shared[record.entity_id.casefold()].append(record)
    for stokly_sku, variants in sorted(view.by_item().items()):
        collided = len(variants) > 1
        counts["items_checked"] += 1
        counts["variants_checked"] += len(variants)
        if collided:
            counts["collided_items"] += 1
            counts["collided_variants"] += len(variants)
        for location, can in sorted(sellable.get(stokly_sku, {}).items()):
            shown = {v: max(levels.get((v.inventory_item_id, location), 0), 0) for v in variants}
            total = sum(shown.values())
            counts["levels_checked"] += 1
            if collided:
                counts["collided_levels_checked"] += 1
                if sum(1 for n in shown.values() if n > 0) > 1:
                    counts["collided_levels_on_several_variants"] += 1
            if total > can:
                counts["violations"] += 1
                counts["units_beyond_sellable"] += total - can
                on = ", ".join(f"{v.sku} ({v.variant_id}) {n}" for v, n in shown.items())
                inv.fail(
                    f"Stokly item {stokly_sku} at {location}: SHOPLINE shows {total} on "
                    f"{len(variants)} variant(s) ({on}), Stokly can sell {can}"
                )
            elif total < can:
                counts["below_sellable"] += 1
        if not collided:
            continue
        records = shared.get(stokly_sku.casefold(), [])
        skus = ", ".join(f"{v.sku} ({v.variant_id})" for v in variants)
        if len(records) != 1:
            inv.fail(
                f"Stokly item {stokly_sku} is sold by {len(variants)} SHOPLINE variants ({skus})"
                f" and has {len(records)} open sku_collision exception(s), not one"
            )
            continue
        missing = _names_all(records[0], variants)
        if missing:
            names = ", ".join(f"{v.sku} ({v.variant_id})" for v in missing)
            inv.fail(
                f"Stokly item {stokly_sku}: its sku_collision exception #{records[0].id} does not"
                f" name {names}"
            )
        else:
            counts["collisions_reported"] += 1
    inv.counts = {
        key: counts[key]
        for key in (
            "items_checked",
            "levels_checked",
            "collided_items",
            "collided_variants",
            "collided_levels_checked",
            "collided_levels_on_several_variants",
            "collisions_reported",
            "violations",
            "units_beyond_sellable",
            "below_sellable",
            "variants_unmatched",
        )
    }
    if not counts["levels_checked"]:
        inv.fail("no Stokly item's level was checked")
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
        check_refunds_not_shipped(snapshot),
        check_money(snapshot),
        check_shipments(snapshot, causes),
        check_stock(snapshot),
        check_stock_items(snapshot),
        check_ledger(snapshot),
        check_inbox(snapshot, causes),
        check_exceptions(snapshot, explained),
    ]
