"""What one fulfilment pass did, in numbers and rows fit for a terminal and a Prefect artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stokline.sync.report import SyncReport

__all__ = ["FulfilmentReport"]


@dataclass
class FulfilmentReport(SyncReport):
    """The outcome of one fulfilment pass (dry or real) for one client.

    ``created`` counts SHOPLINE fulfillments created; ``recovered`` fulfillments found already in
    SHOPLINE for a shipment that had no link yet (a create whose answer was lost, a crash before
    the link, a fulfillment made by hand) and linked instead of created; ``tracking_updated``
    fulfillments whose tracking followed a correction in Stokly; ``cancelled`` fulfillments
    cancelled after their shipment was; ``unchanged`` shipments already in SHOPLINE as they are;
    ``already_fulfilled`` shipments whose units SHOPLINE shows fulfilled by other means;
    ``skipped`` shipments cancelled before they reached SHOPLINE; ``not_ours`` shipments of
    sale orders from other channels; ``deferred`` shipments held back by a transient failure
    (the feed's cursor waits before them, so the next pass takes them again); ``busy`` shipments
    of orders another pass was working on (left to it; the cursor waits for them too).

    ``changes`` lists each write (or, in a dry run, ``would_write`` each planned one); ``stale``
    lists shipments shipped longer ago than ``syncs.fulfilment.stale_after`` that SHOPLINE does
    not show, each ``new`` when this pass opened its ``stale_fulfilment`` exception.
    """

    events: int = 0
    shipments_seen: int = 0
    created: int = 0
    recovered: int = 0
    tracking_updated: int = 0
    cancelled: int = 0
    unchanged: int = 0
    already_fulfilled: int = 0
    skipped: int = 0
    not_ours: int = 0
    deferred: int = 0
    busy: int = 0
    exceptions_opened: int = 0
    exceptions_resolved: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)
    would_write: list[dict[str, Any]] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)
    stale_after_hours: float = 0.0
    feed_ok: bool = True
    cursor: str | None = None

    @property
    def ok(self) -> bool:
        """False when the feed could not be read or shipments were deferred: run it again."""
        return self.feed_ok and not self.deferred and not self.errors

    @property
    def newly_stale(self) -> list[dict[str, Any]]:
        """Stale shipments this pass reported for the first time (what an alert is about)."""
        return [row for row in self.stale if row.get("new")]

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per figure: ``{"metric", "value"}``."""
        return self._rows(
            [
                ("feed events read", self.events),
                ("shipments seen", self.shipments_seen),
                (
                    "would write" if self.dry_run else "fulfillments created",
                    len(self.would_write) if self.dry_run else self.created,
                ),
                ("found in SHOPLINE and linked", self.recovered),
                ("tracking updated", self.tracking_updated),
                ("fulfillments cancelled", self.cancelled),
                ("unchanged", self.unchanged),
                ("already fulfilled in SHOPLINE", self.already_fulfilled),
                ("cancelled before reaching SHOPLINE", self.skipped),
                ("other channels", self.not_ours),
                ("deferred to the next run", self.deferred),
                ("left to a concurrent run", self.busy),
                (f"stale (over {self.stale_after_hours:g} h)", len(self.stale)),
                ("exceptions opened", self.exceptions_opened),
                ("exceptions resolved", self.exceptions_resolved),
            ]
        )
