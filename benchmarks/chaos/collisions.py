"""SHOPLINE variants that resolve to the same Stokly item, as real stores make them.

The demo seed gives every Stokly item one SHOPLINE variant at most, so a campaign on it alone
could never see one item's stock shown twice. Both campaigns add, before their traffic starts:

- **an override onto a SKU that has its own variant**: the mapping gains ``TENT-2P-ORG →
  ACME-TENT-2P-ORANGE`` (an operator fixing an ``unmapped_sku`` exception of an old listing),
  and SHOPLINE that old listing, while ``ACME-TENT-2P-ORANGE`` keeps its own variant;
- **SKUs that differ only in case**: a second product sells ``ACME-BOTTLE-1L`` beside the seed's
  ``acme-bottle-1l`` (both are Stokly's ``ACME-BOTTLE-1L`` under ``match: case_insensitive``);
- **an override beside a case variant**: ``acme-tent-2p-green`` beside the override
  ``TENT-2P-GRN`` (both Stokly's ``ACME-TENT-2P-GREEN``, neither its exact SKU: the issue's case);
- **the same SKU on two products**: the first SKU of the generated catalogue listed again, as a
  bundle page or a duplicated product would.

Each new variant starts with stock the merchant typed in (`START_LEVEL` at every location), so
the stock sync has to take it down: one item's sellable figure is shown on one variant only.
The SHOPLINE sandbox is reached through its admin API, as a merchant's admin would, so the same
code serves the sandboxes of the reduced world (in this process) and of the full stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from stokline.sandbox.catalogue import demo_catalogue

__all__ = ["OVERRIDES", "START_LEVEL", "Collision", "add_collisions", "collisions"]

CATALOGUE_SEED = 7  # both sandboxes' demo seed
FIXED_ENTRIES = 8  # the hand-written entries at the head of the demo catalogue
START_LEVEL = 25
"""What each new variant shows at every location before the stock sync has seen it."""
LOCATIONS = ("7001", "7002")  # the demo store's active locations, both synced by the mapping

OVERRIDES: tuple[tuple[str, str], ...] = (("TENT-2P-ORG", "ACME-TENT-2P-ORANGE"),)
"""Overrides (SHOPLINE SKU, Stokly SKU) the campaigns add to the demo mapping."""


@dataclass(frozen=True)
class Collision:
    """A SHOPLINE product added with one variant whose SKU resolves to an item already sold."""

    kind: str
    sku: str
    stokly_sku: str
    title: str
    vat_title: str = "VAT 20%"


def collisions(skus: int) -> list[Collision]:
    """The collisions of a world seeded with ``skus`` catalogue entries (at least nine)."""
    repeated = next(
        e
        for e in demo_catalogue(skus, CATALOGUE_SEED)[FIXED_ENTRIES:]
        if e.known_to_stokly and e.listed_on_shopline and e.sku == e.shopline_sku
    )
    return [
        Collision(
            "override onto a SKU with its own variant",
            "TENT-2P-ORG",
            "ACME-TENT-2P-ORANGE",
            "Acme Trailhead 2-Person Tent - Orange (old listing)",
        ),
        Collision(
            "SKUs differing only in case",
            "ACME-BOTTLE-1L",
            "ACME-BOTTLE-1L",
            "Acme Steel Bottle 1L (gift set)",
        ),
        Collision(
            "a case variant beside an override",
            "acme-tent-2p-green",
            "ACME-TENT-2P-GREEN",
            "Acme Trailhead 2-Person Tent - Green (imported listing)",
        ),
        Collision(
            "the same SKU on two products",
            repeated.sku,
            repeated.sku,
            f"{repeated.title} (bundle page)",
            repeated.vat_title,
        ),
    ]


def add_collisions(shopline_url: str, token: str, api_version: str, skus: int) -> list[str]:
    """Create the products of `collisions` in SHOPLINE, each with `START_LEVEL` at every
    location; returns the new variants' ids."""
    base = f"{shopline_url}/admin/openapi/{api_version}"
    created = []
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        for collision in collisions(skus):
            body = {
                "product": {
                    "title": collision.title,
                    "vendor": "Demo Outdoor",
                    "status": "active",
                    # The sandbox keeps a variant's VAT rate in ``_vat_title`` (SHOPLINE in its
                    # tax settings): the same rate as the item's other variant.
                    "variants": [
                        {"sku": collision.sku, "price": "20.00", "_vat_title": collision.vat_title}
                    ],
                }
            }
            product = http.post("/products/products.json", json=body).raise_for_status().json()
            variant = product["product"]["variants"][0]
            for location in LOCATIONS:
                level = {
                    "inventory_item_id": variant["inventory_item_id"],
                    "location_id": location,
                    "available": START_LEVEL,
                }
                http.post("/inventory_levels/set.json", json=level).raise_for_status()
            created.append(str(variant["id"]))
    return created
