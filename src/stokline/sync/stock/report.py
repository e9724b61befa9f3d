"""What one stock pass did, in numbers and rows fit for a terminal and a Prefect table artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stokline.sync.report import SyncReport
from stokline.sync.stock.reconcile import StockReconciliation

__all__ = ["StockReport"]


@dataclass
class StockReport(SyncReport):
    """The outcome of one stock pass (dry or real) for one client.

    ``levels_computed`` counts (inventory item, location) pairs whose sellable level was derived;
    ``levels_changed`` those whose level differs from the value last pushed; ``pushed`` the
    writes SHOPLINE accepted (adjusts by the difference from the level read, and of those
    ``pushed_absolute`` sets of levels the pass could not read), ``failed`` those it did not
    (left unrecorded, so the next pass reads the level again and pushes what is still missing); ``drift_corrected`` levels someone changed in SHOPLINE that were set
    back; ``skipped_excluded`` levels of SKUs the mapping never syncs; ``oversell_risk`` rows where
    SHOPLINE showed more than Stokly can fulfil when the pass read it; ``would_push`` what a dry
    run would have written; ``reconciliation`` every level the pass compared (Stokly sellable
    beside SHOPLINE available, as read) and which of them it set right. ``levels_read`` counts the
    planned levels whose SHOPLINE level the pass read: on a full pass, those of the inventory
    items whose target changed (``changed_items_read`` items read after the plan) and of the
    rotating drift slice (``drift_items_read`` items); the others are read on later passes.
    """

    levels_computed: int = 0
    levels_changed: int = 0
    pushed: int = 0
    pushed_absolute: int = 0
    failed: int = 0
    drift_corrected: int = 0
    skipped_excluded: int = 0
    levels_read: int = 0
    drift_items_read: int = 0
    changed_items_read: int = 0
    out_of_time: bool = False
    """The pass's time budget ran out (`stokline.sync.stock.budget`): the next scheduled pass
    finishes the job; trying again at once would only run past the schedule."""
    left_to_others: int = 0
    """Levels this pass would have written but left to another pass of the client: one was
    writing the SKU (the event path, for a movement) or recorded the level after this pass began,
    from newer figures and a newer read."""
    oversell_risk: list[dict[str, Any]] = field(default_factory=list)
    would_push: list[dict[str, Any]] = field(default_factory=list)
    reconciliation: StockReconciliation | None = None

    @property
    def ok(self) -> bool:
        """False when a push failed or a read went wrong: the next pass must finish the job."""
        return not self.failed and not self.errors

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per figure: ``{"metric", "value"}``."""
        return self._rows(
            [
                ("levels computed", self.levels_computed),
                ("levels changed since last push", self.levels_changed),
                (
                    "would push" if self.dry_run else "pushed",
                    len(self.would_push) if self.dry_run else self.pushed,
                ),
                ("failed (retried next pass)", self.failed),
                ("left to a newer pass", self.left_to_others),
                ("drift corrected", self.drift_corrected),
                ("skipped (never_sync)", self.skipped_excluded),
                ("SHOPLINE levels read", self.levels_read),
                ("oversell risk", len(self.oversell_risk)),
                ("exceptions", len(self.exceptions)),
            ]
        )
