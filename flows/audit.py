"""The audit flow: `stokline audit` for one client, its report published as a Prefect artifact.

Deployed as ``audit-<client>`` with no schedule: someone runs it from the UI (Run, with the window
in days) before go-live, or after a change to either system. The report is the same Markdown as
`stokline audit` prints, under the artifact key ``audit-<client>``, and a table of the findings
(``audit-findings-<client>``); the run's result gives the count of each. Nothing is written to
either system, and the state store is only read.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from stokline.audit import run_audit
from stokline.audit.render import to_markdown
from stokline.orchestration.common import artifact_key, load_client_mapping, run_name_of
from stokline.store import Store
from stokline.sync.clients import open_clients


@flow(name="audit", flow_run_name=run_name_of("audit", with_trigger=False), log_prints=False)
async def audit_flow(mapping: str = "mappings/demo.yaml", days: int = 30) -> dict[str, int]:
    """Read SHOPLINE and Stokly for one client and publish what the mapping must cover.

    ``mapping`` is the client's mapping file, relative to the project root; ``days`` the window
    of orders read (placed in the last ``days`` days).
    """
    logger = get_run_logger()
    if not 1 <= days <= 365:
        raise ValueError(f"days must be from 1 to 365, not {days}")
    loaded = load_client_mapping(mapping)
    client = loaded.client.name
    with Store() as store:
        async with open_clients(loaded) as (shopline, stokly):
            report = await run_audit(
                loaded,
                shopline=shopline,
                stokly=stokly,
                store=store,
                days=days,
                progress=lambda step: logger.info("read: %s", step),
            )
    await acreate_markdown_artifact(
        key=artifact_key("audit", client),
        markdown=to_markdown(report),
        description=f"The system audit of **{client}**: what the mapping must cover, ranked.",
    )
    rows: list[dict[str, Any]] = [
        {"rank": n, "finding": f.title, "count": f.count, "owner": f.team or "", "impact": f.impact}
        for n, f in enumerate(report.ranked(), 1)
    ]
    if rows:
        await acreate_table_artifact(
            key=artifact_key("audit", "findings", client),
            table=rows,
            description=f"The audit's findings for **{client}**, most costly first.",
        )
    logger.info(
        "%s: %d finding(s) in %.1f s (API requests: %s)",
        client,
        len(report.findings),
        report.seconds,
        ", ".join(f"{k} {v}" for k, v in report.requests.items()),
    )
    return {f.key: f.count for f in report.ranked()}
