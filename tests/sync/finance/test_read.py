"""One read of SHOPLINE's money serves the whole finance pass: payments, ledger and reconciliation.

Against both sandboxes in-process, limits lifted. A day of 200 orders with 40 refunds is read
once (`read_shopline_money`) and handed to every use case; the use cases then send SHOPLINE no
request at all, and what they produce is exactly what each produces reading on its own. The call
count of the shared path is asserted against what SHOPLINE's API makes the floor — one order page
per 100 orders, one transactions read per order, one refunds read per order refunded that day —
so the saving cannot quietly regress. Faults are injected at the SHOPLINE transport seam only.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import httpx
import pytest

from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.sync.clients import api_calls, open_clients
from stokline.sync.finance.ledger.report import LedgerReport
from stokline.sync.finance.ledger.sync import post_ledger
from stokline.sync.finance.payments.report import PaymentsReport
from stokline.sync.finance.payments.sync import sync_payments
from stokline.sync.finance.payments.translate import Period
from stokline.sync.finance.payouts.reconcile import reconcile_payouts
from stokline.sync.finance.payouts.report import PayoutReconciliation
from stokline.sync.finance.read import ShoplineMoney, read_shopline_money, widen, with_refunds
from tests.sync.conftest import World
from tests.sync.finance.payments.test_sync import SOCKS, TENT, Finance

GATEWAYS = ("shopline_payments", "paypal", "klarna")
ORDERS, REFUNDS = 200, 40
PAGE = 100  # orders per SHOPLINE page (its maximum)

Handler = Callable[[httpx.Request], Awaitable[httpx.Response | None]]


class ShoplineSeam(httpx.AsyncBaseTransport):
    """The SHOPLINE sandbox behind a seam: every request is counted by path; ``fail`` may answer
    chosen requests itself."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.fail: Handler | None = None
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path.rsplit("/", 1)[-1])
        if self.fail is not None and (answer := await self.fail(request)) is not None:
            return answer
        return await self.inner.handle_async_request(request)


@pytest.fixture
def shop(world: World) -> Finance:
    return Finance(world)


def run(
    shop: Finance,
    use: Callable[[Mapping, ShoplineClient, StoklyClient], Awaitable[Any]],
    seam: ShoplineSeam | None = None,
) -> Any:
    mapping = shop.world.mapping

    async def scenario() -> Any:
        async with open_clients(
            mapping,
            lift_limits=True,
            shopline_transport=seam or httpx.ASGITransport(app=shop.world.shopline_app),
            stokly_transport=shop.seam,
        ) as (shopline, stokly):
            return await use(mapping, shopline, stokly)

    return asyncio.run(scenario())


def busy_day(shop: Finance, orders: int = ORDERS, refunds: int = REFUNDS) -> list[dict[str, Any]]:
    """``orders`` paid orders today over three gateways, all imported; the first ``refunds`` of
    them refunded today, half in full (with shipping), half one line."""
    placed = [
        shop.place(
            (TENT, 1 + i % 2),
            (SOCKS, 1),
            gateway=GATEWAYS[i % len(GATEWAYS)],
            customer={"email": f"buyer{i}@example.com"},
        )
        for i in range(orders)
    ]
    shop.world.run()  # the orders sync imports them
    for i, order in enumerate(placed[:refunds]):
        if i % 2:
            socks = next(li for li in order["line_items"] if li["sku"] == SOCKS)
            shop.refund(order["id"], lines=[{"line_item_id": socks["id"], "quantity": 1}])
        else:
            shop.refund(order["id"], note="Returned unused")
    return placed


