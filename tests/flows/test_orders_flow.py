"""The real orders flow under a Prefect test server, against both sandboxes.

One module-scoped server (starting one costs ~11 s): a dry run, a real run and a rerun, with the
artifacts read back through the Prefect client as the UI would.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.flows import load_flow_from_entrypoint

from .sandboxes import (
    KNOWN_SKU,
    ROOT,
    UNKNOWN_SKU,
    Sandboxes,
    sandboxes_under_prefect,
)

pytestmark = pytest.mark.slow

ENTRYPOINT = f"{ROOT / 'flows' / 'orders.py'}:orders_flow"


@pytest.fixture(scope="module")
def orders_module() -> Any:
    """flows/orders.py loaded by its entrypoint, as a worker loads it."""
    flow = load_flow_from_entrypoint(ENTRYPOINT)
    return sys.modules[flow.fn.__module__]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    """Sandboxes, the demo secrets and a private state store, under a Prefect test server."""
    work = tmp_path_factory.mktemp("orders-flow")
    with sandboxes_under_prefect(work) as sandboxes:
        yield sandboxes


async def _run(flow: Any, **parameters: Any) -> tuple[Any, dict[str, int], list[Any]]:
    state = await flow(return_state=True, **parameters)
    assert state.is_completed(), state.message
    numbers = await state.result()
    run_id = state.state_details.flow_run_id
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return run, numbers, artifacts


async def _task_states(flow_run_id: Any) -> dict[str, str]:
    """Task name → state name of one flow run's task runs."""
    async with get_client() as client:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs if r.state}


def _by_key(artifacts: list[Any]) -> dict[str, Any]:
    return {a.key: a for a in artifacts}


def test_the_flow_imports_orders_once_and_publishes_its_artifacts(
    served: Sandboxes, orders_module: Any
) -> None:
    flow = orders_module.orders_flow
    mapping = str(served.mapping)
    served.place_order(KNOWN_SKU)
    served.place_order(UNKNOWN_SKU)
    stokly_before = served.stokly_writes()
    shopline_before = served.shopline_counts()

    run, dry, artifacts = asyncio.run(_run(flow, mapping=mapping, trigger="manual", dry_run=True))
    assert run.name == "orders-demo-outdoor-manual-dry-run"
    assert served.stokly_writes() == stokly_before
    assert served.shopline_counts() == shopline_before
    keys = _by_key(artifacts)
    assert {"orders-summary-demo-outdoor", "orders-would-create-demo-outdoor"} <= set(keys)
    assert dry["imported"] == 0
    assert dry["seen"] >= 2

    run, first, artifacts = asyncio.run(_run(flow, mapping=mapping, trigger="webhook"))
    assert run.name == "orders-demo-outdoor-webhook"
    assert first["imported"] > 0
    assert served.sale_orders() == stokly_before["saleorder"] + first["imported"]
    keys = _by_key(artifacts)
    summary = keys["orders-summary-demo-outdoor"]
    assert summary.type == "table"
    assert "imported" in str(summary.data)
    assert "orders-exceptions-demo-outdoor" in keys
    # The demo seed has orders that cannot be translated: they are exceptions, listed per run.
    assert first["exceptions_opened"] > 0
    assert keys["orders-exceptions-demo-outdoor"].type == "table"

    run, second, _ = asyncio.run(_run(flow, mapping=mapping, trigger="schedule"))
    assert run.name == "orders-demo-outdoor-schedule"
    # The read-only location look-up came from the cache; the import itself never does.
    states = asyncio.run(_task_states(run.id))
    assert states["stokly-locations"] == "Cached"
    assert states["import-orders"] == "Completed"
    assert second["imported"] == 0
    assert served.sale_orders() == stokly_before["saleorder"] + first["imported"]


def test_a_paused_orders_sync_imports_nothing(served: Sandboxes, orders_module: Any) -> None:
    text = served.mapping.read_text(encoding="utf-8")
    assert "\n  orders:\n" in text
    paused = served.mapping.with_name("paused.yaml")
    paused.write_text(text.replace("\n  orders:\n", "\n  orders:\n    enabled: false\n"))
    served.place_order(KNOWN_SKU)
    before = served.sale_orders()
    _, numbers, artifacts = asyncio.run(_run(orders_module.orders_flow, mapping=str(paused)))
    assert numbers == {} and artifacts == [] and served.sale_orders() == before
