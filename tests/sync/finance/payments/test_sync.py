"""The payments sync against both sandboxes: SHOPLINE payments and refunds recorded in Stokly once.

Every scenario checks Stokly's own records (the sandbox's payments and refunds) rather than the
report alone. The SHOPLINE sandbox's seeded orders are removed first (`Finance`), so the period
holds only the orders a test places. Faults are injected at the Stokly transport (`StoklySeam`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from stokline.config import Mapping
from stokline.store import Store
from stokline.store.tables import links
from stokline.sync.clients import open_clients
from stokline.sync.finance.payments.report import PaymentsReport
from stokline.sync.finance.payments.sync import sync_payments
from stokline.sync.finance.payouts.reconcile import reconcile_payouts
from stokline.sync.finance.payouts.report import PayoutReconciliation
from tests.sync.conftest import TOKEN, World

TENT = "ACME-TENT-2P-ORANGE"
SOCKS = "CRAG-SOCKS-75-M"
LONDON = ZoneInfo("Europe/London")
API = "/admin/openapi/v20251201"

Forward = Callable[[], Awaitable[httpx.Response]]


class StoklySeam(httpx.AsyncBaseTransport):
    """The Stokly sandbox behind a seam that sees every payment and refund write.

    ``on_write(request, forward)`` may answer itself, forward and then fail (the request landed,
    the answer was lost), or forward twice (a retry whose first attempt landed).
    """

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.on_write: Callable[[httpx.Request, Forward], Awaitable[httpx.Response]] | None = None
        self.writes: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if (
            request.method == "POST"
            and path.startswith("/v2/saleorders/")
            and path.endswith(("/payments", "/refunds"))
        ):
            self.writes.append(path.rsplit("/", 1)[-1])
            if self.on_write is not None:
                await request.aread()
                return await self.on_write(
                    request, lambda: self.inner.handle_async_request(request)
                )
        return await self.inner.handle_async_request(request)


class Finance:
    """A quiet shop (only the test's orders) and the finance use cases run against it."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.seam = StoklySeam(world.stokly_app)
        store = world.shopline_app.state.shopline.store
        for order in store.list("order"):
            store.delete("order", order["id"])
        self.day = datetime.now(LONDON).date()

    # -- SHOPLINE -------------------------------------------------------------------------------

    def place(self, *lines: tuple[str, int], **spec: Any) -> dict[str, Any]:
        spec.setdefault("customer", {"email": "ada@example.com"})
        return self.world.place(*lines, **spec)

    def refund(self, order_id: str, **body: Any) -> dict[str, Any]:
        response = self.world.shop.post(f"/_sandbox/orders/{order_id}/refund", json=body)
        assert response.status_code == 200, response.text
        return response.json()["refund"]

    def transactions(self, order_id: str) -> list[dict[str, Any]]:
        response = self.world.shop.get(
            f"{API}/orders/{order_id}/transactions.json",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 200, response.text
        return response.json()["transactions"]

    # -- the use cases ----------------------------------------------------------------------------

    def _with_clients(self, mapping: Mapping | None, use: Callable[..., Awaitable[Any]]) -> Any:
        mapping = mapping or self.world.mapping

        async def scenario() -> Any:
            async with open_clients(
                mapping,
                lift_limits=True,
                shopline_transport=httpx.ASGITransport(app=self.world.shopline_app),
                stokly_transport=self.seam,
            ) as (shopline, stokly):
                return await use(mapping, shopline, stokly)

        return asyncio.run(scenario())

    def payments(
        self,
        start: date | None = None,
        end: date | None = None,
        mapping: Mapping | None = None,
        **options: Any,
    ) -> PaymentsReport:
        """`sync_payments` for the days around today (a test near midnight still fits)."""

        async def use(mapping: Mapping, shopline: Any, stokly: Any) -> PaymentsReport:
            return await sync_payments(
                mapping,
                shopline=shopline,
                stokly=stokly,
                store=self.world.store,
                start=start or self.day - timedelta(days=1),
                end=end or self.day + timedelta(days=1),
                **options,
            )

        return self._with_clients(mapping, use)

    def reconcile(
        self,
        start: date | None = None,
        end: date | None = None,
        mapping: Mapping | None = None,
        store: Store | None = None,
    ) -> PayoutReconciliation:
        async def use(mapping: Mapping, shopline: Any, stokly: Any) -> PayoutReconciliation:
            return await reconcile_payouts(
                mapping,
                shopline=shopline,
                stokly=stokly,
                store=store or self.world.store,
                start=start or self.day - timedelta(days=1),
                end=end or self.day,
            )

        return self._with_clients(mapping, use)

    # -- Stokly -------------------------------------------------------------------------------

    def sale_order(self, order_id: str) -> str:
        link = self.world.store.links.get("demo-outdoor", "order", order_id)
        assert link is not None, f"order {order_id} was not imported"
        return link.stokly_id

    def payments_of(self, order_id: str) -> list[dict[str, Any]]:
        sale = self.sale_order(order_id)
        return [p for p in self.world.stokly_state.payments if p["saleOrderId"] == sale]

    def refunds_of(self, order_id: str) -> list[dict[str, Any]]:
        sale = self.sale_order(order_id)
        return [r for r in self.world.stokly_state.refunds if r["saleOrderId"] == sale]

    def counts(self) -> tuple[int, int]:
        state = self.world.stokly_state
        return len(list(state.payments)), len(list(state.refunds))


@pytest.fixture
def shop(world: World) -> Finance:
    return Finance(world)


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_a_payment_and_a_refund_are_recorded_once_with_their_details(shop: Finance) -> None:
    order = shop.place((TENT, 1), (SOCKS, 2))
    shop.world.run()  # the orders sync imports it
    socks = next(li for li in order["line_items"] if li["sku"] == SOCKS)
    refund = shop.refund(
        order["id"],
        lines=[{"line_item_id": socks["id"], "quantity": 1}],
        shipping=True,
        note="Damaged in transit",
    )
    report = shop.payments()
    assert report.ok and report.exceptions == []
    assert (report.payments_recorded, report.refunds_recorded) == (1, 1)
    assert report.refund_payments_recorded == 1

    sale_tx, refund_tx = shop.transactions(order["id"])
    detail = sale_tx["payment_details"]
    [paid, back] = sorted(shop.payments_of(order["id"]), key=lambda p: p["kind"] != "payment")
    assert paid["kind"] == "payment" and paid["method"] == 4
    assert paid["gateway"] == "shopline_payments"
    assert paid["transactionId"] == detail["pay_channel_deal_id"]
    assert paid["reference"] == detail["pay_seq"]
    assert money(paid["amount"]) == money(order["total_price"]) and paid["currency"] == "GBP"
    assert back["kind"] == "refund" and back["transactionId"] == refund_tx["channel_refund_id"]
    assert money(back["amount"]) == money(refund_tx["amount"])

    [note] = shop.refunds_of(order["id"])
    sale_lines = shop.world.stokly_state.saleorders.get(shop.sale_order(order["id"]))["items"]
    socks_line = next(line for line in sale_lines if line["itemSku"] == SOCKS)
    assert note["sourceReferenceId"] == refund["id"]
    assert note["reason"] == "Damaged in transit; Shipping refund"
    assert money(note["amount"]) == money(refund_tx["amount"])
    shipping = money(order["shipping_lines"][0]["price"])
    assert money(note["shippingAmount"]) == shipping
    assert [(i["lineId"], i["quantity"]) for i in note["items"]] == [(socks_line["lineId"], 1)]
    assert money(note["items"][0]["amount"]) == money(socks["price"])
    assert note["payments"][0]["transactionId"] == refund_tx["channel_refund_id"]
    actions = [a.action for a in shop.world.store.audit.list("demo-outdoor")]
    for action in ("record_payment", "record_credit_note", "record_refund_payment"):
        assert actions.count(action) == 1, actions

    counts = shop.counts()
    again = shop.payments()
    assert again.ok and again.payments_recorded == again.refunds_recorded == 0
    assert again.already_recorded == 2  # both transactions' links; no Stokly read needed
    assert shop.counts() == counts
    assert "ada@example.com" not in str([again.summary_rows(), report.written])


def test_records_stokly_has_are_linked_not_written_again_when_the_store_is_lost(
    shop: Finance, world: World
) -> None:
    order = shop.place((SOCKS, 1))
    world.run()
    shop.refund(order["id"], note="Wrong size")
    shop.payments()
    counts = shop.counts()
    with world.store.engine.begin() as conn:  # the state store forgot what it recorded
        conn.execute(links.delete().where(links.c.kind.in_(("payment", "refund"))))
    rerun = shop.payments()
    assert rerun.ok and rerun.payments_recorded == rerun.refunds_recorded == 0
    assert rerun.already_recorded == 3  # the payment, the credit note and the refund money
    assert shop.counts() == counts
    assert len(world.store.links.all("demo-outdoor", "payment")) == 2


def test_a_timeout_whose_request_landed_records_nothing_twice(shop: Finance) -> None:
    order = shop.place((TENT, 1))
    shop.world.run()

    async def landed_then_lost(request: httpx.Request, forward: Forward) -> httpx.Response:
        await forward()
        raise httpx.ReadTimeout("the answer never came", request=request)

    shop.seam.on_write = landed_then_lost
    first = shop.payments()
    assert not first.ok and first.deferred == 1
    assert "no clear answer" in first.errors[0]
    assert len(shop.payments_of(order["id"])) == 1  # it did land
    assert shop.world.store.links.all("demo-outdoor", "payment") == []
    assert order["id"] in shop.world.store.cursors.get("demo-outdoor", "payments", "pending")

    # The next run is for another day altogether: the pending order is looked at all the same.
    shop.seam.on_write = None
    shop.seam.writes.clear()
    elsewhere = date(2020, 1, 6)
    second = shop.payments(elsewhere, elsewhere)
    assert second.ok and second.payments_recorded == 0 and second.already_recorded == 1
    assert shop.seam.writes == []
    assert len(shop.payments_of(order["id"])) == 1
    assert shop.world.store.cursors.get("demo-outdoor", "payments", "pending") == "{}"
    [link] = shop.world.store.links.all("demo-outdoor", "payment")
    assert link.stokly_id == shop.payments_of(order["id"])[0]["paymentId"]


def test_a_retry_answered_409_links_the_record_stokly_already_has(shop: Finance) -> None:
    order = shop.place((SOCKS, 1))
    shop.world.run()

    async def sent_twice(request: httpx.Request, forward: Forward) -> httpx.Response:
        await forward()  # the first attempt landed...
        return await forward()  # ...and its retry is a duplicate: 409

    shop.seam.on_write = sent_twice
    report = shop.payments()
    assert report.ok and report.payments_recorded == 1
    [payment] = shop.payments_of(order["id"])
    link = shop.world.store.links.all("demo-outdoor", "payment")[0]
    assert link.stokly_id == payment["paymentId"]


def test_a_server_error_defers_and_the_next_run_records(shop: Finance) -> None:
    order = shop.place((SOCKS, 1))
    shop.world.run()

    async def unavailable(request: httpx.Request, forward: Forward) -> httpx.Response:
        return httpx.Response(503, json={"message": "Service Unavailable"})

    shop.seam.on_write = unavailable
    held = shop.payments()
    assert not held.ok and held.deferred == 1 and shop.payments_of(order["id"]) == []
    assert held.exceptions == []  # transient: no exception for a person
    shop.seam.on_write = None
    done = shop.payments()
    assert done.ok and done.payments_recorded == 1 and len(shop.payments_of(order["id"])) == 1


def test_a_refused_record_is_an_exception_and_the_others_go_on(shop: Finance) -> None:
    refused = shop.place((TENT, 1))
    fine = shop.place((SOCKS, 1))
    shop.world.run()
    refused_sale = shop.sale_order(refused["id"])

    async def refuse_one(request: httpx.Request, forward: Forward) -> httpx.Response:
        if refused_sale in request.url.path:
            return httpx.Response(422, json={"message": "Sale order is locked"})
        return await forward()

    shop.seam.on_write = refuse_one
    report = shop.payments()
    assert report.payments_recorded == 1 and len(shop.payments_of(fine["id"])) == 1
    [row] = report.exceptions
    assert row["code"] == "api_rejected" and "locked" in row["message"]
    [record] = shop.world.store.exceptions.list(client="demo-outdoor", code="api_rejected")
    assert record.entity_kind == "payment" and record.payload["order_id"] == refused["id"]


def test_an_unmapped_gateway_is_an_exception_until_the_mapping_maps_it(
    shop: Finance, world: World
) -> None:
    order = shop.place((SOCKS, 1), gateway="paypal")
    world.run()
    without_paypal = world.mapping_with(
        lambda text: (
            "\n".join(line for line in text.splitlines() if "{gateway: paypal," not in line) + "\n"
        )
    )
    report = shop.payments(mapping=without_paypal)
    [row] = report.exceptions
    assert row["code"] == "unmapped_gateway" and row["team"] == "finance"
    assert "paypal" in row["message"] and order["name"] in row["entity"]
    assert report.exceptions_opened == 1 and shop.payments_of(order["id"]) == []
    [record] = world.store.exceptions.list(client="demo-outdoor", status="open")
    assert record.code == "unmapped_gateway" and record.entity_kind == "payment"

    # Mapped again; the exception is replayed by a run of any period, and closes.
    elsewhere = date(2020, 1, 6)
    healed = shop.payments(elsewhere, elsewhere)
    assert healed.payments_recorded == 1 and healed.exceptions_resolved == 1
    [paid] = shop.payments_of(order["id"])
    assert paid["method"] == 5 and paid["gateway"] == "paypal"
    assert world.store.exceptions.get(record.id).status == "resolved"


def test_an_order_not_yet_imported_waits_and_is_recorded_once_imported(
    shop: Finance, world: World
) -> None:
    order = shop.place((SOCKS, 1))
    early = shop.payments()
    assert early.waiting_for_import == 1 and early.payments_recorded == 0 and early.ok
    world.run()
    later = shop.payments(date(2020, 1, 6), date(2020, 1, 6))  # another period entirely
    assert later.payments_recorded == 1 and len(shop.payments_of(order["id"])) == 1
    assert world.store.cursors.get("demo-outdoor", "payments", "pending") == "{}"


def test_an_order_refunded_in_part_before_its_import_waits_for_it(
    shop: Finance, world: World
) -> None:
    order = shop.place((TENT, 1), (SOCKS, 1))
    socks = next(li for li in order["line_items"] if li["sku"] == SOCKS)
    shop.refund(order["id"], lines=[{"line_item_id": socks["id"], "quantity": 1}])
    early = shop.payments()
    assert early.waiting_for_import == 1 and early.not_in_stokly == 0
    assert early.payments_recorded == 0 and early.ok
    world.run()
    later = shop.payments(date(2020, 1, 6), date(2020, 1, 6))  # pending, read by any period
    assert later.payments_recorded == 1 and len(shop.refunds_of(order["id"])) == 1


def test_a_refund_of_another_amount_than_its_lines_still_adds_up(shop: Finance) -> None:
    order = shop.place((TENT, 1), (SOCKS, 1))
    shop.world.run()
    socks = next(li for li in order["line_items"] if li["sku"] == SOCKS)
    goodwill = money(socks["price"]) - Decimal("1.00")
    refund = shop.refund(
        order["id"],
        lines=[{"line_item_id": socks["id"], "quantity": 1}],
        amount=str(goodwill),
        note="Kept the socks, partial refund agreed",
    )
    assert refund["order_adjustments"][0]["kind"] == "refund_discrepancy"
    shop.payments()
    [note] = shop.refunds_of(order["id"])
    assert money(note["amount"]) == goodwill
    assert [(i["quantity"], money(i["amount"])) for i in note["items"]] == [(1, goodwill)]
    assert note["reason"] == "Kept the socks, partial refund agreed"


def test_a_dry_run_writes_nothing_anywhere_and_lists_what_it_would(
    shop: Finance, world: World
) -> None:
    order = shop.place((SOCKS, 2))
    world.run()
    shop.refund(order["id"], note="Too small")
    stokly_before = shop.counts()
    store_before = world.store_rows()
    report = shop.payments(dry_run=True)
    assert shop.counts() == stokly_before and shop.seam.writes == []
    assert world.store_rows() == store_before
    records = sorted(row["record"] for row in report.would_write)
    assert records == ["credit note", "payment", "refund payment"]
    assert all(row["order"] == order["name"] for row in report.would_write)
    assert report.summary_rows()[2]["value"] == "dry run (nothing written)"
    live = shop.payments()
    assert live.payments_recorded + live.refunds_recorded + live.refund_payments_recorded == 3
