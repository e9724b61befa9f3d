"""The fulfilment flow under a Prefect test server, and `stokline run fulfilment`, over loopback.

One module-scoped server (starting one costs ~11 s) and both sandboxes on loopback ports. Orders
are imported by the orders sync and dispatched by the Stokly sandbox's warehouse control; one of
them is cancelled in SHOPLINE after it shipped, so it can never be fulfilled there and goes stale
(the mapping's ``stale_after`` is cut to one second). Two live flow runs: the first creates the
fulfillment, publishes its artifacts and emits ``stokline.fulfilment.synced`` and
``stokline.fulfilment.stale`` (read back through the Prefect API as automations see them); the
rerun creates nothing and raises no second alert. The CLI runs as a user runs it, in a process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.flows import load_flow_from_entrypoint

from stokline.config import load_mapping
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.orders.sync import sync_orders

from .sandboxes import KNOWN_SKU, ROOT, Sandboxes, demo_credentials, sandboxes_under_prefect

pytestmark = pytest.mark.slow

CLIENT = "demo-outdoor"
EXE = str(Path(sys.executable).with_name("stokline"))
API = "admin/openapi/v20251201"


@pytest.fixture(scope="module")
def fulfilment_module() -> Any:
    """flows/fulfilment.py loaded by its entrypoint, as a worker loads it."""
    flow = load_flow_from_entrypoint(f"{ROOT / 'flows' / 'fulfilment.py'}:fulfilment_flow")
    return sys.modules[flow.fn.__module__]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    """Sandboxes, the demo secrets and a private state store, under a Prefect test server; the
    mapping's shipments go stale after one second."""
    work = tmp_path_factory.mktemp("fulfilment-flow")
    with sandboxes_under_prefect(work) as sandboxes:
        text = sandboxes.mapping.read_text(encoding="utf-8")
        assert "stale_after: 4h" in text
        sandboxes.mapping.write_text(text.replace("stale_after: 4h", "stale_after: 1s"))
        yield sandboxes


def import_orders(served: Sandboxes, store_url: str | None = None) -> None:
    """The orders sync, in this process: SHOPLINE's paid orders become Stokly sale orders."""

    async def scenario() -> None:
        mapping = load_mapping(served.mapping)
        with Store(store_url) as store:
            async with open_clients(mapping, lift_limits=True) as (shopline, stokly):
                report = await sync_orders(mapping, shopline=shopline, stokly=stokly, store=store)
        assert report.ok, report.errors

    asyncio.run(scenario())


