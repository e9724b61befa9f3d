"""The stock, stock-events and catalogue flows under a Prefect test server, against both sandboxes.

One module-scoped server (starting one costs ~11 s). The stock flow: a dry run, a live run and a
rerun, with artifacts and the ``stokline.stock.synced`` event read back through the Prefect API as
the UI and automations would. The event path: a goods receipt at the Stokly sandbox's warehouse
control reaches the SHOPLINE sandbox's level by the stock-events flow alone, and only that level
is written. The catalogue flow: dry, live, rerun.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.flows import load_flow_from_entrypoint

from stokline.orchestration.stock import SYNCED_EVENT
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.stock.events import CURSOR_NAME, CURSOR_SYNC, FOLLOWER_NAME, StockMovements
from stokline.sync.stock.reconcile import reconcile_stock

from .sandboxes import ROOT, Sandboxes, demo_credentials, sandboxes_under_prefect

pytestmark = pytest.mark.slow

CLIENT = "demo-outdoor"
SOCKS = "CRAG-SOCKS-75-M"
BRISTOL = "7002"


def load(path: str, name: str) -> Any:
    """A flow file's module, loaded by its entrypoint as a worker loads it."""
    loaded = load_flow_from_entrypoint(f"{ROOT / 'flows' / path}:{name}")
    return sys.modules[loaded.fn.__module__]


@pytest.fixture(scope="module")
def stock_module() -> Any:
    return load("stock.py", "stock_flow")


@pytest.fixture(scope="module")
def events_module() -> Any:
    return load("stock_events.py", "stock_events_flow")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    """Sandboxes, the demo secrets and a private state store, under a Prefect test server."""
    work = tmp_path_factory.mktemp("stock-flows")
    with sandboxes_under_prefect(work) as sandboxes:
        yield sandboxes


async def _run(flow_: Any, **parameters: Any) -> tuple[Any, dict[str, int], dict[str, Any]]:
    state = await flow_(return_state=True, **parameters)
    assert state.is_completed(), state.message
    numbers = await state.result()
    run_id = state.state_details.flow_run_id
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return run, numbers, {a.key: a for a in artifacts}


async def _task_states(flow_run_id: Any) -> dict[str, str]:
    async with get_client() as client:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs if r.state}


async def _events(name: str, count: int, timeout: float = 20) -> list[Any]:
    """The ``name`` events the server has stored, once there are ``count`` (events are stored
    asynchronously)."""
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            page = await client.read_events(
                EventFilter(event=EventNameFilter(name=[name])), limit=50
            )
            if len(page.events) >= count or time.monotonic() > deadline:
                return page.events
            await asyncio.sleep(0.5)


def shopline_levels(served: Sandboxes) -> dict[str, dict[str, Any]]:
    store = served.shopline.app.state.shopline.store
    return {
        f"{level['inventory_item_id']}:{level['location_id']}": level
        for _, level in store.scan("inventory_level")
    }


def inventory_item(served: Sandboxes, sku: str) -> str:
    for _, product in served.shopline.app.state.shopline.store.scan("product"):
        for variant in product["variants"]:
            if (variant.get("sku") or "").casefold() == sku.casefold():
                return str(variant["inventory_item_id"])
    raise AssertionError(f"no SHOPLINE variant {sku}")


def sellable(served: Sandboxes, sku: str, location: str) -> int:
    """Stokly's sellable level, read through the reconciliation (read-only)."""

    async def read() -> Any:
        from stokline.config import load_mapping

        mapping = load_mapping(served.mapping)
        with Store() as store:
            async with open_clients(mapping) as (shopline, stokly):
                return await reconcile_stock(mapping, shopline=shopline, stokly=stokly, store=store)

    result = asyncio.run(read())
    [row] = [r for r in result.rows() if r["shopline_sku"] == sku and r["location"] == location]
    return row["stokly_sellable"]


