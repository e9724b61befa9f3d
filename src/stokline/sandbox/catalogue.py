"""The demo client's product catalogue, shared by both sandboxes so their SKUs line up.

:func:`demo_catalogue` is pure and deterministic: the Stokly sandbox seeds the entries that are
``known_to_stokly`` (under ``sku``), the SHOPLINE sandbox the ones that are
``listed_on_shopline`` (under ``shopline_sku``). The first entries are hand-written so every
branch of the demo mapping (``mappings/demo.yaml``) has data: the two SKU overrides, a gift card
that is never synced, a case-only difference, SKUs only one side knows.

For the audit: near-match SKUs, SHOPLINE variants whose SKU differs from their Stokly item's by a
separator or a leading zero (neither matched by the mapping), the last entries of a catalogue of
``NEAR_MATCHES_FROM`` SKUs or more.
"""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal

__all__ = ["NEAR_MATCHES_FROM", "CatalogueEntry", "demo_catalogue", "ean13"]


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    """One sellable variant.

    ``sku`` is the Stokly SKU; ``shopline_sku`` is what the SHOPLINE variant carries (equal to
    ``sku`` except where the mapping needs an override or a case-insensitive match, and for the
    near matches, which no mapping rule matches).
    ``product_key`` groups variants into one product; ``options`` are ``(name, value)`` pairs.
    ``shopline_status`` is the SHOPLINE product's status ("draft" keeps it off the storefront).
    """

    sku: str
    shopline_sku: str
    product_key: str
    product_title: str
    title: str
    options: tuple[tuple[str, str], ...]
    price: str
    barcode: str
    weight_grams: int
    vat_title: str
    known_to_stokly: bool
    listed_on_shopline: bool
    gift_card: bool = False
    product_type: str = "outdoor"
    shopline_status: str = "active"


def ean13(number12: str) -> str:
    """Complete a 12-digit number with its EAN-13 check digit."""
    digits = [int(c) for c in number12]
    total = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return number12 + str((10 - total % 10) % 10)


