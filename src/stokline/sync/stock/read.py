"""What a stock pass reads from both systems, apart from what it then writes.

The stock sync and the stock reconciliation read the same things — SHOPLINE's variants (SKUs and
inventory item ids), Stokly's stockable items, locations, inventory records and allocations, the
paid SHOPLINE orders not yet linked to a Stokly sale order, and then SHOPLINE's current levels —
and derive the same desired levels through `stokline.sync.stock.translate.plan_levels`. Keeping that
reading here means `stokline reconcile stock` compares exactly what a pass would push, and the
pass itself only decides and writes.

SHOPLINE lists levels only by inventory item, at most 50 a request: read for every variant they
would be most of a full pass's SHOPLINE requests. A full pass (``drift``, a `DriftRotation`)
reads them in two parts: the rotating drift slice, which needs nothing but SHOPLINE's variants,
as soon as those are in, while Stokly (its own rate limit) is still being read; then, after the
plan, the inventory items whose target differs from the value last pushed (or was never pushed)
and that the slice did not cover — exactly those the pass may push, whose difference needs the
level. The event path reads the levels of its few items after its plan. ``shown`` keeps a level
not read apart from one read and absent: only the second is "SHOPLINE has no level here".

A record one of the APIs sends malformed does not fail the read (`_Reader`'s ``on_invalid``
callbacks): a SHOPLINE product is skipped (its variants get no level), a Stokly item, inventory
record or allocation holds back every level of its item, and a paid order awaiting import holds
back its SKUs — a partial sum is never pushed. Each is one of ``problems``. Only a record that
does not even say which item it concerns still fails the read.

Paid orders awaiting import are read twice: with Stokly, and again after the last SHOPLINE level
was read; the plan is made again from the second read. A checkout before a level read is then in
the level and in the target, and the difference written keeps it; one between the level read and
the second read of orders is in the target only, and SHOPLINE shows one unit too few until the
next pass, never one too many (the pass forgets the value it pushed to such a level, so the next
pass reads it again: ``recheck``). Read only before the levels, an order placed in between would be
in the level and not in the target, and the difference written would give the unit back: sold
twice. For the
same reason Stokly's allocations are read only after the first read of those orders has looked
up which of them are imported: an order counts as imported (its sale order allocates its units)
only when its link to the Stokly sale order was stored by then, so it is in the allocations read.
One imported in between is counted as awaiting import as well: too few again, never too many.

A variant that was sold from a Stokly item before (the store remembers a level pushed to it)
and matches none now — the item deactivated, deleted, or colliding with another — is planned at
0 (`plan_levels`' ``matched_before``), unless the catalogue sync archives it.

Nothing here writes anywhere: the state store is read for order links and pushed levels only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from stokline.config import Mapping
from stokline.config.skus import sku_key
from stokline.connectors import InvalidRecord, ShoplineClient, StoklyClient
from stokline.connectors.stokly.filters import one_of
from stokline.mapping.translate import SkuMatcher
from stokline.store import Store
from stokline.sync.guards import printable
from stokline.sync.orders.sync import stokly_location_index
from stokline.sync.orders.translate import importable_statuses, shippable_quantities
from stokline.sync.run import SyncContext
from stokline.sync.stock.drift import DriftRotation
from stokline.sync.stock.translate import (
    DesiredLevel,
    StockPlan,
    StockRecord,
    UnimportedLine,
    VariantRef,
    plan_levels,
)

__all__ = ["ORDER_LINK", "UNIMPORTED_WINDOW", "StockPlanRead", "read_plan", "read_shown"]

ORDER_LINK = "order"
UNIMPORTED_WINDOW = timedelta(days=14)
"""How far back paid orders still waiting for import are looked for; older ones are exceptions
of the orders sync by then, and reading every order ever would make each pass slower."""


@dataclass
class StockPlanRead:
    """The desired levels of one read, and what the read could not cover.

    ``locations`` is Stokly's location index (name → id); ``problems`` says which SHOPLINE
    locations were left alone because Stokly lacks one of the locations feeding them, and which
    malformed records held levels back.
    """

    locations: dict[str, str]
    plan: StockPlan
    problems: list[str] = field(default_factory=list)
    shown: dict[tuple[str, str], int | None] | None = None
    """With ``read_plan(shown=True)``: what SHOPLINE shows per (inventory item, location) of the
    ``plan.levels`` whose inventory item was read — None where it was read and SHOPLINE has no
    level there; a level whose item was not read is not a key. None when not asked for."""
    drift_cursor: str | None = None
    """With ``drift``: the rotation cursor to store once the pass has finished."""
    drift_read: int = 0
    """With ``drift``: the inventory items the rotating drift slice read."""
    changed_read: int = 0
    """With ``drift``: the inventory items read after the plan, because their target changed."""
    recheck: set[tuple[str, str]] = field(default_factory=set)
    """Levels read whose target the second read of orders lowered: a checkout between their read
    and that read is taken off twice, so the next pass must read them again."""


@dataclass(eq=False, repr=False)
class _Reader(SyncContext):
    """One read of both sides for a stock plan; `read_plan` is its public face."""

    only: set[str] | None  # Stokly SKUs the read is limited to (the event path); None: all
    drift: DriftRotation | None = None  # a full pass's drift slice; None: read every level

    def __post_init__(self) -> None:
        self.only = set(self.only) if self.only is not None else None
        self.drift_cursor: str | None = None
        # Orders imported when the first read of paid orders looked: their allocations are in
        # what the pass reads of Stokly after that. None until that read.
        self.imported: set[str] | None = None
        # Malformed records set aside: what they concern is left alone this pass.
        self.problems: list[str] = []
        self.held_items: set[str] = set()  # Stokly item ids
        self.held_stokly_skus: set[str] = set()
        self.held_shopline_skus: set[str] = set()
        # A malformed Stokly item whose SKU cannot be read: which variant it backs is unknown,
        # so no unmatched variant is taken for one whose item is gone this pass.
        self.unnamed_items = False

    # -- malformed records ----------------------------------------------------------------------

    def _problem(self, what: str, record: InvalidRecord, consequence: str) -> None:
        self.problems.append(f"{what} is malformed ({record.error}); {consequence}")

    def _bad_product(self, record: InvalidRecord) -> None:
        name = printable(record.record_id or f"#{record.index + 1} of a page")
        self._problem(f"SHOPLINE product {name}", record, "its variants are left alone")

    def _bad_item(self, record: InvalidRecord) -> None:
        raw = record.raw if isinstance(record.raw, dict) else {}
        if isinstance(raw.get("sku"), str):
            self.held_stokly_skus.add(raw["sku"])
        else:
            self.unnamed_items = True
        if record.record_id:
            self.held_items.add(record.record_id)
        name = printable(raw.get("sku") or record.record_id or "without a SKU")
        self._problem(f"Stokly item {name}", record, "its levels are left alone")

    def _bad_figure(self, record: InvalidRecord) -> None:
        """An inventory record or allocation: its item's sum would be wrong, so it is held."""
        if record.record_id is None:
            raise record.error  # which item it counts for is unknown: no level can be trusted
        self.held_items.add(record.record_id)
        item = printable(record.record_id)
        self._problem(f"a Stokly stock figure of item {item}", record, "its levels are left alone")

    def _bad_order(self, record: InvalidRecord) -> None:
        """A paid order awaiting import: its lines' SKUs would be oversold, so they are held."""
        raw = record.raw if isinstance(record.raw, dict) else {}
        lines = raw.get("line_items")
        if not isinstance(lines, list) or not all(
            isinstance(li, dict) and isinstance(li.get("sku", ""), str | None) for li in lines
        ):
            raise record.error  # what it sold is unknown: no level can be trusted
        skus = {li["sku"] for li in lines if li.get("sku")}
        self.held_shopline_skus.update(skus)
        name = printable(raw.get("name") or record.record_id or "without an id")
        self._problem(
            f"SHOPLINE order {name}", record, f"the levels of {len(skus)} SKU(s) are left alone"
        )

    def _hold(self, plan: StockPlan, items: dict[str, str]) -> None:
        """Drop from ``plan`` whatever a malformed record concerns: never a partial figure."""
        match = self.mapping.skus.match
        stokly = self.held_stokly_skus | {s for s, i in items.items() if i in self.held_items}
        stokly_keys = {sku_key(s, match) for s in stokly}
        shopline_keys = {sku_key(s, match) for s in self.held_shopline_skus}
        if not stokly_keys and not shopline_keys:
            return
        overrides = {
            sku_key(o.shopline_sku, match): o.stokly_sku for o in self.mapping.skus.overrides
        }

        def held(shopline_sku: str, stokly_sku: str | None = None) -> bool:
            key = sku_key(shopline_sku, match)
            target = stokly_sku or overrides.get(key, shopline_sku)
            return key in shopline_keys or sku_key(target, match) in stokly_keys

        plan.levels = [lv for lv in plan.levels if not held(lv.shopline_sku, lv.stokly_sku)]
        # A variant unmatched because its item was unreadable is no unknown SKU: left alone.
        plan.unmatched = [(v, p) for v, p in plan.unmatched if not held(v.sku)]

    # -- reading --------------------------------------------------------------------------------

    async def variants(self) -> list[VariantRef]:
        variants = []
        async for product in self.shopline.iter_products(
            fields="id,variants", on_invalid=self._bad_product
        ):
            for variant in product.variants:
                if variant.inventory_item_id and variant.sku and variant.sku.strip():
                    variants.append(VariantRef(variant.id, variant.inventory_item_id, variant.sku))
        return variants

    async def items(self) -> dict[str, str]:
        """Stockable Stokly items still sold, SKU → itemId (variable parents hold no stock).

        A deleted item, or one deactivated (``isSold: false``, as the catalogue sync reads it),
        backs no SHOPLINE level.
        """
        wanted = None
        if self.only is not None:
            wanted = sorted({v for s in self.only for v in (s, s.upper(), s.lower())})
        return {
            item.sku: item.itemId
            async for item in self.stokly.iter_items(skus=wanted, on_invalid=self._bad_item)
            if item.active
            and item.format != 2
            and (item.model_extra or {}).get("isSold") is not False
        }

    async def unimported(self) -> list[UnimportedLine]:
        """Lines of paid open SHOPLINE orders that the orders sync has not linked yet."""
        since = datetime.now(UTC) - UNIMPORTED_WINDOW
        orders_sync = self.mapping.syncs.orders
        statuses = importable_statuses(orders_sync.import_when if orders_sync else ("paid",))
        orders = []
        for status in statuses:
            async for order in self.shopline.iter_orders(
                status="open",
                financial_status=status,
                created_at_min=since,
                on_invalid=self._bad_order,
            ):
                orders.append(order)
        if self.imported is None:
            ids = [o.id for o in orders]
            self.imported = set(
                self.store.links.get_many(self.client, ORDER_LINK, ids) if ids else ()
            )
        linked = self.imported
        lines = []
        for order in orders:
            if order.id in linked or order.cancelled_at is not None:
                continue
            order_location = (order.model_extra or {}).get("location_id")
            # Exactly what the orders sync will import, so the level does not move when the
            # import makes Stokly allocate it: the units paid and not refunded.
            shippable = shippable_quantities(order.model_dump())
            for line in order.line_items:
                quantity = shippable.get(str(line.id), 0)
                if line.sku and quantity > 0:
                    location = line.location_id or order_location
                    lines.append(UnimportedLine(line.sku, quantity, location and str(location)))
        return lines

    async def records(
        self, item_ids: list[str] | None, location_ids: list[str]
    ) -> list[StockRecord]:
        if item_ids is not None and not item_ids:
            return []
        return [
            StockRecord(r.itemId, r.locationId, r.onHand, r.quarantined)
            async for r in self.stokly.iter_inventory_records(
                item_ids=item_ids, location_ids=location_ids, on_invalid=self._bad_figure
            )
        ]

    async def unimported_then_allocations(
        self, item_ids: list[str] | None
    ) -> tuple[list[UnimportedLine], list[tuple[str, str | None, Decimal]]]:
        """The paid orders awaiting import, then Stokly's allocations: in that order, so that an
        order counted as imported is in the allocations read (see the module docstring)."""
        unimported = await self.unimported()
        return unimported, await self.allocations(item_ids)

    async def allocations(
        self, item_ids: list[str] | None
    ) -> list[tuple[str, str | None, Decimal]]:
        if item_ids is not None and not item_ids:
            return []
        allocations: list[tuple[str, str | None, Decimal]] = []
        batches: list[list[str] | None] = (
            [None]
            if item_ids is None
            else [item_ids[i : i + 100] for i in range(0, len(item_ids), 100)]
        )
        for batch in batches:
            async for a in self.stokly.iter_allocations(
                one_of("itemId", batch) if batch is not None else None,
                on_invalid=self._bad_figure,
            ):
                allocations.append((a.itemId, a.locationId, a.allocated))
        return allocations

    async def variants_and_shown(
        self, shopline_locations: list[str]
    ) -> tuple[list[VariantRef], set[str], dict[tuple[str, str], int | None]]:
        """The variants, then at once the levels of the drift slice (with ``drift``) or of every
        variant the mapping does not exclude; also which inventory items were read.

        SHOPLINE lists levels only by inventory item: reading them as soon as the variants are
        known lets those requests run while Stokly is still being read, instead of after it.
        """
        variants = await self.variants()
        excluded = SkuMatcher(self.mapping, ()).excluded
        items = [v.inventory_item_id for v in variants if not excluded(v.sku)]
        if self.drift is not None:
            items, self.drift_cursor = self.drift.slice(items)
        return variants, set(items), await _levels(self.shopline, items, shopline_locations)

    async def plan(self, locations: dict[str, str] | None, shown: bool) -> StockPlanRead:
        if locations is None:
            locations = await stokly_location_index(self.stokly)
        folded = {name.strip().casefold(): lid for name, lid in locations.items()}
        problems: list[str] = []
        synced_ids: list[str] = []
        shopline_locations: list[str] = []
        for location in self.mapping.locations:
            if not location.stock.sync:
                continue
            missing = [n for n in location.stokly_locations if n.strip().casefold() not in folded]
            if missing:
                problems.append(
                    f"SHOPLINE location {location.shopline_location} is left alone: Stokly has"
                    f" no location {', '.join(missing)}"
                )
                continue
            synced_ids.extend(folded[n.strip().casefold()] for n in location.stokly_locations)
            shopline_locations.append(location.shopline_location)
        stokly_locations = sorted(set(synced_ids))
        current: dict[tuple[str, str], int | None] | None = None
        read_items: set[str] = set()
        if self.only is None:
            # Nothing of the full pass's reading depends on another read but SHOPLINE's levels,
            # which need only its variants: all at once, each API at its own pace.
            first = self.variants_and_shown(shopline_locations) if shown else self.variants()
            got, items, records, (unimported, allocations) = await _together(
                first,
                self.items(),
                self.records(None, stokly_locations),
                self.unimported_then_allocations(None),
            )
            variants, read_items, current = got if shown else (got, set(), None)
        else:
            variants, items, unimported = await _together(
                self.variants(), self.items(), self.unimported()
            )
            item_ids = sorted(set(items.values()))
            records, allocations = await _together(
                self.records(item_ids, stokly_locations), self.allocations(item_ids)
            )
        catalogue = self.mapping.syncs.catalogue
        pushed = self.store.levels.all(self.client) if self.only is None else {}

        def planned(unimported: list[UnimportedLine]) -> StockPlan:
            plan = plan_levels(
                self.mapping,
                variants,
                items,
                locations,
                records,
                allocations,
                unimported,
                only=self.only,
                # Variants this client's stock was pushed to: unmatched now, they are zeroed.
                matched_before=(
                    {item for item, _ in pushed}
                    if self.only is None and not self.unnamed_items
                    else ()
                ),
                removal_archives=(
                    catalogue is not None
                    and catalogue.enabled
                    and catalogue.on_removed == "archive"
                ),
            )
            self._hold(plan, items)
            return plan

        plan = planned(unimported)
        if not shown:
            return StockPlanRead(locations=locations, plan=plan, problems=problems + self.problems)
        read = StockPlanRead(locations=locations, plan=plan)
        if current is None:  # the event path: its few items, right before it writes
            read_items = {level.inventory_item_id for level in plan.levels}
            current = await _levels(
                self.shopline, read_items, (level.location_id for level in plan.levels)
            )
        elif self.drift is not None:
            # The levels the pass may push and the slice did not read: their difference needs
            # SHOPLINE's level. Targets equal to the value last pushed need no read to stay put.
            changed = [
                level.inventory_item_id
                for level in plan.levels
                if level.inventory_item_id not in read_items
                and level.available != pushed.get(level.key)
            ]
            more = await _levels(self.shopline, changed, shopline_locations)
            current.update(more)
            read.changed_read = len(set(changed))
            read.drift_read = len(read_items)
            read_items.update(changed)
            read.drift_cursor = self.drift_cursor
        # Every level is read now: the orders awaiting import once more, and the plan again from
        # them (see the module docstring). A level not read keeps its first target: whatever a
        # new order takes off it, SHOPLINE took off itself at checkout.
        later = await self.unimported()
        if later != unimported:  # most often nothing was sold meanwhile: the plan stands
            again = planned(later)
            first = {level.key: level for level in plan.levels}
            again.levels = [
                level if level.inventory_item_id in read_items else first.get(level.key, level)
                for level in again.levels
            ]
            read.recheck = {
                level.key
                for level in again.levels
                if level.key in first and level.available != first[level.key].available
            }
            read.plan = plan = again
        read.problems = list(dict.fromkeys(problems + self.problems))  # each order said once
        # Only the planned levels (the read covered unmatched variants too); a level of an item
        # read that SHOPLINE did not list is None: read, and absent.
        read.shown = {
            level.key: current.get(level.key)
            for level in plan.levels
            if level.inventory_item_id in read_items
        }
        return read