def test_the_stock_flow_pushes_publishes_and_a_rerun_writes_nothing(
    served: Sandboxes, stock_module: Any
) -> None:
    stock_flow = stock_module.stock_flow
    mapping = str(served.mapping)
    before = shopline_levels(served)

    run, dry, artifacts = asyncio.run(_run(stock_flow, mapping=mapping, dry_run=True))
    assert run.name == "stock-demo-outdoor-manual-dry-run"
    assert shopline_levels(served) == before
    assert dry["pushed"] == 0 and dry["oversell_risk"] == dry["oversell_risk_found"] > 0
    assert len(artifacts["stock-would-push-demo-outdoor"].data) > 2  # a JSON list of rows

    run, first, artifacts = asyncio.run(_run(stock_flow, mapping=mapping, trigger="schedule"))
    assert run.name == "stock-demo-outdoor-schedule"
    assert 0 < first["pushed"] <= first["levels_changed"] and first["failed"] == 0
    # The seed's SHOPLINE levels were above what Stokly can sell; this pass set them right.
    assert (
        first["oversell_risk_found"] == dry["oversell_risk_found"] and first["oversell_risk"] == 0
    )
    expected = {
        "stock-summary-demo-outdoor": "table",
        "stock-exceptions-demo-outdoor": "table",  # the seed's SKU Stokly does not know
        "stock-reconcile-demo-outdoor": "table",
        "stock-reconcile-headline-demo-outdoor": "markdown",
    }
    assert {key: artifacts[key].type for key in expected} == expected
    reconciled = artifacts["stock-reconcile-demo-outdoor"]
    assert '"oversell_risk": "yes"' in reconciled.data
    assert '"set_right_by_this_pass": "no"' not in reconciled.data
    assert "remain at oversell risk" in artifacts["stock-reconcile-headline-demo-outdoor"].data
    shown = shopline_levels(served)
    item = inventory_item(served, SOCKS)
    assert shown[f"{item}:{BRISTOL}"]["available"] == sellable(served, SOCKS, BRISTOL)

    run, second, _ = asyncio.run(_run(stock_flow, mapping=mapping, trigger="schedule"))
    assert second["pushed"] == 0 and second["differences"] == 0
    assert shopline_levels(served) == shown
    states = asyncio.run(_task_states(run.id))
    assert states["stokly-locations"] == "Cached"
    assert states["push-stock"] == "Completed"

    events = asyncio.run(_events(SYNCED_EVENT, 2))
    assert len(events) == 2  # live runs only
    payloads = sorted((e.payload for e in events), key=lambda p: -p["pushed"])
    assert payloads[0]["pushed"] == first["pushed"] and payloads[1]["pushed"] == 0
    assert {e.resource.id for e in events} == {f"stokline.client.{CLIENT}"}
    for payload in payloads:
        numbers = {k: v for k, v in payload.items() if k not in ("trigger", "ok")}
        assert all(isinstance(v, int) for v in numbers.values()), payload
        assert payload["ok"] is True and payload["trigger"] == "schedule"
        assert payload["oversell_risk"] == 0