def floor_calls(orders: int, refunded: int) -> int:
    """SHOPLINE requests no reader can go below: order pages, then one transactions read per
    order and one refunds read per order refunded in the period."""
    return math.ceil(orders / PAGE) + orders + refunded


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in a stable order (orders are worked on concurrently, so rows come in any order)."""
    return sorted(rows, key=lambda row: sorted((k, str(v)) for k, v in row.items()))


class Outcome:
    """What one finance pass produced, comparable between the standalone and the shared path."""

    def __init__(
        self,
        payments: PaymentsReport,
        preview: LedgerReport,
        post: LedgerReport,
        reconciliation: PayoutReconciliation,
        calls: dict[str, int],
    ) -> None:
        self.payments, self.preview, self.post = payments, preview, post
        self.reconciliation, self.calls = reconciliation, calls

    def same_as(self, other: Outcome) -> None:
        assert _sorted(self.payments.would_write) == _sorted(other.payments.would_write)
        assert self.preview.approval() == other.preview.approval()
        assert self.post.approval() == other.post.approval()
        assert [j.lines for j in self.preview.journals] == [j.lines for j in other.preview.journals]
        assert self.reconciliation.rows == other.reconciliation.rows


def finance_pass(shop: Finance, day: date, *, shared: bool) -> Outcome:
    """Payments, the ledger preview and its post, the reconciliation — all dry, so both paths
    see the same state — each reading SHOPLINE on its own, or all given one read."""

    async def use(mapping: Mapping, shopline: ShoplineClient, stokly: StoklyClient) -> Outcome:
        calls: dict[str, int] = {}
        money: ShoplineMoney | None = None
        if shared:
            before = api_calls(shopline)
            money = await read_shopline_money(shopline, Period.of(mapping, day, day), refunds=True)
            calls["read"] = api_calls(shopline) - before
            assert calls["read"] == money.calls
        common = {
            "shopline": shopline,
            "stokly": stokly,
            "store": shop.world.store,
            "start": day,
            "end": day,
            "money": money,
        }

        async def counted(name: str, step: Awaitable[Any]) -> Any:
            before = api_calls(shopline)
            result = await step
            calls[name] = api_calls(shopline) - before
            return result

        payments = await counted("payments", sync_payments(mapping, dry_run=True, **common))
        preview = await counted("preview", post_ledger(mapping, dry_run=True, **common))
        post = await counted("post", post_ledger(mapping, dry_run=True, **common))
        reconciliation = await counted("reconcile", reconcile_payouts(mapping, **common))
        return Outcome(payments, preview, post, reconciliation, calls)

    return run(shop, use)


# -- the measurement ----------------------------------------------------------------------------


def test_one_read_serves_the_whole_finance_pass_at_the_floor_of_calls(shop: Finance) -> None:
    busy_day(shop)
    day = shop.day
    alone = finance_pass(shop, day, shared=False)
    once = finance_pass(shop, day, shared=True)

    # Exactly what each use case produces on its own: same records, journals, rows.
    once.same_as(alone)
    assert len(once.payments.would_write) == ORDERS + 2 * REFUNDS  # payment, credit note, money
    assert once.preview.ok and len(once.preview.journals) == len(GATEWAYS)
    assert once.preview.orders_read == ORDERS and not once.preview.refused
    assert once.reconciliation.errors == []

    # The shared read is the only SHOPLINE traffic of the pass, and it is at the API's floor.
    floor = floor_calls(ORDERS, REFUNDS)
    assert once.calls["read"] <= floor, once.calls
    assert {k: v for k, v in once.calls.items() if k != "read"} == {
        "payments": 0,
        "preview": 0,
        "post": 0,
        "reconcile": 0,
    }
    # Reading on its own, each step pays about the whole read again.
    pass_alone = alone.calls["payments"] + alone.calls["post"] + alone.calls["reconcile"]
    approval_alone = pass_alone + alone.calls["preview"]
    assert pass_alone >= 2 * floor + ORDERS, alone.calls
    assert approval_alone >= 3 * floor + ORDERS, alone.calls
    assert once.calls["read"] * 2 < pass_alone


def test_a_real_pass_on_one_read_records_posts_and_reconciles(shop: Finance) -> None:
    busy_day(shop, orders=12, refunds=4)
    day = shop.day

    async def use(mapping: Mapping, shopline: ShoplineClient, stokly: StoklyClient) -> Any:
        common = {"shopline": shopline, "stokly": stokly, "store": shop.world.store}
        money = await read_shopline_money(shopline, Period.of(mapping, day, day), refunds=True)
        read = api_calls(shopline)
        payments = await sync_payments(mapping, start=day, end=day, money=money, **common)
        preview = await post_ledger(
            mapping, start=day, end=day, dry_run=True, money=money, **common
        )
        posted = await post_ledger(
            mapping, start=day, end=day, approved=preview.approval(), money=money, **common
        )
        result = await reconcile_payouts(mapping, start=day, end=day, money=money, **common)
        return payments, posted, result, api_calls(shopline) - read, money.calls

    payments, posted, result, after_read, read_calls = run(shop, use)
    assert payments.ok and payments.payments_recorded == 12 and payments.refunds_recorded == 4
    assert posted.ok and posted.posted == len(GATEWAYS) and posted.not_approved == 0
    assert result.ok, result.markdown()  # recorded, posted and SHOPLINE agree to the penny
    assert after_read == 0
    assert read_calls == floor_calls(12, 4)


# -- the shared read is never changed; what a step needs beyond it is read on top -----------------


def test_pending_orders_of_other_days_are_read_on_top_of_the_shared_read(shop: Finance) -> None:
    order = shop.place((TENT, 1))
    shop.world.run()

    async def unavailable(request: httpx.Request, forward: Any) -> httpx.Response:
        return httpx.Response(503, json={"message": "Service Unavailable"})

    shop.seam.on_write = unavailable
    held = shop.payments()
    assert held.deferred == 1 and shop.payments_of(order["id"]) == []
    shop.seam.on_write = None

    elsewhere = date(2020, 1, 6)  # a day with no money at all: the pending order is elsewhere
    seam = ShoplineSeam(shop.world.shopline_app)

    async def use(mapping: Mapping, shopline: ShoplineClient, stokly: StoklyClient) -> Any:
        money = await read_shopline_money(
            shopline, Period.of(mapping, elsewhere, elsewhere), refunds=True
        )
        snapshot = (dict(money.orders), dict(money.movements), money.also)
        seam.paths.clear()
        report = await sync_payments(
            mapping,
            shopline=shopline,
            stokly=stokly,
            store=shop.world.store,
            start=elsewhere,
            end=elsewhere,
            money=money,
        )
        result = await reconcile_payouts(
            mapping,
            shopline=shopline,
            stokly=stokly,
            store=shop.world.store,
            start=elsewhere,
            end=elsewhere,
            money=money,
        )
        return money, snapshot, report, result

    money, snapshot, report, result = run(shop, use, seam)
    assert report.ok and report.payments_recorded == 1
    assert len(shop.payments_of(order["id"])) == 1
    assert shop.world.store.cursors.get("demo-outdoor", "payments", "pending") == "{}"
    # Only the pending order was read on top: its order and its transactions.
    assert seam.paths == ["orders.json", "transactions.json"]
    # The shared read is as it was: the reconciliation of that day shows no one's money.
    assert (dict(money.orders), dict(money.movements), money.also) == snapshot
    assert order["id"] not in money.orders
    assert result.groups == [] and result.ok


def test_widen_and_with_refunds_read_only_what_is_missing_into_a_copy(shop: Finance) -> None:
    paid = shop.place((SOCKS, 1))
    refunded = shop.place((TENT, 1), customer={"email": "grace@example.org"})
    shop.refund(refunded["id"], note="Changed my mind")
    day = shop.day
    seam = ShoplineSeam(shop.world.shopline_app)

    async def use(mapping: Mapping, shopline: ShoplineClient, stokly: StoklyClient) -> Any:
        bare = await read_shopline_money(shopline, Period.of(mapping, day, day))
        assert bare.refunds == {} and seam.paths.count("refunds.json") == 0
        seam.paths.clear()
        full = await with_refunds(shopline, bare)
        refunds_read = list(seam.paths)
        again = await with_refunds(shopline, full)
        seam.paths.clear()
        same = await widen(shopline, full, [paid["id"]])  # listed already: every day now
        return bare, full, refunds_read, again, same, list(seam.paths)

    bare, full, refunds_read, again, same, widen_paths = run(shop, use, seam)
    assert refunds_read == ["refunds.json"]  # only the refunded order's
    assert set(full.refunds) == {refunded["id"]} and bare.refunds == {}
    assert again is full  # nothing missing: no read, no copy
    assert widen_paths == []  # its transactions were read already
    assert same is not full and same.also == {paid["id"]} and full.also == frozenset()


def test_money_read_for_another_period_is_refused_by_every_step(shop: Finance) -> None:
    day = shop.day

    async def use(mapping: Mapping, shopline: ShoplineClient, stokly: StoklyClient) -> list[str]:
        other = date(2020, 1, 6)
        money = await read_shopline_money(shopline, Period.of(mapping, other, other))
        common = {
            "shopline": shopline,
            "stokly": stokly,
            "store": shop.world.store,
            "start": day,
            "end": day,
            "money": money,
        }
        messages = []
        for step in (
            sync_payments(mapping, **common),
            post_ledger(mapping, dry_run=True, **common),
            reconcile_payouts(mapping, **common),
        ):
            with pytest.raises(ValueError) as caught:
                await step
            messages.append(str(caught.value))
        return messages

    for message in run(shop, use):
        assert message == f"SHOPLINE's money was read for 2020-01-06, not for {day}"


def test_an_order_the_shared_read_could_not_read_posts_nothing_and_waits(shop: Finance) -> None:
    good = shop.place((SOCKS, 1))
    bad = shop.place((TENT, 1), customer={"email": "tim@example.net"})
    shop.world.run()
    day = shop.day
    seam = ShoplineSeam(shop.world.shopline_app)

    async def forbidden(request: httpx.Request) -> httpx.Response | None:
        if f"/orders/{bad['id']}/transactions.json" in request.url.path:
            return httpx.Response(403, json={"errors": "scope read_orders missing"})
        return None

    seam.fail = forbidden

    async def use(mapping: Mapping, shopline: ShoplineClient, stokly: StoklyClient) -> Any:
        money = await read_shopline_money(shopline, Period.of(mapping, day, day), refunds=True)
        common = {
            "shopline": shopline,
            "stokly": stokly,
            "store": shop.world.store,
            "start": day,
            "end": day,
            "money": money,
        }
        return (
            money,
            await sync_payments(mapping, **common),
            await post_ledger(mapping, **common),
            await reconcile_payouts(mapping, **common),
        )

    money, payments, ledger, result = run(shop, use, seam)
    assert set(money.unread) == {bad["id"]}
    # Payments records what it can and keeps the unread order for the next run.
    assert payments.payments_recorded == 1 and payments.deferred == 1 and not payments.ok
    assert len(shop.payments_of(good["id"])) == 1 and shop.payments_of(bad["id"]) == []
    assert bad["id"] in shop.world.store.cursors.get("demo-outdoor", "payments", "pending")
    # The ledger posts nothing from part of the money, and says which order is missing.
    assert (
        not ledger.fetch_ok and ledger.posted == 0 and list(shop.world.stokly_state.journals) == []
    )
    assert "nothing was posted" in ledger.errors[0] and bad["name"] in ledger.errors[0]
    assert any(bad["name"] in error for error in result.errors) and not result.ok