# (type code, product noun, product type, VAT title, base price, weight g, option axes)
_TYPES: tuple[tuple[str, str, str, str, int, int, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("TENT-3P", "3-Person Tent", "tents", "VAT 20%", 189, 3200, (("Colour", ("GREEN", "SAND")),)),
    ("TENT-1P", "Solo Tent", "tents", "VAT 20%", 129, 1400, (("Colour", ("GREEN", "GREY")),)),
    (
        "SLEEPBAG",
        "Sleeping Bag",
        "sleep",
        "VAT 20%",
        79,
        1300,
        (("Rating", ("M5C", "0C")), ("Length", ("REG", "LONG"))),
    ),
    ("MAT", "Sleeping Mat", "sleep", "VAT 20%", 45, 600, (("Size", ("REG", "WIDE")),)),
    (
        "JACKET",
        "Waterproof Jacket",
        "clothing",
        "VAT 20%",
        119,
        450,
        (("Size", ("S", "M", "L", "XL")), ("Colour", ("NAVY", "RED"))),
    ),
    (
        "KIDS-JACKET",
        "Kids' Waterproof Jacket",
        "kids",
        "VAT 0%",
        39,
        300,
        (("Age", ("4Y", "6Y", "8Y", "10Y")),),
    ),
    (
        "BOOT",
        "Walking Boot",
        "footwear",
        "VAT 20%",
        99,
        1100,
        (("Size", ("6", "7", "8", "9", "10", "11")),),
    ),
    ("SOCKS", "Hiking Socks", "footwear", "VAT 20%", 14, 90, (("Size", ("S", "M", "L")),)),
    ("LANTERN", "LED Lantern", "camp", "VAT 20%", 24, 250, ()),
    ("MUG", "Enamel Mug", "camp", "VAT 20%", 9, 180, (("Colour", ("BLUE", "WHITE")),)),
    ("GAS-230", "Gas Canister 230g", "fuel", "VAT 5%", 6, 370, ()),
    ("MAP-OS", "OS Explorer Map", "maps", "VAT 0%", 11, 120, (("Sheet", ("OL7", "OL6", "OL4")),)),
    ("PACK-40", "40L Rucksack", "packs", "VAT 20%", 85, 1250, (("Colour", ("BLACK", "OLIVE")),)),
    ("POLES", "Trekking Poles", "walking", "VAT 20%", 49, 520, ()),
    ("HEADTORCH", "Head Torch", "camp", "VAT 20%", 29, 95, ()),
)

_BRANDS = ("ACME", "SUMMIT", "RIDGE", "TRAIL", "FELL", "CRAG", "MOOR", "TARN", "BECK", "PIKE")


def _entry(
    sku: str,
    title: str,
    price: str,
    n: int,
    *,
    shopline_sku: str | None = None,
    product_key: str | None = None,
    product_title: str | None = None,
    options: tuple[tuple[str, str], ...] = (),
    known: bool = True,
    listed: bool = True,
    vat: str = "VAT 20%",
    grams: int = 500,
    gift_card: bool = False,
    product_type: str = "outdoor",
    shopline_status: str = "active",
) -> CatalogueEntry:
    """A hand-written entry; ``n`` numbers its barcode."""
    return CatalogueEntry(
        sku=sku,
        shopline_sku=shopline_sku or sku,
        product_key=product_key or sku,
        product_title=product_title or title,
        title=title,
        options=options,
        price=price,
        barcode=ean13(f"50601234{n:04d}"),
        weight_grams=grams,
        vat_title=vat,
        known_to_stokly=known,
        listed_on_shopline=listed,
        gift_card=gift_card,
        product_type=product_type,
        shopline_status=shopline_status,
    )


def _fixed() -> list[CatalogueEntry]:
    """The hand-written entries every demo needs (see the module docstring)."""
    tent = "Acme Trailhead 2-Person Tent"
    return [
        # Stokly's SKU differs on SHOPLINE: mapped by the override TENT-2P-GRN → ACME-TENT-2P-GREEN.
        _entry(
            "ACME-TENT-2P-GREEN",
            f"{tent} - Green",
            "149.00",
            1,
            shopline_sku="TENT-2P-GRN",
            product_key="ACME-TENT-2P",
            product_title=tent,
            options=(("Colour", "Green"),),
            grams=2600,
            product_type="tents",
        ),
        _entry(
            "ACME-TENT-2P-ORANGE",
            f"{tent} - Orange",
            "149.00",
            2,
            product_key="ACME-TENT-2P",
            product_title=tent,
            options=(("Colour", "Orange"),),
            grams=2600,
            product_type="tents",
        ),
        # Override STOVE-MINI → JETBOIL-MINI-01.
        _entry(
            "JETBOIL-MINI-01",
            "Jetboil MiniMo Stove",
            "139.95",
            3,
            shopline_sku="STOVE-MINI",
            grams=415,
            product_type="camp",
        ),
        # Same SKU, different case: matched by `match: case_insensitive`.
        _entry(
            "ACME-BOTTLE-1L",
            "Acme Steel Bottle 1L",
            "22.00",
            4,
            shopline_sku="acme-bottle-1l",
            grams=380,
            product_type="camp",
        ),
        # Never synced (never_sync: GIFT-CARD-*), unknown to Stokly.
        _entry(
            "GIFT-CARD-25",
            "Gift Card £25",
            "25.00",
            5,
            known=False,
            vat="VAT 0%",
            grams=0,
            gift_card=True,
            product_type="gift cards",
        ),
        # Listed on SHOPLINE, unknown to Stokly: orders for it raise `unmapped_sku`.
        _entry(
            "ACME-HAMMOCK-XL-RED",
            "Acme Hammock XL - Red",
            "59.00",
            6,
            known=False,
            grams=900,
            product_type="camp",
        ),
        _entry(
            "SAMPLE-SOCKS-01",
            "Sample Socks (not for sale)",
            "0.00",
            7,
            known=False,
            vat="VAT 0%",
            grams=80,
            product_type="samples",
        ),
        # In Stokly, not yet on SHOPLINE (the catalogue sync's create_missing: false keeps it off).
        _entry(
            "ACME-CHAIR-LITE",
            "Acme Lite Camp Chair",
            "64.00",
            8,
            listed=False,
            grams=1000,
            product_type="camp",
        ),
    ]


NEAR_MATCHES_FROM = 100
"""The smallest catalogue that ends with the near matches: the demo's has 300 SKUs, and the small
ones the tests seed keep the hammock as their one SHOPLINE SKU Stokly does not know."""


def _near_matches() -> list[CatalogueEntry]:
    """For the audit: SHOPLINE variants keyed with a typo of their Stokly item's SKU.

    The demo mapping matches SKUs case-insensitively and nothing more, so neither is matched:
    their orders would stop at ``unmapped_sku``. Their products are drafts, so the simulated
    storefront (which sells active products only) never places live orders for them.
    """
    return [
        # A separator difference: underscores where Stokly has hyphens.
        _entry(
            "ACME-TARP-3X3-OLIVE",
            "Acme Trail Tarp 3x3 m - Olive",
            "42.00",
            9,
            shopline_sku="ACME_TARP_3X3_OLIVE",
            grams=780,
            product_type="camp",
            shopline_status="draft",
        ),
        # A leading-zero difference: model 07 in Stokly, 7 on SHOPLINE.
        _entry(
            "ACME-FLASK-07",
            "Acme Vacuum Flask 0.7 L",
            "27.00",
            10,
            shopline_sku="ACME-FLASK-7",
            grams=420,
            product_type="camp",
            shopline_status="draft",
        ),
    ]


def demo_catalogue(skus: int = 300, seed: int = 7) -> list[CatalogueEntry]:
    """Return ``skus`` catalogue entries (at least the fixed ones), deterministically by ``seed``.

    About 3% of the generated SKUs are listed on SHOPLINE but unknown to Stokly, and about 2% are
    in Stokly only, so unmapped-SKU and create-missing paths always have data. From
    ``NEAR_MATCHES_FROM`` SKUs on, the near matches take the last places, so the entries before
    them are the same as in a catalogue without them.
    """
    rng = random.Random(seed)
    entries = _fixed()
    near = _near_matches() if skus >= NEAR_MATCHES_FROM else []
    room = skus - len(near)
    seen = {e.sku for e in entries + near} | {e.shopline_sku.upper() for e in entries + near}
    number = 100
    while len(entries) < room:
        brand = rng.choice(_BRANDS)
        code, noun, ptype, vat, base, grams, axes = rng.choice(_TYPES)
        model = rng.randint(1, 99)
        product_key = f"{brand}-{code}-{model:02d}"
        if product_key in seen:
            continue
        seen.add(product_key)
        combos: list[tuple[tuple[str, str], ...]] = [()]
        for name, values in axes:
            combos = [(*c, (name, v)) for c in combos for v in values]
        price = Decimal(base) + Decimal(rng.choice((0, 5, 10, 15, 20))) - Decimal("0.01")
        product_title = f"{brand.title()} {noun} {model:02d}"
        roll = rng.random()
        known, listed = (
            (False, True) if roll < 0.03 else (True, False) if roll < 0.05 else (True, True)
        )
        for combo in combos:
            if len(entries) >= room:
                break
            sku = "-".join([product_key, *(v for _, v in combo)])
            seen.add(sku)
            number += 1
            suffix = " / ".join(v.title() for _, v in combo)
            entries.append(
                CatalogueEntry(
                    sku=sku,
                    shopline_sku=sku,
                    product_key=product_key,
                    product_title=product_title,
                    title=f"{product_title} - {suffix}" if suffix else product_title,
                    options=tuple((n, v.title()) for n, v in combo),
                    price=str(price.quantize(Decimal("0.01"))),
                    barcode=ean13(f"5060{number:08d}"),
                    weight_grams=grams + rng.randint(-20, 20),
                    vat_title=vat,
                    known_to_stokly=known,
                    listed_on_shopline=listed,
                    product_type=ptype,
                )
            )
    return entries + near