async def _together(*steps: Awaitable[Any]) -> list[Any]:
    """`asyncio.gather`, except that the first failure also stops the other reads."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _levels(
    shopline: ShoplineClient, items: Iterable[str], locations: Iterable[str]
) -> dict[tuple[str, str], int | None]:
    locations = list(dict.fromkeys(locations))
    items = list(dict.fromkeys(items))
    if not items or not locations:
        return {}
    return {
        (lv.inventory_item_id, lv.location_id): lv.available
        async for lv in shopline.iter_inventory_levels(items, locations)
    }


async def read_plan(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    skus: set[str] | None = None,
    locations: dict[str, str] | None = None,
    shown: bool = False,
    drift: DriftRotation | None = None,
) -> StockPlanRead:
    """Read both systems and derive the level SHOPLINE should show per variant × location.

    ``skus`` (Stokly SKUs) limits the read to those items, as the event path does; ``locations``
    is Stokly's location index (name → id) when the caller already has it (one call fewer).
    ``shown`` also reads what SHOPLINE shows now for the planned levels (``read.shown``): a full
    pass reads them alongside Stokly, the event path after its plan, for its few items only.
    ``drift`` (a full pass with ``shown``) reads instead the rotating drift slice alongside Stokly
    and, after the plan, the other levels whose target changed since the last push; the cursor
    to store when the pass has finished is ``read.drift_cursor``.
    A failed read raises the client's `ConnectorError`: a partial read would give wrong levels.
    A malformed record only holds back the levels it concerns (see ``problems``).
    """
    reader = _Reader(mapping, shopline, stokly, store, only=skus, drift=drift)
    return await reader.plan(locations, shown)


async def read_shown(
    shopline: ShoplineClient, levels: list[DesiredLevel]
) -> dict[tuple[str, str], int | None]:
    """What SHOPLINE shows now for the (inventory item, location) pairs of ``levels``.

    A pair SHOPLINE has no level for is absent: the item is not stocked at that location.
    """
    return await _levels(
        shopline,
        (level.inventory_item_id for level in levels),
        (level.location_id for level in levels),
    )
