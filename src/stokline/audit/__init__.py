"""The system audit: a read-only look at both systems before go-live, and what it finds.

`run_audit` reads SHOPLINE and Stokly for one client (`stokline.audit.read`), turns what it read
into ranked findings under the mapping (`stokline.audit.sections`), and `stokline.audit.render`
writes the report. Nothing here writes to either system.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from stokline.audit.findings import AuditReport, Finding
from stokline.audit.read import Progress, read_both
from stokline.audit.sections import all_findings
from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.store import Store
from stokline.sync.clients import api_calls

__all__ = ["AuditReport", "Finding", "run_audit"]


async def run_audit(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    days: int = 30,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> AuditReport:
    """Read both systems (orders of the last ``days``) and find the gaps; writes nothing."""
    until = now or datetime.now(UTC)
    since = until - timedelta(days=days)
    began = time.monotonic()
    data = await read_both(
        mapping, shopline=shopline, stokly=stokly, store=store, since=since, progress=progress
    )
    report = AuditReport(mapping.client.name, since, until)
    report.findings, report.inventory = all_findings(mapping, data)
    report.read = data.counts()
    report.requests = {"SHOPLINE": api_calls(shopline), "Stokly": api_calls(stokly)}
    report.notes = list(data.problems)
    report.data = data
    report.seconds = time.monotonic() - began
    return report
