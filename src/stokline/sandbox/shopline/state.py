"""The SHOPLINE store's state and business rules, independent of HTTP.

Routes and the control API call :class:`ShoplineState`; it validates, changes documents in the
:class:`~stokline.sandbox.common.DocStore` inside one transaction, and then hands webhook events
to ``emit`` (after the commit, so a receiver never sees a change that was rolled back).
Orders embed their transactions, refunds and fulfillments under ``_``-prefixed keys, which
:func:`public` strips from every response.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stokline.sandbox.common import DocStore
from stokline.sandbox.shopline import pricing, quirks

Emit = Callable[[str, dict[str, Any]], None]

CENT = Decimal("0.01")
TAX_RATES = pricing.TAX_RATES
PAY_CHANNELS = {"shopline_payments": "card", "paypal": "paypal", "klarna": "klarna"}


class _Rollback(Exception):
    """Raised inside a transaction to undo it on purpose (refund calculation)."""


class ApiError(Exception):
    """A 4xx the API answers with ``{"code","message","errors"}``."""

    def __init__(self, status: int, message: str, errors: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors if errors is not None else message


def now_iso() -> str:
    """Current time as SHOPLINE prints it: ISO 8601 with an offset, second precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def parse_time(value: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` or offset; naive means UTC)."""
    text = value.strip().replace("Z", "+00:00").replace(" ", "+", 1) if value else value
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def money(value: Decimal | str | int) -> str:
    """Money as SHOPLINE writes it: a string with two decimals."""
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))


def money_set(value: Decimal | str, currency: str) -> dict[str, Any]:
    """The ``*_set`` twin of a money value."""
    amount = money(value)
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {"amount": amount, "currency_code": currency},
    }


def number_field(value: Any, field: str, *, minimum: int | None = None) -> int:
    """An integer from a request body, or a 422 naming the field (never a 500)."""
    if isinstance(value, bool) or value is None:
        raise ApiError(422, f"{field} must be an integer", {field: ["is not a number"]})
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ApiError(422, f"{field} must be an integer", {field: ["is not a number"]}) from None
    if minimum is not None and number < minimum:
        raise ApiError(
            422, f"{field} must be at least {minimum}", {field: [f"must be >= {minimum}"]}
        )
    return number


def money_field(value: Any, field: str) -> Decimal:
    """A money amount from a request body (string or number), or a 422 naming the field."""
    if isinstance(value, bool) or value is None:
        raise ApiError(422, f"{field} is invalid", {field: ["is invalid"]})
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ApiError(422, f"{field} is invalid", {field: ["is invalid"]}) from None
    if not amount.is_finite():
        raise ApiError(422, f"{field} is invalid", {field: ["is invalid"]})
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def amount_number(value: Decimal | str) -> int | float:
    """A payment amount as the JSON number the official SDK's order model reads (``8``, ``8.23``).

    Two decimals at most, so the float's shortest text is the amount exactly ("304.95").
    """
    amount = Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    return int(amount) if amount == amount.to_integral_value() else float(amount)


GRAMS_PER_UNIT = {
    "g": Decimal(1),
    "kg": Decimal(1000),
    "zh_kg": Decimal(1000),
    "lb": Decimal("453.59237"),
    "oz": Decimal("28.349523125"),
}


def weight_text(value: Any, field: str = "weight") -> str:
    """A variant weight as SHOPLINE answers it: a decimal string of two places at most ("0.23").

    A request may send it as a string or a number; anything else is a 422 naming the field.
    """
    if value in (None, ""):
        return "0"
    text = format(money_field(value, field), "f")  # rounded to two places, as SHOPLINE does
    return text.rstrip("0").rstrip(".") if "." in text else text


def grams_of(variant: dict[str, Any]) -> int:
    """A variant's weight in whole grams (an order line's ``grams``), whatever its unit."""
    try:
        weight = Decimal(str(variant.get("weight") or 0))
    except ArithmeticError:
        return 0
    factor = GRAMS_PER_UNIT.get(str(variant.get("weight_unit") or "g"), Decimal(1))
    return int((weight * factor).to_integral_value(rounding=ROUND_HALF_UP))


def vat_of(gross: Decimal, rate: Decimal) -> Decimal:
    """VAT contained in a VAT-inclusive amount (UK prices include VAT)."""
    return (gross * rate / (1 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop sandbox-internal keys (``_...``) at the top level and in variants/line items.

    An order also shows its ``refunds[]`` ([I] Shopify-like) and, when it was placed with
    ``omit``, leaves out (or nulls) the optional keys SHOPLINE may leave out (:func:`_omitted`).
    """
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    for key in ("variants", "line_items"):
        if isinstance(out.get(key), list):
            out[key] = [
                {k: v for k, v in item.items() if not k.startswith("_")} for item in out[key]
            ]
    if isinstance(doc.get("_refunds"), list):
        out["refunds"] = list(doc["_refunds"])
    if doc.get("_omit"):
        out = _omitted(out, doc["_omit"]["mode"], doc["_omit"]["fields"])
    return out


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _omitted(order: dict[str, Any], mode: str, fields: Iterable[str]) -> dict[str, Any]:
    """``order`` with the empty optional ``fields`` left out (``keys``) or sent as null.

    A field is a top-level key (``buyer_note``), a line item key (``requires_shipping``,
    ``discount_allocations``) or ``object.key`` (``shipping_address.phone``). Only empty values
    go ([I] SHOPLINE leaves out what it has no value for), except ``requires_shipping``, which
    goes whatever its value (the field the official SDK's order model may lack).
    """

    def drop(target: dict[str, Any], key: str, always: bool = False) -> None:
        if key in target and (always or _empty(target[key])):
            if mode == "keys":
                del target[key]
            else:
                target[key] = None

    line_keys = {"requires_shipping", "discount_allocations", "properties", "tax_lines"}
    for field in fields:
        head, _, tail = field.partition(".")
        if tail:
            if isinstance(order.get(head), dict):
                order[head] = dict(order[head])
                drop(order[head], tail)
        elif head in line_keys:
            lines = []
            for line in order.get("line_items") or []:
                line = dict(line)
                drop(line, head, always=head == "requires_shipping")
                lines.append(line)
            order["line_items"] = lines
        else:
            drop(order, head)
    return order


class ShoplineState:
    """One SHOPLINE store: products, inventory, locations, customers, orders, webhooks."""

    def __init__(
        self, store: DocStore, *, handle: str = "demo-outdoor", emit: Emit | None = None
    ) -> None:
        self.store = store
        self.handle = handle
        self.emit: Emit = emit or (lambda topic, payload: None)
        digest = hashlib.sha256(handle.encode()).hexdigest()
        self.store_id = str(1700000000 + int(digest[:8], 16) % 100000000)
        self.merchant_id = str(2000000000 + int(digest[8:16], 16) % 100000000)

    @property
    def shop_domain(self) -> str:
        """``{handle}.myshopline.com``, as sent in ``X-Shopline-Shop-Domain``."""
        return f"{self.handle}.myshopline.com"

    @property
    def currency(self) -> str:
        """The store currency (the demo client's is GBP)."""
        return self.store.get_meta("currency", "GBP") or "GBP"

    def new_id(self, kind: str) -> str:
        """A fresh numeric-string id for ``kind`` (format: :data:`quirks.ID_PREFIXES`)."""
        seq = self.store.next_seq()
        return f"{quirks.ID_PREFIXES[kind]}{int(time.time() * 1000):013d}{seq % 10**9:09d}"

    def _get(self, kind: str, id: str, label: str) -> dict[str, Any]:
        doc = self.store.get(kind, str(id))
        if doc is None:
            raise ApiError(404, f"{label} not found", f"{label} {id} not found")
        return doc

    # ------------------------------------------------------------------------------------
    # Locations
    # ------------------------------------------------------------------------------------

    def add_location(self, location_id: str, name: str, **fields: Any) -> dict[str, Any]:
        """Create a location (seeding and the control API only: the API has no create)."""
        stamp = now_iso()
        doc = {
            "id": str(location_id),
            "name": name,
            "active": bool(fields.pop("active", True)),
            "is_default": "true" if fields.pop("is_default", False) else "false",
            "address1": fields.pop("address1", ""),
            "address2": fields.pop("address2", ""),
            "city": fields.pop("city", ""),
            "province": fields.pop("province", ""),
            "country": fields.pop("country", "United Kingdom"),
            "country_code": fields.pop("country_code", "GB"),
            "zip": fields.pop("zip", ""),
            "phone": fields.pop("phone", ""),
            "created_at": stamp,
            "updated_at": stamp,
            **fields,
        }
        self.store.upsert("location", doc["id"], doc)
        return doc

    def _default_location_id(self) -> str:
        locations = self.store.list("location")
        if not locations:
            raise ApiError(422, "the store has no location", {"location_id": ["is required"]})
        default = next((loc for loc in locations if loc["is_default"] == "true"), locations[0])
        return default["id"]

    def location(self, location_id: str) -> dict[str, Any]:
        """A location or 404."""
        return self._get("location", str(location_id), "location")

    # ------------------------------------------------------------------------------------
    # Products, variants, inventory items
    # ------------------------------------------------------------------------------------

    def build_product(
        self, data: dict[str, Any], stamp: str | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Build a product document and its inventory items from a create body (no writes)."""
        title = str(data.get("title") or "").strip()
        if not title:
            raise ApiError(422, "title can't be blank", {"title": ["can't be blank"]})
        stamp = stamp or now_iso()
        product_id = self.new_id("product")
        variants_in = data.get("variants") or [{}]
        options = data.get("options") or []
        variants: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        for position, v in enumerate(variants_in, start=1):
            variant_id = self.new_id("variant")
            item_id = self.new_id("inventory_item")
            price = money(money_field(v.get("price", "0.00"), "price"))
            variant = {
                "id": variant_id,
                "product_id": product_id,
                "title": v.get("title")
                or " / ".join(str(v[o]) for o in ("option1", "option2", "option3") if v.get(o))
                or "Default Title",
                "sku": v.get("sku") or "",
                "barcode": v.get("barcode") or "",
                "price": price,
                "compare_at_price": v.get("compare_at_price"),
                "position": position,
                "inventory_item_id": item_id,
                "inventory_policy": v.get("inventory_policy", "deny"),
                "inventory_tracker": bool(v.get("inventory_tracker", True)),
                "option1": v.get("option1"),
                "option2": v.get("option2"),
                "option3": v.get("option3"),
                "option4": v.get("option4"),
                "option5": v.get("option5"),
                # A string, as the official SDK's variant model has it (get_a_product_variant.go).
                "weight": weight_text(v.get("weight")),
                "weight_unit": v.get("weight_unit", "g"),
                "taxable": bool(v.get("taxable", True)),
                "required_shipping": bool(v.get("required_shipping", True)),
                "image": None,
                "created_at": stamp,
                "updated_at": stamp,
                "_vat_title": v.get("_vat_title", "VAT 20%"),
                "_gift_card": bool(v.get("_gift_card", False)),
            }
            variants.append(variant)
            items.append(
                {
                    "id": item_id,
                    "sku": variant["sku"],
                    "variant_id": variant_id,
                    "product_id": product_id,
                    "cost": v.get("cost"),
                    "tracked": variant["inventory_tracker"],
                    "required_shipping": variant["required_shipping"],
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        product = {
            "id": product_id,
            "title": title,
            "handle": data.get("handle") or "-".join(title.lower().split()),
            "status": data.get("status", "active"),
            "vendor": data.get("vendor", ""),
            "product_type": data.get("product_type", ""),
            "tags": data.get("tags", ""),
            "body_html": data.get("body_html", ""),
            "options": options,
            "images": data.get("images", []),
            "variants": variants,
            "created_at": stamp,
            "updated_at": stamp,
            "published_at": stamp,
        }
        return product, items

    def save_products(self, built: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        """Store built products in bulk (seeding thousands at once)."""
        products, refs, items = [], [], []
        for product, product_items in built:
            products.append((product["id"], product))
            refs.extend((v["id"], {"product_id": product["id"]}) for v in product["variants"])
            items.extend((i["id"], i) for i in product_items)
        with self.store.transaction():
            self.store.insert_many("product", products)
            self.store.insert_many("variant_ref", refs)
            self.store.insert_many("inventory_item", items)
            for _, product in products:
                for variant in product["variants"]:
                    if variant["sku"]:
                        self.store.upsert("sku_ref", variant["sku"], {"variant_id": variant["id"]})

    def create_product(self, data: dict[str, Any]) -> dict[str, Any]:
        """``POST /products/products.json``."""
        with self.store.transaction():
            built = self.build_product(data)
            self.save_products([built])
        out = self.product_out(built[0])
        self.emit("products/create", out)
        return out

    def product_out(self, product: dict[str, Any]) -> dict[str, Any]:
        """The public product, with each variant's ``inventory_quantity`` summed over levels."""
        return self.products_out([product])[0]

    def products_out(self, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`product_out` for a page of products with one query for all their levels."""
        locations = self._locations_ids()
        keys = [
            f"{v['inventory_item_id']}:{loc}"
            for p in products
            for v in p["variants"]
            for loc in locations
        ]
        totals: dict[str, int] = {}
        for _, level in self.store.get_many("inventory_level", keys):
            item = level["inventory_item_id"]
            totals[item] = totals.get(item, 0) + int(level["available"])
        out = []
        for product in products:
            view = public(product)
            view["variants"] = [
                {
                    **{k: v for k, v in variant.items() if not k.startswith("_")},
                    "inventory_quantity": totals.get(variant["inventory_item_id"], 0),
                }
                for variant in product["variants"]
            ]
            out.append(view)
        return out

    def variant_out(self, variant: dict[str, Any]) -> dict[str, Any]:
        """The public variant with its live ``inventory_quantity``."""
        out = {k: v for k, v in variant.items() if not k.startswith("_")}
        out["inventory_quantity"] = sum(
            lvl["available"] for lvl in self.levels_of_item(variant["inventory_item_id"])
        )
        return out

    def product(self, product_id: str) -> dict[str, Any]:
        """A product document or 404."""
        return self._get("product", product_id, "product")

    _PRODUCT_FIELDS = ("title", "handle", "status", "vendor", "product_type", "tags", "body_html")
    _VARIANT_FIELDS = (
        "sku",
        "barcode",
        "price",
        "compare_at_price",
        "inventory_policy",
        "option1",
        "option2",
        "option3",
        "option4",
        "option5",
        "weight",
        "weight_unit",
        "taxable",
        "required_shipping",
        "title",
    )

    def _apply_variant(self, variant: dict[str, Any], changes: dict[str, Any], stamp: str) -> None:
        for key in self._VARIANT_FIELDS:
            if key in changes:
                value = changes[key]
                if key in ("price", "compare_at_price") and value is not None:
                    value = money(money_field(value, key))
                if key == "weight":  # kept and answered as a string, whatever the request sent
                    value = weight_text(value)
                variant[key] = value
        variant["updated_at"] = stamp

    def update_product(self, product_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """``PUT /products/{id}.json``: product fields, and variants by id when given."""
        with self.store.transaction():
            product = self.product(product_id)
            stamp = now_iso()
            for key in self._PRODUCT_FIELDS:
                if key in changes:
                    product[key] = changes[key]
            for v_changes in changes.get("variants") or []:
                match = next(
                    (v for v in product["variants"] if v["id"] == str(v_changes.get("id"))), None
                )
                if match is None:
                    raise ApiError(422, "variant not found", {"variants": ["id is invalid"]})
                self._apply_variant(match, v_changes, stamp)
                self._sync_item_sku(match)
            product["updated_at"] = stamp
            self.store.update("product", product_id, product)
        out = self.product_out(product)
        self.emit("products/update", out)
        return out

    def _sync_item_sku(self, variant: dict[str, Any]) -> None:
        item = self.store.get("inventory_item", variant["inventory_item_id"])
        if item is not None and item["sku"] != variant["sku"]:
            ref = self.store.get("sku_ref", item["sku"])
            if ref is not None and ref["variant_id"] == variant["id"]:
                self.store.delete("sku_ref", item["sku"])
            item["sku"] = variant["sku"]
            self.store.update("inventory_item", item["id"], item)
        if variant["sku"]:
            self.store.upsert("sku_ref", variant["sku"], {"variant_id": variant["id"]})

    def variant(self, variant_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(product, variant)`` or 404."""
        ref = self._get("variant_ref", str(variant_id), "variant")
        product = self.product(ref["product_id"])
        variant = next(v for v in product["variants"] if v["id"] == str(variant_id))
        return product, variant

    def update_variant(self, variant_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """``PUT /products/variants/{id}.json``; fires ``products/update``."""
        with self.store.transaction():
            product, variant = self.variant(variant_id)
            stamp = now_iso()
            self._apply_variant(variant, changes, stamp)
            self._sync_item_sku(variant)
            product["updated_at"] = stamp
            self.store.update("product", product["id"], product)
        self.emit("products/update", self.product_out(product))
        return self.variant_out(variant)

    def inventory_item(self, item_id: str) -> dict[str, Any]:
        """An inventory item or 404."""
        return self._get("inventory_item", str(item_id), "inventory item")

    # ------------------------------------------------------------------------------------
    # Inventory levels
    # ------------------------------------------------------------------------------------

    def _locations_ids(self) -> list[str]:
        return [loc["id"] for loc in self.store.list("location")]

    def levels_of_item(self, item_id: str) -> list[dict[str, Any]]:
        """Connected levels of one inventory item (one look-up per location)."""
        out = []
        for loc in self._locations_ids():
            level = self.store.get("inventory_level", f"{item_id}:{loc}")
            if level is not None:
                out.append(level)
        return out

    def _level_target(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        missing = [k for k in ("inventory_item_id", "location_id") if body.get(k) in (None, "")]
        if missing:
            raise ApiError(
                422, f"{', '.join(missing)} required", {k: ["is required"] for k in missing}
            )
        item = self.inventory_item(str(body["inventory_item_id"]))
        location = self.location(str(body["location_id"]))
        if not location.get("active", True):
            raise ApiError(422, "location is not active", {"location_id": ["is not active"]})
        return item, location

    def _level_event(self, level: dict[str, Any]) -> dict[str, Any]:
        return {
            "inventory_item_id": level["inventory_item_id"],
            "location_id": level["location_id"],
            "variant_id": level["variant_id"],
            "available": level["available"],
            "committed": 0,
            "onhand": level["available"],
            "unavailable": 0,
            "updated_at": level["updated_at"],
        }

    def _new_level(self, item: dict[str, Any], location_id: str, available: int) -> dict[str, Any]:
        return {
            "inventory_item_id": item["id"],
            "location_id": str(location_id),
            "variant_id": item["variant_id"],
            "available": int(available),
            "updated_at": now_iso(),
        }

    def connect_level(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /inventory_levels/connect.json``: idempotent."""
        with self.store.transaction():
            item, location = self._level_target(body)
            key = f"{item['id']}:{location['id']}"
            level = self.store.get("inventory_level", key)
            if level is None:
                level = self._new_level(item, location["id"], 0)
                self.store.insert("inventory_level", level, id=key)
        return level

    def set_level(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /inventory_levels/set.json``: absolute ``available`` for one level."""
        available = body.get("available")
        if isinstance(available, bool) or not isinstance(available, int):
            raise ApiError(422, "available must be an integer", {"available": ["is not a number"]})
        with self.store.transaction():
            item, location = self._level_target(body)
            key = f"{item['id']}:{location['id']}"
            level = self.store.get("inventory_level", key)
            if level is None:
                if not quirks.SET_CONNECTS:
                    raise ApiError(422, "inventory item is not stocked at the location")
                level = self._new_level(item, location["id"], available)
                self.store.insert("inventory_level", level, id=key)
            else:
                level["available"] = available
                level["updated_at"] = now_iso()
                self.store.update("inventory_level", key, level)
        self.emit("inventory_levels/update", self._level_event(level))
        return level

    def adjust_level(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /inventory_levels/adjust.json``: relative change of a connected level."""
        delta = body.get("available_adjustment")
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise ApiError(
                422,
                "available_adjustment must be an integer",
                {"available_adjustment": ["is not a number"]},
            )
        with self.store.transaction():
            item, location = self._level_target(body)
            key = f"{item['id']}:{location['id']}"
            level = self.store.get("inventory_level", key)
            if level is None:
                raise ApiError(
                    422,
                    "inventory item is not stocked at the location",
                    {"location_id": ["inventory item is not connected to this location"]},
                )
            level["available"] += delta
            level["updated_at"] = now_iso()
            self.store.update("inventory_level", key, level)
        self.emit("inventory_levels/update", self._level_event(level))
        return level

    def _take_stock(
        self, variant: dict[str, Any], location_id: str, quantity: int, *, checkout: bool
    ) -> dict | None:
        """Take ordered stock off a level; at checkout a sold-out ``deny`` variant is refused."""
        key = f"{variant['inventory_item_id']}:{location_id}"
        level = self.store.get("inventory_level", key)
        if level is None:
            return None
        sold_out = level["available"] < quantity
        if checkout and sold_out and variant.get("inventory_policy", "deny") == "deny":
            raise ApiError(
                422,
                f"{variant['sku'] or variant['id']} is sold out at location {location_id}",
                {"line_items": [f"{variant['sku']} has only {level['available']} available"]},
            )
        level["available"] -= quantity
        level["updated_at"] = now_iso()
        self.store.update("inventory_level", key, level)
        return level

    # ------------------------------------------------------------------------------------
    # Customers
    # ------------------------------------------------------------------------------------

    def customer(self, customer_id: str) -> dict[str, Any]:
        """A customer or 404."""
        return self._get("customer", str(customer_id), "customer")

    def _find_customer(self, email: str | None, phone: str | None) -> dict[str, Any] | None:
        for doc in self.store.list("customer"):
            if email and (doc.get("email") or "").lower() == email.lower():
                return doc
        for doc in self.store.list("customer"):
            if phone and doc.get("phone") == phone:
                return doc
        return None

    def _check_customer(self, data: dict[str, Any], existing_id: str | None = None) -> None:
        errors: dict[str, list[str]] = {}
        phone = data.get("phone")
        if phone is not None and len(str(phone)) > 20:
            errors["phone"] = ["is too long (maximum is 20 characters)"]
        email = data.get("email")
        if email and "@" not in str(email):
            errors["email"] = ["is invalid"]
        if email:
            other = self._find_customer(str(email), None)
            if other is not None and other["id"] != existing_id:
                errors["email"] = ["has already been taken"]
        if errors:
            raise ApiError(422, "; ".join(f"{k} {v[0]}" for k, v in errors.items()), errors)

    def build_customer(self, data: dict[str, Any], stamp: str | None = None) -> dict[str, Any]:
        """A customer document from a create body (validated, not stored)."""
        if not data.get("email") and not data.get("phone"):
            raise ApiError(422, "email or phone is required", {"email": ["can't be blank"]})
        self._check_customer(data)
        stamp = stamp or now_iso()
        return {
            "id": self.new_id("customer"),
            "email": data.get("email"),
            "phone": data.get("phone"),
            "area_code": data.get("area_code") or ("+44" if data.get("phone") else None),
            "first_name": data.get("first_name", ""),
            "last_name": data.get("last_name", ""),
            "addresses": data.get("addresses", []),
            "tags": data.get("tags", ""),
            "orders_count": 0,
            "total_spent": "0.00",
            "currency": self.currency,
            "accepts_marketing": bool(data.get("accepts_marketing", False)),
            "created_at": stamp,
            "updated_at": stamp,
        }

    def create_customer(self, data: dict[str, Any]) -> dict[str, Any]:
        """``POST /customers.json``."""
        with self.store.transaction():
            doc = self.build_customer(data)
            self.store.insert("customer", doc, id=doc["id"])
        self.emit("customers/create", doc)
        return doc

    def update_customer(self, customer_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """``PUT /customers/{id}.json``."""
        with self.store.transaction():
            doc = self.customer(customer_id)
            self._check_customer(changes, existing_id=doc["id"])
            for key in (
                "email",
                "phone",
                "area_code",
                "first_name",
                "last_name",
                "addresses",
                "tags",
            ):
                if key in changes:
                    doc[key] = changes[key]
            doc["updated_at"] = now_iso()
            self.store.update("customer", doc["id"], doc)
        self.emit("customers/update", doc)
        return doc

    @staticmethod
    def customer_matches(doc: dict[str, Any], query: str) -> bool:
        """Fuzzy search over phone, email, name and address, as ``search.json`` does."""
        needle = query.strip().lower()
        if not needle:
            return True
        fields = [doc.get("email"), doc.get("phone"), doc.get("first_name"), doc.get("last_name")]
        name = f"{doc.get('first_name') or ''} {doc.get('last_name') or ''}"
        fields.append(name)
        for address in doc.get("addresses") or []:
            fields.extend(address.get(k) for k in ("address1", "city", "zip", "country"))
        return any(needle in str(f).lower() for f in fields if f)

    # ------------------------------------------------------------------------------------
    # Orders
    # ------------------------------------------------------------------------------------

    def order(self, order_id: str) -> dict[str, Any]:
        """An order document or 404."""
        return self._get("order", str(order_id), "order")

    def _next_order_number(self) -> int:
        number = int(self.store.get_meta("order_number", str(quirks.FIRST_ORDER_NUMBER - 1)) or 0)
        number += 1
        self.store.set_meta("order_number", str(number))
        return number

    def _resolve_customer(self, spec: dict[str, Any], stamp: str) -> tuple[dict | None, bool]:
        if spec.get("id"):
            return self.customer(str(spec["id"])), False
        email, phone = spec.get("email"), spec.get("phone")
        if not email and not phone:
            return None, False
        found = self._find_customer(email, phone)
        if found is not None:
            return found, False
        doc = self.build_customer(spec, stamp)
        self.store.insert("customer", doc, id=doc["id"])
        return doc, True

    def _find_variant_by_sku(self, sku: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        ref = self.store.get("sku_ref", sku)
        return self.variant(ref["variant_id"]) if ref else None

    def create_order(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Place an order as the storefront does (the control API and ``POST /orders.json``).

        ``spec``: ``line_items[{sku | variant_id, quantity, price?, discount?, discount_title?,
        tax_line?, location_id?}]``, ``customer{id | email, phone, area_code, first_name,
        last_name}``, ``shipping_title``, ``shipping_price`` (list price),
        ``shipping_discounted_price`` (charged), ``shipping_code``, ``shipping_tax_line``,
        ``discount_code{code, type, value}``, ``order_discount``, ``taxes_included``,
        ``gateway``, ``paid`` (captured at checkout), ``authorize`` (authorised only, captured
        later), ``payments`` (amounts captured at checkout, when not the whole total),
        ``location_id``, ``created_at``, ``note``, ``buyer_note``, ``tags``, ``order_source``,
        ``shipping_address``, ``omit`` (``keys`` | ``null``) and ``omit_fields``; ``checkout``
        refuses sold-out ``deny`` variants as the storefront does (admin-created orders may
        oversell). Money comes from :func:`~stokline.sandbox.shopline.pricing.price_order`.
        """
        events: list[tuple[str, dict[str, Any]]] = []
        with self.store.transaction():
            order = self._build_order(spec, events)
            self.store.insert("order", order, id=order["id"])
            stamp = order["created_at"]
            if spec.get("authorize"):
                self._authorize(order, events, stamp=stamp)
            payments = spec.get("payments")
            if payments:
                for amount in payments:
                    self._pay(order, events, stamp=stamp, amount=money_field(amount, "amount"))
            elif spec.get("paid"):
                self._pay(order, events, stamp=stamp)
            self.store.update("order", order["id"], order)
        for topic, payload in events:
            self.emit(topic, payload)
        return order

    def _build_order(
        self, spec: dict[str, Any], events: list[tuple[str, dict[str, Any]]]
    ) -> dict[str, Any]:
        lines_in = spec.get("line_items") or []
        if not lines_in:
            raise ApiError(422, "line_items can't be blank", {"line_items": ["can't be blank"]})
        stamp = now_iso()
        if spec.get("created_at"):
            try:
                stamp = parse_time(str(spec["created_at"])).replace(microsecond=0).isoformat()
            except ValueError:
                raise ApiError(
                    422, "created_at is invalid", {"created_at": ["is invalid"]}
                ) from None
        currency = self.currency
        shipping_title = spec.get("shipping_title") or quirks.DEFAULT_SHIPPING_TITLE
        pickup_location = quirks.PICKUP_LOCATIONS.get(shipping_title)
        default_location = str(
            spec.get("location_id") or pickup_location or self._default_location_id()
        )
        self.location(default_location)
        customer, created = self._resolve_customer(spec.get("customer") or {}, stamp)
        if created and customer is not None:
            events.append(("customers/create", dict(customer)))

        pricing_lines: list[dict[str, Any]] = []
        variants: list[dict[str, Any]] = []
        line_items: list[dict[str, Any]] = []
        for offset, line in enumerate(lines_in):
            quantity = number_field(line.get("quantity"), "quantity", minimum=1)
            product, variant = self._line_variant(line)
            location_id = str(line.get("location_id") or default_location)
            line_items.append(self._line_doc(product, variant, offset, quantity, location_id))
            pricing_lines.append(self._pricing_line(line, quantity))
            variants.append(self._pricing_variant(variant))
            if quirks.ORDERS_DECREMENT_STOCK:
                level = self._take_stock(
                    variant, location_id, quantity, checkout=bool(spec.get("checkout"))
                )
                if level is not None:
                    events.append(("inventory_levels/update", self._level_event(level)))

        list_shipping = spec.get("shipping_price")
        if list_shipping in (None, ""):
            list_shipping = quirks.SHIPPING_PRICES.get(
                shipping_title, quirks.DEFAULT_SHIPPING_PRICE
            )
        pricing_spec: dict[str, Any] = {
            "line_items": pricing_lines,
            "shipping_price": money(money_field(list_shipping, "shipping_lines.price")),
            "taxes_included": spec.get("taxes_included", True) is not False,
        }
        for key in (
            "discount_code",
            "order_discount",
            "order_discount_title",
            "shipping_discounted_price",
            "shipping_code",
            "shipping_tax_line",
        ):
            if spec.get(key) not in (None, ""):
                pricing_spec[key] = spec[key]
        priced = self._price(pricing_spec, variants)
        number = self._next_order_number()
        gateway = spec.get("gateway") or "shopline_payments"
        email = (customer or {}).get("email") or spec.get("email")
        phone = None
        if customer and customer.get("phone"):
            phone = f"{customer.get('area_code') or ''}{customer['phone']}"
        address = spec.get("shipping_address") or self._default_address(customer)
        pickup = pickup_location is not None
        order: dict[str, Any] = {
            "id": self.new_id("order"),
            "name": f"{quirks.ORDER_NAME_PREFIX}{number}",
            "order_number": number,
            "email": email,
            "phone": phone,
            "user_id": (customer or {}).get("id"),
            "buyer_id": (customer or {}).get("id"),
            "store_id": self.store_id,
            "currency": currency,
            "presentment_currency": currency,
            "created_at": stamp,
            "updated_at": stamp,
            "processed_at": None,
            "order_at": stamp,
            "cancelled_at": None,
            "cancel_reason": None,
            "status": "open",
            "financial_status": "unpaid",
            "fulfillment_status": None,
            "taxes_included": True,
            "tags": spec.get("tags", ""),
            "note": spec.get("note", ""),
            "buyer_note": spec.get("buyer_note", ""),
            "note_attributes": spec.get("note_attributes", []),
            "payment_gateway_names": [gateway],
            "order_source": spec.get("order_source", "web"),
            "pos_location_id": None,
            "hidden_order": False,
            "locations": [
                {
                    "location_id": default_location,
                    "type": "pickupLocation" if pickup else "productLocation",
                }
            ],
            "customer": self._order_customer(customer),
            "line_items": line_items,
            "shipping_lines": [
                {
                    "title": shipping_title,
                    "code": quirks.SHIPPING_CODES.get(shipping_title, shipping_title.lower()),
                    "source": "shopline",
                }
            ],
            "shipping_address": address,
            "billing_address": address,
            "payment_details": [],
            "_gateway": gateway,
            "_pricing": pricing_spec,
            "_transactions": [],
            "_refunds": [],
            "_fulfillments": [],
        }
        omit = spec.get("omit")
        if omit not in (None, ""):
            if omit not in ("keys", "null"):
                raise ApiError(422, "omit must be keys or null", {"omit": ["is invalid"]})
            order["_omit"] = {
                "mode": omit,
                "fields": list(spec.get("omit_fields") or quirks.OMITTABLE_FIELDS),
            }
        self._apply_prices(order, priced)
        events.append(("orders/create", public(order)))
        if customer is not None:
            customer["orders_count"] = int(customer.get("orders_count") or 0) + 1
            self.store.update("customer", customer["id"], customer)
        return order

    def _line_variant(self, line: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        if line.get("variant_id"):
            return self.variant(str(line["variant_id"]))
        if line.get("sku"):
            found = self._find_variant_by_sku(str(line["sku"]))
            if found is None:
                raise ApiError(422, f"sku {line['sku']} not found", {"sku": ["not found"]})
            return found
        raise ApiError(422, "variant_id or sku required", {"line_items": ["is invalid"]})

    @staticmethod
    def _line_doc(
        product: dict[str, Any],
        variant: dict[str, Any],
        offset: int,
        quantity: int,
        location_id: str,
    ) -> dict[str, Any]:
        """A line item without its money (:meth:`_apply_prices` adds it)."""
        return {
            "id": str(quirks.LINE_ITEM_ID_START + offset),
            "product_id": product["id"],
            "variant_id": variant["id"],
            "sku": variant["sku"],
            "title": product["title"],
            "name": f"{product['title']} - {variant['title']}",
            "variant_title": variant["title"],
            "vendor": product.get("vendor", ""),
            "quantity": quantity,
            "location_id": location_id,
            "fulfillable_quantity": quantity,
            "fulfillment_status": None,
            "requires_shipping": bool(variant.get("required_shipping", True))
            and not variant.get("_gift_card"),
            "taxable": bool(variant.get("taxable", True)),
            "gift_card": bool(variant.get("_gift_card", False)),
            "grams": grams_of(variant),
            "properties": [],
            "_refunded_quantity": 0,
            "_refunded_subtotal": "0.00",
            "_refunded_tax": "0.00",
        }

    @staticmethod
    def _pricing_line(line: dict[str, Any], quantity: int) -> dict[str, Any]:
        """What pricing needs of a spec line: quantity, price override, discount, tax line."""
        out: dict[str, Any] = {"quantity": quantity}
        if line.get("price") not in (None, ""):
            out["price"] = money(money_field(line["price"], "price"))
        discount = line.get("discount")
        if discount not in (None, ""):
            out["discount"] = money(money_field(discount, "line_items.discount"))
            if line.get("discount_title"):
                out["discount_title"] = str(line["discount_title"])
        if isinstance(line.get("tax_line"), dict):
            out["tax_line"] = dict(line["tax_line"])
        return out

    @staticmethod
    def _pricing_variant(variant: dict[str, Any]) -> dict[str, Any]:
        return {
            "price": variant["price"],
            "taxable": bool(variant.get("taxable", True)),
            "_vat_title": variant.get("_vat_title", pricing.DEFAULT_TAX_TITLE),
        }

    def _price(self, spec: dict[str, Any], variants: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            return pricing.price_order(spec, variants, currency=self.currency)
        except pricing.PricingError as exc:
            raise ApiError(422, str(exc), {exc.field: [exc.message]}) from None

    def _order_variants(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            self._pricing_variant(self.variant(li["variant_id"])[1]) for li in order["line_items"]
        ]

    @staticmethod
    def _apply_prices(order: dict[str, Any], priced: dict[str, Any]) -> None:
        """Write priced money into the order: lines, shipping line and order totals.

        ``total_outstanding`` and ``current_total_price`` follow what was captured and refunded.
        """
        for line, money_of in zip(order["line_items"], priced["line_items"], strict=True):
            line.update(money_of)
        order["shipping_lines"][0].update(priced["shipping_lines"][0])
        for key, value in priced.items():
            if key not in ("line_items", "shipping_lines"):
                order[key] = value
        currency = order["currency"]
        captured, refunded = ShoplineState._paid_refunded(order)
        total = Decimal(order["total_price"])
        order["total_outstanding"] = money(total - captured)
        order["total_outstanding_set"] = money_set(total - captured, currency)
        order["current_total_price"] = money(total - refunded)
        order["current_total_price_set"] = money_set(total - refunded, currency)

    @staticmethod
    def _default_address(customer: dict[str, Any] | None) -> dict[str, Any] | None:
        if not customer:
            return None
        if customer.get("addresses"):
            return dict(customer["addresses"][0])
        first, last = customer.get("first_name") or "", customer.get("last_name") or ""
        return {
            "first_name": first,
            "last_name": last,
            "name": f"{first} {last}".strip(),
            "phone": customer.get("phone"),
            "company": None,
            "address1": "1 High Street",
            "address2": None,
            "city": "Leeds",
            "district": None,
            "province": "West Yorkshire",
            "province_code": None,
            "country": "United Kingdom",
            "country_code": "GB",
            "zip": "LS1 1AA",
        }

    @staticmethod
    def _order_customer(customer: dict[str, Any] | None) -> dict[str, Any] | None:
        if customer is None:
            return None
        keys = ("id", "email", "phone", "area_code", "first_name", "last_name")
        out = {k: customer.get(k) for k in keys}
        addresses = customer.get("addresses") or []
        out.update(
            # One object, the customer's first address, as the official SDK's order model has
            # customer.addresses (get_orders.go); the customers API keeps the list.
            addresses=dict(addresses[0]) if addresses else None,
            currency=customer.get("currency"),
            created_at=customer.get("created_at"),
            updated_at=customer.get("updated_at"),
        )
        return out

    def _deal_id(self, gateway: str, seed: str) -> str:
        digest = hashlib.sha256(seed.encode()).hexdigest()
        return {
            "shopline_payments": f"pi_3{digest[:22]}",
            "paypal": f"PAYID-{digest[:20].upper()}",
            "klarna": f"kl_{digest[:8]}-{digest[8:12]}-{digest[12:16]}",
        }.get(gateway, f"tx_{digest[:24]}")

    def _transaction(
        self,
        order: dict[str, Any],
        kind: str,
        amount: Decimal,
        stamp: str,
        detail: dict[str, Any] | None,
        parent_id: str | None = None,
    ) -> dict[str, Any]:
        return {
            "id": self.new_id("transaction"),
            "order_id": order["id"],
            "kind": kind,
            "gateway": order["_gateway"],
            "amount": money(amount),
            "currency": order["currency"],
            "status": "success",
            "status_code": "0",
            "status_msg": "success",
            "error_code": None,
            "error_msg": None,
            "parent_id": parent_id,
            "payment_details": detail or {},
            "receipt": {},
            "created_at": stamp,
            "processed_at": stamp,
        }

    def _authorization(self, order: dict[str, Any]) -> dict[str, Any] | None:
        return next((t for t in order["_transactions"] if t["kind"] == "authorization"), None)

    def _authorize(self, order: dict[str, Any], events: list, stamp: str | None = None) -> None:
        """Authorise the order's total at checkout; captures follow ([I] Shopify-like kinds)."""
        stamp = stamp or now_iso()
        gateway = order["_gateway"]
        pay_seq = self.new_id("payment")
        detail = {
            "pay_seq": pay_seq,
            "pay_channel_deal_id": self._deal_id(gateway, pay_seq),
            "gateway": gateway,
            "pay_channel": PAY_CHANNELS.get(gateway, gateway),
            "pay_amount": amount_number(order["total_outstanding"]),
            "settle_currency": order["currency"],
            "settle_pay_amount": amount_number(order["total_outstanding"]),
            "create_time": stamp,
            "processed_at": stamp,
            "status_code": "0",
            "status_msg": "success",
            "pay_status": "pending",
        }
        transaction = self._transaction(
            order, "authorization", Decimal(order["total_outstanding"]), stamp, detail
        )
        order["_transactions"].append(transaction)
        order["financial_status"] = "authorized"
        order["processed_at"] = stamp
        order["updated_at"] = stamp

    def _pay(
        self,
        order: dict[str, Any],
        events: list,
        stamp: str | None = None,
        *,
        amount: Decimal | None = None,
        reuse_deal_id: bool = False,
    ) -> dict[str, Any]:
        """Take a payment: a ``sale``, or a ``capture`` of the order's authorisation.

        ``amount`` defaults to what is outstanding. Each payment has its own
        ``payment_details[]`` entry and ``pay_seq``; ``reuse_deal_id`` gives a capture the
        authorisation's ``pay_channel_deal_id`` (some gateways reuse it) [I].
        """
        stamp = stamp or now_iso()
        gateway = order["_gateway"]
        outstanding = Decimal(order["total_outstanding"])
        amount = outstanding if amount is None else amount
        if amount <= 0 or amount > outstanding:
            raise ApiError(
                422,
                f"amount must be between 0.01 and the outstanding {money(outstanding)}",
                {"amount": [f"must be between 0.01 and {money(outstanding)}"]},
            )
        authorization = self._authorization(order)
        pay_seq = self.new_id("payment")
        deal_id = self._deal_id(gateway, pay_seq)
        if authorization is not None and reuse_deal_id:
            deal_id = authorization["payment_details"].get("pay_channel_deal_id") or deal_id
        detail = {
            "pay_seq": pay_seq,
            "pay_channel_deal_id": deal_id,
            "gateway": gateway,
            "pay_channel": PAY_CHANNELS.get(gateway, gateway),
            # Numbers, as the official SDK's order model has them (get_orders.go: float64).
            "pay_amount": amount_number(amount),
            "settle_currency": order["currency"],
            "settle_pay_amount": amount_number(amount),
            "create_time": stamp,
            "processed_at": stamp,
            "status_code": "0",
            "status_msg": "success",
            "pay_status": "paid",
        }
        kind = "capture" if authorization is not None else "sale"
        transaction = self._transaction(
            order,
            kind,
            amount,
            stamp,
            detail,
            parent_id=authorization["id"] if authorization is not None else None,
        )
        order["payment_details"].append(detail)
        order["_transactions"].append(transaction)
        left = outstanding - amount
        order["total_outstanding"] = money(left)
        order["total_outstanding_set"] = money_set(left, order["currency"])
        _, refunded = self._paid_refunded(order)
        if left > 0:
            order["financial_status"] = "partially_paid"
        elif refunded > 0:
            order["financial_status"] = "partially_refunded"
        else:
            order["financial_status"] = "paid"
        order["processed_at"] = order.get("processed_at") or stamp
        order["updated_at"] = stamp
        if order.get("customer"):
            customer = self.store.get("customer", order["customer"]["id"])
            if customer is not None:
                spent = Decimal(customer.get("total_spent") or "0") + amount
                customer["total_spent"] = money(spent)
                self.store.update("customer", customer["id"], customer)
        if left <= 0:
            events.append(("orders/paid", public(order)))
        events.append(
            (
                "order_transactions/create",
                {
                    k: detail[k]
                    for k in (
                        "pay_seq",
                        "pay_status",
                        "pay_channel_deal_id",
                        "pay_amount",
                        "create_time",
                    )
                },
            )
        )
        return transaction

    def pay_order(self, order_id: str) -> dict[str, Any]:
        """Capture payment for an unpaid order (the buyer completes checkout), or what is left."""
        events: list[tuple[str, dict[str, Any]]] = []
        with self.store.transaction():
            order = self.order(order_id)
            if order["status"] == "cancelled":
                raise ApiError(422, "order is cancelled", {"order": ["is cancelled"]})
            if Decimal(order["total_outstanding"]) <= 0:
                raise ApiError(
                    422, "order is already paid", {"financial_status": [order["financial_status"]]}
                )
            self._pay(order, events)
            self.store.update("order", order["id"], order)
            events.append(("orders/updated", public(order)))
        for topic, payload in events:
            self.emit(topic, payload)
        return order

    def capture_order(
        self,
        order_id: str,
        amount: Decimal | str | None = None,
        *,
        at: str | None = None,
        reuse_deal_id: bool = False,
    ) -> dict[str, Any]:
        """Capture ``amount`` (default: everything outstanding) at ``at`` (ISO 8601, default now).

        An authorised order goes ``partially_paid`` until the last capture makes it ``paid``;
        each capture is its own ``capture`` transaction and ``payment_details[]`` entry.
        """
        stamp = None
        if at:
            try:
                stamp = parse_time(str(at)).replace(microsecond=0).isoformat()
            except ValueError:
                raise ApiError(422, "at is invalid", {"at": ["is invalid"]}) from None
        wanted = None if amount in (None, "") else money_field(amount, "amount")
        events: list[tuple[str, dict[str, Any]]] = []
        with self.store.transaction():
            order = self.order(order_id)
            if order["status"] == "cancelled":
                raise ApiError(422, "order is cancelled", {"order": ["is cancelled"]})
            self._pay(order, events, stamp, amount=wanted, reuse_deal_id=reuse_deal_id)
            self.store.update("order", order["id"], order)
            events.append(("orders/updated", public(order)))
        for topic, payload in events:
            self.emit(topic, payload)
        return order

    _ORDER_UPDATABLE = (
        "note",
        "buyer_note",
        "tags",
        "email",
        "phone",
        "note_attributes",
        "shipping_address",
    )

    def update_order(self, order_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """``PUT /orders/{id}.json``: the editable fields only; others are 422."""
        unknown = sorted(set(changes) - set(self._ORDER_UPDATABLE) - {"id"})
        if unknown:
            raise ApiError(
                422,
                f"fields cannot be updated: {', '.join(unknown)}",
                {k: ["cannot be updated"] for k in unknown},
            )
        with self.store.transaction():
            order = self.order(order_id)
            order.update(changes)
            order["id"] = str(order_id)
            order["updated_at"] = now_iso()
            self.store.update("order", order["id"], order)
        self.emit("orders/updated", public(order))
        return order

    def edit_order(
        self,
        order_id: str,
        *,
        quantities: dict[str, int] | None = None,
        add: list[dict[str, Any]] | None = None,
        remove: list[str] | None = None,
    ) -> dict[str, Any]:
        """The merchant edits an order: changes line quantities, adds or removes lines.

        The order is priced again with its discounts; stock follows the change. A line can
        lose only units neither shipped nor refunded; a removed line must be untouched.
        [I] An edit may raise the total of a paid order (it becomes ``partially_paid`` until
        the difference is captured) but not lower it below what was paid: lowering a paid
        order is a refund. Fires ``orders/edited`` [I: its payload here is the order] and
        ``orders/updated``.
        """
        quantities = {str(k): v for k, v in (quantities or {}).items()}
        remove = [str(r) for r in remove or []]
        add = list(add or [])
        if not quantities and not remove and not add:
            raise ApiError(422, "nothing to edit", {"line_items": ["no change"]})
        events: list[tuple[str, dict[str, Any]]] = []
        with self.store.transaction():
            order = self.order(order_id)
            if order["status"] == "cancelled":
                raise ApiError(422, "order is cancelled", {"order": ["is cancelled"]})
            if "_pricing" not in order:  # stored by an older sandbox, before orders kept it
                raise ApiError(422, "order cannot be edited", {"order": ["cannot be edited"]})
            lines = {li["id"]: li for li in order["line_items"]}
            spec_lines = dict(zip(lines, order["_pricing"]["line_items"], strict=True))
            changes: list[tuple[dict[str, Any], int]] = []  # (line, quantity delta)
            for line_id, wanted in quantities.items():
                line = lines.get(line_id)
                if line is None:
                    raise ApiError(
                        422, f"line item {line_id} not found", {"line_items": ["id is invalid"]}
                    )
                wanted = number_field(wanted, "quantity", minimum=1)
                locked = line["quantity"] - line["fulfillable_quantity"]
                if wanted < locked:
                    raise ApiError(
                        422,
                        f"line item {line_id} has {locked} units shipped or refunded",
                        {"quantity": [f"must be at least {locked}"]},
                    )
                changes.append((line, wanted - line["quantity"]))
            for line_id in remove:
                line = lines.get(line_id)
                if line is None:
                    raise ApiError(
                        422, f"line item {line_id} not found", {"line_items": ["id is invalid"]}
                    )
                if line["fulfillable_quantity"] != line["quantity"]:
                    raise ApiError(
                        422,
                        f"line item {line_id} has units shipped or refunded",
                        {"line_items": ["cannot be removed"]},
                    )
                changes.append((line, -line["quantity"]))
            if len(remove) >= len(lines) and not add:
                raise ApiError(
                    422, "an order keeps at least one line", {"line_items": ["can't be blank"]}
                )
            stamp = now_iso()
            for line, delta in changes:
                _, variant = self.variant(line["variant_id"])
                if delta > 0:
                    level = self._take_stock(variant, line["location_id"], delta, checkout=False)
                elif delta < 0:
                    level = self._return_stock(variant, line["location_id"], -delta, stamp)
                else:
                    level = None
                if level is not None:
                    events.append(("inventory_levels/update", self._level_event(level)))
                line["quantity"] += delta
                line["fulfillable_quantity"] += delta
                spec_lines[line["id"]]["quantity"] = line["quantity"]
            kept = [li for li in order["line_items"] if li["id"] not in remove]
            next_offset = (
                max(int(li["id"]) for li in order["line_items"]) + 1 - quirks.LINE_ITEM_ID_START
            )
            for offset, raw in enumerate(add, start=next_offset):
                quantity = number_field(raw.get("quantity", 1), "quantity", minimum=1)
                product, variant = self._line_variant(raw)
                location_id = str(raw.get("location_id") or kept[0]["location_id"])
                line = self._line_doc(product, variant, offset, quantity, location_id)
                kept.append(line)
                spec_lines[line["id"]] = self._pricing_line(raw, quantity)
                level = self._take_stock(variant, location_id, quantity, checkout=False)
                if level is not None:
                    events.append(("inventory_levels/update", self._level_event(level)))
            order["line_items"] = kept
            order["_pricing"]["line_items"] = [spec_lines[li["id"]] for li in kept]
            captured, _ = self._paid_refunded(order)
            priced = self._price(order["_pricing"], self._order_variants(order))
            if captured > 0 and Decimal(priced["total_price"]) < captured:
                raise ApiError(
                    422,
                    f"the edited total {priced['total_price']} is below the {money(captured)} "
                    "paid: refund instead",
                    {"line_items": ["edit would lower a paid order below what was paid"]},
                )
            self._apply_prices(order, priced)
            if Decimal(order["total_outstanding"]) > 0 and captured > 0:
                order["financial_status"] = "partially_paid"
            order["updated_at"] = stamp
            self.store.update("order", order["id"], order)
            events.append(("orders/edited", public(order)))
            events.append(("orders/updated", public(order)))
        for topic, payload in events:
            self.emit(topic, payload)
        return order

    def _return_stock(
        self, variant: dict[str, Any], location_id: str, quantity: int, stamp: str
    ) -> dict[str, Any] | None:
        key = f"{variant['inventory_item_id']}:{location_id}"
        level = self.store.get("inventory_level", key)
        if level is None:
            return None
        level["available"] += quantity
        level["updated_at"] = stamp
        self.store.update("inventory_level", key, level)
        return level

    def cancel_order(self, order_id: str, reason: str | None = None) -> dict[str, Any]:
        """``POST /orders/{id}/cancel.json``: refused once anything shipped; paid orders refund."""
        events: list[tuple[str, dict[str, Any]]] = []
        with self.store.transaction():
            order = self.order(order_id)
            if order["status"] == "cancelled":
                raise ApiError(422, "order is already cancelled", {"status": ["cancelled"]})
            if any(f["status"] == "success" for f in order["_fulfillments"]):
                raise ApiError(
                    422, "order has fulfillments", {"fulfillment_status": ["is not null"]}
                )
            stamp = now_iso()
            captured, _ = self._paid_refunded(order)
            if quirks.CANCEL_REFUNDS_PAID and captured > 0:
                remaining = self._refundable(order)
                if remaining > 0:
                    body = {
                        "note": f"Order cancelled: {reason or 'other'}",
                        "refund_line_items": [
                            {
                                "line_item_id": li["id"],
                                "quantity": li["fulfillable_quantity"],
                                "type": "Unshipped",
                                "restock_type": "cancel",
                            }
                            for li in order["line_items"]
                            if li["fulfillable_quantity"] > 0
                        ],
                        "transactions": [{"kind": "refund", "amount": money(remaining)}],
                    }
                    self._refund(order, body, events, reason=reason or "other")
            authorization = self._authorization(order)
            outstanding = Decimal(order["total_outstanding"])
            if authorization is not None and outstanding > 0:
                # [I] what was authorised and not captured is voided (Shopify's "void" kind).
                void = self._transaction(
                    order, "void", outstanding, stamp, None, parent_id=authorization["id"]
                )
                order["_transactions"].append(void)
                if captured == 0:
                    # [I] SHOPLINE documents no "voided" (Shopify's word): nothing was paid.
                    order["financial_status"] = "unpaid"
            order["total_outstanding"] = "0.00"
            order["total_outstanding_set"] = money_set(0, order["currency"])
            order["status"] = "cancelled"
            order["cancelled_at"] = stamp
            order["cancel_reason"] = reason or "other"
            order["updated_at"] = stamp
            for li in order["line_items"]:
                li["fulfillable_quantity"] = 0
            self.store.update("order", order["id"], order)
            events.append(("orders/cancelled", public(order)))
            events.append(("orders/updated", public(order)))
        for topic, payload in events:
            self.emit(topic, payload)
        return order

    # -- refunds --------------------------------------------------------------------------

    def create_refund(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /order/refund.json``."""
        if not body.get("order_id"):
            raise ApiError(422, "order_id is required", {"order_id": ["is required"]})
        events: list[tuple[str, dict[str, Any]]] = []
        with self.store.transaction():
            order = self.order(str(body["order_id"]))
            refund = self._refund(order, body, events)
            self.store.update("order", order["id"], order)
            events.append(("orders/updated", public(order)))
        for topic, payload in events:
            self.emit(topic, payload)
        return refund

    def calculate_refund(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /orders/{id}/refunds/calculate.json``: the refund that *would* be made.

        Runs the real refund inside a transaction and rolls it back, so the calculation can
        never drift from what ``POST /order/refund.json`` would do.
        """
        outcome: dict[str, Any] = {}
        try:
            with self.store.transaction():
                order = self.order(order_id)
                outcome = self._refund(order, {**body, "order_id": order_id}, [])
                raise _Rollback
        except _Rollback:
            pass
        for transaction in outcome["transactions"]:
            transaction["kind"] = "suggested_refund"
        outcome.pop("id", None)
        return outcome

    @staticmethod
    def _paid_refunded(order: dict[str, Any]) -> tuple[Decimal, Decimal]:
        """Money captured (``sale`` and ``capture`` transactions) and refunded so far."""
        paid, refunded = Decimal(0), Decimal(0)
        for t in order["_transactions"]:
            if t["kind"] in ("sale", "capture"):
                paid += Decimal(t["amount"])
            elif t["kind"] == "refund":
                refunded += Decimal(t["amount"])
        return paid, refunded

    def _refundable(self, order: dict[str, Any]) -> Decimal:
        paid, refunded = self._paid_refunded(order)
        return paid - refunded

    @staticmethod
    def _line_net(line: dict[str, Any]) -> Decimal:
        """What the buyer pays for the whole line: price × quantity less its allocations."""
        allocated = sum(
            (Decimal(a["amount"]) for a in line.get("discount_allocations") or []), Decimal(0)
        )
        return Decimal(line["price"]) * line["quantity"] - allocated

    def _refund_line(
        self, order: dict[str, Any], line: dict[str, Any], quantity: int
    ) -> tuple[Decimal, Decimal]:
        """Subtotal (after the line's discounts) and tax refunded for ``quantity`` units.

        The last units refunded take what is left, so a line refunded in parts gives back
        exactly what was charged for it.
        """
        net = self._line_net(line)
        tax_total = sum((Decimal(t["price"]) for t in line.get("tax_lines") or []), Decimal(0))
        done_subtotal = Decimal(line.get("_refunded_subtotal") or "0")
        done_tax = Decimal(line.get("_refunded_tax") or "0")
        if line["_refunded_quantity"] + quantity >= line["quantity"]:
            return net - done_subtotal, tax_total - done_tax
        share = Decimal(quantity) / Decimal(line["quantity"])
        subtotal = (net * share).quantize(CENT, rounding=ROUND_HALF_UP)
        tax = (tax_total * share).quantize(CENT, rounding=ROUND_HALF_UP)
        return subtotal, tax

    def _refund(
        self,
        order: dict[str, Any],
        body: dict[str, Any],
        events: list,
        reason: str | None = None,
    ) -> dict[str, Any]:
        paid, refunded = self._paid_refunded(order)
        if paid <= 0:
            raise ApiError(
                422,
                f"order cannot be refunded when {order['financial_status']}",
                {"financial_status": [order["financial_status"]]},
            )
        currency = order["currency"]
        included = order.get("taxes_included", True) is not False
        stamp = now_iso()
        lines = {li["id"]: li for li in order["line_items"]}
        refund_lines = []
        goods = Decimal(0)
        tax = Decimal(0)
        for raw in body.get("refund_line_items") or []:
            line = lines.get(str(raw.get("line_item_id")))
            if line is None:
                raise ApiError(422, "line_item_id is invalid", {"line_item_id": ["is invalid"]})
            quantity = number_field(raw.get("quantity"), "refund_line_items.quantity")
            left = line["quantity"] - line["_refunded_quantity"]
            if quantity < 1 or quantity > left:
                raise ApiError(
                    422,
                    f"quantity must be between 1 and {left}",
                    {"quantity": [f"must be between 1 and {left}"]},
                )
            # [I] without a type, units not yet shipped are refunded first (Unshipped).
            kind = raw.get("type") or (
                "Unshipped" if quantity <= line["fulfillable_quantity"] else "Returned"
            )
            if kind not in ("Unshipped", "Returned"):
                raise ApiError(422, "type is invalid", {"type": ["is invalid"]})
            if kind == "Unshipped" and quantity > line["fulfillable_quantity"]:
                raise ApiError(
                    422,
                    f"only {line['fulfillable_quantity']} unshipped units can be refunded",
                    {"quantity": [f"must be at most {line['fulfillable_quantity']}"]},
                )
            restock = raw.get("restock_type") or ("return" if kind == "Returned" else "cancel")
            if restock not in ("no_restock", "cancel", "return"):
                raise ApiError(422, "restock_type is invalid", {"restock_type": ["is invalid"]})
            subtotal, line_tax = self._refund_line(order, line, quantity)
            goods += subtotal + (Decimal(0) if included else line_tax)
            tax += line_tax
            line["_refunded_quantity"] += quantity
            line["_refunded_subtotal"] = money(Decimal(line["_refunded_subtotal"]) + subtotal)
            line["_refunded_tax"] = money(Decimal(line["_refunded_tax"]) + line_tax)
            if kind == "Unshipped":
                # Refunded unshipped units are no longer to be fulfilled, whatever the restock.
                line["fulfillable_quantity"] -= quantity
            if restock in ("cancel", "return"):
                location_id = str(raw.get("location_id") or line["location_id"])
                _, variant = self.variant(line["variant_id"])
                key = f"{variant['inventory_item_id']}:{location_id}"
                level = self.store.get("inventory_level", key)
                if level is not None:
                    level["available"] += quantity
                    level["updated_at"] = stamp
                    self.store.update("inventory_level", key, level)
                    events.append(("inventory_levels/update", self._level_event(level)))
            refund_lines.append(
                {
                    "id": self.new_id("refund"),
                    "line_item_id": line["id"],
                    "quantity": quantity,
                    "restock_type": restock,
                    "type": kind,
                    "location_id": raw.get("location_id") or line["location_id"],
                    "subtotal": money(subtotal),
                    "subtotal_set": money_set(subtotal, currency),
                    "total_tax": money(line_tax),
                    "total_tax_set": money_set(line_tax, currency),
                    "line_item": public(line),
                }
            )
        adjustments = []
        shipping = body.get("shipping") or {}
        ship_line = order["shipping_lines"][0] if order["shipping_lines"] else None
        ship_amount = Decimal(0)
        if ship_line is not None and (shipping.get("full_refund") or shipping.get("amount")):
            charged = Decimal(ship_line.get("discounted_price") or ship_line["price"])
            ship_tax_total = sum(
                (Decimal(t["price"]) for t in ship_line.get("tax_lines") or []), Decimal(0)
            )
            if not included:
                charged += ship_tax_total
            done = Decimal(order.get("_refunded_shipping") or "0")
            ship_left = charged - done
            ship_amount = (
                ship_left
                if shipping.get("full_refund")
                else money_field(shipping["amount"], "shipping.amount")
            )
            if ship_amount < 0 or ship_amount > ship_left:
                raise ApiError(
                    422,
                    f"shipping refund must be between 0 and {money(ship_left)}",
                    {"shipping": [f"amount must be at most {money(ship_left)}"]},
                )
            rate = (
                Decimal(str(ship_line["tax_lines"][0]["rate"]))
                if ship_line.get("tax_lines")
                else Decimal(0)
            )
            ship_tax = pricing.tax_of(ship_amount, rate, included=True)
            order["_refunded_shipping"] = money(done + ship_amount)
            if ship_amount > 0:
                adjustments.append(
                    {
                        "kind": "shipping_refund",
                        "reason": reason or "Shipping refund",
                        "amount": money(-ship_amount),
                        "tax_amount": money(-ship_tax),
                    }
                )
        computed = goods + ship_amount
        transactions_in = body.get("transactions") or []
        requested = sum(
            (money_field(t.get("amount"), "transactions.amount") for t in transactions_in),
            Decimal(0),
        )
        if not transactions_in and not refund_lines and not ship_amount:
            raise ApiError(422, "nothing to refund", {"refund_line_items": ["can't be blank"]})
        # [I] without transactions, the refund is what the lines and shipping come to, capped
        # at what is left to refund (an order discount no line carries was never paid).
        amount = requested if transactions_in else min(computed, paid - refunded)
        if amount + refunded > paid:
            raise ApiError(
                422,
                f"refund amount {money(amount)} exceeds the refundable {money(paid - refunded)}",
                {"transactions": ["amount exceeds the refundable amount"]},
            )
        if amount != computed:
            adjustments.append(
                {
                    "kind": "refund_discrepancy",
                    "reason": body.get("note") or "Refund discrepancy",
                    "amount": money(computed - amount),
                    "tax_amount": "0.00",
                }
            )
        refund_id = self.new_id("refund")
        payments = [t for t in order["_transactions"] if t["kind"] in ("sale", "capture")]
        parent = payments[-1] if payments else None
        transaction = self._transaction(
            order,
            "refund",
            amount,
            stamp,
            parent["payment_details"] if parent else None,
            parent_id=parent["id"] if parent else None,
        )
        transaction["channel_refund_id"] = (
            f"re_{hashlib.sha256(refund_id.encode()).hexdigest()[:24]}"
        )
        refund = {
            "id": refund_id,
            "order_id": order["id"],
            "note": body.get("note") or "",
            "created_at": stamp,
            "processed_at": stamp,
            "user_id": None,
            "restock": any(r["restock_type"] != "no_restock" for r in refund_lines),
            "refund_line_items": refund_lines,
            "order_adjustments": adjustments,
            "transactions": [
                {
                    k: transaction[k]
                    for k in (
                        "id",
                        "kind",
                        "status",
                        "gateway",
                        "amount",
                        "currency",
                        "channel_refund_id",
                    )
                }
            ],
        }
        order["_transactions"].append(transaction)
        order["_refunds"].append(refund)
        total_refunded = refunded + amount
        if Decimal(order["total_outstanding"]) <= 0 or order["financial_status"] in (
            "paid",
            "partially_refunded",
            "refunded",
        ):
            order["financial_status"] = (
                "refunded" if total_refunded >= paid else "partially_refunded"
            )
        current = Decimal(order["total_price"]) - total_refunded
        order["current_total_price"] = money(current)
        order["current_total_price_set"] = money_set(current, currency)
        order["updated_at"] = stamp
        if self._all_lines_done(order):
            order["fulfillment_status"] = self._fulfillment_status(order)
        events.append(("refunds/create", refund))
        return refund

    # -- fulfillments ---------------------------------------------------------------------

    @staticmethod
    def _all_lines_done(order: dict[str, Any]) -> bool:
        return all(li["fulfillable_quantity"] == 0 for li in order["line_items"])

    @staticmethod
    def _fulfillment_status(order: dict[str, Any]) -> str | None:
        shipped = sum(
            li["fulfillment_quantity"]
            for f in order["_fulfillments"]
            if f["status"] == "success"
            for li in f["line_items"]
        )
        if shipped == 0:
            return None
        if all(li["fulfillable_quantity"] == 0 for li in order["line_items"]):
            return "fulfilled"
        return "partial"

    def create_fulfillment(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /orders/{id}/fulfillments.json``; moves the order to partial or fulfilled."""
        tracking = body.get("tracking_info_list") or []
        if len(tracking) > 10:
            raise ApiError(
                422,
                "tracking_info_list can hold at most 10 entries",
                {"tracking_info_list": ["is too long (maximum is 10)"]},
            )
        events: list[tuple[str, dict[str, Any]]] = []
        with self.store.transaction():
            order = self.order(order_id)
            if order["status"] == "cancelled":
                raise ApiError(422, "order is cancelled", {"order": ["is cancelled"]})
            lines = {li["id"]: li for li in order["line_items"]}
            wanted = body.get("line_items")
            if not wanted:
                wanted = [
                    {"id": li["id"], "quantity": li["fulfillable_quantity"]}
                    for li in order["line_items"]
                    if li["fulfillable_quantity"] > 0
                ]
            if not wanted:
                raise ApiError(
                    422, "order has nothing left to fulfill", {"line_items": ["is empty"]}
                )
            stamp = now_iso()
            picked = []
            for raw in wanted:
                raw_id = raw.get("id")
                not_int = isinstance(raw_id, bool) or not isinstance(raw_id, int)
                if quirks.FULFILLMENT_LINE_ID_INTEGER and body.get("line_items") and not_int:
                    raise ApiError(
                        422,
                        "line_items[].id must be an integer",
                        {"line_items": ["id must be an integer"]},
                    )
                line = lines.get(str(raw.get("id")))
                if line is None:
                    raise ApiError(
                        422,
                        f"line item {raw.get('id')} not found",
                        {"line_items": ["id is invalid"]},
                    )
                quantity = number_field(raw.get("quantity"), "line_items.quantity")
                if quantity < 1 or quantity > line["fulfillable_quantity"]:
                    raise ApiError(
                        422,
                        f"quantity for line item {line['id']} must be between 1 and "
                        f"{line['fulfillable_quantity']}",
                        {"line_items": ["quantity exceeds fulfillable quantity"]},
                    )
                picked.append((line, quantity))
            for line, quantity in picked:
                line["fulfillable_quantity"] -= quantity
                line["fulfillment_status"] = (
                    "fulfilled" if line["fulfillable_quantity"] == 0 else "partial"
                )
            number = len(order["_fulfillments"]) + 1
            fulfillment = {
                "id": self.new_id("fulfillment"),
                "order_id": order["id"],
                "name": quirks.FULFILLMENT_NAME.format(number=order["order_number"], n=number),
                "status": "success",
                "shipment_status": None,
                "location_id": body.get("location_id") or picked[0][0]["location_id"],
                "notify_customer": bool(body.get("notify_customer", False)),
                "tracking_info_list": [self._tracking(t) for t in tracking],
                "line_items": [
                    {
                        **public(line),
                        "fulfillment_quantity": quantity,
                        "fulfillable_quantity": line["fulfillable_quantity"],
                    }
                    for line, quantity in picked
                ],
                "created_at": stamp,
                "updated_at": stamp,
            }
            order["_fulfillments"].append(fulfillment)
            order["fulfillment_status"] = self._fulfillment_status(order)
            order["updated_at"] = stamp
            self.store.update("order", order["id"], order)
            events.append(("fulfillments/create", fulfillment))
            topic = quirks.FULFILLMENT_TOPICS.get(order["fulfillment_status"] or "")
            if topic:
                events.append((topic, public(order)))
            events.append(("orders/updated", public(order)))
        for topic, payload in events:
            self.emit(topic, payload)
        return fulfillment

    @staticmethod
    def _tracking(raw: dict[str, Any]) -> dict[str, Any]:
        number = raw.get("tracking_number")
        if not number:
            raise ApiError(
                422,
                "tracking_number can't be blank",
                {"tracking_info_list": ["tracking_number can't be blank"]},
            )
        return {
            "tracking_number": str(number),
            "tracking_company": raw.get("tracking_company"),
            "tracking_url": raw.get("tracking_url"),
        }

    def _fulfillment(self, order: dict[str, Any], fulfillment_id: str) -> dict[str, Any]:
        match = next((f for f in order["_fulfillments"] if f["id"] == str(fulfillment_id)), None)
        if match is None:
            raise ApiError(404, "fulfillment not found", f"fulfillment {fulfillment_id} not found")
        return match

    def cancel_fulfillment(self, order_id: str, fulfillment_id: str) -> dict[str, Any]:
        """``POST .../fulfillments/{id}/cancel.json``: the lines become fulfillable again."""
        events: list[tuple[str, dict[str, Any]]] = []
        with self.store.transaction():
            order = self.order(order_id)
            fulfillment = self._fulfillment(order, fulfillment_id)
            if fulfillment["status"] == "cancelled":
                raise ApiError(422, "fulfillment is already cancelled", {"status": ["cancelled"]})
            lines = {li["id"]: li for li in order["line_items"]}
            for fl in fulfillment["line_items"]:
                line = lines[fl["id"]]
                line["fulfillable_quantity"] += fl["fulfillment_quantity"]
                line["fulfillment_status"] = (
                    None if line["fulfillable_quantity"] == line["quantity"] else "partial"
                )
            stamp = now_iso()
            fulfillment["status"] = "cancelled"
            fulfillment["updated_at"] = stamp
            order["fulfillment_status"] = self._fulfillment_status(order)
            order["updated_at"] = stamp
            self.store.update("order", order["id"], order)
            events.append(("fulfillments/update", fulfillment))
            events.append(("orders/updated", public(order)))
        for topic, payload in events:
            self.emit(topic, payload)
        return fulfillment

    def update_tracking(self, order_id: str, fulfillment_id: str, body: dict[str, Any]) -> dict:
        """``POST .../update_tracking.json``: replaces the whole tracking list."""
        tracking = body.get("tracking_info_list")
        if tracking is None:
            raise ApiError(
                422, "tracking_info_list is required", {"tracking_info_list": ["is required"]}
            )
        if len(tracking) > 10:
            raise ApiError(
                422,
                "tracking_info_list can hold at most 10 entries",
                {"tracking_info_list": ["is too long (maximum is 10)"]},
            )
        with self.store.transaction():
            order = self.order(order_id)
            fulfillment = self._fulfillment(order, fulfillment_id)
            fulfillment["tracking_info_list"] = [self._tracking(t) for t in tracking]
            fulfillment["updated_at"] = now_iso()
            self.store.update("order", order["id"], order)
        self.emit("fulfillments/update", fulfillment)
        return fulfillment
