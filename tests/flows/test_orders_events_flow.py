"""The orders inbox watcher under a Prefect test server, against both sandboxes.

One module-scoped server (starting one costs ~11 s). A paid order's webhook delivery, stored in
the inbox as the receiver stores it, becomes one Stokly sale order while a short watcher run is
going; a second delivery about the same order creates nothing; the run ends at its bound, having
left the sweep's cursor alone. A running watcher hands over to its successor at its next look.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.flows import load_flow_from_entrypoint

from stokline.store import Store
from stokline.sync.followers import Follower

from .sandboxes import (
    KNOWN_SKU,
    ROOT,
    UNKNOWN_SKU,
    Sandboxes,
    sandboxes_under_prefect,
)

pytestmark = pytest.mark.slow

CLIENT = "demo-outdoor"
ENTRYPOINT = f"{ROOT / 'flows' / 'orders_events.py'}:orders_inbox_flow"


@pytest.fixture(scope="module")
def watcher_module() -> Any:
    """flows/orders_events.py loaded by its entrypoint, as a worker loads it."""
    loaded = load_flow_from_entrypoint(ENTRYPOINT)
    return sys.modules[loaded.fn.__module__]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    """Sandboxes, the demo secrets and a private state store, under a Prefect test server."""
    work = tmp_path_factory.mktemp("orders-inbox-flow")
    with sandboxes_under_prefect(work) as sandboxes:
        yield sandboxes


async def _run(flow_: Any, **parameters: Any) -> tuple[dict[str, int], dict[str, Any]]:
    state = await flow_(return_state=True, **parameters)
    assert state.is_completed(), state.message
    numbers = await state.result()
    run_id = state.state_details.flow_run_id
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return numbers, {a.key: a for a in artifacts}


def deliver(store: Store, order: dict[str, Any], topic: str, webhook_id: str) -> bool:
    """Store a delivery as the receiver does once its signature checked out."""
    body = json.dumps(order).encode()
    return store.inbox.add(CLIENT, webhook_id, topic, body, shop_domain="demo-outdoor")


def sale_orders_of(served: Sandboxes, order_id: str) -> int:
    response = httpx.get(
        f"{served.stokly.url}/_sandbox/awaiting-dispatch", params={"limit": 100_000}, timeout=10
    )
    response.raise_for_status()
    return sum(1 for o in response.json()["data"] if o["sourceReferenceId"] == order_id)


async def _until(condition: Any, watching: asyncio.Task, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert not watching.done(), f"the watcher ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        await asyncio.sleep(0.2)


def test_a_delivery_becomes_one_sale_order_and_the_watcher_ends_at_its_bound(
    served: Sandboxes, watcher_module: Any
) -> None:
    flow_ = watcher_module.orders_inbox_flow
    order = served.place_order(KNOWN_SKU, email="inbox.watcher@example.com")
    unknown = served.place_order(UNKNOWN_SKU, email="inbox.watcher.two@example.com")
    sale_orders_before = served.sale_orders()
    bound_s = 15.0

    async def scenario() -> tuple[dict[str, int], dict[str, Any], float]:
        with Store() as store:
            follower = Follower(store, CLIENT, watcher_module.WATCHER)
            before = follower.current()
            started = time.monotonic()
            watching = asyncio.create_task(
                _run(flow_, mapping=str(served.mapping), minutes=bound_s / 60, poll_seconds=0.5)
            )
            await _until(lambda: follower.current() != before, watching, "it watched")
            assert deliver(store, order, "orders/paid", "wh-inbox-1")
            assert deliver(store, unknown, "orders/paid", "wh-inbox-2")
            await _until(lambda: served.sale_orders() > sale_orders_before, watching, "an import")
            # SHOPLINE delivers the same webhook again (same id: the inbox keeps one), then
            # another topic about the same order (a new id): neither creates anything.
            assert not deliver(store, order, "orders/paid", "wh-inbox-1")
            assert deliver(store, order, "orders/updated", "wh-inbox-3")
            await _until(lambda: not store.inbox.claimable(CLIENT), watching, "the duplicate")
            numbers, artifacts = await watching
            return numbers, artifacts, time.monotonic() - started

    numbers, artifacts, seconds = asyncio.run(scenario())
    assert sale_orders_of(served, order["id"]) == 1
    assert sale_orders_of(served, unknown["id"]) == 0
    assert served.sale_orders() == sale_orders_before + 1
    assert numbers["imported"] == 1 and numbers["duplicates"] == 1
    assert numbers["exceptions_opened"] == 1  # the SKU Stokly does not know
    assert numbers["batches"] >= 2 and numbers["polls"] > numbers["batches"]
    assert numbers["handed_over"] == 0
    # It ran to its bound (plus a tenth of it, for a successor to start), not longer.
    assert bound_s <= seconds < bound_s * 1.1 + 15, seconds
    assert "orders-inbox-summary-demo-outdoor" in artifacts
    assert artifacts["orders-inbox-exceptions-demo-outdoor"].type == "table"
    with Store() as store:
        assert store.inbox.count(CLIENT, "done") == 3
        # Only the sweep moves its cursor: the watcher swept nothing.
        assert store.cursors.get(CLIENT, "orders") is None


def test_a_running_watcher_hands_over_to_the_next_run(
    served: Sandboxes, watcher_module: Any
) -> None:
    async def scenario() -> dict[str, int]:
        with Store() as store:
            follower = Follower(store, CLIENT, watcher_module.WATCHER)
            before = follower.current()
            watching = asyncio.create_task(
                _run(watcher_module.orders_inbox_flow, mapping=str(served.mapping), minutes=5)
            )
            await _until(lambda: follower.current() != before, watching, "it watched")
            assert follower.follow("successor", datetime.now(UTC))  # scheduled after that run
        # The run stops at its next look, not when its five minutes are over.
        numbers, _ = await asyncio.wait_for(watching, timeout=60)
        return numbers

    numbers = asyncio.run(scenario())
    assert numbers["handed_over"] == 1 and numbers["polls"] >= 1