def test_a_goods_receipt_reaches_shopline_by_the_event_path_alone(
    served: Sandboxes, stock_module: Any, events_module: Any
) -> None:
    asyncio.run(_run(stock_module.stock_flow, mapping=str(served.mapping)))  # all settled
    item = inventory_item(served, SOCKS)
    key = f"{item}:{BRISTOL}"

    async def scenario() -> tuple[Any, dict[str, dict[str, Any]], float]:
        following = asyncio.create_task(
            _run(events_module.stock_events_flow, mapping=str(served.mapping), minutes=0.4)
        )
        # The first poll settles whatever the feed held before (nothing differs): wait for it.
        with Store() as store:
            deadline = time.monotonic() + 30
            while store.cursors.get(CLIENT, CURSOR_SYNC, CURSOR_NAME) is None:
                assert time.monotonic() < deadline and not following.done()
                await asyncio.sleep(0.2)
        before = shopline_levels(served)
        async with httpx.AsyncClient(base_url=served.stokly.url, timeout=10) as http:
            receipt = {"location": "Bristol DC", "items": [{"sku": SOCKS, "quantity": 25}]}
            response = await http.post("/_sandbox/goods-receipt", json=receipt)
            assert response.status_code == 200, response.text
        received = time.monotonic()
        while shopline_levels(served)[key]["available"] == before[key]["available"]:
            assert not following.done(), "the event run ended before the level moved"
            await asyncio.sleep(0.1)
        latency = time.monotonic() - received
        await following
        return following.result(), before, latency

    (_, numbers, artifacts), before, latency = asyncio.run(scenario())
    after = shopline_levels(served)
    assert {k for k in after if after[k] != before[k]} == {key}  # only that level was written
    assert after[key]["available"] == sellable(served, SOCKS, BRISTOL)
    assert numbers["pushed"] == 1 and numbers["batches"] >= 1 and numbers["failed"] == 0
    assert numbers["batches_unfinished"] == 0 and numbers["polls"] > numbers["batches"]
    assert "stock-events-summary-demo-outdoor" in artifacts
    assert latency < 15, latency  # a generous bound; the benchmark measures the real number
    events = asyncio.run(_events(SYNCED_EVENT, 1))
    assert any(e.payload["trigger"] == "event" and e.payload["pushed"] == 1 for e in events)


def stokly_token(served: Sandboxes) -> str:
    import hashlib
    import hmac

    creds = demo_credentials()
    client_id = creds["STOKLY_CLIENT_ID"]
    signature = hmac.new(creds["STOKLY_CLIENT_SECRET"].encode(), client_id.encode(), hashlib.sha256)
    response = httpx.post(
        f"{served.stokly.url}/v1/grant",
        json={
            "accountkey": "demo-outdoor",
            "clientId": client_id,
            "signature": signature.hexdigest(),
        },
        timeout=10,
    )
    return response.json()["data"]["authenticationResult"]["accessToken"]


def shopline_variant(served: Sandboxes, sku: str) -> dict[str, Any]:
    for _, product in served.shopline.app.state.shopline.store.scan("product"):
        for variant in product["variants"]:
            if (variant.get("sku") or "").casefold() == sku.casefold():
                return variant
    raise AssertionError(f"no SHOPLINE variant {sku}")


def test_an_item_changed_in_stokly_reaches_shopline_by_the_event_path_alone(
    served: Sandboxes, events_module: Any
) -> None:
    catalogue_flow = load("catalogue.py", "catalogue_flow").catalogue_flow
    asyncio.run(_run(catalogue_flow, mapping=str(served.mapping)))  # variants linked
    [item] = [i for i in served.stokly.app.state.sandbox.state.items if i["sku"] == SOCKS]
    price = "17.35"

    async def scenario() -> tuple[dict[str, int], float]:
        following = asyncio.create_task(
            _run(events_module.stock_events_flow, mapping=str(served.mapping), minutes=0.4)
        )
        with Store() as store:
            deadline = time.monotonic() + 30
            while store.cursors.get(CLIENT, CURSOR_SYNC, CURSOR_NAME) is None:
                assert time.monotonic() < deadline and not following.done()
                await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=served.stokly.url, timeout=10) as http:
            response = await http.patch(
                f"/v0/items/{item['itemId']}",
                json={"salePrice": {"amount": float(price), "currency": "GBP"}},
                headers={"Authorization": f"Bearer {stokly_token(served)}"},
            )
            assert response.status_code == 200, response.text
        changed = time.monotonic()
        while shopline_variant(served, SOCKS)["price"] != price:
            assert not following.done(), "the event run ended before the price moved"
            await asyncio.sleep(0.1)
        latency = time.monotonic() - changed
        _, numbers, _ = await following
        return numbers, latency

    numbers, latency = asyncio.run(scenario())
    assert numbers["items_changed"] >= 1 and numbers["catalogue_updated"] >= 1
    assert numbers["batches_unfinished"] == 0
    assert latency < 15, latency  # a generous bound; the benchmark measures the real number
    events = asyncio.run(_events("stokline.catalogue.synced", 1))
    assert any(e.payload["trigger"] == "event" and e.payload["updated"] >= 1 for e in events)