def dispatch(served: Sandboxes, order_id: str, tracking: str) -> dict[str, Any]:
    body = {"sourceReferenceId": order_id, "carrier": "royal-mail", "trackingNumbers": [tracking]}
    response = httpx.post(f"{served.stokly.url}/_sandbox/dispatch", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def fulfillments(served: Sandboxes, order_id: str) -> list[dict[str, Any]]:
    token = demo_credentials()["SHOPLINE_ACCESS_TOKEN"]
    response = httpx.get(
        f"{served.shopline.url}/{API}/orders/{order_id}/fulfillments.json",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["fulfillments"]


async def _run(flow: Any, **parameters: Any) -> tuple[Any, dict[str, int], dict[str, Any]]:
    state = await flow(return_state=True, **parameters)
    assert state.is_completed(), state.message
    numbers = await state.result()
    run_id = state.state_details.flow_run_id
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return run, numbers, {a.key: a for a in artifacts}


async def _events(name: str, count: int, timeout: float = 20) -> list[Any]:
    """The ``name`` events the server has stored, once there are ``count`` (stored async)."""
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            page = await client.read_events(
                EventFilter(event=EventNameFilter(name=[name])), limit=50
            )
            if len(page.events) >= count or time.monotonic() > deadline:
                return page.events
            await asyncio.sleep(0.5)


def test_the_flow_fulfils_once_and_alerts_on_a_stale_shipment(
    served: Sandboxes, fulfilment_module: Any
) -> None:
    flow = fulfilment_module.fulfilment_flow
    shipped = served.place_order(KNOWN_SKU, email="flow-parcel@example.com")
    stuck = served.place_order(KNOWN_SKU, email="flow-parcel@example.com")
    import_orders(served)
    dispatch(served, shipped["id"], "RM910000001GB")
    dispatch(served, stuck["id"], "RM910000002GB")
    cancel = httpx.post(f"{served.shopline.url}/_sandbox/orders/{stuck['id']}/cancel", timeout=10)
    assert cancel.status_code == 200, cancel.text
    time.sleep(1.2)  # past stale_after

    run, first, artifacts = asyncio.run(_run(flow, mapping=str(served.mapping), trigger="schedule"))
    assert run.name == "fulfilment-demo-outdoor-schedule"
    assert first["created"] >= 1 and first["stale"] >= 1
    [fulfillment] = fulfillments(served, shipped["id"])
    assert [t["tracking_number"] for t in fulfillment["tracking_info_list"]] == ["RM910000001GB"]
    assert fulfillments(served, stuck["id"]) == []
    assert {
        "fulfilment-summary-demo-outdoor",
        "fulfilment-exceptions-demo-outdoor",
        "fulfilment-stale-demo-outdoor",
        "fulfilment-changes-demo-outdoor",
    } <= set(artifacts)
    assert artifacts["fulfilment-summary-demo-outdoor"].type == "table"
    stale_table = str(artifacts["fulfilment-stale-demo-outdoor"].data)
    assert stuck["id"] in stale_table and shipped["id"] not in stale_table
    assert "flow-parcel@example.com" not in stale_table
    assert "order_changed" in str(artifacts["fulfilment-exceptions-demo-outdoor"].data)

    run, second, _ = asyncio.run(_run(flow, mapping=str(served.mapping), trigger="schedule"))
    assert second["created"] == 0 and second["stale"] >= 1
    assert len(fulfillments(served, shipped["id"])) == 1

    synced = asyncio.run(_events("stokline.fulfilment.synced", 2))
    assert len(synced) == 2
    assert {e.resource.id for e in synced} == {f"stokline.client.{CLIENT}"}
    [stale] = asyncio.run(_events("stokline.fulfilment.stale", 1))  # once: the rerun is quiet
    assert stale.resource.id == f"stokline.client.{CLIENT}"
    assert stuck["id"] in stale.payload["order_ids"]
    assert shipped["id"] not in stale.payload["order_ids"]
    assert stale.payload["owner"] == "operations"
    [row] = [o for o in stale.payload["orders"] if o["shopline_order_id"] == stuck["id"]]
    assert row["order"] == stuck["name"] and "cancelled" in row["reason"]
    assert f"shopline.order.{stuck['id']}" in {r.id for r in stale.related}


def stokline(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the command with only the environment given (plus PATH and HOME)."""
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return subprocess.run(
        [EXE, *args], cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def test_stokline_run_fulfilment_dry_then_live(served: Sandboxes, tmp_path: Path) -> None:
    order = served.place_order(KNOWN_SKU, email="cli-parcel@example.com")
    state = f"sqlite:///{tmp_path / 'state.db'}"
    import_orders(served, state)
    dispatch(served, order["id"], "RM920000001GB")
    args = ["run", "fulfilment", "--mapping", str(served.mapping)]

    dry = stokline([*args, "--dry-run"], tmp_path, **demo_credentials())
    assert dry.returncode == 0, dry.stderr
    assert "dry run (nothing written)" in dry.stdout
    assert "would write (" in dry.stdout and "RM920000001GB" in dry.stdout
    assert fulfillments(served, order["id"]) == []
    assert not (tmp_path / ".stokline").exists()

    live = stokline(args, tmp_path, **demo_credentials(), STOKLINE_DATABASE_URL=state)
    assert live.returncode == 0, live.stderr
    assert "fulfillments created" in live.stdout
    assert "fulfilment: " in live.stderr  # progress on a pipe: a line per tenth
    assert len(fulfillments(served, order["id"])) == 1
    again = stokline(args, tmp_path, **demo_credentials(), STOKLINE_DATABASE_URL=state)
    assert again.returncode == 0, again.stderr
    assert len(fulfillments(served, order["id"])) == 1
    assert "--mapping" in stokline(["run", "fulfilment", "--help"], tmp_path).stdout
