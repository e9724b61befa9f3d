"""The SHOPLINE Admin REST API routes under ``/admin/openapi/{version}/``.

Thin HTTP adapters over :class:`~stokline.sandbox.shopline.state.ShoplineState`: parse the query
and body, call the state, wrap the result the way SHOPLINE does (``{"product": ...}``,
``{"orders": [...]}``), and set the ``link`` header on paginated lists. Every success is 200.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.security import HTTPBearer

from stokline.sandbox.shopline import quirks
from stokline.sandbox.shopline.pagination import Matcher, Rows, paginate, select_fields
from stokline.sandbox.shopline.state import (
    ApiError,
    ShoplineState,
    money,
    money_field,
    now_iso,
    parse_time,
    public,
)

if TYPE_CHECKING:
    from stokline.sandbox.shopline.app import ShoplineSandbox

JsonBody = dict[str, Any]


def check_version(version: str) -> str:
    """Any ``vYYYYMMDD`` is a version; anything else is an unknown path."""
    if not quirks.VERSION_RE.match(version):
        raise ApiError(404, "Not Found", f"unknown API version {version!r}")
    return version


# The bearer scheme is declared for the docs' "Authorize" button; the token itself is checked
# (with the rate limit) by the app's admin gate before any route runs.
_bearer_docs = HTTPBearer(auto_error=False, description="The store's Admin API access token.")
router = APIRouter(
    prefix="/admin/openapi/{version}",
    dependencies=[Depends(check_version), Depends(_bearer_docs)],
)


def get_sandbox(request: Request) -> ShoplineSandbox:
    """The sandbox behind this app (set by ``create_app``)."""
    return request.app.state.shopline


def get_state(request: Request) -> ShoplineState:
    """The store state behind this app."""
    return request.app.state.shopline.state


State = Annotated[ShoplineState, Depends(get_state)]


def _unwrap(body: JsonBody, key: str) -> dict[str, Any]:
    inner = body.get(key)
    if not isinstance(inner, dict):
        raise ApiError(422, f"{key} is required", {key: ["is required"]})
    return inner


def _time_filter(query: Any, name: str) -> str | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        parse_time(value)
    except ValueError:
        raise ApiError(422, f"{name} is not a valid time", {name: ["is invalid"]}) from None
    return value


def _id_list(query: Any, name: str, maximum: int | None = None) -> list[str] | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if maximum is not None and len(ids) > maximum:
        raise ApiError(422, f"{name} accepts at most {maximum} ids", {name: ["too many ids"]})
    return ids


def _common_filters(query: Any) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for name in ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max"):
        value = _time_filter(query, name)
        if value is not None:
            filters[name] = value
    if query.get("since_id"):
        try:
            filters["since_id"] = str(int(query["since_id"]))
        except ValueError:
            raise ApiError(422, "since_id is invalid", {"since_id": ["is invalid"]}) from None
    return filters


def _common_match(filters: dict[str, Any]) -> Matcher:
    bounds: list[tuple[str, str, datetime]] = []
    for name in ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max"):
        if name in filters:
            bounds.append((name[:10], name[11:], parse_time(filters[name])))
    since = int(filters["since_id"]) if "since_id" in filters else None
    ids = set(filters["ids"]) if filters.get("ids") else None

    def match(doc: dict[str, Any]) -> bool:
        if ids is not None and str(doc["id"]) not in ids:
            return False
        if since is not None and int(doc["id"]) <= since:
            return False
        for field, edge, bound in bounds:
            value = doc.get(field)
            if not value:
                return False
            stamp = parse_time(value)
            if (edge == "min" and stamp < bound) or (edge == "max" and stamp > bound):
                return False
        return True

    return match


def _by_ids(state: ShoplineState, kind: str) -> Callable[[dict[str, Any]], Rows | None]:
    def candidates(filters: dict[str, Any]) -> Rows | None:
        return state.store.get_many(kind, filters["ids"]) if filters.get("ids") else None

    return candidates


def _page_response(response: Response, link: str | None) -> None:
    if link:
        response.headers["link"] = link


# ----------------------------------------------------------------------------------------
# Products, variants, inventory items
# ----------------------------------------------------------------------------------------

_PRODUCT_EXAMPLE = {
    "product": {
        "title": "Acme Trailhead 2-Person Tent",
        "vendor": "Demo Outdoor",
        "variants": [{"sku": "ACME-TENT-2P-GREEN", "price": "149.00", "option1": "Green"}],
    }
}


@router.get("/products/products.json", tags=["products"], summary="List products")
def list_products(request: Request, response: Response, state: State) -> dict[str, Any]:
    query = request.query_params
    filters = _common_filters(query)
    ids = _id_list(query, "ids", quirks.MAX_LIMIT)
    if ids:
        filters["ids"] = ids
    for name in ("title", "status", "handle", "vendor", "product_type"):
        if query.get(name):
            filters[name] = query[name]

    def make(f: dict[str, Any]) -> Matcher:
        base = _common_match(f)
        extra = {k: f[k] for k in ("title", "status", "handle", "vendor", "product_type") if k in f}

        def match(doc: dict[str, Any]) -> bool:
            if not base(doc):
                return False
            if "title" in extra and extra["title"].lower() not in doc["title"].lower():
                return False
            return all(doc.get(k) == v for k, v in extra.items() if k != "title")

        return match

    page = paginate(
        request,
        state.store,
        kind="product",
        resource="products",
        first_filters=filters,
        make_matcher=make,
        candidates=_by_ids(state, "product"),
    )
    _page_response(response, page.link)
    fields = query.get("fields")
    return {"products": [select_fields(p, fields) for p in state.products_out(page.items)]}


@router.get("/products/count.json", tags=["products"], summary="Count products")
def count_products(state: State) -> dict[str, Any]:
    return {"count": state.store.count("product")}


@router.post("/products/products.json", tags=["products"], summary="Create a product")
def create_product(
    state: State, body: Annotated[JsonBody, Body(examples=[_PRODUCT_EXAMPLE])]
) -> dict[str, Any]:
    return {"product": state.create_product(_unwrap(body, "product"))}


@router.get("/products/variants/{variant_id}.json", tags=["products"], summary="Get a variant")
def get_variant(variant_id: str, state: State) -> dict[str, Any]:
    _, variant = state.variant(variant_id)
    return {"variant": state.variant_out(variant)}


@router.put("/products/variants/{variant_id}.json", tags=["products"], summary="Update a variant")
def update_variant(
    variant_id: str,
    state: State,
    body: Annotated[JsonBody, Body(examples=[{"variant": {"price": "139.00", "barcode": "x"}}])],
) -> dict[str, Any]:
    return {"variant": state.update_variant(variant_id, _unwrap(body, "variant"))}


@router.get("/products/{product_id}.json", tags=["products"], summary="Get a product")
def get_product(product_id: str, request: Request, state: State) -> dict[str, Any]:
    product = state.product_out(state.product(product_id))
    return {"product": select_fields(product, request.query_params.get("fields"))}


@router.put("/products/{product_id}.json", tags=["products"], summary="Update a product")
def update_product(
    product_id: str,
    state: State,
    body: Annotated[JsonBody, Body(examples=[{"product": {"title": "New title"}}])],
) -> dict[str, Any]:
    return {"product": state.update_product(product_id, _unwrap(body, "product"))}


@router.get("/products/{product_id}/variants.json", tags=["products"], summary="Product variants")
def list_product_variants(product_id: str, state: State) -> dict[str, Any]:
    product = state.product(product_id)
    return {"variants": [state.variant_out(v) for v in product["variants"]]}


@router.get("/inventory_items/{item_id}.json", tags=["inventory"], summary="Get an inventory item")
def get_inventory_item(item_id: str, state: State) -> dict[str, Any]:
    return {"inventory_item": public(state.inventory_item(item_id))}


# ----------------------------------------------------------------------------------------
# Inventory levels, locations
# ----------------------------------------------------------------------------------------


@router.get("/inventory_levels.json", tags=["inventory"], summary="List inventory levels")
def list_inventory_levels(request: Request, response: Response, state: State) -> dict[str, Any]:
    query = request.query_params
    filters: dict[str, Any] = {}
    items = _id_list(query, "inventory_item_ids", quirks.LEVELS_MAX_ITEM_IDS)
    locations = _id_list(query, "location_ids", quirks.LEVELS_MAX_LOCATION_IDS)
    if items:
        filters["inventory_item_ids"] = items
    if locations:
        filters["location_ids"] = locations
    updated = _time_filter(query, "updated_at_min")
    if updated:
        filters["updated_at_min"] = updated
    if quirks.LEVELS_REQUIRE_ITEM_IDS and not query.get("page_info") and not items:
        # Documented: inventory_item_ids is required, so location_ids alone is refused.
        raise ApiError(
            422, "inventory_item_ids is required", {"inventory_item_ids": ["is required"]}
        )

    def make(f: dict[str, Any]) -> Matcher:
        item_set = set(f.get("inventory_item_ids") or [])
        loc_set = set(f.get("location_ids") or [])
        since = parse_time(f["updated_at_min"]) if f.get("updated_at_min") else None

        def match(doc: dict[str, Any]) -> bool:
            if item_set and doc["inventory_item_id"] not in item_set:
                return False
            if loc_set and doc["location_id"] not in loc_set:
                return False
            return since is None or parse_time(doc["updated_at"]) >= since

        return match

    def candidates(f: dict[str, Any]) -> Rows | None:
        if not f.get("inventory_item_ids"):
            return None
        locs = f.get("location_ids") or [loc["id"] for loc in state.store.list("location")]
        keys = [f"{i}:{loc}" for i in f["inventory_item_ids"] for loc in locs]
        return state.store.get_many("inventory_level", keys)

    page = paginate(
        request,
        state.store,
        kind="inventory_level",
        resource="inventory_levels",
        first_filters=filters,
        make_matcher=make,
        candidates=candidates,
        key_of=lambda doc: f"{doc['inventory_item_id']}:{doc['location_id']}",
    )
    _page_response(response, page.link)
    return {"inventory_levels": page.items}


_LEVEL_EXAMPLE = {"inventory_item_id": "<inventory item id>", "location_id": "7001"}


@router.post("/inventory_levels/set.json", tags=["inventory"], summary="Set one level")
def set_inventory_level(
    state: State, body: Annotated[JsonBody, Body(examples=[{**_LEVEL_EXAMPLE, "available": 10}])]
) -> dict[str, Any]:
    return {"inventory_level": state.set_level(body)}


@router.post("/inventory_levels/adjust.json", tags=["inventory"], summary="Adjust one level")
def adjust_inventory_level(
    state: State,
    body: Annotated[JsonBody, Body(examples=[{**_LEVEL_EXAMPLE, "available_adjustment": -2}])],
) -> dict[str, Any]:
    level = state.adjust_level(body)
    # [C] the adjust response spells the timestamp ``update_at``.
    out = {k: v for k, v in level.items() if k != "updated_at"}
    out["update_at"] = level["updated_at"]
    return {"inventory_level": out}


@router.post("/inventory_levels/connect.json", tags=["inventory"], summary="Connect to location")
def connect_inventory_level(
    state: State, body: Annotated[JsonBody, Body(examples=[_LEVEL_EXAMPLE])]
) -> dict[str, Any]:
    return {"inventory_level": state.connect_level(body)}


@router.get("/locations/list.json", tags=["locations"], summary="List locations")
def list_locations_list(state: State) -> dict[str, Any]:
    return {"locations": state.store.list("location")}


@router.get("/locations.json", tags=["locations"], summary="List locations")
def list_locations(state: State) -> dict[str, Any]:
    return {"locations": state.store.list("location")}


@router.get("/locations/{location_id}.json", tags=["locations"], summary="Get a location")
def get_location(location_id: str, state: State) -> dict[str, Any]:
    return {"location": state.location(location_id)}


# ----------------------------------------------------------------------------------------
# Orders, transactions, refunds, fulfillments
# ----------------------------------------------------------------------------------------

_FINANCIAL = {
    "unpaid",
    "authorized",
    "pending",
    "partially_paid",
    "paid",
    "partially_refunded",
    "refunded",
}


def _order_filters(query: Any) -> dict[str, Any]:
    filters = _common_filters(query)
    ids = _id_list(query, "ids", 100)
    if ids:
        filters["ids"] = ids
    status = query.get("status") or quirks.DEFAULT_ORDER_STATUS
    if status not in ("open", "cancelled", "any"):
        raise ApiError(422, "status is invalid", {"status": ["must be open, cancelled or any"]})
    filters["status"] = status
    financial = query.get("financial_status")
    if financial and financial != "any":
        if financial not in _FINANCIAL:
            raise ApiError(422, "financial_status is invalid", {"financial_status": ["is invalid"]})
        filters["financial_status"] = financial
    fulfillment = query.get("fulfillment_status")
    if fulfillment and fulfillment != "any":
        if fulfillment not in quirks.FULFILLMENT_FILTER:
            raise ApiError(
                422, "fulfillment_status is invalid", {"fulfillment_status": ["is invalid"]}
            )
        filters["fulfillment_status"] = fulfillment
    for name in ("name", "email", "buyer_id", "location", "hidden_order"):
        if query.get(name):
            filters[name] = query[name]
    sort = query.get("sort_condition")
    if sort:
        if sort not in ("order_at:desc", "order_at:asc"):
            raise ApiError(422, "sort_condition is invalid", {"sort_condition": ["is invalid"]})
        filters["descending"] = sort == "order_at:desc"
    return filters


def _order_matcher(filters: dict[str, Any]) -> Matcher:
    base = _common_match(filters)

    def match(doc: dict[str, Any]) -> bool:
        if not base(doc):
            return False
        status = filters.get("status", quirks.DEFAULT_ORDER_STATUS)
        if status != "any" and doc["status"] != status:
            return False
        if "financial_status" in filters and doc["financial_status"] != filters["financial_status"]:
            return False
        if "fulfillment_status" in filters:
            wanted = quirks.FULFILLMENT_FILTER[filters["fulfillment_status"]]
            if doc["fulfillment_status"] != wanted:
                return False
        if "name" in filters:
            name = filters["name"].lstrip(quirks.ORDER_NAME_PREFIX)
            if doc["name"].lstrip(quirks.ORDER_NAME_PREFIX) != name:
                return False
        if "email" in filters and (doc.get("email") or "").lower() != filters["email"].lower():
            return False
        if "buyer_id" in filters and str(doc.get("buyer_id")) != filters["buyer_id"]:
            return False
        if "location" in filters and filters["location"] not in {
            loc["location_id"] for loc in doc.get("locations") or []
        }:
            return False
        if "hidden_order" in filters:
            hidden = filters["hidden_order"].lower() == "true"
            if bool(doc.get("hidden_order")) != hidden:
                return False
        return True

    return match


@router.get("/orders.json", tags=["orders"], summary="List orders")
def list_orders(request: Request, response: Response, state: State) -> dict[str, Any]:
    query = request.query_params
    filters = {} if query.get("page_info") else _order_filters(query)
    page = paginate(
        request,
        state.store,
        kind="order",
        resource="orders",
        first_filters=filters,
        make_matcher=_order_matcher,
        candidates=_by_ids(state, "order"),
    )
    _page_response(response, page.link)
    fields = query.get("fields")
    return {"orders": [select_fields(public(o), fields) for o in page.items]}


@router.get("/orders/count.json", tags=["orders"], summary="Count orders")
def count_orders(request: Request, state: State) -> dict[str, Any]:
    matcher = _order_matcher(_order_filters(request.query_params))
    return {"count": sum(1 for _, doc in state.store.scan("order") if matcher(doc))}


_ORDER_EXAMPLE = {
    "order": {
        "line_items": [{"sku": "ACME-TENT-2P-ORANGE", "quantity": 1}],
        "customer": {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"},
        "shipping_lines": [{"title": "DPD Next Day"}],
        "gateway": "shopline_payments",
        "financial_status": "paid",
    }
}


_UNCAPTURED = ("unpaid", "pending", "failure", "failed", "authorized", "voided")


def _gateway_name(value: Any) -> str | None:
    """A gateway as the store names it: "PayPal" → "paypal" ([I] case and spaces vary)."""
    if value in (None, ""):
        return None
    return re.sub(r"[\s-]+", "_", str(value).strip().lower())


def _tax_line_in(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if not isinstance(raw, dict) or not (raw.get("title") or raw.get("rate") not in (None, "")):
        return None
    return {k: raw[k] for k in ("title", "rate", "price") if raw.get(k) not in (None, "")}


def order_spec_from_api(data: dict[str, Any]) -> dict[str, Any]:
    """The state's order spec from a ``POST /orders.json`` body as the official SDK sends it.

    Honoured rather than priced by the sandbox: ``line_items[].price``,
    ``line_items[].discount_price{title, amount}`` (amount off the whole line [I]),
    ``line_items[].tax_line{title, rate, price}``, ``shipping_lines[].price`` and ``.tax_line``
    (also the singular ``shipping_line``), ``price_info.current_extra_total_discounts`` (an
    order discount no line carries), ``price_info.total_shipping_price`` (shipping charged),
    ``price_info.taxes_included`` (absent means true: the SDK omits false [I]),
    ``discount_codes[{code, amount, type}]`` and ``transaction_list[{gateway, amount, status}]``
    (each transaction not ``unpaid``/``pending``/``failure`` is captured at creation [I]).
    """
    shipping_in = data.get("shipping_lines") or [data.get("shipping_line") or {}]
    shipping = shipping_in[0] if isinstance(shipping_in, list) and shipping_in else {}
    if not isinstance(shipping, dict):
        raise ApiError(422, "shipping_lines is invalid", {"shipping_lines": ["is invalid"]})
    price_info = data.get("price_info") or {}
    if not isinstance(price_info, dict):
        raise ApiError(422, "price_info is invalid", {"price_info": ["is invalid"]})
    lines: list[dict[str, Any]] = []
    for raw in data.get("line_items") or []:
        if not isinstance(raw, dict):
            raise ApiError(422, "line_items is invalid", {"line_items": ["is invalid"]})
        line = {
            k: raw[k]
            for k in ("sku", "variant_id", "quantity", "price", "location_id", "taxable")
            if raw.get(k) not in (None, "")
        }
        discount = raw.get("discount_price")
        title = None
        if isinstance(discount, dict):
            discount, title = discount.get("amount"), discount.get("title")
        if discount not in (None, ""):
            line["discount"] = discount
            if title:
                line["discount_title"] = title
        tax = _tax_line_in(raw.get("tax_line") or raw.get("tax_lines"))
        if tax is not None:
            line["tax_line"] = tax
            line.pop("taxable", None)
        lines.append(line)
    title = shipping.get("title") or data.get("shipping_title") or quirks.DEFAULT_SHIPPING_TITLE
    list_price = shipping.get("price")
    if list_price in (None, ""):
        list_price = quirks.SHIPPING_PRICES.get(str(title), quirks.DEFAULT_SHIPPING_PRICE)
    charged = price_info.get("total_shipping_price")
    spec: dict[str, Any] = {
        **{k: v for k, v in data.items() if k not in ("line_items", "price_info")},
        "line_items": lines,
        "customer": data.get("customer") or ({"email": data["email"]} if data.get("email") else {}),
        "shipping_title": title,
        "note": data.get("note") or data.get("order_note") or "",
    }
    if charged not in (None, ""):
        charged_amount = money_field(charged, "price_info.total_shipping_price")
        if charged_amount > money_field(list_price, "shipping_lines.price"):
            list_price = charged
        spec["shipping_discounted_price"] = money(charged_amount)
    spec["shipping_price"] = list_price
    ship_tax = _tax_line_in(shipping.get("tax_line") or shipping.get("tax_lines"))
    if ship_tax is not None:
        spec["shipping_tax_line"] = ship_tax
    extra = price_info.get("current_extra_total_discounts")
    if extra not in (None, ""):
        spec["order_discount"] = extra
    if "taxes_included" in price_info:
        spec["taxes_included"] = bool(price_info["taxes_included"])
    for code in data.get("discount_codes") or []:
        if not isinstance(code, dict) or code.get("amount") in (None, ""):
            continue
        kind = code.get("type") or "fixed_amount"
        if kind == "shipping":
            spec["shipping_code"] = code.get("code") or "SHIPPING"
            if "shipping_discounted_price" not in spec:
                left = money_field(list_price, "shipping_lines.price") - money_field(
                    code["amount"], "discount_codes.amount"
                )
                spec["shipping_discounted_price"] = money(max(left, 0))
        elif "discount_code" not in spec:
            spec["discount_code"] = {
                "code": code.get("code") or "CODE",
                "type": "percentage" if kind == "percentage" else "fixed_amount",
                "value": code["amount"],
            }
    gateway = _gateway_name(data.get("gateway")) or _gateway_name(
        (data.get("payment_gateway_names") or [None])[0]
    )
    transactions = data.get("transaction_list") or []
    if not isinstance(transactions, list):
        raise ApiError(422, "transaction_list is invalid", {"transaction_list": ["is invalid"]})
    payments = []
    for t in transactions:
        if not isinstance(t, dict):
            raise ApiError(422, "transaction_list is invalid", {"transaction_list": ["is invalid"]})
        gateway = gateway or _gateway_name(t.get("gateway") or t.get("gateways"))
        if str(t.get("status") or "success").lower() not in _UNCAPTURED:
            payments.append(money(money_field(t.get("amount"), "transaction_list.amount")))
    spec["gateway"] = gateway
    spec["payments"] = payments
    financial = data.get("financial_status")
    spec["paid"] = not transactions and (financial == "paid" or bool(data.get("paid")))
    spec["authorize"] = financial == "authorized"
    return spec


@router.post("/orders.json", tags=["orders"], summary="Create an order")
def create_order(
    state: State, body: Annotated[JsonBody, Body(examples=[_ORDER_EXAMPLE])]
) -> dict[str, Any]:
    data = _unwrap(body, "order")
    return {"order": public(state.create_order(order_spec_from_api(data)))}


@router.put("/orders/{order_id}.json", tags=["orders"], summary="Update an order")
def update_order(
    order_id: str,
    state: State,
    body: Annotated[JsonBody, Body(examples=[{"order": {"note": "Leave with neighbour"}}])],
) -> dict[str, Any]:
    return {"order": public(state.update_order(order_id, _unwrap(body, "order")))}


@router.post("/orders/{order_id}/cancel.json", tags=["orders"], summary="Cancel an order")
def cancel_order(
    order_id: str,
    state: State,
    body: Annotated[JsonBody | None, Body(examples=[{"cancel_reason": "customer"}])] = None,
) -> dict[str, Any]:
    reason = (body or {}).get("cancel_reason")
    return {"order": public(state.cancel_order(order_id, reason))}


@router.get(
    "/orders/{order_id}/transactions.json", tags=["orders"], summary="Transactions of an order"
)
def list_transactions(order_id: str, state: State) -> dict[str, Any]:
    return {"transactions": state.order(order_id)["_transactions"]}


@router.get("/orders/{order_id}/refunds.json", tags=["refunds"], summary="Refunds of an order")
def list_refunds(order_id: str, state: State) -> dict[str, Any]:
    return {"refunds": state.order(order_id)["_refunds"]}


@router.get("/orders/{order_id}/refunds/{refund_id}.json", tags=["refunds"], summary="Get a refund")
def get_refund(order_id: str, refund_id: str, state: State) -> dict[str, Any]:
    match = next((r for r in state.order(order_id)["_refunds"] if r["id"] == refund_id), None)
    if match is None:
        raise ApiError(404, "refund not found", f"refund {refund_id} not found")
    return {"refund": match}


@router.post(
    "/orders/{order_id}/refunds/calculate.json",
    tags=["refunds"],
    summary="Calculate a refund without making it",
)
def calculate_refund(
    order_id: str,
    state: State,
    body: Annotated[
        JsonBody,
        Body(
            examples=[{"refund": {"refund_line_items": [{"line_item_id": "417", "quantity": 1}]}}]
        ),
    ],
) -> dict[str, Any]:
    data = body.get("refund") if isinstance(body.get("refund"), dict) else body
    return {"refund": state.calculate_refund(order_id, data)}


_REFUND_EXAMPLE = {
    "order_id": "<order id>",
    "note": "damaged in transit",
    "notify": False,
    "refund_line_items": [
        {"line_item_id": "417", "quantity": 1, "restock_type": "no_restock", "type": "Returned"}
    ],
    "shipping": {"full_refund": False, "amount": "0.00"},
}


@router.post("/order/refund.json", tags=["refunds"], summary="Create a refund")
def create_refund(
    state: State, body: Annotated[JsonBody, Body(examples=[_REFUND_EXAMPLE])]
) -> dict[str, Any]:
    data = body.get("refund") if isinstance(body.get("refund"), dict) else body
    # [C] SHOPLINE's SDK reads the created refund from "data", not "refund".
    return {"data": state.create_refund(data)}


_FULFILLMENT_EXAMPLE = {
    "fulfillment": {
        "line_items": [{"id": 417, "quantity": 1}],
        "notify_customer": False,
        "tracking_info_list": [
            {
                "tracking_number": "RM123456785GB",
                "tracking_company": "Royal Mail",
                "tracking_url": "https://www.royalmail.com/track-your-item",
            }
        ],
    }
}


@router.post(
    "/orders/{order_id}/fulfillments.json", tags=["fulfillments"], summary="Create a fulfillment"
)
def create_fulfillment(
    order_id: str,
    state: State,
    body: Annotated[JsonBody, Body(examples=[_FULFILLMENT_EXAMPLE])],
) -> dict[str, Any]:
    return {"fulfillment": state.create_fulfillment(order_id, _unwrap(body, "fulfillment"))}


@router.get(
    "/orders/{order_id}/fulfillments.json", tags=["fulfillments"], summary="List fulfillments"
)
def list_fulfillments(order_id: str, state: State) -> dict[str, Any]:
    return {"fulfillments": state.order(order_id)["_fulfillments"]}


@router.get(
    "/orders/{order_id}/fulfillments/count.json",
    tags=["fulfillments"],
    summary="Count fulfillments",
)
def count_fulfillments(order_id: str, state: State) -> dict[str, Any]:
    return {"count": len(state.order(order_id)["_fulfillments"])}


@router.get(
    "/orders/{order_id}/fulfillments/{fulfillment_id}.json",
    tags=["fulfillments"],
    summary="Get a fulfillment",
)
def get_fulfillment(order_id: str, fulfillment_id: str, state: State) -> dict[str, Any]:
    order = state.order(order_id)
    return {"fulfillment": state._fulfillment(order, fulfillment_id)}


@router.post(
    "/orders/{order_id}/fulfillments/{fulfillment_id}/cancel.json",
    tags=["fulfillments"],
    summary="Cancel a fulfillment",
)
def cancel_fulfillment(order_id: str, fulfillment_id: str, state: State) -> dict[str, Any]:
    return {"fulfillment": state.cancel_fulfillment(order_id, fulfillment_id)}


@router.post(
    "/orders/{order_id}/fulfillments/{fulfillment_id}/update_tracking.json",
    tags=["fulfillments"],
    summary="Replace a fulfillment's tracking list",
)
def update_tracking(
    order_id: str,
    fulfillment_id: str,
    state: State,
    body: Annotated[
        JsonBody,
        Body(examples=[{"fulfillment": {"tracking_info_list": [{"tracking_number": "X1"}]}}]),
    ],
) -> dict[str, Any]:
    data = body.get("fulfillment") if isinstance(body.get("fulfillment"), dict) else body
    return {"fulfillment": state.update_tracking(order_id, fulfillment_id, data)}


# ----------------------------------------------------------------------------------------
# Customers
# ----------------------------------------------------------------------------------------


@router.get("/v2/customers.json", tags=["customers"], summary="List customers")
def list_customers(request: Request, response: Response, state: State) -> dict[str, Any]:
    query = request.query_params
    filters = _common_filters(query)
    ids = _id_list(query, "ids", 250)
    if ids:
        filters["ids"] = ids
    page = paginate(
        request,
        state.store,
        kind="customer",
        resource="customers",
        first_filters=filters,
        make_matcher=_common_match,
        candidates=_by_ids(state, "customer"),
    )
    _page_response(response, page.link)
    fields = query.get("fields")
    return {"customers": [select_fields(c, fields) for c in page.items]}


@router.get("/customers/v2/search.json", tags=["customers"], summary="Search customers")
def search_customers(request: Request, response: Response, state: State) -> dict[str, Any]:
    query = request.query_params
    filters = {"query_param": query.get("query_param") or ""}

    def make(f: dict[str, Any]) -> Matcher:
        return lambda doc: state.customer_matches(doc, f.get("query_param") or "")

    page = paginate(
        request,
        state.store,
        kind="customer",
        resource="customers",
        first_filters=filters,
        make_matcher=make,
    )
    _page_response(response, page.link)
    return {"customers": page.items}


@router.get("/customers/v2/{customer_id}.json", tags=["customers"], summary="Get a customer")
def get_customer(customer_id: str, state: State) -> dict[str, Any]:
    return {"customer": state.customer(customer_id)}


@router.post("/customers.json", tags=["customers"], summary="Create a customer")
def create_customer(
    state: State,
    body: Annotated[
        JsonBody,
        Body(examples=[{"customer": {"email": "ada@example.com", "first_name": "Ada"}}]),
    ],
) -> dict[str, Any]:
    return {"customer": state.create_customer(_unwrap(body, "customer"))}


@router.put("/customers/{customer_id}.json", tags=["customers"], summary="Update a customer")
def update_customer(
    customer_id: str,
    state: State,
    body: Annotated[JsonBody, Body(examples=[{"customer": {"phone": "7700900123"}}])],
) -> dict[str, Any]:
    return {"customer": state.update_customer(customer_id, _unwrap(body, "customer"))}


# ----------------------------------------------------------------------------------------
# Webhook subscriptions
# ----------------------------------------------------------------------------------------


def _webhook_out(doc: dict[str, Any]) -> dict[str, Any]:
    # [C] webhook ids are integers on the wire.
    return {**doc, "id": int(doc["id"])}


def _validate_webhook(data: dict[str, Any], partial: bool = False) -> None:
    errors: dict[str, list[str]] = {}
    if ("topic" in data or not partial) and data.get("topic") not in quirks.WEBHOOK_TOPICS:
        errors["topic"] = ["is invalid"]
    if "address" in data or not partial:
        address = str(data.get("address") or "")
        schemes = ("https://", "http://") if quirks.WEBHOOK_ALLOW_HTTP else ("https://",)
        if not address.startswith(schemes):
            errors["address"] = ["is invalid"]
    if errors:
        raise ApiError(422, "; ".join(f"{k} {v[0]}" for k, v in errors.items()), errors)


@router.post("/webhooks.json", tags=["webhooks"], summary="Subscribe to a topic")
def create_webhook(
    version: str,
    state: State,
    body: Annotated[
        JsonBody,
        Body(
            examples=[
                {
                    "webhook": {
                        "address": "https://example.com/webhooks/shopline",
                        "topic": "orders/paid",
                        "api_version": quirks.DEFAULT_API_VERSION,
                    }
                }
            ]
        ),
    ],
) -> dict[str, Any]:
    data = _unwrap(body, "webhook")
    _validate_webhook(data)
    store = state.store
    with store.transaction():
        for existing in store.list("webhook"):
            if existing["address"] == data["address"] and existing["topic"] == data["topic"]:
                raise ApiError(
                    422,
                    "address for this topic has already been taken",
                    {"address": ["for this topic has already been taken"]},
                )
        number = int(store.get_meta("webhook_id", "1000000") or 0) + 1
        store.set_meta("webhook_id", str(number))
        stamp = now_iso()
        doc = {
            "id": str(number),
            "address": data["address"],
            "topic": data["topic"],
            "api_version": data.get("api_version") or version,
            "format": "json",
            "created_at": stamp,
            "updated_at": stamp,
        }
        store.insert("webhook", doc, id=doc["id"])
    return {"webhook": _webhook_out(doc)}


@router.get("/webhooks.json", tags=["webhooks"], summary="List subscriptions")
def list_webhooks(request: Request, state: State) -> dict[str, Any]:
    topic = request.query_params.get("topic")
    docs = [w for w in state.store.list("webhook") if not topic or w["topic"] == topic]
    return {"webhooks": [_webhook_out(w) for w in docs]}


@router.get("/webhooks/count.json", tags=["webhooks"], summary="Count subscriptions")
def count_webhooks(state: State) -> dict[str, Any]:
    return {"count": state.store.count("webhook")}


def _webhook(state: ShoplineState, webhook_id: str) -> dict[str, Any]:
    doc = state.store.get("webhook", str(webhook_id))
    if doc is None:
        raise ApiError(404, "webhook not found", f"webhook {webhook_id} not found")
    return doc


@router.get("/webhooks/{webhook_id}.json", tags=["webhooks"], summary="Get a subscription")
def get_webhook(webhook_id: str, state: State) -> dict[str, Any]:
    return {"webhook": _webhook_out(_webhook(state, webhook_id))}


@router.put("/webhooks/{webhook_id}.json", tags=["webhooks"], summary="Update a subscription")
def update_webhook(
    webhook_id: str,
    state: State,
    body: Annotated[JsonBody, Body(examples=[{"webhook": {"address": "https://example.com/x"}}])],
) -> dict[str, Any]:
    data = _unwrap(body, "webhook")
    _validate_webhook(data, partial=True)
    with state.store.transaction():
        doc = _webhook(state, webhook_id)
        for key in ("address", "topic", "api_version"):
            if key in data:
                doc[key] = data[key]
        state.store.update("webhook", doc["id"], doc)
    return {"webhook": _webhook_out(doc)}


@router.delete("/webhooks/{webhook_id}.json", tags=["webhooks"], summary="Delete a subscription")
def delete_webhook(webhook_id: str, state: State) -> dict[str, Any]:
    if not state.store.delete("webhook", str(webhook_id)):
        raise ApiError(404, "webhook not found", f"webhook {webhook_id} not found")
    return {}
