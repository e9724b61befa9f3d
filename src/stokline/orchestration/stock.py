"""The Prefect glue of the two stock flows (`flows/stock.py`, the full pass, and
`flows/stock_events.py`, the event path): one pass, its figures and its events.

The two never write one level at once, and an event batch never waits for a whole full pass: the
sync keeps them apart SKU by SKU (`stokline.sync.stock.claims`), so no Prefect lock is taken."""

from __future__ import annotations

from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.ops.alerts import OVERSELL_RISK
from stokline.orchestration.common import progress_logger
from stokline.orchestration.passes import emit_client_event, emit_synced_event, retry_if_unfinished
from stokline.store import Store
from stokline.sync.stock.report import StockReport
from stokline.sync.stock.sync import sync_stock

SYNCED_EVENT = "stokline.stock.synced"
SUMMARY_FIELDS = (
    "levels_computed",
    "levels_changed",
    "pushed",
    "failed",
    "drift_corrected",
    "skipped_excluded",
    "levels_read",
)


def incomplete(report: StockReport) -> str:
    """Why a pass did not finish, in one line."""
    reasons = [*report.errors]
    if report.failed:
        reasons.insert(0, f"{report.failed} level(s) not pushed; the next pass pushes them")
    return "; ".join(reasons) or "the pass did not finish"


async def run_pass(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    trigger: str,
    dry_run: bool = False,
    check_drift: bool = True,
    skus: set[str] | None = None,
    locations: dict[str, str] | None = None,
) -> StockReport:
    """One stock pass; raises `IncompleteRun` while retries are left."""
    report = await sync_stock(
        mapping,
        shopline=shopline,
        stokly=stokly,
        store=store,
        dry_run=dry_run,
        trigger=trigger,
        skus=skus,
        check_drift=check_drift,
        progress=progress_logger("stock"),
        locations=locations,
    )
    if not report.out_of_time:  # a retry would run into the next scheduled pass
        retry_if_unfinished(report, incomplete)
    return report


def stock_numbers(report: StockReport) -> dict[str, int]:
    """The whole numbers of a pass, for the flow's return value, the log and the event."""
    values = {name: int(getattr(report, name)) for name in SUMMARY_FIELDS}
    found = report.reconciliation
    if found is not None:
        values["differences"] = found.differences
        values["oversell_risk_found"] = found.oversell_risk
        values["oversell_risk"] = found.oversell_risk_remaining
    else:  # a pass that compared nothing
        values["differences"] = values["oversell_risk_found"] = values["oversell_risk"] = 0
    values["exceptions"] = len(report.exceptions)
    values["api_calls"] = int(report.api_calls)
    return values


def emit_synced(report: StockReport, numbers: dict[str, int]) -> None:
    """``stokline.stock.synced`` for a live pass (see the module docstring for the payload)."""
    emit_synced_event(SYNCED_EVENT, report, numbers)
    # Automations match event names, not payload values: risk left after the pass is its own
    # event, which the oversell-risk alert of `stokline automations apply` watches.
    if numbers.get("oversell_risk", 0) > 0:
        emit_client_event(
            OVERSELL_RISK,
            report.client,
            {
                "oversell_risk": numbers["oversell_risk"],
                "oversell_risk_found": numbers.get("oversell_risk_found", 0),
            },
        )
