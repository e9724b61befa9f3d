"""The Prefect glue of the catalogue's two ways in (`flows/catalogue.py`, the full pass, and the
event pass that `flows/stock_events.py` runs for the items Stokly's change feed says changed):
their event, their figures, why a pass did not finish."""

from __future__ import annotations

from stokline.sync.catalogue.report import CatalogueReport

SYNCED_EVENT = "stokline.catalogue.synced"
SUMMARY_FIELDS = (
    "items_seen",
    "products_seen",
    "linked",
    "unchanged",
    "updated",
    "created",
    "archived",
    "reported_missing",
    "exceptions_opened",
    "exceptions_resolved",
    "api_calls",
)


def incomplete(report: CatalogueReport) -> str:
    """Why a pass did not finish, in one line."""
    return "; ".join(report.errors) or "the pass did not finish"


def counts(report: CatalogueReport) -> dict[str, int]:
    """The whole numbers of a pass, for the flow's return value, the log and the event."""
    return {name: int(getattr(report, name)) for name in SUMMARY_FIELDS}
