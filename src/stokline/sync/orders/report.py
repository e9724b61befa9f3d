"""What one orders run did, in numbers and rows fit for a terminal and a Prefect table artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stokline.sync.report import SyncReport

__all__ = ["OrdersReport"]


@dataclass
class OrdersReport(SyncReport):
    """The outcome of one orders run (dry or real) for one client.

    ``duplicates`` counts orders Stokly already had (linked before, or found by the search that
    precedes every create); ``skipped`` orders that are not to be imported (not paid, cancelled
    before import, only never-sync lines, placed before ``import_from``); ``deferred`` orders left for the next run after a
    transient failure (their webhook events are handed back); ``changes`` cancellations and
    edits of imported orders, applied or reported.
    """

    seen: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: int = 0
    before_import_from: int = 0  # of the skipped: placed before syncs.orders.import_from
    exceptions_opened: int = 0
    exceptions_resolved: int = 0
    would_create: list[dict] = field(default_factory=list)
    deferred: int = 0
    customers_created: int = 0
    changes: list[dict] = field(default_factory=list)
    sweep_ok: bool = True

    @property
    def ok(self) -> bool:
        """False when something transient held orders back or the sweep failed: retry the run."""
        return self.sweep_ok and not self.deferred and not self.errors

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per figure: ``{"metric", "value"}``."""
        return self._rows(
            [
                ("orders seen", self.seen),
                (
                    "would create" if self.dry_run else "imported",
                    (len(self.would_create) if self.dry_run else self.imported),
                ),
                ("already in Stokly (duplicates)", self.duplicates),
                ("skipped (not to import)", self.skipped),
                *(
                    [("of which placed before import_from", self.before_import_from)]
                    if self.before_import_from
                    else []
                ),
                ("deferred to the next run", self.deferred),
                ("customers created", self.customers_created),
                ("cancellations and edits", len(self.changes)),
                ("exceptions opened", self.exceptions_opened),
                ("exceptions resolved", self.exceptions_resolved),
            ]
        )
