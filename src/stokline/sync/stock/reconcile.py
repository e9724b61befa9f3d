"""Stock reconciliation: Stokly's sellable level beside SHOPLINE's available, per SKU × location.

Overselling is the costliest failure this integration exists to prevent, so operations need to
see, at any moment, where SHOPLINE shows more than Stokly can fulfil. `reconcile_stock` reads
both systems exactly as a stock pass does (`stokline.sync.stock.read`) and writes nothing
anywhere; `compare_levels` turns desired levels and SHOPLINE's current ones into rows. A stock
pass compares what it read too, so the scheduled pass publishes the same rows as
`stokline reconcile stock` prints, plus which differences it set right.

A stock pass reads only some of SHOPLINE's levels (those it may push and a rotating drift
slice): its comparison covers those, and ``not_read`` counts the planned levels it left for
later passes. `reconcile_stock` reads every level.

``difference`` is SHOPLINE available − Stokly sellable: positive means SHOPLINE sells units
Stokly does not have (oversell risk); negative means SHOPLINE under-sells; empty means SHOPLINE
has no level for the item at that location (it is not sold there at all).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.store import Store
from stokline.sync.report import spreadsheet_cell
from stokline.sync.run import RunCost
from stokline.sync.stock.read import read_plan, read_shown
from stokline.sync.stock.translate import DesiredLevel

__all__ = [
    "COLUMNS",
    "LevelComparison",
    "StockReconciliation",
    "compare_levels",
    "reconcile_stock",
]

COLUMNS = (
    "stokly_sku",
    "shopline_sku",
    "location",
    "stokly_sellable",
    "shopline_available",
    "difference",
    "oversell_risk",
)
"""The columns of every reconciliation row, in order (terminal, CSV and Prefect table alike)."""


@dataclass(frozen=True, slots=True)
class LevelComparison:
    """One SHOPLINE variant at one SHOPLINE location: what Stokly can sell, what SHOPLINE shows."""

    stokly_sku: str
    shopline_sku: str
    location: str
    inventory_item_id: str
    sellable: int
    shopline: int | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.inventory_item_id, self.location)

    @property
    def difference(self) -> int | None:
        """SHOPLINE available − Stokly sellable; None when SHOPLINE has no level here."""
        return None if self.shopline is None else self.shopline - self.sellable

    @property
    def differs(self) -> bool:
        return self.shopline != self.sellable

    @property
    def oversell_risk(self) -> bool:
        """SHOPLINE shows more than Stokly can fulfil."""
        return self.shopline is not None and self.shopline > self.sellable

    def row(self) -> dict[str, Any]:
        return {
            "stokly_sku": self.stokly_sku,
            "shopline_sku": self.shopline_sku,
            "location": self.location,
            "stokly_sellable": self.sellable,
            "shopline_available": self.shopline,
            "difference": self.difference,
            "oversell_risk": "yes" if self.oversell_risk else "no",
        }


def _order(comparison: LevelComparison) -> tuple[int, int, str, str]:
    """Oversell risk first (largest excess first), then other differences, then agreement."""
    difference = comparison.difference
    if comparison.oversell_risk:
        rank, size = 0, -(difference or 0)
    elif comparison.differs:
        rank, size = 1, -abs(difference) if difference is not None else 0
    else:
        rank, size = 2, 0
    return (rank, size, comparison.shopline_sku.casefold(), comparison.location)


@dataclass
class StockReconciliation:
    """Every compared level of one client, riskiest first, with the counts a headline needs.

    ``corrected`` holds the (inventory item, location) pairs a stock pass set right after it
    read them (empty for `reconcile_stock`, which writes nothing). ``unmatched`` counts SHOPLINE
    variants whose SKU Stokly does not know and ``excluded`` those the mapping never syncs:
    neither has a Stokly level to compare. ``not_read`` counts levels with a Stokly figure whose
    SHOPLINE level was not read (a stock pass reads the rest in rotation): not compared.
    """

    client: str
    comparisons: list[LevelComparison] = field(default_factory=list)
    corrected: frozenset[tuple[str, str]] = frozenset()
    unmatched: int = 0
    excluded: int = 0
    not_read: int = 0
    errors: list[str] = field(default_factory=list)
    api_calls: int = 0
    seconds: float = 0.0

    @property
    def compared(self) -> int:
        return len(self.comparisons)

    @property
    def differences(self) -> int:
        return sum(1 for c in self.comparisons if c.differs)

    @property
    def missing(self) -> int:
        """Levels SHOPLINE does not have at all (the variant is not stocked at that location)."""
        return sum(1 for c in self.comparisons if c.shopline is None)

    @property
    def oversell_risk(self) -> int:
        return sum(1 for c in self.comparisons if c.oversell_risk)

    @property
    def units_at_risk(self) -> int:
        """Units SHOPLINE shows beyond what Stokly can fulfil, summed over the risky levels."""
        return sum(c.difference or 0 for c in self.comparisons if c.oversell_risk)

    @property
    def oversell_risk_remaining(self) -> int:
        """Levels still at oversell risk after the pass that read them (all, for a plain read)."""
        return sum(1 for c in self.comparisons if c.oversell_risk and c.key not in self.corrected)

    @property
    def differences_remaining(self) -> int:
        return sum(1 for c in self.comparisons if c.differs and c.key not in self.corrected)

    def rows(self, *, only_differences: bool = False, limit: int | None = None) -> list[dict]:
        """Rows in `COLUMNS` order, riskiest first; ``limit`` keeps the first rows only."""
        chosen: Iterable[LevelComparison] = self.comparisons
        if only_differences:
            chosen = (c for c in chosen if c.differs)
        rows = []
        for comparison in chosen:
            if limit is not None and len(rows) >= limit:
                break
            rows.append(comparison.row())
        return rows

    def write_csv(self, stream: IO[str], *, only_differences: bool = False) -> int:
        """Every row (or every differing one) as CSV with a header line; returns the row count."""
        writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        rows = self.rows(only_differences=only_differences)
        writer.writerows({k: spreadsheet_cell(v) for k, v in row.items()} for row in rows)
        return len(rows)

    def headline(self) -> str:
        """One sentence of counts, e.g. for a terminal or the top of a Prefect artifact."""
        compared = f"{self.compared} level(s) compared"
        if self.not_read:
            compared = (
                f"{self.compared} of {self.compared + self.not_read} level(s) compared (the"
                " others are read on later passes, in rotation)"
            )
        parts = [
            f"{self.client}: {compared}",
            f"{self.differences} differ",
            f"{self.oversell_risk} at oversell risk ({self.units_at_risk} unit(s) SHOPLINE "
            "shows beyond Stokly's sellable stock)",
        ]
        if self.missing:
            parts.append(f"{self.missing} not stocked in SHOPLINE at that location")
        if self.unmatched:
            parts.append(f"{self.unmatched} SHOPLINE variant(s) unknown to Stokly")
        return "; ".join(parts)


def compare_levels(
    client: str,
    levels: Iterable[DesiredLevel],
    shown: dict[tuple[str, str], int | None],
    *,
    corrected: Iterable[tuple[str, str]] = (),
    unmatched: int = 0,
    excluded: int = 0,
    not_read: int = 0,
) -> StockReconciliation:
    """Compare desired ``levels`` with what SHOPLINE ``shown``; riskiest rows first.

    ``levels`` are those whose SHOPLINE level was read (one absent from ``shown`` is read and
    missing); ``not_read`` counts the others, which are not compared.
    """
    comparisons = [
        LevelComparison(
            stokly_sku=level.stokly_sku,
            shopline_sku=level.shopline_sku,
            location=level.location_id,
            inventory_item_id=level.inventory_item_id,
            sellable=level.available,
            shopline=shown.get(level.key),
        )
        for level in levels
    ]
    comparisons.sort(key=_order)
    return StockReconciliation(
        client=client,
        comparisons=comparisons,
        corrected=frozenset(corrected),
        unmatched=unmatched,
        excluded=excluded,
        not_read=not_read,
    )


async def reconcile_stock(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    locations: dict[str, str] | None = None,
) -> StockReconciliation:
    """Read both systems as a stock pass would and compare; writes nothing anywhere.

    A failed read raises the client's `ConnectorError` (a partial comparison would mislead);
    SHOPLINE locations left out because Stokly lacks a location they are fed by are listed in
    ``errors``.
    """
    cost = RunCost(shopline, stokly)
    read = await read_plan(
        mapping, shopline=shopline, stokly=stokly, store=store, locations=locations
    )
    shown = await read_shown(shopline, read.plan.levels)
    result = compare_levels(
        mapping.client.name,
        read.plan.levels,
        shown,
        unmatched=len(read.plan.unmatched),
        excluded=len(read.plan.excluded),
    )
    result.errors.extend(read.problems)
    return cost.charge(result)
