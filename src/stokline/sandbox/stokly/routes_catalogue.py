"""Confirmed [C] resources other than sale orders: items, locations, stock, channels, customers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from stokline.sandbox.stokly.app import Authorized
from stokline.sandbox.stokly.domain import adjust_stock, inventory_view
from stokline.sandbox.stokly.errors import ApiError
from stokline.sandbox.stokly.listing import Listing, page_envelope
from stokline.sandbox.stokly.state import StoklyState

__all__ = ["router"]

router = APIRouter()

_ITEM_FIELDS = (
    "name",
    "sku",
    "format",
    "status",
    "barcodes",
    "typeId",
    "typeName",
    "tags",
    "attributes",
    "taxClassId",
    "salePrice",
    "costPrice",
    "unitsOfMeasure",
    "images",
    "description",
    "harmonyCode",
    "countryOfOrigin",
    "isSold",
    "weight",
    "onOrder",
)


# -- items ---------------------------------------------------------------------------------------


def _require_item(state: StoklyState, item_id: str) -> dict[str, Any]:
    item = state.items.get(item_id)
    if item is None:
        raise ApiError(404, f"Item {item_id} not found")
    return item


def _validate_item_fields(state: StoklyState, body: dict[str, Any], item_id: str | None) -> None:
    unknown = sorted(set(body) - set(_ITEM_FIELDS) - {"variantItems", "variableAttributes"})
    if unknown:
        raise ApiError(400, f"Unknown item fields: {', '.join(unknown)}")
    if "sku" in body:
        sku = body["sku"]
        if not isinstance(sku, str) or not sku.strip():
            raise ApiError(400, "sku must be a non-empty string")
        owner = state.item_by_sku.get(sku)
        if owner is not None and owner != item_id:
            raise ApiError(409, f"An item with SKU {sku} already exists", itemId=owner)
    if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
        raise ApiError(400, "name must be a non-empty string")
    if "format" in body and body["format"] not in (0, 1, 2):
        raise ApiError(400, "format must be 0 (simple), 1 (composite) or 2 (variable)")
    if "status" in body and body["status"] not in (0, 1):
        raise ApiError(400, "status must be 0 (active) or 1 (deleted)")
    price = body.get("salePrice")
    if price is not None and (
        not isinstance(price, dict) or not isinstance(price.get("amount"), int | float)
    ):
        raise ApiError(400, "salePrice must be {amount, currency}")
    if "barcodes" in body and not isinstance(body["barcodes"], list):
        raise ApiError(400, "barcodes must be a list of strings")


def new_item(state: StoklyState, body: dict[str, Any], *, item_format: int = 0) -> dict[str, Any]:
    """An item document with Stokly's defaults, from a create body (validated by the caller)."""
    now = state.now()
    item_id = state.new_id()
    images = list(body.get("images") or [])
    return {
        "itemId": item_id,
        "niceId": state.nice_id("item"),
        "sku": body["sku"],
        "name": body["name"],
        "format": body.get("format", item_format),
        "status": body.get("status", 0),
        "barcodes": list(body.get("barcodes") or []),
        "typeId": body.get("typeId"),
        "typeName": body.get("typeName"),
        "tags": list(body.get("tags") or []),
        "attributes": list(body.get("attributes") or []),
        "taxClassId": body.get("taxClassId"),
        "salePrice": body.get("salePrice"),
        "costPrice": body.get("costPrice"),
        "unitsOfMeasure": list(body.get("unitsOfMeasure") or []),
        "images": images,
        "imageCount": len(images),
        "description": body.get("description"),
        "harmonyCode": body.get("harmonyCode"),
        "countryOfOrigin": body.get("countryOfOrigin"),
        "isSold": body.get("isSold", True),
        "weight": body.get("weight"),
        "onOrder": body.get("onOrder", 0),
        "variableItemId": None,
        "createdAt": now,
        "updatedAt": now,
    }


@router.get("/v0/items", tags=["items"], summary="List items")
def list_items(query: Listing, ctx: Authorized) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        skus = query.equality_terms().get("sku")
        if skus is not None:
            # Live SKUs come from the index; deleted items keep their SKU but leave the index.
            ids = {state.item_by_sku.get(sku) for sku in skus} - {None}
            rows = [state.items.get(item_id) for item_id in ids]
            rows += [i for i in state.items if i.get("status") == 1 and i["sku"] in skus]
            rows.sort(key=lambda item: item["niceId"])
        else:
            rows = list(state.items)
        return page_envelope(rows, query)


