"""Go-live: `syncs.orders.import_from`. No order placed before it is ever imported, by the sweep
or by a webhook, an old order updated after go-live included; one whose placing time cannot be
read becomes an exception a person decides, never a silent import."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stokline.config import check_file
from stokline.config.models import Mapping
from stokline.sync.clients import open_clients
from stokline.sync.orders.report import OrdersReport
from stokline.sync.orders.sync import sync_orders
from stokline.sync.orders.translate import before_go_live, placed_at
from tests.sync.conftest import World

TENT = "ACME-TENT-2P-ORANGE"
SOCKS = "CRAG-SOCKS-75-M"
GO_LIVE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def with_go_live(world: World, when: str = GO_LIVE.isoformat()) -> Mapping:
    return world.mapping_with(
        lambda t: t.replace("    lookback: 2h\n", f"    lookback: 2h\n    import_from: {when}\n", 1)
    )


def refund_one(world: World, order: dict) -> None:
    """A partial refund: the old order is updated now (so the sweep sees it), still paid."""
    line = order["line_items"][0]
    body = {"lines": [{"line_item_id": str(line["id"]), "quantity": 1}]}
    response = world.shop.post(f"/_sandbox/orders/{order['id']}/refund", json=body)
    assert response.status_code == 200, response.text


def test_the_sweep_never_imports_an_old_order_updated_after_go_live(world: World) -> None:
    mapping = with_go_live(world)
    old = world.place(
        (TENT, 2),
        customer={"email": "before.go.live@example.com"},
        created_at=(GO_LIVE - timedelta(days=3)).isoformat(),
    )
    refund_one(world, old)
    new = world.place((SOCKS, 1), customer={"email": "after.go.live@example.com"})

    report = world.run(mapping)
    assert report.ok, report.errors
    assert report.before_import_from >= 1  # the seed's older orders are skipped too
    assert world.sale_orders(old["id"]) == []
    assert len(world.sale_orders(new["id"])) == 1
    rows = {r["metric"]: r["value"] for r in report.summary_rows()}
    assert rows["of which placed before import_from"] == report.before_import_from
    # Without the guard the same sweep imports the old order: the test above could fail.
    assert world.run().before_import_from == 0
    assert len(world.sale_orders(old["id"])) == 1


def test_a_webhook_of_an_old_order_updated_after_go_live_imports_nothing(world: World) -> None:
    mapping = with_go_live(world)
    old = world.place(
        (TENT, 2),
        customer={"email": "old.but.updated@example.com"},
        created_at=(GO_LIVE - timedelta(minutes=1)).isoformat(),
    )
    updated = {**old, "updated_at": datetime.now(UTC).isoformat()}
    assert asyncio.run(world.deliver(updated, "orders/updated", "wh-old-1")) == 200
    assert asyncio.run(world.deliver(updated, "orders/paid", "wh-old-2")) == 200

    report = world.run(mapping, sweep=False, trigger="webhook")
    assert report.ok and report.seen == 1
    assert report.imported == 0 and report.before_import_from == 1
    assert world.sale_orders(old["id"]) == []
    assert world.store.exceptions.list(client="demo-outdoor", entity_kind="order") == []


class WithoutPlacingTime(httpx.AsyncBaseTransport):
    """SHOPLINE's answers with the orders' created_at and processed_at taken out: a malformed
    record, made at the transport seam."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "/orders" not in request.url.path or response.status_code != 200:
            return response
        body = json.loads(await response.aread())
        for order in body.get("orders") or [body.get("order") or {}]:
            order.pop("created_at", None)
            order.pop("processed_at", None)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(200, headers=headers, json=body)


def test_an_order_whose_placing_time_is_unreadable_is_an_exception_not_an_import(
    world: World,
) -> None:
    mapping = with_go_live(world)
    order = world.place((SOCKS, 1), customer={"email": "no.date@example.com"})

    async def sweep() -> OrdersReport:
        async with open_clients(
            mapping,
            lift_limits=True,
            shopline_transport=WithoutPlacingTime(httpx.ASGITransport(app=world.shopline_app)),
            stokly_transport=world.faults,
        ) as (shopline, stokly):
            return await sync_orders(mapping, shopline=shopline, stokly=stokly, store=world.store)

    report = asyncio.run(sweep())
    assert world.sale_orders(order["id"]) == []
    [record] = [r for r in report.exceptions if str(order["id"]) in r["entity"]]
    assert record["code"] == "poison_message"
    assert "no readable created_at" in str(record)
    assert report.imported == 0  # every order of the sweep lacks it: none is imported


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2026-12-01T00:00:00", "is not in the expected form"),  # no offset: which midnight?
        ("2026-12-01", "is not in the expected form"),
        ("yesterday", "is not in the expected form"),
    ],
)
def test_a_go_live_without_an_offset_is_refused_at_its_line(
    world: World, tmp_path: Path, value: str, problem: str
) -> None:
    text = (Path(__file__).resolve().parents[3] / "mappings/demo.yaml").read_text()
    text = text.replace("    lookback: 2h\n", f"    lookback: 2h\n    import_from: {value}\n", 1)
    path = tmp_path / "golive.yaml"
    path.write_text(text)
    result = check_file(path)
    assert result.mapping is None
    [found] = [p for p in result.problems if "import_from" in p.pointer]
    line = text.splitlines().index(f"    import_from: {value}") + 1
    assert found.line == line and problem in found.message


def test_a_go_live_with_an_offset_is_read_as_that_instant(world: World) -> None:
    mapping = with_go_live(world, "2026-12-01T09:00:00+09:00")
    assert mapping.syncs.orders is not None
    assert mapping.syncs.orders.import_from == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


@given(
    go_live=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    seconds=st.integers(min_value=-3 * 86400, max_value=3 * 86400),
    key=st.sampled_from(["created_at", "processed_at"]),
)
def test_before_go_live_is_a_comparison_of_instants_whatever_the_offsets(
    go_live: datetime, offset_minutes: int, seconds: int, key: str
) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    placed = (go_live + timedelta(seconds=seconds)).astimezone(zone)
    order = {key: placed.isoformat().replace("+00:00", "Z")}
    assert placed_at(order) == placed
    assert before_go_live(order, go_live) is (seconds < 0)
    assert before_go_live(order, None) is False
    assert before_go_live({}, go_live) is False  # unreadable: translation names it instead
