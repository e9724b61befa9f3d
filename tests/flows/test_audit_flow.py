"""The audit flow under a Prefect test server, over loopback sandboxes: the same findings as
`stokline audit`, published as the run's artifacts, and nothing written to either system."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.flows import load_flow_from_entrypoint

from .sandboxes import ROOT, Sandboxes, sandboxes_under_prefect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    with sandboxes_under_prefect(tmp_path_factory.mktemp("audit-flow")) as sandboxes:
        yield sandboxes


def summaries(served: Sandboxes) -> tuple[Any, Any]:
    shop = httpx.get(f"{served.shopline.url}/_sandbox/summary", timeout=10).json()
    stok = httpx.get(f"{served.stokly.url}/_sandbox/summary", timeout=10).json()
    return shop, stok


def test_the_audit_run_publishes_the_report_and_writes_nothing(served: Sandboxes) -> None:
    flow = load_flow_from_entrypoint(f"{ROOT / 'flows' / 'audit.py'}:audit_flow")
    module = sys.modules[flow.fn.__module__]
    before = summaries(served)

    async def run() -> tuple[Any, dict[str, int], dict[str, Any]]:
        state = await module.audit_flow(mapping=str(served.mapping), days=30, return_state=True)
        assert state.is_completed(), state.message
        found = await state.result()
        run_id = state.state_details.flow_run_id
        async with get_client() as client:
            flow_run = await client.read_flow_run(run_id)
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )
        return flow_run, found, {a.key: a for a in artifacts}

    flow_run, found, artifacts = asyncio.run(run())
    assert flow_run.name == "audit-demo-outdoor"
    assert found and all(count > 0 for count in found.values())
    report = str(artifacts["audit-demo-outdoor"].data)
    assert report.startswith("# Integration audit: demo-outdoor")
    table = artifacts["audit-findings-demo-outdoor"]
    assert table.type == "table" and str(next(iter(found.values()))) in str(table.data)
    assert summaries(served) == before  # neither store changed

    with pytest.raises(ValueError, match="days must be from 1 to 365"):
        asyncio.run(module.audit_flow(mapping=str(served.mapping), days=0))