@router.post("/v0/items", tags=["items"], summary="Create an item")
def create_item(
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "format": 0,
                    "name": "Trail stove",
                    "sku": "STOVE-1",
                    "barcodes": ["5012345678900"],
                    "taxClassId": "standard",
                    "salePrice": {"amount": 49.99, "currency": "GBP"},
                }
            ],
        ),
    ],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        for required in ("name", "sku"):
            if required not in body:
                raise ApiError(400, f"{required} is required")
        _validate_item_fields(state, body, None)
        if body.get("format") == 2:
            raise ApiError(400, "Create variable items with POST /v0/variable-items")
        item = new_item(state, body)
        state.save_item(item)
        state.emit("item.created", {"itemId": item["itemId"], "sku": item["sku"]})
        return {"data": {"id": item["itemId"]}}


@router.get("/v0/items/{item_id}", tags=["items"], summary="Get an item")
def get_item(item_id: str, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return {"data": _require_item(ctx.state, item_id)}


@router.patch("/v0/items/{item_id}", tags=["items"], summary="Update an item")
def patch_item(
    item_id: str,
    body: Annotated[
        dict[str, Any],
        Body(examples=[{"salePrice": {"amount": 44.99, "currency": "GBP"}}]),
    ],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        item = dict(_require_item(state, item_id))
        _validate_item_fields(state, body, item_id)
        if "format" in body and body["format"] != item["format"]:
            raise ApiError(400, "An item's format cannot be changed")
        item.update({key: body[key] for key in body if key in _ITEM_FIELDS})
        item["imageCount"] = len(item.get("images") or [])
        item["updatedAt"] = state.now()
        state.save_item(item)
        state.emit("item.updated", {"itemId": item_id, "sku": item["sku"]})
        return {"data": {"id": item_id}}


@router.delete("/v0/items/{item_id}", tags=["items"], summary="Delete an item (status 1)")
def delete_item(item_id: str, ctx: Authorized) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        item = dict(_require_item(state, item_id))
        item["status"] = 1
        item["updatedAt"] = state.now()
        state.save_item(item)
        state.emit("item.deleted", {"itemId": item_id, "sku": item["sku"]})
        return {"data": {"id": item_id}}


@router.get("/v0/items/{item_id}/children", tags=["items"], summary="Variants of an item")
def item_children(item_id: str, query: Listing, ctx: Authorized) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        parent = _require_item(state, item_id)
        children = [state.items.get(child) for child in parent.get("variantItems") or []]
        return page_envelope([child for child in children if child], query)


@router.get("/v0/items/{item_id}/barcodes", tags=["items"], summary="Barcodes of an item")
def item_barcodes(item_id: str, query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        item = _require_item(ctx.state, item_id)
        return page_envelope(_barcode_rows(item), query)


def _barcode_rows(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "itemBarcodeId": f"{item['itemId']}|{barcode}",
            "itemId": item["itemId"],
            "sku": item["sku"],
            "barcode": barcode,
        }
        for barcode in item.get("barcodes") or []
    ]


@router.get("/v0/item-barcodes", tags=["items"], summary="Barcodes of all items")
def list_item_barcodes(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        rows = [
            row
            for item in ctx.state.items
            if item.get("status") != 1
            for row in _barcode_rows(item)
        ]
        return page_envelope(rows, query)


# -- variable items ------------------------------------------------------------------------------


@router.get("/v0/variable-items", tags=["items"], summary="List variable items")
def list_variable_items(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return page_envelope([i for i in ctx.state.items if i["format"] == 2], query)


@router.get("/v0/variable-items/{item_id}", tags=["items"], summary="Get a variable item")
def get_variable_item(item_id: str, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        item = _require_item(ctx.state, item_id)
        if item["format"] != 2:
            raise ApiError(404, f"Variable item {item_id} not found")
        return {"data": item}


def _check_variants(state: StoklyState, variants: Any, parent_id: str | None) -> list[str]:
    if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
        raise ApiError(400, "variantItems must be a list of item ids")
    for child_id in variants:
        child = state.items.get(child_id)
        if child is None:
            raise ApiError(422, f"Variant item {child_id} does not exist")
        if child["format"] != 0:
            raise ApiError(422, f"Variant item {child_id} is not a simple item")
        owner = child.get("variableItemId")
        if owner and owner != parent_id:
            raise ApiError(422, f"Variant item {child_id} already belongs to variable item {owner}")
    return variants


def _link_variants(state: StoklyState, parent: dict[str, Any], old: list[str]) -> None:
    for child_id in set(old) - set(parent["variantItems"]):
        child = state.items.get(child_id)
        if child is not None:
            state.save_item({**child, "variableItemId": None})
    for child_id in parent["variantItems"]:
        state.save_item({**state.items.get(child_id), "variableItemId": parent["itemId"]})


@router.post("/v0/variable-items", tags=["items"], summary="Create a variable item")
def create_variable_item(
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "name": "Trail tent",
                    "sku": "TENT",
                    "variableAttributes": [{"name": "Colour", "values": ["Green", "Blue"]}],
                    "variantItems": ["<child itemId>"],
                }
            ],
        ),
    ],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        for required in ("name", "sku"):
            if required not in body:
                raise ApiError(400, f"{required} is required")
        _validate_item_fields(state, body, None)
        variants = _check_variants(state, body.get("variantItems", []), None)
        item = new_item(state, {**body, "format": 2})
        item["variantItems"] = variants
        item["variableAttributes"] = list(body.get("variableAttributes") or [])
        with state.store.transaction():
            state.save_item(item)
            _link_variants(state, item, [])
            state.emit("item.created", {"itemId": item["itemId"], "sku": item["sku"]})
        return {"data": {"id": item["itemId"]}}


@router.patch("/v0/variable-items/{item_id}", tags=["items"], summary="Update a variable item")
def patch_variable_item(
    item_id: str,
    body: Annotated[dict[str, Any], Body(examples=[{"variantItems": ["<child itemId>"]}])],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        item = dict(_require_item(state, item_id))
        if item["format"] != 2:
            raise ApiError(404, f"Variable item {item_id} not found")
        _validate_item_fields(state, body, item_id)
        old = list(item.get("variantItems") or [])
        if "variantItems" in body:
            item["variantItems"] = _check_variants(state, body["variantItems"], item_id)
        if "variableAttributes" in body:
            item["variableAttributes"] = list(body["variableAttributes"] or [])
        item.update({k: body[k] for k in body if k in _ITEM_FIELDS and k != "format"})
        item["updatedAt"] = state.now()
        with state.store.transaction():
            state.save_item(item)
            _link_variants(state, item, old)
            state.emit("item.updated", {"itemId": item_id, "sku": item["sku"]})
        return {"data": {"id": item_id}}


# -- locations and bins --------------------------------------------------------------------------


def _require_location(state: StoklyState, location_id: str) -> dict[str, Any]:
    location = state.locations.get(location_id)
    if location is None:
        raise ApiError(404, f"Location {location_id} not found")
    return location


@router.get("/v0/locations", tags=["locations"], summary="List locations")
def list_locations(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return page_envelope(list(ctx.state.locations), query)


@router.post("/v0/locations", tags=["locations"], summary="Create a location")
def create_location(
    body: Annotated[dict[str, Any], Body(examples=[{"name": "Leeds DC", "status": 0}])],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name is required")
        location = new_location(state, name, address=body.get("address"))
        location["status"] = body.get("status", 0)
        with state.store.transaction():
            state.locations.add(location["locationId"], location)
            default_bin = new_bin(state, location["locationId"], "Default", default=True)
            state.bins.add(default_bin["binId"], default_bin)
        return {"data": {"id": location["locationId"]}}


def new_location(
    state: StoklyState, name: str, *, location_id: str | None = None, address: Any = None
) -> dict[str, Any]:
    """A location document."""
    now = state.now()
    return {
        "locationId": location_id or state.new_id(),
        "niceId": state.nice_id("location"),
        "name": name,
        "status": 0,
        "address": address,
        "createdAt": now,
        "updatedAt": now,
    }


def new_bin(state: StoklyState, location_id: str, name: str, *, default: bool) -> dict[str, Any]:
    """A bin document; each location has one default bin."""
    return {
        "binId": state.new_id(),
        "locationId": location_id,
        "name": name,
        "default": default,
        "status": 0,
        "createdAt": state.now(),
    }


@router.get("/v0/locations/{location_id}", tags=["locations"], summary="Get a location")
def get_location(location_id: str, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return {"data": _require_location(ctx.state, location_id)}


@router.patch("/v0/locations/{location_id}", tags=["locations"], summary="Update a location")
def patch_location(
    location_id: str,
    body: Annotated[dict[str, Any], Body(examples=[{"name": "Leeds DC", "status": 0}])],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        location = dict(_require_location(state, location_id))
        unknown = sorted(set(body) - {"name", "status", "address"})
        if unknown:
            raise ApiError(400, f"Unknown location fields: {', '.join(unknown)}")
        if "status" in body and body["status"] not in (0, 1):
            raise ApiError(400, "status must be 0 (active) or 1 (inactive)")
        location.update(body)
        location["updatedAt"] = state.now()
        state.locations.save(location_id, location)
        return {"data": {"id": location_id}}


@router.get("/v0/locations/{location_id}/bins", tags=["locations"], summary="Bins of a location")
def list_bins(location_id: str, query: Listing, ctx: Authorized) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        _require_location(state, location_id)
        return page_envelope([b for b in state.bins if b["locationId"] == location_id], query)


# -- inventory -----------------------------------------------------------------------------------


@router.get("/v1/inventory-records", tags=["inventory"], summary="Stock per item × location × bin")
def list_inventory_records(query: Listing, ctx: Authorized) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        terms = query.equality_terms()
        keys: list[str] | None = None
        if "itemId" in terms:
            keys = [k for i in terms["itemId"] for k in state.inventory_by_item.get(i, ())]
        elif "locationId" in terms:
            keys = [k for i in terms["locationId"] for k in state.inventory_by_location.get(i, ())]
        elif "itemSku" in terms:
            ids = (state.item_by_sku.get(sku) for sku in terms["itemSku"])
            keys = [k for i in ids if i for k in state.inventory_by_item.get(i, ())]
        if keys is None:
            records = list(state.inventory)
        else:
            order = {key: n for n, key in enumerate(state.inventory.docs)}
            records = sorted(
                (state.inventory.get(k) for k in set(keys)), key=lambda r: order[r["key"]]
            )
        return page_envelope((inventory_view(state, rec) for rec in records), query)


class AdjustmentLine(BaseModel):
    itemId: str
    quantity: int = Field(description="Signed delta: positive adds stock, negative removes it.")


class AdjustmentRequest(BaseModel):
    """Body of `POST /v1/adjustments` [C]: signed deltas at one location (and bin)."""

    locationId: str
    binId: str | None = Field(None, description="A bin id, or UNASSIGNED/omitted.")
    reason: str = "adjustment"
    items: list[AdjustmentLine] = Field(min_length=1, max_length=1000)


@router.post("/v1/adjustments", tags=["inventory"], summary="Adjust stock by signed deltas")
def create_adjustment(body: AdjustmentRequest, ctx: Authorized) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        result = adjust_stock(
            state,
            location_id=body.locationId,
            bin_id=body.binId,
            reason=body.reason,
            lines=[(line.itemId, line.quantity) for line in body.items],
        )
        return {"data": {"id": result["id"]}}


# -- channels and listings -----------------------------------------------------------------------


def require_channel(state: StoklyState, channel_id: str) -> dict[str, Any]:
    channel = state.channels.get(channel_id)
    if channel is None:
        raise ApiError(404, f"Channel {channel_id} not found")
    return channel


@router.get("/v0/channels", tags=["channels"], summary="List channels")
def list_channels(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return page_envelope(list(ctx.state.channels), query)


@router.get("/v0/channels/{channel_id}", tags=["channels"], summary="Get a channel")
def get_channel(channel_id: str, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return {"data": require_channel(ctx.state, channel_id)}


@router.get("/v0/channels/{channel_id}/listings", tags=["channels"], summary="Listings")
def list_listings(channel_id: str, query: Listing, ctx: Authorized) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        require_channel(state, channel_id)
        return page_envelope([x for x in state.listings if x["channelId"] == channel_id], query)


@router.get("/v0/listings/{listing_id}", tags=["channels"], summary="Get a listing")
def get_listing(listing_id: str, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        listing = ctx.state.listings.get(listing_id)
        if listing is None:
            raise ApiError(404, f"Listing {listing_id} not found")
        return {"data": listing}


@router.patch("/v0/listings/{listing_id}", tags=["channels"], summary="Update a listing")
def patch_listing(
    listing_id: str,
    body: Annotated[dict[str, Any], Body(examples=[{"referenceId": "<remote variant id>"}])],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        listing = state.listings.get(listing_id)
        if listing is None:
            raise ApiError(404, f"Listing {listing_id} not found")
        unknown = sorted(set(body) - {"referenceId", "dataSynchronised", "inventorySynchronised"})
        if unknown:
            raise ApiError(400, f"Unknown listing fields: {', '.join(unknown)}")
        state.listings.save(listing_id, {**listing, **body})
        return {"data": {"id": listing_id}}


# -- customers -----------------------------------------------------------------------------------


def _require_customer(state: StoklyState, customer_id: str) -> dict[str, Any]:
    customer = state.customers.get(customer_id)
    if customer is None:
        raise ApiError(404, f"Customer {customer_id} not found")
    return customer


def new_customer(state: StoklyState, body: dict[str, Any]) -> dict[str, Any]:
    """A customer document from a create body (validated by the caller)."""
    name = body.get("name") or {}
    full_name = body.get("fullName") or " ".join(
        part for part in (name.get("forename"), name.get("surname")) if part
    )
    now = state.now()
    return {
        "customerId": state.new_id(),
        "niceId": state.nice_id("customer"),
        "type": body.get("type", 1),
        "name": {"forename": name.get("forename"), "surname": name.get("surname")},
        "fullName": full_name or None,
        "email": body.get("email"),
        "phone": body.get("phone"),
        "billingAddress": body.get("billingAddress"),
        "shippingAddresses": list(body.get("shippingAddresses") or []),
        "tags": list(body.get("tags") or []),
        "createdAt": now,
        "updatedAt": now,
    }


def _validate_customer(body: dict[str, Any]) -> None:
    unknown = sorted(
        set(body)
        - {"name", "fullName", "type", "email", "phone", "billingAddress", "shippingAddresses"}
        - {"tags"}
    )
    if unknown:
        raise ApiError(400, f"Unknown customer fields: {', '.join(unknown)}")
    if "name" in body and not isinstance(body["name"], dict):
        raise ApiError(400, "name must be {forename, surname}")
    email = body.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise ApiError(400, f"email {email!r} is not an email address")


@router.get("/v0/customers", tags=["customers"], summary="List customers")
def list_customers(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return page_envelope(list(ctx.state.customers), query)


@router.post("/v0/customers", tags=["customers"], summary="Create a customer")
def create_customer(
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "name": {"forename": "Ada", "surname": "Lovelace"},
                    "type": 1,
                    "email": "ada@example.com",
                    "phone": "+447700900001",
                }
            ],
        ),
    ],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        _validate_customer(body)
        if not body.get("email") and not body.get("phone") and not body.get("name"):
            raise ApiError(400, "A customer needs at least a name, an email or a phone")
        customer = new_customer(state, body)
        state.customers.add(customer["customerId"], customer)
        return {"data": {"id": customer["customerId"]}}


@router.get("/v0/customers/{customer_id}", tags=["customers"], summary="Get a customer")
def get_customer(customer_id: str, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return {"data": _require_customer(ctx.state, customer_id)}


@router.patch("/v0/customers/{customer_id}", tags=["customers"], summary="Update a customer")
def patch_customer(
    customer_id: str,
    body: Annotated[dict[str, Any], Body(examples=[{"phone": "+447700900002"}])],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        customer = dict(_require_customer(state, customer_id))
        _validate_customer(body)
        customer.update(body)
        customer["updatedAt"] = state.now()
        state.customers.save(customer_id, customer)
        return {"data": {"id": customer_id}}
