"""The demo store: the demo client's catalogue, two locations, stock, customers, recent orders.

Orders cover every state the syncs must handle: paid, unpaid, refunded, partly refunded,
cancelled before and after payment, partly and fully fulfilled, click & collect, a gift card,
an SKU Stokly does not know, an override SKU, a case-only SKU difference, phone-only buyers.

For the audit: the catalogue's near-match SKUs are on draft products, kept off the storefront.
For the audit: unpaid orders, 5 to 8 days old, shipped by a method the demo mapping does not list.
For the audit: a phone-only buyer whose phone is that of a Stokly customer with an email.
For the audit: two levels that differ from what Stokly can sell there, one above, one below.
For the audit: an order paid a week ago through a gateway the mapping does not list, refunded.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from stokline.sandbox.catalogue import CatalogueEntry, demo_catalogue
from stokline.sandbox.common import DocStore
from stokline.sandbox.shopline.state import ShoplineState, now_iso

__all__ = [
    "DRIFTED_LEVELS",
    "OLD_ORDERS_SHIPPING",
    "PHONE_ONLY_BUYER",
    "UNMAPPED_GATEWAY",
    "seed_demo",
]

_FIRST = ("Ada", "Alan", "Grace", "Tim", "Mary", "Isambard", "Rosalind", "Charles", "Dorothy")
_LAST = ("Lovelace", "Turing", "Hopper", "Berners-Lee", "Anning", "Brunel", "Franklin", "Babbage")
_TOWNS = (
    ("Leeds", "LS6 2AB", "14 Headingley Lane"),
    ("York", "YO1 7HH", "3 Stonegate"),
    ("Bristol", "BS8 1TH", "22 Park Street"),
    ("Manchester", "M4 1HN", "8 Oldham Street"),
    ("Sheffield", "S1 2GH", "41 Division Street"),
    ("Kendal", "LA9 4DL", "5 Stricklandgate"),
)

#: For the audit: a shipping method the demo mapping's ``shipping.methods`` does not list, on
#: unpaid orders placed days ago. Older than the orders sweep's look-back and never paid, they
#: are never imported (the demo mapping would give them its default method).
OLD_ORDERS_SHIPPING = "Parcelforce Express 24"
#: For the audit: a payment gateway the demo mapping's ``payments.gateways`` does not list, on
#: one order paid a week ago and refunded in full the next day.
UNMAPPED_GATEWAY = "clearpay"
#: For the audit: a buyer who gave only a phone number, Morgan Hale's in the Stokly seed (a
#: customer with an email), so the mapping's identity rules link the two by phone.
PHONE_ONLY_BUYER: dict[str, str] = {
    "first_name": "Morgan",
    "last_name": "Hale",
    "phone": "7700900123",
    "area_code": "+44",
}
#: For the audit: SHOPLINE's available at (SHOPLINE SKU, location), set after the seeded orders.
#: Stokly holds 5 of every hand-written item at Bristol DC, all sellable at 7002 (buffer 0, and
#: no seeded order allocates or waits for these there): 12 stoves shown is an oversell risk,
#: 1 bottle shown sells less than the warehouse holds.
DRIFTED_LEVELS: dict[tuple[str, str], int] = {
    ("STOVE-MINI", "7002"): 12,
    ("acme-bottle-1l", "7002"): 1,
}


def _product_body(group: list[CatalogueEntry]) -> dict[str, Any]:
    head = group[0]
    names = [name for name, _ in head.options]
    return {
        "title": head.product_title,
        "status": head.shopline_status,
        "vendor": "Demo Outdoor",
        "product_type": head.product_type,
        "tags": head.product_type,
        "body_html": f"<p>{head.product_title}.</p>",
        "options": [
            {"name": name, "values": sorted({dict(e.options)[name] for e in group})}
            for name in names
        ],
        "variants": [
            {
                "sku": e.shopline_sku,
                "title": " / ".join(v for _, v in e.options) or "Default Title",
                "price": e.price,
                "barcode": e.barcode,
                "weight": str(e.weight_grams),  # a string, as the official SDK sends it
                "weight_unit": "g",
                "inventory_tracker": not e.gift_card,
                "required_shipping": not e.gift_card,
                **{f"option{i}": v for i, (_, v) in enumerate(e.options, start=1)},
                "_vat_title": e.vat_title,
                "_gift_card": e.gift_card,
            }
            for e in group
        ],
    }


def _address(first: str, last: str, town: tuple[str, str, str]) -> dict[str, Any]:
    city, postcode, street = town
    return {
        "first_name": first,
        "last_name": last,
        "name": f"{first} {last}",
        "phone": None,
        "company": None,
        "address1": street,
        "address2": None,
        "city": city,
        "district": None,
        "province": "",
        "province_code": None,
        "country": "United Kingdom",
        "country_code": "GB",
        "zip": postcode,
    }


def _customer(rng: random.Random, n: int, town: tuple[str, str, str]) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    kind = n % 3  # 0: email and phone, 1: email only, 2: phone only
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{first.lower()}.{last.lower()}{n}@example.com" if kind in (0, 1) else None,
        "phone": f"7700900{n:03d}" if kind in (0, 2) else None,
        "area_code": "+44" if kind in (0, 2) else None,
        "addresses": [_address(first, last, town)],
    }


def seed_demo(
    store: DocStore, *, skus: int = 300, seed: int = 7, handle: str = "demo-outdoor"
) -> dict[str, int]:
    """Fill an empty store with the demo data set; return the counts created."""
    rng = random.Random(seed)
    state = ShoplineState(store, handle=handle)
    stamp = now_iso()
    with store.transaction():
        store.set_meta("currency", "GBP")
        state.add_location(
            "7001",
            "Online store (UK)",
            is_default=True,
            address1="Unit 4, Thorpe Park",
            city="Leeds",
            zip="LS15 8ZB",
        )
        state.add_location(
            "7002",
            "Bristol click & collect",
            address1="12 Harbourside",
            city="Bristol",
            zip="BS1 5TX",
        )
        state.add_location(
            "7003", "Manchester pop-up (closed)", active=False, city="Manchester", zip="M1 1AE"
        )

        groups: OrderedDict[str, list[CatalogueEntry]] = OrderedDict()
        for entry in demo_catalogue(skus, seed):
            if entry.listed_on_shopline:
                groups.setdefault(entry.product_key, []).append(entry)
        built = [state.build_product(_product_body(g), stamp) for g in groups.values()]
        state.save_products(built)

        levels = []
        for product, items in built:
            for variant, item in zip(product["variants"], items, strict=True):
                if not variant["inventory_tracker"]:
                    continue
                for location in ("7001", "7002"):
                    roll = rng.random()
                    available = (
                        0
                        if roll < 0.08
                        else rng.randint(1, 3)
                        if roll < 0.2
                        else rng.randint(4, 60)
                    )
                    levels.append(
                        (
                            f"{item['id']}:{location}",
                            {
                                "inventory_item_id": item["id"],
                                "location_id": location,
                                "variant_id": variant["id"],
                                "available": available,
                                "updated_at": stamp,
                            },
                        )
                    )
        store.insert_many("inventory_level", levels)

        customers = []
        for n in range(1, 37):
            doc = state.build_customer(_customer(rng, n, rng.choice(_TOWNS)), stamp)
            store.insert("customer", doc, id=doc["id"])
            customers.append(doc)

        orders = _seed_orders(state, rng, customers, groups)
        # The audit's gaps come last: what the seed drew above is the same as without them.
        first, last = PHONE_ONLY_BUYER["first_name"], PHONE_ONLY_BUYER["last_name"]
        kendal = _TOWNS[5]
        buyer = state.build_customer(
            {**PHONE_ONLY_BUYER, "addresses": [_address(first, last, kendal)]}, stamp
        )
        store.insert("customer", buyer, id=buyer["id"])
        orders += _seed_old_orders(state, rng, customers, buyer, groups)
        _drift_levels(store, built)
        store.set_meta("seeded", stamp)
    return {
        "products": len(built),
        "variants": sum(len(p["variants"]) for p, _ in built),
        "inventory_levels": len(levels),
        "customers": len(customers) + 1,
        "orders": orders,
    }


def _ordinary_skus(groups: OrderedDict[str, list[CatalogueEntry]]) -> list[str]:
    """SKUs both sides know under one spelling: the ones seeded orders may use freely."""
    return [
        e.shopline_sku
        for group in groups.values()
        for e in group
        if e.known_to_stokly and e.shopline_sku == e.sku and not e.gift_card
    ]


def _seed_orders(
    state: ShoplineState,
    rng: random.Random,
    customers: list[dict[str, Any]],
    groups: OrderedDict[str, list[CatalogueEntry]],
) -> int:
    ordinary = _ordinary_skus(groups)
    listed = {e.shopline_sku for group in groups.values() for e in group}

    def pick(n: int = 1) -> list[dict[str, Any]]:
        return [{"sku": sku, "quantity": rng.randint(1, 2)} for sku in rng.sample(ordinary, n)]

    def sku_line(sku: str, quantity: int = 1) -> list[dict[str, Any]]:
        return [{"sku": sku, "quantity": quantity}] if sku in listed else pick()

    # (lines, shipping title, gateway, paid, customer kind, what happens next)
    scenarios: list[tuple[list[dict[str, Any]], str, str, bool, str, str]] = [
        (sku_line("TENT-2P-GRN"), "Royal Mail Tracked 48", "shopline_payments", True, "any", ""),
        (sku_line("STOVE-MINI"), "DPD Next Day", "paypal", True, "any", ""),
        (pick(2), "Royal Mail Tracked 48", "klarna", False, "any", ""),
        (pick(1), "DPD Next Day", "shopline_payments", True, "any", "refund"),
        (pick(2), "Royal Mail Tracked 48", "paypal", True, "any", "partial_refund"),
        (pick(1), "Royal Mail Tracked 48", "shopline_payments", False, "any", "cancel"),
        (pick(1), "DPD Next Day", "shopline_payments", True, "any", "cancel"),
        (pick(2), "Royal Mail Tracked 48", "shopline_payments", True, "any", "partial_fulfil"),
        (pick(1), "DPD Next Day", "klarna", True, "any", "fulfil"),
        (pick(1), "Click & Collect Bristol", "shopline_payments", True, "any", ""),
        (
            sku_line("GIFT-CARD-25") + pick(1),
            "Royal Mail Tracked 48",
            "shopline_payments",
            True,
            "any",
            "",
        ),
        (sku_line("ACME-HAMMOCK-XL-RED"), "Royal Mail Tracked 48", "paypal", True, "any", ""),
        (sku_line("acme-bottle-1l", 2), "Royal Mail Tracked 48", "shopline_payments", True, "", ""),
        (pick(1), "DPD Next Day", "shopline_payments", True, "phone_only", ""),
        (pick(1), "Royal Mail Tracked 48", "shopline_payments", True, "email_only", ""),
        (pick(1), "Evri Standard", "shopline_payments", True, "any", ""),
    ]
    for _ in range(12):
        paid = rng.random() < 0.85
        title = rng.choice(("Royal Mail Tracked 48", "DPD Next Day", "Click & Collect Bristol"))
        gateway = rng.choice(("shopline_payments", "shopline_payments", "paypal", "klarna"))
        scenarios.append((pick(rng.randint(1, 3)), title, gateway, paid, "any", ""))

    phone_only = [c for c in customers if not c.get("email")]
    email_only = [c for c in customers if not c.get("phone")]
    start = datetime.now(UTC) - timedelta(hours=len(scenarios) * 1.5 + 1)
    for index, (lines, title, gateway, paid, who, then) in enumerate(scenarios):
        pool = {"phone_only": phone_only, "email_only": email_only}.get(who, customers)
        customer = rng.choice(pool)
        created = start + timedelta(hours=index * 1.5, minutes=rng.randint(0, 50))
        order = state.create_order(
            {
                "line_items": lines,
                "customer": {"id": customer["id"]},
                "shipping_title": title,
                "gateway": gateway,
                "paid": paid,
                "created_at": created.replace(microsecond=0).isoformat(),
                "buyer_note": "Please leave in the porch" if index % 7 == 3 else "",
            }
        )
        order_id = order["id"]
        if then == "refund":
            state.create_refund(
                {
                    "order_id": order_id,
                    "note": "Customer changed their mind",
                    "refund_line_items": [
                        {"line_item_id": li["id"], "quantity": li["quantity"], "type": "Unshipped"}
                        for li in order["line_items"]
                    ],
                    "shipping": {"full_refund": True},
                }
            )
        elif then == "partial_refund":
            first = order["line_items"][0]
            state.create_refund(
                {
                    "order_id": order_id,
                    "note": "Damaged in transit",
                    "refund_line_items": [
                        {
                            "line_item_id": first["id"],
                            "quantity": 1,
                            "restock_type": "no_restock",
                            "type": "Returned",
                        }
                    ],
                }
            )
        elif then == "cancel":
            state.cancel_order(order_id, "customer")
        elif then in ("fulfil", "partial_fulfil"):
            lines_out = order["line_items"][:1] if then == "partial_fulfil" else []
            state.create_fulfillment(
                order_id,
                {
                    "line_items": [
                        {"id": int(li["id"]), "quantity": li["quantity"]} for li in lines_out
                    ],
                    "tracking_info_list": [
                        {
                            "tracking_number": f"RM{100000000 + index:09d}GB",
                            "tracking_company": "Royal Mail",
                            "tracking_url": "https://www.royalmail.com/track-your-item",
                        }
                    ],
                },
            )
    return len(scenarios)


def _seed_old_orders(
    state: ShoplineState,
    rng: random.Random,
    customers: list[dict[str, Any]],
    phone_only_buyer: dict[str, Any],
    groups: OrderedDict[str, list[CatalogueEntry]],
) -> int:
    """For the audit: unpaid orders placed 4 to 8 days ago, three shipped by
    ``OLD_ORDERS_SHIPPING`` and one by ``PHONE_ONLY_BUYER``. Unpaid and untouched since they were
    placed, they are outside the sweep's look-back and what the stock sync counts as waiting for
    import."""
    ordinary = _ordinary_skus(groups)
    with_email = [c for c in customers if c.get("email")]
    now = datetime.now(UTC).replace(microsecond=0)
    placed = [
        (timedelta(days=8, hours=3), OLD_ORDERS_SHIPPING, rng.choice(with_email)),
        (timedelta(days=6, hours=5), OLD_ORDERS_SHIPPING, rng.choice(with_email)),
        (timedelta(days=5, hours=2), OLD_ORDERS_SHIPPING, rng.choice(with_email)),
        (timedelta(days=4, hours=6), "Royal Mail Tracked 48", phone_only_buyer),
    ]
    for age, title, customer in placed:
        state.create_order(
            {
                "line_items": [{"sku": rng.choice(ordinary), "quantity": 1}],
                "customer": {"id": customer["id"]},
                "shipping_title": title,
                "gateway": "shopline_payments",
                "paid": False,
                "created_at": (now - age).isoformat(),
            }
        )
    return len(placed) + _seed_unmapped_gateway_order(state, rng, with_email, ordinary, now)


def _seed_unmapped_gateway_order(
    state: ShoplineState,
    rng: random.Random,
    customers: list[dict[str, Any]],
    ordinary: list[str],
    now: datetime,
) -> int:
    """For the audit: an order paid a week ago through ``UNMAPPED_GATEWAY`` and refunded in full
    the next day. Its money went in and out through a gateway the mapping does not list, so that
    day cannot reconcile; refunded before import and untouched since, no sync imports it or
    counts its units."""
    placed = now - timedelta(days=7, hours=4)
    order = state.create_order(
        {
            "line_items": [{"sku": rng.choice(ordinary), "quantity": 1}],
            "customer": {"id": rng.choice(customers)["id"]},
            "shipping_title": "Royal Mail Tracked 48",
            "gateway": UNMAPPED_GATEWAY,
            "paid": True,
            "created_at": placed.isoformat(),
        }
    )
    state.create_refund(
        {
            "order_id": order["id"],
            "note": "Customer changed their mind",
            "refund_line_items": [
                {"line_item_id": li["id"], "quantity": li["quantity"], "type": "Unshipped"}
                for li in order["line_items"]
            ],
            "shipping": {"full_refund": True},
        }
    )
    # The refund was made the day after, not now: the sweep's look-back never sees the order.
    refunded = (placed + timedelta(days=1)).isoformat()
    doc = state.store.get("order", order["id"])
    for record in (*doc["_refunds"], *(t for t in doc["_transactions"] if t["kind"] == "refund")):
        for key in ("created_at", "processed_at"):
            if key in record:
                record[key] = refunded
    doc["updated_at"] = refunded
    state.store.update("order", doc["id"], doc)
    return 1


def _drift_levels(
    store: DocStore, built: list[tuple[dict[str, Any], list[dict[str, Any]]]]
) -> None:
    """For the audit: set ``DRIFTED_LEVELS``, after the orders so that none moves them."""
    items = {v["sku"]: v["inventory_item_id"] for product, _ in built for v in product["variants"]}
    for (sku, location), available in DRIFTED_LEVELS.items():
        key = f"{items[sku]}:{location}"
        level = store.get("inventory_level", key)
        store.update("inventory_level", key, {**level, "available": available})
