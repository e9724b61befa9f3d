"""The status flow: one client's health at a glance, published as the artifact ``status-<client>``.

Scheduled every two minutes (``status-<client>``, derived by ``stokline deploy``), so the Prefect UI's Artifacts
page is the operations dashboard: each run replaces the latest version of the page under the
same key. The page is `stokline status` in Markdown — syncs with last success, lag and what
moved; open exceptions by team and severity; the webhook inbox.

Each pass also sends ``stokline.exception.opened`` for the exceptions opened since the previous
pass (when the client has alerts), which the exception-spike automation counts. Reading is all
it does otherwise: no API of Stokly or SHOPLINE is called. No Prefect tasks: a pass is a few
queries, and each task run would cost more than the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.runtime import flow_run

from stokline.config import check_file, load_mapping
from stokline.ops.signals import signal_new_exceptions
from stokline.ops.status import PrefectRunHistory, collect_status
from stokline.ops.status_view import render_markdown
from stokline.store import Store


def status_key(client: str) -> str:
    """The artifact key of a client's status page (lowercase letters, digits and dashes)."""
    return "status-" + "".join(c if c.isalnum() else "-" for c in client.lower()).strip("-")


def run_name() -> str:
    path = str(flow_run.parameters.get("mapping", ""))
    result = check_file(path)
    client = result.mapping.client.name if result.mapping else Path(path).stem
    return status_key(client)


@flow(name="status", flow_run_name=run_name, log_prints=False)
async def status_flow(mapping: str = "mappings/demo.yaml") -> dict[str, Any]:
    """Publish one client's status page and signal the exceptions opened since the last pass.

    ``mapping`` is the client's mapping file, relative to the project root.
    """
    logger = get_run_logger()
    loaded = load_mapping(mapping)
    client = loaded.client.name
    with Store() as store:
        async with get_client() as prefect:
            status = await collect_status(loaded, store, PrefectRunHistory(prefect))
        alerts = loaded.operating_model.alerts
        signalled: dict[str, int] = {}
        if alerts is not None:
            spike = alerts.exception_spike
            signalled = signal_new_exceptions(
                store, client, spike.within, per_code=spike.count, emit=emit_event
            )
    await acreate_markdown_artifact(
        key=status_key(client),
        markdown=render_markdown(status),
        description=f"Health of **{client}** at a glance: syncs, open exceptions, webhook inbox.",
    )
    unhealthy = [s.sync for s in status.syncs if s.health in ("late", "overdue")]
    logger.info(
        "%s: %d open exception(s), inbox %d, late: %s, new exceptions signalled: %s",
        client,
        status.exceptions.total,
        status.inbox.depth,
        ", ".join(unhealthy) or "none",
        ", ".join(f"{code} {n}" for code, n in signalled.items()) or "none",
    )
    return {
        "open_exceptions": status.exceptions.total,
        "inbox_depth": status.inbox.depth,
        "late_syncs": len(unhealthy),
        "exceptions_signalled": sum(signalled.values()),
    }
