"""The demo client's Stokly account (Demo Outdoor Ltd, see ``mappings/demo.yaml``).

`seed_demo` fills a store with locations and bins, the SHOPLINE channel, the items of the shared
demo catalogue that Stokly knows (simple and variable), listings, stock across the locations,
customers and a few sale orders already imported from the channel. Everything is derived from
`seed`, so two runs give the same ids. It writes in bulk and handles 20,000 SKUs in seconds.

For the audit: the catalogue's near-match items, whose SHOPLINE variants carry a typo of the SKU.
For the audit: two customers who share a phone under different emails (an ambiguous identity).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from typing import Any

from stokline.sandbox.catalogue import CatalogueEntry, demo_catalogue
from stokline.sandbox.common import DocStore
from stokline.sandbox.stokly.domain import collect_items, create_saleorder
from stokline.sandbox.stokly.invented import create_shipment
from stokline.sandbox.stokly.state import UNASSIGNED, StoklyState

__all__ = [
    "AMBIGUOUS_PHONE_CUSTOMERS",
    "DEMO_ACCOUNT_KEY",
    "DEMO_CUSTOMERS",
    "DEMO_LOCATIONS",
    "DEMO_SEEDED_ORDER_REFERENCES",
    "SHOPLINE_CHANNEL_ID",
    "TAX_CLASSES",
    "seed_demo",
]

DEMO_ACCOUNT_KEY = "demo-outdoor"
SHOPLINE_CHANNEL_ID = "3f0b6a52-6c1e-4d7a-9a51-5b0f1f2c7e01"
#: Stokly locations; "Returns Bay" is deliberately left out of the demo mapping.
DEMO_LOCATIONS = ("Leeds DC", "York Store", "Bristol DC", "Returns Bay")
#: SHOPLINE tax line title → Stokly tax class (as in the demo mapping).
TAX_CLASSES = {"VAT 20%": "standard", "VAT 5%": "reduced", "VAT 0%": "zero"}

#: Customers Stokly knows. The SHOPLINE sandbox may reuse them: the first ones are matched by
#: email, and the last one's phone (+44 7700 900123) belongs to a SHOPLINE customer who gave only
#: a phone number, so the customer rules must link them by phone.
DEMO_CUSTOMERS: tuple[dict[str, Any], ...] = (
    {"forename": "Ada", "surname": "Lovelace", "email": "ada@example.com", "phone": None},
    {
        "forename": "Alan",
        "surname": "Turing",
        "email": "alan.turing@example.com",
        "phone": "+447700900001",
    },
    {"forename": "Grace", "surname": "Hopper", "email": "grace@example.org", "phone": None},
    {
        "forename": "Tim",
        "surname": "Berners-Lee",
        "email": "tim@example.net",
        "phone": "+447700900042",
    },
    {
        "forename": "Morgan",
        "surname": "Hale",
        "email": "morgan.hale@example.com",
        "phone": "+447700900123",
    },
)

#: For the audit: one person with two accounts, the phone keyed in two spellings. A buyer with
#: this phone matches both, so the mapping's ``customers.on_conflict`` decides. Seeded after the
#: other customers, so their ids are the same as without these two.
AMBIGUOUS_PHONE_CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "forename": "Jo",
        "surname": "Fletcher",
        "email": "jo.fletcher@example.com",
        "phone": "+447700900654",
    },
    {
        "forename": "Joanne",
        "surname": "Fletcher",
        "email": "joanne.fletcher@work.example.com",
        "phone": "07700 900654",
    },
)

#: SHOPLINE order ids of the sale orders seeded as already imported from the channel.
DEMO_SEEDED_ORDER_REFERENCES = ("21000001", "21000002", "21000003", "21000004")

_FORENAMES = ("Sam", "Alex", "Jo", "Chris", "Pat", "Robin", "Jamie", "Charlie", "Lee", "Kim")
_SURNAMES = ("Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Roberts", "Walker")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _item_doc(
    rng: random.Random,
    nice: int,
    *,
    sku: str,
    name: str,
    item_format: int,
    entry: CatalogueEntry,
    now: str,
) -> dict[str, Any]:
    options = [{"name": n, "value": v} for n, v in entry.options] if item_format == 0 else []
    return {
        "itemId": _uuid(rng),
        "niceId": nice,
        "sku": sku,
        "name": name,
        "format": item_format,
        "status": 0,
        "barcodes": [entry.barcode] if item_format == 0 else [],
        "typeId": None,
        "typeName": entry.product_type,
        "tags": [entry.product_type],
        "attributes": options,
        "taxClassId": TAX_CLASSES.get(entry.vat_title, "standard"),
        "salePrice": {"amount": float(entry.price), "currency": "GBP"},
        "costPrice": None,
        "unitsOfMeasure": [],
        "images": [],
        "imageCount": 0,
        "description": f"{name}. Built for British weather by Demo Outdoor.",
        "harmonyCode": None,
        "countryOfOrigin": "GB",
        "isSold": True,
        "weight": entry.weight_grams if item_format == 0 else None,
        "onOrder": 0,
        "variableItemId": None,
        "createdAt": now,
        "updatedAt": now,
    }


def _seed_items(
    state: StoklyState, rng: random.Random, entries: list[CatalogueEntry], now: str
) -> list[tuple[dict[str, Any], CatalogueEntry]]:
    """Simple items, and a variable parent per product with several variants or options."""
    groups: dict[str, list[CatalogueEntry]] = defaultdict(list)
    for entry in entries:
        if entry.known_to_stokly:
            groups[entry.product_key].append(entry)
    parents = sum(1 for g in groups.values() if len(g) > 1 or g[0].options)
    nice = state.reserve_nice_ids("item", len(entries) + parents)
    docs: list[dict[str, Any]] = []
    sellable: list[tuple[dict[str, Any], CatalogueEntry]] = []
    for product_key, group in groups.items():
        variable = len(group) > 1 or bool(group[0].options)
        children = []
        for entry in group:
            child = _item_doc(
                rng,
                nice,
                sku=entry.sku,
                name=entry.title,
                item_format=0,
                entry=entry,
                now=now,
            )
            nice += 1
            if rng.random() < 0.1:
                child["onOrder"] = rng.randint(5, 40)
            children.append(child)
            sellable.append((child, entry))
        if variable:
            parent = _item_doc(
                rng,
                nice,
                sku=product_key,
                name=group[0].product_title,
                item_format=2,
                entry=group[0],
                now=now,
            )
            nice += 1
            parent["variantItems"] = [child["itemId"] for child in children]
            axes: dict[str, list[str]] = {}
            for entry in group:
                for name, value in entry.options:
                    axes.setdefault(name, [])
                    if value not in axes[name]:
                        axes[name].append(value)
            parent["variableAttributes"] = [{"name": n, "values": v} for n, v in axes.items()]
            for child in children:
                child["variableItemId"] = parent["itemId"]
            docs.append(parent)
        docs.extend(children)
    state.add_items_many(docs)
    return sellable


def _seed_inventory(
    state: StoklyState,
    rng: random.Random,
    sellable: list[tuple[dict[str, Any], CatalogueEntry]],
    locations: dict[str, str],
    default_bins: dict[str, str],
    extra_bin: str,
) -> None:
    leeds, york, bristol, returns = (locations[name] for name in DEMO_LOCATIONS)
    rows: dict[str, dict[str, Any]] = {}

    def put(
        item_id: str, location_id: str, bin_id: str, on_hand: int, quarantined: int = 0
    ) -> None:
        key = state.inventory_key(item_id, location_id, bin_id)
        rows[key] = {
            "key": key,
            "itemId": item_id,
            "locationId": location_id,
            "binId": bin_id,
            "onHand": on_hand,
            "quarantined": quarantined,
        }

    for index, (item, _entry) in enumerate(sellable):
        item_id = item["itemId"]
        if index < 8:
            # The hand-written entries always have stock, so every demo path has data.
            put(item_id, leeds, default_bins[leeds], 24, 1)
            put(item_id, york, UNASSIGNED, 6)
            put(item_id, bristol, default_bins[bristol], 5)
            continue
        roll = rng.random()
        if roll < 0.06:
            continue  # out of stock everywhere
        put(item_id, leeds, default_bins[leeds], rng.randint(0, 60), 1 if roll < 0.09 else 0)
        if roll < 0.2:
            put(item_id, leeds, extra_bin, rng.randint(1, 12))
        if rng.random() < 0.5:
            put(item_id, york, UNASSIGNED, rng.randint(0, 15))
        if rng.random() < 0.3:
            put(item_id, bristol, default_bins[bristol], rng.randint(0, 20))
        if rng.random() < 0.05:
            put(item_id, returns, UNASSIGNED, rng.randint(1, 3), 1)
    state.add_inventory_many(list(rows.values()))


def seed_demo(store: DocStore, *, skus: int = 300, seed: int = 7) -> dict[str, int]:
    """Replace the store's contents with the demo account; return counts per resource."""
    store.clear()
    state = StoklyState(store)
    rng = random.Random(seed)
    now = state.now()
    with store.transaction():
        locations: dict[str, str] = {}
        default_bins: dict[str, str] = {}
        for nice, name in enumerate(DEMO_LOCATIONS, start=state.reserve_nice_ids("location", 4)):
            location_id = _uuid(rng)
            locations[name] = location_id
            state.locations.add(
                location_id,
                {
                    "locationId": location_id,
                    "niceId": nice,
                    "name": name,
                    "status": 0,
                    "address": {"country": "GB"},
                    "createdAt": now,
                    "updatedAt": now,
                },
            )
            bin_id = _uuid(rng)
            default_bins[location_id] = bin_id
            state.bins.add(
                bin_id,
                {
                    "binId": bin_id,
                    "locationId": location_id,
                    "name": "Default",
                    "default": True,
                    "status": 0,
                    "createdAt": now,
                },
            )
        extra_bin = _uuid(rng)
        state.bins.add(
            extra_bin,
            {
                "binId": extra_bin,
                "locationId": locations["Leeds DC"],
                "name": "A-01-01",
                "default": False,
                "status": 0,
                "createdAt": now,
            },
        )
        state.channels.add(
            SHOPLINE_CHANNEL_ID,
            {
                "channelId": SHOPLINE_CHANNEL_ID,
                "name": "SHOPLINE - Demo Outdoor",
                "type": 7,
                "status": 0,
                "data": {"handle": "demo-outdoor", "currency": "GBP"},
                "createdAt": now,
            },
        )
        ebay = _uuid(rng)
        state.channels.add(
            ebay,
            {
                "channelId": ebay,
                "name": "eBay - Demo Outdoor",
                "type": 2,
                "status": 0,
                "data": {},
                "createdAt": now,
            },
        )

        entries = demo_catalogue(skus, seed)
        sellable = _seed_items(state, rng, entries, now)
        listings = []
        for item, entry in sellable:
            if entry.listed_on_shopline:
                listing_id = _uuid(rng)
                listings.append(
                    (
                        listing_id,
                        {
                            "listingId": listing_id,
                            "channelId": SHOPLINE_CHANNEL_ID,
                            "itemId": item["itemId"],
                            "referenceId": None,
                            "sku": item["sku"],
                            "dataSynchronised": False,
                            "inventorySynchronised": False,
                            "createdAt": now,
                        },
                    )
                )
        state.listings.add_many(listings)
        _seed_inventory(state, rng, sellable, locations, default_bins, extra_bin)

        customers = []
        people = [dict(c) for c in DEMO_CUSTOMERS]
        for n in range(max(10, min(skus // 20, 200))):
            forename, surname = rng.choice(_FORENAMES), rng.choice(_SURNAMES)
            phone = f"+4477009{n + 1000:05d}" if rng.random() < 0.5 else None
            email = f"{forename}.{surname}.{n}@example.com".lower()
            people.append(
                {"forename": forename, "surname": surname, "email": email, "phone": phone}
            )
        people.extend(dict(c) for c in AMBIGUOUS_PHONE_CUSTOMERS)
        first = state.reserve_nice_ids("customer", len(people))
        for nice, person in enumerate(people, start=first):
            customer_id = _uuid(rng)
            customers.append(
                (
                    customer_id,
                    {
                        "customerId": customer_id,
                        "niceId": nice,
                        "type": 1,
                        "name": {"forename": person["forename"], "surname": person["surname"]},
                        "fullName": f"{person['forename']} {person['surname']}",
                        "email": person["email"],
                        "phone": person["phone"],
                        "billingAddress": None,
                        "shippingAddresses": [],
                        "tags": [],
                        "createdAt": now,
                        "updatedAt": now,
                    },
                )
            )
        state.customers.add_many(customers)
        _seed_orders(state, sellable, locations, [c for _, c in customers])
        # Seeding is history, not news: the change feed starts after it.
        for seq, _event in store.scan("event"):
            store.delete("event", str(seq))
        store.set_meta("seeded", str(skus))
    return {kind: len(collection) for kind, collection in state.c.items()}


def _seed_orders(
    state: StoklyState,
    sellable: list[tuple[dict[str, Any], CatalogueEntry]],
    locations: dict[str, str],
    customers: list[dict[str, Any]],
) -> None:
    """Orders already imported from SHOPLINE: open, dispatched, partly dispatched, removed."""
    leeds = locations["Leeds DC"]
    stocked = [item for item, _ in sellable[:8]]
    for n, reference in enumerate(DEMO_SEEDED_ORDER_REFERENCES):
        customer = customers[n % len(customers)]
        lines = []
        for item in stocked[n : n + 2]:
            price = item["salePrice"]["amount"]
            tax = round(price / 6, 2)
            lines.append(
                {
                    "type": "item",
                    "referenceId": item["itemId"],
                    "quantity": 2,
                    "displayPrice": price,
                    "displayTax": tax,
                    "displayLinePrice": price * 2,
                    "displayLineTax": tax * 2,
                    "displayLineTotal": price * 2,
                }
            )
        total = round(sum(line["displayLineTotal"] for line in lines) + 3.99, 2)
        order = create_saleorder(
            state,
            {
                "currency": "GBP",
                "sourceType": "other",
                "sourceId": SHOPLINE_CHANNEL_ID,
                "sourceReferenceId": reference,
                "customerReference": f"SL{1001 + n}",
                "tags": ["shopline", "web"],
                "customer": {"customerId": customer["customerId"]},
                "locationId": leeds,
                "shipping": {
                    "name": dict(customer["name"]),
                    "address": {
                        "line1": f"{10 + n} Briggate",
                        "line2": "",
                        "city": "Leeds",
                        "region": "West Yorkshire",
                        "country": "GB",
                        "postcode": "LS1 6HD",
                    },
                    "option": "RM48",
                    "cost": 3.99,
                    "tax": 0.67,
                },
                "items": lines,
                "payments": [{"method": 4, "amount": total}],
            },
        )
        order_id = order["saleOrderId"]
        if n == 1:
            create_shipment(
                state,
                order_id,
                {
                    "locationId": leeds,
                    "carrier": "royal-mail",
                    "service": "RM48",
                    "trackingNumbers": ["RM000000017GB"],
                },
            )
        elif n == 2:
            first_line = order["items"][0]
            collect_items(state, order_id, leeds, [{"lineId": first_line["lineId"], "quantity": 1}])
        elif n == 3:
            removed = dict(state.saleorders.get(order_id), stage="removed")
            state.saleorders.save(order_id, removed)
