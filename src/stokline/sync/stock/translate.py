"""Stock arithmetic: the sellable level of each SHOPLINE variant at each SHOPLINE location.

Pure functions over what the stock sync read from both systems; no I/O. The rule (DESIGN.md,
"Stock arithmetic"):

    sellable = Σ over the Stokly locations mapped to the SHOPLINE location of
               (onHand − quarantined − allocated to open sale orders)
               − buffer − quantity in SHOPLINE orders paid but not yet imported into Stokly,
    never below 0, rounded down to a whole unit (Stokly quantities may be fractional).

Choices that lean towards never overselling, since that is the costliest failure:

- a Stokly location allocated beyond its stock pulls the sum down (per-location terms are not
  clamped at zero: its orders will be filled from somewhere);
- an allocation Stokly reports without a location is subtracted at every synced SHOPLINE
  location that sells the item, because where it will be filled from is unknown;
- a paid-but-not-imported order line whose location is unknown counts against the mapping's
  default location.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from stokline.config.models import Location, Skus, StockShownOn
from stokline.config.models import Mapping as ClientMapping
from stokline.config.skus import sku_key
from stokline.mapping.translate import SkuMatcher, Untranslatable

__all__ = [
    "DesiredLevel",
    "Shown",
    "StockPlan",
    "StockRecord",
    "UnimportedLine",
    "VariantRef",
    "plan_levels",
    "sellable",
    "shown_on",
]


@dataclass(frozen=True)
class StockRecord:
    """Stock of one Stokly item at one Stokly location (one bin, or already summed)."""

    item_id: str
    location_id: str
    on_hand: Decimal
    quarantined: Decimal = Decimal(0)


@dataclass(frozen=True)
class VariantRef:
    """What the arithmetic needs of a SHOPLINE variant."""

    variant_id: str
    inventory_item_id: str
    sku: str


@dataclass(frozen=True)
class UnimportedLine:
    """A line of a SHOPLINE order that is paid but not yet a Stokly sale order."""

    sku: str
    quantity: int
    shopline_location: str | None = None


@dataclass(frozen=True)
class DesiredLevel:
    """The level SHOPLINE should show for one (inventory item, location), with its working."""

    inventory_item_id: str
    location_id: str
    variant_id: str
    shopline_sku: str
    stokly_sku: str
    available: int
    on_hand: Decimal
    quarantined: Decimal
    allocated: Decimal
    buffer: int
    unimported: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.inventory_item_id, self.location_id)


@dataclass
class StockPlan:
    """Desired levels, and the variants left alone (excluded by the mapping, or unmatched).

    ``zeroed`` holds the ids of unmatched variants that were sold from a Stokly item before
    (``matched_before``): each has a level of 0 in ``levels`` at every synced location, so a
    variant whose item was deactivated, deleted or now collides is no longer on sale.
    """

    levels: list[DesiredLevel] = field(default_factory=list)
    excluded: list[VariantRef] = field(default_factory=list)
    unmatched: list[tuple[VariantRef, Untranslatable]] = field(default_factory=list)
    zeroed: set[str] = field(default_factory=set)
    shared: dict[str, list[VariantRef]] = field(default_factory=dict)
    """Stokly SKU → the SHOPLINE variants it resolves to, when more than one: the first shows
    its sellable figure (`shown_on`: the mapping's ``skus.show_stock_on``, else the exact SKU),
    the others are planned at 0."""


def sellable(
    figures: Iterable[tuple[Decimal | int, Decimal | int, Decimal | int]],
    *,
    buffer: int = 0,
    unimported: int = 0,
) -> int:
    """The sellable whole units from (onHand, quarantined, allocated) per Stokly location."""
    total = sum((Decimal(h) - Decimal(q) - Decimal(a) for h, q, a in figures), Decimal(0))
    total -= Decimal(buffer) + Decimal(unimported)
    return max(0, math.floor(total))


def _resolve(mapping: ClientMapping, shopline_location: str | None) -> Location | None:
    """The mapped location for an order line; the default location when unknown or absent."""
    for location in mapping.locations:
        if shopline_location and location.shopline_location == str(shopline_location):
            return location
    return next((loc for loc in mapping.locations if loc.default), None)


def _zero(variant: VariantRef, location: Location) -> DesiredLevel:
    """Level 0 for a variant no Stokly item backs any more (its working all zero)."""
    return DesiredLevel(
        inventory_item_id=variant.inventory_item_id,
        location_id=location.shopline_location,
        variant_id=variant.variant_id,
        shopline_sku=variant.sku,
        stokly_sku="",
        available=0,
        on_hand=Decimal(0),
        quarantined=Decimal(0),
        allocated=Decimal(0),
        buffer=location.stock.buffer,
        unimported=0,
    )


def _id_order(variant: VariantRef) -> tuple[int, int, str]:
    vid = variant.variant_id
    return (0, int(vid), vid) if vid.isdigit() else (1, 0, vid)


@dataclass(frozen=True)
class Shown:
    """Which of the variants one Stokly item resolves to shows its sellable figure, and why."""

    variants: list[VariantRef]
    """The one that shows it first, the rest by id."""
    why: str
    """Why that one, in words for the person who reads the ``sku_collision`` exception."""
    advice: str
    """How to show it on another variant (the mapping setting to write or correct)."""

    @property
    def shown(self) -> VariantRef:
        return self.variants[0]


def _named(choice: StockShownOn) -> str:
    if choice.shopline_variant_id is not None:
        return f"variant id {choice.shopline_variant_id}"
    return f"SKU {choice.shopline_sku}"


def _chosen(choice: StockShownOn, ordered: list[VariantRef], match: str) -> list[VariantRef]:
    """The variants ``choice`` names, by id: its variant id, else its SKU exactly as SHOPLINE has
    it, else its SKU under the match rule (a choice written in another case still counts)."""
    if choice.shopline_variant_id is not None:
        wanted = choice.shopline_variant_id.strip()
        return [v for v in ordered if v.variant_id == wanted]
    sku = choice.shopline_sku or ""
    exact = [v for v in ordered if v.sku == sku]
    return exact or [v for v in ordered if sku_key(v.sku, match) == sku_key(sku, match)]


def _choice_for(skus: Skus, stokly_sku: str) -> StockShownOn | None:
    key = sku_key(stokly_sku, skus.match)
    return next((c for c in skus.show_stock_on if sku_key(c.stokly_sku, skus.match) == key), None)


def shown_on(stokly_sku: str, variants: Iterable[VariantRef], skus: Skus | None = None) -> Shown:
    """The variants one Stokly item resolves to, the one to show its sellable figure first.

    That is the variant the mapping's ``skus.show_stock_on`` names for the item, when it is one
    of them; else the variant whose SKU is the Stokly SKU exactly, else the first by id (the
    lowest id wherever several qualify, e.g. one SKU on two products). The rest follow by id.
    """
    ordered = sorted(variants, key=_id_order)
    choice = _choice_for(skus, stokly_sku) if skus is not None else None
    setting = "skus.show_stock_on"
    if choice is not None:
        named = _chosen(choice, ordered, skus.match if skus is not None else "exact")
        if named:
            first = named[0]
            why = f"as {setting} chooses"
            if len(named) > 1:
                why += (
                    f" ({len(named)} of them match its SKU {choice.shopline_sku}: the lowest id"
                    " shows it)"
                )
            advice = f"to show it on another variant, change its entry under {setting}"
            if len(named) > 1:
                advice += " (shopline_variant_id names one of several variants with one SKU)"
            return Shown([first, *(v for v in ordered if v is not first)], why, advice)
    exact = [v for v in ordered if v.sku == stokly_sku]
    first = exact[0] if exact else ordered[0]
    if len(exact) == 1:
        why = "its SKU is the Stokly SKU exactly"
    elif exact:
        why = f"the lowest id of the {len(exact)} variants whose SKU is the Stokly SKU exactly"
    else:
        why = "the lowest id, as no variant's SKU is the Stokly SKU exactly"
    if choice is None:
        advice = f"to show it on another variant, name that variant under {setting}"
    else:
        why = (
            f"{setting} names {_named(choice)} for this item, which is none of these variants,"
            f" so the default applies: {why}"
        )
        advice = f"correct the item's entry under {setting} to name one of these variants"
    return Shown([first, *(v for v in ordered if v is not first)], why, advice)


def plan_levels(
    mapping: ClientMapping,
    variants: Iterable[VariantRef],
    items: Mapping[str, str],
    stokly_locations: Mapping[str, str],
    records: Iterable[StockRecord],
    allocations: Iterable[tuple[str, str | None, Decimal]],
    unimported: Iterable[UnimportedLine] = (),
    *,
    only: set[str] | None = None,
    matched_before: Collection[str] = (),
    removal_archives: bool = False,
) -> StockPlan:
    """Desired levels for every variant × synced SHOPLINE location of ``mapping``.

    ``items`` is Stokly SKU → itemId of the stockable items; ``stokly_locations`` Stokly location
    name → id; ``allocations`` (itemId, locationId or None, allocated). ``only`` (Stokly SKUs)
    limits the plan to those items: variants matching none of them are left out silently, as
    they are another pass's business. SHOPLINE locations with ``stock.sync: false`` get no level,
    nor do locations whose Stokly locations are not all known (a partial sum would be wrong).

    ``matched_before`` (SHOPLINE inventory item ids that had a level pushed) marks the unmatched
    variants that were sold from Stokly's stock: each gets a level of 0 (``plan.zeroed``), as
    nothing backs it now. ``removal_archives`` (the catalogue sync archives products whose Stokly
    items are gone) leaves those that match no Stokly item to that archiving; a collision is
    never archived, so it is zeroed regardless.

    One Stokly item's sellable figure is shown on one SHOPLINE variant only (DESIGN.md): when
    several resolve to the same item (an override beside the item's own SKU, SKUs that differ
    only in case, one SKU on two products), `shown_on` picks the variant that shows it (the one
    ``skus.show_stock_on`` names, else the exact SKU) and the others are planned at 0
    (``plan.shared``); their units are sold through the one.
    """
    matcher = SkuMatcher(mapping, items)
    folded_locations = {name.strip().casefold(): lid for name, lid in stokly_locations.items()}
    synced: list[tuple[Location, list[str]]] = []
    for location in mapping.locations:
        if not location.stock.sync:
            continue
        ids = [folded_locations.get(n.strip().casefold()) for n in location.stokly_locations]
        if all(ids):
            synced.append((location, [i for i in ids if i]))

    stock: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for record in records:
        figures = stock[(record.item_id, record.location_id)]
        figures[0] += Decimal(record.on_hand)
        figures[1] += Decimal(record.quarantined)
    allocated: dict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
    for item_id, location_id, quantity in allocations:
        allocated[(item_id, location_id)] += Decimal(quantity)

    def stokly_sku_of(sku: str) -> str | None:
        if not sku or matcher.excluded(sku):
            return None
        try:
            return matcher.match(sku)
        except Untranslatable:
            return None

    pending: dict[tuple[str, str], int] = defaultdict(int)
    for line in unimported:
        target = stokly_sku_of(line.sku)
        location = _resolve(mapping, line.shopline_location)
        if target is not None and location is not None:
            pending[(target, location.shopline_location)] += int(line.quantity)

    match = mapping.skus.match
    wanted = None if only is None else {sku_key(s, match) for s in only}
    plan = StockPlan()
    matched: list[tuple[VariantRef, str]] = []
    for variant in variants:
        if matcher.excluded(variant.sku):
            plan.excluded.append(variant)
            continue
        try:
            stokly_sku = matcher.match(variant.sku)
        except Untranslatable as exc:
            if only is None:
                plan.unmatched.append((variant, exc))
                archived = removal_archives and exc.code != "sku_collision"
                if variant.inventory_item_id in matched_before and not archived:
                    plan.zeroed.add(variant.variant_id)
                    plan.levels.extend(_zero(variant, location) for location, _ in synced)
            continue
        if wanted is not None and sku_key(stokly_sku, match) not in wanted:
            continue
        matched.append((variant, stokly_sku))

    by_item: dict[str, dict[str, VariantRef]] = defaultdict(dict)
    for variant, stokly_sku in matched:
        by_item[stokly_sku].setdefault(variant.variant_id, variant)
    for stokly_sku, group in by_item.items():
        if len(group) > 1:
            plan.shared[stokly_sku] = shown_on(stokly_sku, group.values(), mapping.skus).variants
    for variant, stokly_sku in matched:
        group = plan.shared.get(stokly_sku)
        silent = group is not None and group[0].variant_id != variant.variant_id
        item_id = items[stokly_sku]
        for location, location_ids in synced:
            on_hand = sum((stock[(item_id, lid)][0] for lid in location_ids), Decimal(0))
            quarantined = sum((stock[(item_id, lid)][1] for lid in location_ids), Decimal(0))
            reserved = sum(allocated.get((item_id, lid), Decimal(0)) for lid in location_ids)
            reserved += allocated.get((item_id, None), Decimal(0))
            waiting = pending.get((stokly_sku, location.shopline_location), 0)
            plan.levels.append(
                DesiredLevel(
                    inventory_item_id=variant.inventory_item_id,
                    location_id=location.shopline_location,
                    variant_id=variant.variant_id,
                    shopline_sku=variant.sku,
                    stokly_sku=stokly_sku,
                    available=0
                    if silent
                    else sellable(
                        [(on_hand, quarantined, reserved)],
                        buffer=location.stock.buffer,
                        unimported=waiting,
                    ),
                    on_hand=on_hand,
                    quarantined=quarantined,
                    allocated=Decimal(reserved),
                    buffer=location.stock.buffer,
                    unimported=waiting,
                )
            )
    return plan
