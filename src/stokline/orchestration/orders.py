"""The Prefect glue of the two orders flows (`flows/orders.py`, the sweep, and
`flows/orders_events.py`, the inbox watcher): their event, their figures, why a run did not finish."""

from __future__ import annotations

from stokline.sync.orders.report import OrdersReport

SUMMARY_FIELDS = ("seen", "imported", "duplicates", "skipped")
SYNCED_EVENT = "stokline.orders.synced"


def incomplete(report: OrdersReport) -> str:
    """Why a run did not finish its batch, in one line."""
    reasons = [*report.errors]
    if report.deferred:
        reasons.insert(0, f"{report.deferred} order(s) deferred to the next run")
    if not report.sweep_ok:
        reasons.insert(0, "the sweep of SHOPLINE orders failed")
    return "; ".join(reasons) or "the run did not finish"


def counts(report: OrdersReport) -> dict[str, int]:
    """The numbers of a run, for the flow's return value, the log and the event."""
    values = {name: int(getattr(report, name)) for name in SUMMARY_FIELDS}
    values["exceptions_opened"] = int(report.exceptions_opened)
    values["exceptions_resolved"] = int(report.exceptions_resolved)
    values["api_calls"] = int(report.api_calls)
    return values
