"""What the Stokly sandbox does, independent of HTTP: stock movements and sale orders.

The routes, the control API and the invented contracts all change stock through these functions,
so every movement is validated the same way and lands in the change feed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from stokline.sandbox.stokly.errors import ApiError
from stokline.sandbox.stokly.state import UNASSIGNED, StoklyState

__all__ = [
    "adjust_stock",
    "allocations",
    "collect_items",
    "create_saleorder",
    "inventory_view",
    "line_view",
    "saleorder_view",
    "set_quarantine",
    "whole_number",
]

OPEN_STAGES = ("order",)


# -- views ---------------------------------------------------------------------------------------


def inventory_view(state: StoklyState, rec: dict[str, Any]) -> dict[str, Any]:
    """An inventory record as `GET /v1/inventory-records` returns it [C]."""
    item = state.items.get(rec["itemId"]) or {}
    location = state.locations.get(rec["locationId"]) or {}
    if rec["binId"] == UNASSIGNED:
        bin_name = "Unassigned"
    else:
        bin_name = (state.bins.get(rec["binId"]) or {}).get("name")
    return {
        "inventoryRecordId": rec["key"],
        "itemId": rec["itemId"],
        "itemSku": item.get("sku"),
        "itemName": item.get("name"),
        "locationId": rec["locationId"],
        "locationName": location.get("name"),
        "binId": rec["binId"],
        "binName": bin_name,
        "onHand": rec["onHand"],
        "quarantined": rec["quarantined"],
        "onOrder": item.get("onOrder", 0),
    }


def line_view(state: StoklyState, line: dict[str, Any]) -> dict[str, Any]:
    """A sale order line as `GET /v2/saleorders/{id}/items` returns it [C]."""
    return dict(line)


def saleorder_view(state: StoklyState, order: dict[str, Any]) -> dict[str, Any]:
    """A sale order as read back [C]: shipping flattened, line statuses summarised."""
    shipping = order.get("shipping") or {}
    name = shipping.get("name") or {}
    address = shipping.get("address") or {}
    channel = state.channels.get(order.get("sourceId") or "") or {}
    view = {key: value for key, value in order.items() if key not in ("shipping", "items")}
    view.update(
        {
            "itemStatuses": sorted({line["status"] for line in order["items"]}),
            "channelName": channel.get("name"),
            "shippingForename": name.get("forename"),
            "shippingSurname": name.get("surname"),
            "shippingAddressLine1": address.get("line1"),
            "shippingAddressLine2": address.get("line2"),
            "shippingAddressCity": address.get("city"),
            "shippingAddressRegion": address.get("region"),
            "shippingAddressCountry": address.get("country"),
            "shippingAddressPostcode": address.get("postcode"),
            "shippingOption": shipping.get("option"),
            "shippingCost": shipping.get("cost", 0),
            "shippingTax": shipping.get("tax", 0),
            "itemCount": sum(line["quantity"] for line in order["items"]),
        }
    )
    return view


# -- stock ---------------------------------------------------------------------------------------


def _require_location(state: StoklyState, location_id: str) -> dict[str, Any]:
    location = state.locations.get(location_id)
    if location is None:
        raise ApiError(422, f"Location {location_id} does not exist")
    return location


def _require_bin(state: StoklyState, location_id: str, bin_id: str | None) -> str:
    if not bin_id or bin_id == UNASSIGNED:
        return UNASSIGNED
    found = state.bins.get(bin_id)
    if found is None or found["locationId"] != location_id:
        raise ApiError(422, f"Bin {bin_id} does not exist in location {location_id}")
    return bin_id


def _movement_event(
    state: StoklyState, rec: dict[str, Any], delta: int, reason: str, reference: str | None
) -> None:
    item = state.items.get(rec["itemId"]) or {}
    state.emit(
        "stock.movement",
        {
            "itemId": rec["itemId"],
            "itemSku": item.get("sku"),
            "locationId": rec["locationId"],
            "binId": rec["binId"],
            "delta": delta,
            "onHand": rec["onHand"],
            "quarantined": rec["quarantined"],
            "reason": reason,
            "reference": reference,
        },
    )


def adjust_stock(
    state: StoklyState,
    *,
    location_id: str,
    bin_id: str | None,
    reason: str,
    lines: list[tuple[str, int]],
    kind: str = "adjustment",
) -> dict[str, Any]:
    """Apply signed deltas atomically: all lines or none. A result below zero is refused (422)."""
    _require_location(state, location_id)
    bin_key = _require_bin(state, location_id, bin_id)
    totals: dict[str, int] = defaultdict(int)
    for item_id, delta in lines:
        item = state.items.get(item_id)
        if item is None:
            raise ApiError(422, f"Item {item_id} does not exist")
        if item["format"] == 2:
            raise ApiError(422, f"{item['sku']} is a variable item; stock is held by its variants")
        totals[item_id] += delta
    records = []
    for item_id, delta in totals.items():
        rec = dict(state.inventory_record(item_id, location_id, bin_key))
        if rec["onHand"] + delta < 0:
            sku = state.items.get(item_id)["sku"]
            raise ApiError(
                422,
                f"Adjustment would take {sku} below zero at this location/bin "
                f"(onHand {rec['onHand']}, delta {delta})",
            )
        rec["onHand"] += delta
        records.append((rec, delta))
    adjustment_id = state.new_id()
    with state.store.transaction():
        for rec, delta in records:
            state.save_inventory(rec)
            if delta:
                _movement_event(state, rec, delta, kind, reason)
    return {"id": adjustment_id, "lines": len(records)}


def set_quarantine(
    state: StoklyState, *, location_id: str, bin_id: str | None, lines: list[tuple[str, int]]
) -> list[dict[str, Any]]:
    """Set how many units on hand are quarantined (not sellable), per item; all lines or none."""
    _require_location(state, location_id)
    bin_key = _require_bin(state, location_id, bin_id)
    records = []
    for item_id, quantity in lines:
        if state.items.get(item_id) is None:
            raise ApiError(422, f"Item {item_id} does not exist")
        rec = dict(state.inventory_record(item_id, location_id, bin_key))
        if not 0 <= quantity <= rec["onHand"]:
            raise ApiError(422, f"quarantined must be between 0 and onHand ({rec['onHand']})")
        rec["quarantined"] = quantity
        records.append(rec)
    with state.store.transaction():
        for rec in records:
            state.save_inventory(rec)
            _movement_event(state, rec, 0, "quarantine", None)
    return records


def _stock_keys(state: StoklyState, item_id: str, location_id: str) -> list[str]:
    """Stock rows of an item at a location, in picking order: unassigned first, then bins."""
    keys = [k for k in state.inventory_by_item.get(item_id, ()) if k.split("|")[1] == location_id]
    return sorted(keys, key=lambda key: (state.inventory.get(key)["binId"] != UNASSIGNED, key))


def _check_available(state: StoklyState, item_id: str, location_id: str, quantity: int) -> None:
    # Quarantined units are on hand but cannot be picked.
    rows = (state.inventory.get(k) for k in _stock_keys(state, item_id, location_id))
    available = sum(max(row["onHand"] - row["quarantined"], 0) for row in rows)
    if available < quantity:
        sku = (state.items.get(item_id) or {}).get("sku")
        location = (state.locations.get(location_id) or {}).get("name")
        raise ApiError(
            422,
            f"Insufficient stock of {sku} at {location}: {available} pickable, {quantity} needed",
        )


def _deduct(
    state: StoklyState, item_id: str, location_id: str, quantity: int, reference: str
) -> None:
    """Take `quantity` (already checked available) of an item from a location."""
    keys = _stock_keys(state, item_id, location_id)
    left = quantity
    for key in keys:
        if left == 0:
            break
        rec = dict(state.inventory.get(key))
        take = min(max(rec["onHand"] - rec["quarantined"], 0), left)
        if take:
            rec["onHand"] -= take
            left -= take
            state.save_inventory(rec)
            _movement_event(state, rec, -take, "collection", reference)


def allocations(state: StoklyState) -> list[dict[str, Any]]:
    """Quantities reserved by open sale orders, per (item, location) [I].

    An open order's lines allocate what is not yet collected, against the order's `locationId`
    [I] when it has one, otherwise against no location (``locationId: null``).
    """
    totals: dict[tuple[str, str | None], int] = defaultdict(int)
    for order in state.saleorders:
        if order.get("stage") not in OPEN_STAGES:
            continue
        for line in order["items"]:
            outstanding = line["quantity"] - line.get("quantityCollected", 0)
            if outstanding > 0 and line.get("status") != "cancelled":
                totals[(line["referenceId"], order.get("locationId"))] += outstanding
    rows = []
    for (item_id, location_id), allocated in totals.items():
        item = state.items.get(item_id) or {}
        location = state.locations.get(location_id or "") or {}
        rows.append(
            {
                "allocationId": f"{item_id}|{location_id or ''}",
                "itemId": item_id,
                "itemSku": item.get("sku"),
                "locationId": location_id,
                "locationName": location.get("name"),
                "allocated": allocated,
            }
        )
    return rows


# -- sale orders ---------------------------------------------------------------------------------

_MONEY_FIELDS = (
    "displayPrice",
    "displayTax",
    "displayDiscount",
    "displayLinePrice",
    "displayLineTax",
    "displayLineDiscount",
    "displayLineTotal",
)


def whole_number(value: Any, where: str, *, minimum: int = 1) -> int:
    """A count sent as a JSON number: ``2`` or ``2.0`` (clients that send Decimals), not ``2.5``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        raise ApiError(400, f"{where} must be {kind}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"{where} must be a number")
    return float(value)


def create_saleorder(state: StoklyState, body: dict[str, Any]) -> dict[str, Any]:
    """Validate and store a v2 sale order. There is no idempotency key, as in Stokly [C]."""
    if not isinstance(body, dict):
        raise ApiError(400, "Body must be a JSON object")
    currency = body.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise ApiError(400, "currency is required (ISO 4217 code)")
    stage = body.get("stage", "order")
    if stage != "order":
        raise ApiError(400, f"stage must be 'order' on create, not {stage!r}")
    source_id = body.get("sourceId")
    if source_id is not None and state.channels.get(source_id) is None:
        raise ApiError(422, f"sourceId {source_id} is not a channel of this account")
    customer = body.get("customer") or {}
    customer_id = customer.get("customerId") if isinstance(customer, dict) else None
    if customer_id is not None and state.customers.get(customer_id) is None:
        raise ApiError(422, f"Customer {customer_id} does not exist")
    location_id = body.get("locationId")
    if location_id is not None:
        _require_location(state, location_id)
    raw_items = body.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise ApiError(400, "items must be a non-empty list")
    lines = []
    for index, raw in enumerate(raw_items):
        where = f"items[{index}]"
        if not isinstance(raw, dict):
            raise ApiError(400, f"{where} must be an object")
        reference_id = raw.get("referenceId")
        if not reference_id:
            raise ApiError(400, f"{where}.referenceId is required")
        item = state.items.get(reference_id)
        if item is None or item.get("status") == 1:
            raise ApiError(422, f"{where}.referenceId {reference_id} is not a known item")
        if item.get("format") == 2:
            raise ApiError(
                422, f"{where}: {item['sku']} is a variable item; order one of its variants"
            )
        quantity = whole_number(raw.get("quantity"), f"{where}.quantity")
        money = {field: _number(raw.get(field, 0), f"{where}.{field}") for field in _MONEY_FIELDS}
        lines.append(
            {
                "lineId": state.new_id(),
                "type": raw.get("type", "item"),
                "referenceId": reference_id,
                "itemSku": item["sku"],
                "itemName": item["name"],
                "quantity": quantity,
                "quantityCollected": 0,
                "quantityDispatched": 0,
                "status": "unprocessed",
                "parentId": None,
                **money,
                "price": round(money["displayPrice"] - money["displayTax"], 2),
                "tax": money["displayTax"],
                "fulfilmentType": raw.get("fulfilmentType", "delivery"),
            }
        )
    payments = body.get("payments") or []
    if not isinstance(payments, list):
        raise ApiError(400, "payments must be a list")
    for index, payment in enumerate(payments):
        if not isinstance(payment, dict) or not isinstance(payment.get("method"), int):
            raise ApiError(400, f"payments[{index}].method must be an integer payment method id")
        _number(payment.get("amount"), f"payments[{index}].amount")
    shipping = body.get("shipping") or {}
    if not isinstance(shipping, dict):
        raise ApiError(400, "shipping must be an object")
    now = state.now()
    order_id = state.new_id()
    order = {
        "saleOrderId": order_id,
        "niceId": state.nice_id("saleorder"),
        "stage": "order",
        "currency": currency,
        "createdAt": body.get("createdAt") or now,
        "updatedAt": now,
        "sourceType": body.get("sourceType", "other"),
        "sourceId": source_id,
        "sourceReferenceId": body.get("sourceReferenceId"),
        "customerReference": body.get("customerReference"),
        "customerId": customer_id,
        "tags": list(body.get("tags") or []),
        "notes": body.get("notes"),
        "carrierReference": body.get("carrierReference"),
        "locationId": location_id,
        "payments": payments,
        "shipping": shipping,
        "items": lines,
    }
    with state.store.transaction():
        state.saleorders.add(order_id, order)
        state.emit(
            "saleorder.created",
            {
                "saleOrderId": order_id,
                "sourceId": source_id,
                "sourceReferenceId": order["sourceReferenceId"],
            },
        )
    return order


def require_saleorder(state: StoklyState, order_id: str) -> dict[str, Any]:
    order = state.saleorders.get(order_id)
    if order is None:
        raise ApiError(404, f"Sale order {order_id} not found")
    return order


def refresh_line_status(line: dict[str, Any]) -> None:
    """Derive a line's status from its quantities (cancelled lines stay cancelled)."""
    if line["status"] == "cancelled":
        return
    if line.get("quantityDispatched", 0) >= line["quantity"]:
        line["status"] = "dispatched"
    elif line.get("quantityDispatched", 0) > 0:
        line["status"] = "partially_dispatched"
    elif line.get("quantityCollected", 0) >= line["quantity"]:
        line["status"] = "collected"
    elif line.get("quantityCollected", 0) > 0:
        line["status"] = "partially_collected"
    else:
        line["status"] = "unprocessed"


def collect_items(
    state: StoklyState, order_id: str, location_id: str, requested: list[dict[str, Any]]
) -> dict[str, Any]:
    """Fulfil lines from a location: stock leaves the location, the allocation is released."""
    order = require_saleorder(state, order_id)
    if order["stage"] not in OPEN_STAGES:
        raise ApiError(422, f"Sale order {order_id} is {order['stage']}; nothing can be collected")
    _require_location(state, location_id)
    if not requested:
        raise ApiError(400, "items must be a non-empty list")
    order = {**order, "items": [dict(line) for line in order["items"]]}
    by_line = {line["lineId"]: line for line in order["items"]}
    wanted: dict[str, int] = defaultdict(int)
    for index, raw in enumerate(requested):
        line = by_line.get(raw.get("lineId"))
        if line is None:
            raise ApiError(422, f"items[{index}].lineId {raw.get('lineId')} is not on this order")
        quantity = whole_number(raw.get("quantity"), f"items[{index}].quantity")
        wanted[line["lineId"]] += quantity
    needed: dict[str, int] = defaultdict(int)
    for line_id, quantity in wanted.items():
        line = by_line[line_id]
        outstanding = line["quantity"] - line["quantityCollected"]
        if line["status"] == "cancelled" or quantity > outstanding:
            raise ApiError(
                422, f"Line {line_id} has {max(outstanding, 0)} left to collect, not {quantity}"
            )
        needed[line["referenceId"]] += quantity
    for item_id, quantity in needed.items():
        _check_available(state, item_id, location_id, quantity)
    with state.store.transaction():
        for item_id, quantity in needed.items():
            _deduct(state, item_id, location_id, quantity, f"saleorder:{order['niceId']}")
        for line_id, quantity in wanted.items():
            by_line[line_id]["quantityCollected"] += quantity
            by_line[line_id]["collectedFromLocationId"] = location_id
            refresh_line_status(by_line[line_id])
        order["updatedAt"] = state.now()
        state.saleorders.save(order_id, order)
    return order
