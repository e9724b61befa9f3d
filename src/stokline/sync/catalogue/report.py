"""What one catalogue run did: `CatalogueReport`, its figures and rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stokline.sync.report import SyncReport

__all__ = ["CatalogueReport"]


@dataclass
class CatalogueReport(SyncReport):
    """The outcome of one catalogue run (dry or real) for one client.

    ``linked`` counts SHOPLINE variants linked to a live Stokly item; ``unchanged`` products and
    variants that needed no write; ``updated`` products and variants written; ``created``
    products created; ``archived`` products archived or unpublished because their Stokly items
    are gone; ``reported_missing`` Stokly items SHOPLINE lacks (not created) and removals that
    ``on_removed: report`` only reports. ``would_write`` lists, in a dry run, every write a live
    run would make.
    """

    items_seen: int = 0
    products_seen: int = 0
    linked: int = 0
    unchanged: int = 0
    updated: int = 0
    created: int = 0
    archived: int = 0
    reported_missing: int = 0
    deferred_items: int = 0  # an event pass's changed items with no linked variant (full pass's)
    exceptions_opened: int = 0
    exceptions_resolved: int = 0
    would_write: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)

    @property
    def writes(self) -> int:
        """Writes made to SHOPLINE (updates, creates, archives)."""
        return self.updated + self.created + self.archived

    @property
    def ok(self) -> bool:
        """False when a read or a write failed for now: the next run picks it up."""
        return not self.errors

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per figure: ``{"metric", "value"}``."""
        return self._rows(
            [
                ("Stokly items seen", self.items_seen),
                ("SHOPLINE products seen", self.products_seen),
                ("variants linked", self.linked),
                ("unchanged (no write)", self.unchanged),
                ("would write" if self.dry_run else "updated", self._shown(self.updated)),
                ("created", self.created),
                ("archived or unpublished", self.archived),
                ("missing in SHOPLINE (reported)", self.reported_missing),
                ("exceptions opened", self.exceptions_opened),
                ("exceptions resolved", self.exceptions_resolved),
            ]
        )

    def _shown(self, live_count: int) -> int:
        return len(self.would_write) if self.dry_run else live_count