def test_a_running_event_path_hands_over_to_the_next_run(
    served: Sandboxes, events_module: Any
) -> None:
    def follower(store: Store) -> str | None:
        return store.cursors.get(CLIENT, CURSOR_SYNC, FOLLOWER_NAME)

    async def scenario() -> dict[str, int]:
        with Store() as store:
            before = follower(store)
            following = asyncio.create_task(
                _run(events_module.stock_events_flow, mapping=str(served.mapping), minutes=5)
            )
            deadline = time.monotonic() + 30
            while follower(store) == before:  # until the run registered itself
                assert time.monotonic() < deadline and not following.done()
                await asyncio.sleep(0.2)
            feed = StockMovements(CLIENT, None, store)  # type: ignore[arg-type]
            assert feed.follow("successor", datetime.now(UTC))  # scheduled after that run
        # The run stops at its next poll, not when its five minutes are over.
        _, numbers, _ = await asyncio.wait_for(following, timeout=60)
        return numbers

    numbers = asyncio.run(scenario())
    assert numbers["handed_over"] == 1 and numbers["polls"] >= 1


def test_the_catalogue_flow_writes_once_and_publishes(served: Sandboxes) -> None:
    catalogue_flow = load("catalogue.py", "catalogue_flow").catalogue_flow
    mapping = str(served.mapping)
    products = served.shopline_counts()["product"]

    run, dry, artifacts = asyncio.run(_run(catalogue_flow, mapping=mapping, dry_run=True))
    assert run.name == "catalogue-demo-outdoor-manual-dry-run"
    assert "catalogue-would-write-demo-outdoor" in artifacts
    assert {"catalogue-summary-demo-outdoor", "catalogue-exceptions-demo-outdoor"} <= set(artifacts)
    assert dry["linked"] > 0

    run, first, _ = asyncio.run(_run(catalogue_flow, mapping=mapping, trigger="schedule"))
    assert run.name == "catalogue-demo-outdoor-schedule"
    assert first["linked"] == dry["linked"] and first["created"] == 0  # create_missing: false
    _, second, _ = asyncio.run(_run(catalogue_flow, mapping=mapping, trigger="schedule"))
    assert second["updated"] == second["created"] == second["archived"] == 0
    assert second["unchanged"] > 0
    assert served.shopline_counts()["product"] == products  # nothing created, nothing deleted
    [event, *_] = asyncio.run(_events("stokline.catalogue.synced", 2))
    assert event.resource.id == f"stokline.client.{CLIENT}"


def test_an_event_run_that_cannot_read_the_feed_fails_so_alerting_sees_it(
    served: Sandboxes, events_module: Any
) -> None:
    faults = f"{served.stokly.url}/_sandbox/faults"
    with Store() as store:
        cursor = store.cursors.get(CLIENT, CURSOR_SYNC, CURSOR_NAME)
    assert httpx.put(faults, json={"changes": {"error_rate": 1.0}}, timeout=10).status_code == 200
    try:
        state = asyncio.run(
            events_module.stock_events_flow(
                mapping=str(served.mapping), minutes=0.3, return_state=True
            )
        )
    finally:
        httpx.put(faults, json={"profile": "none"}, timeout=10).raise_for_status()
    assert state.is_failed()
    assert "the change feed did not answer at the end" in state.message
    with Store() as store:
        assert store.cursors.get(CLIENT, CURSOR_SYNC, CURSOR_NAME) == cursor
