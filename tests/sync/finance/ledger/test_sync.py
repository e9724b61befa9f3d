"""The ledger pass against both sandboxes: a day posted as balanced journals that match totals
worked out by hand, posted once however often it runs, corrected by adjustment batches, never
posted twice after a crash, an order that does not balance set aside alone (and posted once it
does), and written nowhere when dry.

Faults are injected only at the HTTP transport seam (`Seam`), never by replacing our functions.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from stokline.config import Mapping
from stokline.sync.clients import open_clients
from stokline.sync.finance.ledger.report import LedgerReport
from stokline.sync.finance.ledger.sync import (
    MAX_PERIOD_DAYS,
    PeriodError,
    default_period,
    post_ledger,
    resolve_period,
)
from tests.sync.conftest import World

DAY = date(2025, 6, 15)  # in the past, with no seeded orders: every penny here is the test's
D = Decimal

Handler = Callable[
    [httpx.Request, Callable[[], Awaitable[httpx.Response]]], Awaitable[httpx.Response]
]


class Seam(httpx.AsyncBaseTransport):
    """A sandbox behind a seam where a test may answer, alter or break chosen requests."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.handlers: list[tuple[str, str, Handler]] = []
        self.seen: list[tuple[str, str]] = []

    def on(self, method: str, path_part: str, handler: Handler) -> None:
        self.handlers.append((method, path_part, handler))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        for method, part, handler in self.handlers:
            if request.method == method and part in request.url.path:
                return await handler(request, lambda: self.inner.handle_async_request(request))
        return await self.inner.handle_async_request(request)


def post(
    world: World,
    mapping: Mapping | None = None,
    *,
    shopline: Seam | None = None,
    stokly: Seam | None = None,
    **options: Any,
) -> LedgerReport:
    mapping = mapping or world.mapping

    async def scenario() -> LedgerReport:
        async with open_clients(
            mapping,
            lift_limits=True,
            shopline_transport=shopline or httpx.ASGITransport(app=world.shopline_app),
            stokly_transport=stokly or httpx.ASGITransport(app=world.stokly_app),
        ) as (shop, stok):
            return await post_ledger(
                mapping, shopline=shop, stokly=stok, store=world.store, **options
            )

    return asyncio.run(scenario())


def vat_sku(world: World, title: str) -> str:
    """A sellable SHOPLINE SKU of the sandbox taxed under ``title``."""
    for _, product in world.shopline_app.state.shopline.store.scan("product"):
        for variant in product["variants"]:
            if variant.get("_vat_title") == title and not variant.get("_gift_card"):
                return str(variant["sku"])
    raise AssertionError(f"no {title} SKU in the sandbox")


def place_day(world: World) -> dict[str, dict[str, Any]]:
    """The hand-computed day (see the expected journals below)."""
    reduced, zero_rated = vat_sku(world, "VAT 5%"), vat_sku(world, "VAT 0%")
    placed = {
        # 120.00 (VAT 20.00) + Royal Mail 3.95 (VAT 0.66) = 123.95 by card.
        "card": _place(
            world,
            [("TENT-2P-GRN", 1, "120.00")],
            "Royal Mail Tracked 48",
            "shopline_payments",
            "2025-06-15T09:00:00+00:00",
        ),
        # 2 x 10.50 (VAT 5% 1.00) + 12.00 (VAT 0%) + DPD 6.95 (VAT 1.16) = 39.95 by PayPal.
        "paypal": _place(
            world,
            [(reduced, 2, "10.50"), (zero_rated, 1, "12.00")],
            "DPD Next Day",
            "paypal",
            "2025-06-15T13:00:00+00:00",
        ),
        # 23:30 UTC on the 14th is 00:30 on the 15th in London: 10.00 (VAT 1.67), collected.
        "klarna": _place(
            world,
            [("TENT-2P-GRN", 1, "10.00")],
            "Click & Collect Bristol",
            "klarna",
            "2025-06-14T23:30:00+00:00",
        ),
        # 23:30 UTC on the 15th is the 16th in London: not in the day.
        "next_day": _place(
            world,
            [("TENT-2P-GRN", 1, "99.00")],
            "Royal Mail Tracked 48",
            "shopline_payments",
            "2025-06-15T23:30:00+00:00",
        ),
    }
    sandbox = world.shopline_app.state.shopline.store
    sandbox.set_meta("currency", "EUR")  # the store takes one order in euros
    try:
        # 2 x 50.00 (VAT 16.67) + 3.95 (VAT 0.66) = 103.95 EUR by card.
        placed["euro"] = _place(
            world,
            [("TENT-2P-GRN", 2, "50.00")],
            "Royal Mail Tracked 48",
            "shopline_payments",
            "2025-06-15T17:00:00+00:00",
        )
    finally:
        sandbox.set_meta("currency", "GBP")
    return placed


def _place(
    world: World,
    lines: list[tuple[str, int, str]],
    shipping: str,
    gateway: str,
    at: str,
    *,
    imported: bool = True,
) -> dict[str, Any]:
    body = {
        "lines": [{"sku": sku, "quantity": qty, "price": price} for sku, qty, price in lines],
        "customer": {"email": "ledger-buyer@example.com"},
        "shipping_title": shipping,
        "gateway": gateway,
        "created_at": at,
    }
    response = world.shop.post("/_sandbox/orders", json=body)
    assert response.status_code == 200, response.text
    placed = response.json()["order"]
    if imported:
        in_stokly(world, placed)
    return placed


def in_stokly(world: World, order: dict[str, Any]) -> None:
    """The order as the orders sync leaves it once imported: linked to its Stokly sale order
    (the ledger posts only the money of orders in Stokly)."""
    world.store.links.put(world.mapping.client.name, "order", order["id"], f"so-{order['id']}", {})


EXPECTED = {
    "demo-outdoor:2025-06-15:shopline_payments:GBP": {
        ("1210", "receipts shopline_payments", "123.95", "0"),
        ("4000", "sales", "0", "100.00"),
        ("2200", "tax standard", "0", "20.66"),
        ("4010", "shipping", "0", "3.29"),
    },
    "demo-outdoor:2025-06-15:paypal:GBP": {
        ("1220", "receipts paypal", "39.95", "0"),
        ("4000", "sales", "0", "32.00"),
        ("2201", "tax reduced", "0", "1.00"),
        ("2200", "tax standard", "0", "1.16"),
        ("4010", "shipping", "0", "5.79"),
    },
    "demo-outdoor:2025-06-15:klarna:GBP": {
        ("1230", "receipts klarna", "10.00", "0"),
        ("4000", "sales", "0", "8.33"),
        ("2200", "tax standard", "0", "1.67"),
    },
    "demo-outdoor:2025-06-15:shopline_payments:EUR": {
        ("1210", "receipts shopline_payments", "103.95", "0"),
        ("4000", "sales", "0", "83.33"),
        ("2200", "tax standard", "0", "17.33"),
        ("4010", "shipping", "0", "3.29"),
    },
}


def _amount(value: Any) -> str:
    return str(D(str(value)).quantize(D("0.01"))) if D(str(value)) else "0"


def stokly_journals(world: World) -> dict[str, dict[str, Any]]:
    return {j["reference"]: j for j in world.stokly_state.journals}


def stokly_lines(journal: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {
        (ln["account"], ln.get("description", ""), _amount(ln["debit"]), _amount(ln["credit"]))
        for ln in journal["lines"]
    }


def expected(rows: set[tuple[str, str, str, str]]) -> set[tuple[str, str, str, str]]:
    return {(a, d, _amount(dr), _amount(cr)) for a, d, dr, cr in rows}


# -- a day, posted once -------------------------------------------------------------------------


def test_a_day_posts_one_balanced_journal_per_gateway_and_currency(world: World) -> None:
    place_day(world)
    report = post(world, start=DAY, end=DAY)
    assert report.ok, report.errors
    assert report.posted == 4 and not report.refused
    journals = stokly_journals(world)
    assert set(EXPECTED) <= set(journals)
    for key, lines in EXPECTED.items():
        journal = journals[key]
        assert stokly_lines(journal) == expected(lines), key
        assert journal["date"] == "2025-06-15"
        assert journal["currency"] == key.rsplit(":", 1)[1]
        debits = sum(D(str(ln["debit"])) for ln in journal["lines"])
        credits = sum(D(str(ln["credit"])) for ln in journal["lines"])
        assert debits == credits
        batch = world.store.batches.get("demo-outdoor", key)
        assert batch is not None and batch.status == "posted"
        assert batch.journal_id == journal["journalId"]
    audit = [e for e in world.store.audit.list("demo-outdoor") if e.action == "post_journal"]
    assert sorted(e.business_key for e in audit) == sorted(EXPECTED)
    assert {row["outcome"] for row in report.batches} == {"posted"}


def test_posting_a_day_twice_posts_one_batch_and_says_so(world: World) -> None:
    place_day(world)
    first = post(world, start=DAY, end=DAY)
    assert first.posted == 4
    journals_before = stokly_journals(world)
    again = post(world, start=DAY, end=DAY)
    assert again.ok
    assert again.posted == 0 and again.already_posted == 4 and not again.journals
    assert [row["outcome"] for row in again.batches] == ["already posted"] * 4
    assert {row["batch"] for row in again.batches} == set(EXPECTED)
    assert stokly_journals(world) == journals_before
    assert ("already posted (skipped)", 4) in [
        (r["metric"], r["value"]) for r in again.summary_rows()
    ]


def test_a_sale_that_arrives_after_posting_goes_into_an_adjustment_batch(world: World) -> None:
    place_day(world)
    post(world, start=DAY, end=DAY)
    posted = stokly_journals(world)["demo-outdoor:2025-06-15:paypal:GBP"]
    # An order of the 15th that SHOPLINE shows only now: 24.00 (VAT 4.00) + DPD 6.95 (1.16).
    _place(
        world, [("TENT-2P-GRN", 1, "24.00")], "DPD Next Day", "paypal", "2025-06-15T15:00:00+00:00"
    )
    report = post(world, start=DAY, end=DAY)
    assert report.posted == 1 and report.adjustments == 1 and report.already_posted == 3
    journals = stokly_journals(world)
    adjustment = journals["demo-outdoor:2025-06-15:paypal:GBP:adj1"]
    assert stokly_lines(adjustment) == expected(
        {
            ("1220", "receipts paypal", "30.95", "0"),
            ("4000", "sales", "0", "20.00"),
            ("2200", "tax standard", "0", "5.16"),
            ("4010", "shipping", "0", "5.79"),
        }
    )
    assert adjustment["date"] == "2025-06-15"
    # The posted batch is never rewritten.
    assert journals["demo-outdoor:2025-06-15:paypal:GBP"] == posted
    assert post(world, start=DAY, end=DAY).posted == 0


def test_a_refund_after_posting_goes_into_an_adjustment_batch(world: World) -> None:
    today = datetime.now(UTC).astimezone(world.mapping.client.tz).date()
    # Two 30.00 stoves (VAT 10.00) by card today, with Royal Mail 3.95 (VAT 0.66).
    placed = _place(
        world,
        [("TENT-2P-GRN", 2, "30.00")],
        "Royal Mail Tracked 48",
        "shopline_payments",
        datetime.now(UTC).replace(microsecond=0).isoformat(),
    )
    first = post(world, start=today, end=today)
    assert first.ok and first.posted >= 1
    key = f"demo-outdoor:{today}:shopline_payments:GBP"
    original = stokly_journals(world)[key]
    # One stove back (30.00, VAT 5.00) and the shipping (3.95, VAT 0.66): 33.95 refunded.
    refund = world.shop.post(
        f"/_sandbox/orders/{placed['id']}/refund",
        json={
            "lines": [{"line_item_id": placed["line_items"][0]["id"], "quantity": 1}],
            "shipping": True,
            "note": "one was damaged",
        },
    )
    assert refund.status_code == 200, refund.text
    second = post(world, start=today, end=today)
    assert second.ok and second.posted == 1 and second.adjustments == 1
    adjustment = stokly_journals(world)[f"{key}:adj1"]
    # Refunds (30.00 - 5.00) + (3.95 - 0.66) = 28.29; VAT back 5.66; 33.95 out of the card account.
    assert stokly_lines(adjustment) == expected(
        {
            ("4090", "refunds", "28.29", "0"),
            ("2200", "tax standard refunded", "5.66", "0"),
            ("1210", "refunds shopline_payments", "0", "33.95"),
        }
    )
    assert stokly_journals(world)[key] == original
    assert world.store.batches.get("demo-outdoor", f"{key}:adj1").status == "posted"  # type: ignore[union-attr]


# -- crashes and lost answers -------------------------------------------------------------------


class PowerCut(Exception):
    """The process dies right after Stokly accepted the journal."""


def test_a_crash_between_posting_and_recording_never_posts_twice(world: World) -> None:
    place_day(world)
    stokly = Seam(world.stokly_app)

    async def accept_then_die(request: httpx.Request, forward: Any) -> httpx.Response:
        response = await forward()
        assert response.status_code == 200
        raise PowerCut("the worker died")

    stokly.on("POST", "/v0/journals", accept_then_die)
    with pytest.raises(PowerCut):
        post(world, start=DAY, end=DAY, stokly=stokly)
    (crashed,) = [b for b in world.store.batches.list("demo-outdoor") if b.status == "posting"]
    assert crashed.batch_key in stokly_journals(world)  # Stokly has it; the store does not know
    count = len(stokly_journals(world))

    report = post(world, start=DAY, end=DAY)
    assert report.ok and report.recovered == 1
    journals = stokly_journals(world)
    assert sorted(journals) == sorted(EXPECTED)  # one journal per batch, none twice
    assert count == 1 and len(journals) == 4
    recovered = world.store.batches.get("demo-outdoor", crashed.batch_key)
    assert recovered is not None and recovered.status == "posted"
    assert recovered.journal_id == journals[crashed.batch_key]["journalId"]
    assert post(world, start=DAY, end=DAY).posted == 0


def test_a_lost_answer_is_looked_up_before_anything_is_posted_again(world: World) -> None:
    place_day(world)
    stokly = Seam(world.stokly_app)

    async def accept_then_time_out(request: httpx.Request, forward: Any) -> httpx.Response:
        await forward()
        raise httpx.ReadTimeout("no answer", request=request)

    stokly.on("POST", "/v0/journals", accept_then_time_out)
    report = post(world, start=DAY, end=DAY, stokly=stokly)
    assert not report.ok and report.posted == 0
    assert len(stokly_journals(world)) == 4  # they all landed, whatever the client saw
    assert all(b.status == "posting" for b in world.store.batches.list("demo-outdoor"))
    again = post(world, start=DAY, end=DAY)
    assert again.ok and again.recovered == 4 and again.posted == 0
    assert len(stokly_journals(world)) == 4


def test_a_claim_that_never_reached_stokly_is_posted_by_the_next_run(world: World) -> None:
    place_day(world)
    stokly = Seam(world.stokly_app)

    async def die_before_sending(request: httpx.Request, forward: Any) -> httpx.Response:
        raise PowerCut("the worker died before sending")

    stokly.on("POST", "/v0/journals", die_before_sending)
    with pytest.raises(PowerCut):
        post(world, start=DAY, end=DAY, stokly=stokly)
    assert not stokly_journals(world)
    report = post(world, start=DAY, end=DAY)
    assert report.posted == 4 and not report.recovered
    assert sorted(stokly_journals(world)) == sorted(EXPECTED)


# -- refusals ------------------------------------------------------------------------------------


def test_an_order_that_does_not_balance_waits_alone_and_is_posted_once_it_does(
    world: World,
) -> None:
    placed = place_day(world)
    # Another PayPal order of the day, 24.00 + DPD 6.95: it must not wait for the bad one.
    _place(
        world,
        [("TENT-2P-GRN", 1, "24.00")],
        "DPD Next Day",
        "paypal",
        "2025-06-15T15:00:00+00:00",
    )
    shopline = Seam(world.shopline_app)
    paypal_id = placed["paypal"]["id"]

    async def a_penny_short(request: httpx.Request, forward: Any) -> httpx.Response:
        response = await forward()
        body = json.loads(await response.aread())
        for tx in body["transactions"]:
            tx["amount"] = "39.94"
        return httpx.Response(200, json=body, headers={"content-type": "application/json"})

    shopline.on("GET", f"/orders/{paypal_id}/transactions.json", a_penny_short)
    report = post(world, start=DAY, end=DAY, shopline=shopline)
    key = "demo-outdoor:2025-06-15:paypal:GBP"
    assert report.ok and report.posted == 4 and not report.refused
    # The PayPal journal holds the good order only.
    assert ("1220", "receipts paypal", "30.95", "0") in stokly_lines(stokly_journals(world)[key])
    (exception,) = world.store.exceptions.list(client="demo-outdoor", code="ledger_imbalance")
    assert (exception.team, exception.entity_kind, exception.entity_id) == (
        "finance",
        "ledger_batch",
        key,
    )
    assert exception.severity == "critical" and exception.status == "open"
    assert placed["paypal"]["name"] in exception.message and "0.01" in exception.message
    assert report.exceptions[0]["code"] == "ledger_imbalance"
    assert [(r["shopline_id"], r["code"], r["amount"]) for r in report.set_aside] == [
        (paypal_id, "ledger_imbalance", "39.94")
    ]

    # SHOPLINE's real figures balance: the run of the next day (its own journal, and the order
    # as an adjustment of its day) resolves the exception.
    fixed = post(world, start=DAY + timedelta(days=1), end=DAY + timedelta(days=1))
    assert fixed.posted == 2 and fixed.adjustments == 1 and fixed.exceptions_resolved == 1
    adjustment = stokly_journals(world)[f"{key}:adj1"]
    assert adjustment["date"] == "2025-06-15"
    assert ("1220", "receipts paypal", "39.95", "0") in stokly_lines(adjustment)
    assert world.store.exceptions.get(exception.id).status == "resolved"  # type: ignore[union-attr]
    again = post(world, start=DAY, end=DAY)
    assert again.posted == 0 and again.already_posted == 4


def test_an_unmapped_gateway_holds_back_its_orders_only(world: World) -> None:
    place_day(world)
    _place(
        world,
        [("TENT-2P-GRN", 1, "15.00")],
        "Royal Mail Tracked 48",
        "bitcoin",
        "2025-06-15T10:00:00+00:00",
    )
    report = post(world, start=DAY, end=DAY)
    assert report.posted == 4 and not report.refused
    (exception,) = world.store.exceptions.list(client="demo-outdoor", code="unmapped_gateway")
    assert exception.entity_id == "demo-outdoor:2025-06-15:bitcoin:GBP"
    assert "demo-outdoor:2025-06-15:bitcoin:GBP" not in stokly_journals(world)


def test_stokly_refusing_a_journal_leaves_it_for_the_next_run(world: World) -> None:
    place_day(world)
    stokly = Seam(world.stokly_app)

    async def refuse(request: httpx.Request, forward: Any) -> httpx.Response:
        return httpx.Response(422, json={"message": "account 2201 is closed"})

    stokly.on("POST", "/v0/journals", refuse)
    report = post(world, start=DAY, end=DAY, stokly=stokly)
    assert report.posted == 0 and len(report.refused) == 4
    assert {e["code"] for e in report.exceptions} == {"ledger_imbalance"}
    assert "account 2201 is closed" in report.exceptions[0]["message"]
    later = post(world, start=DAY, end=DAY)
    assert later.posted == 4 and later.exceptions_resolved == 4


def test_shopline_failing_posts_nothing_at_all(world: World) -> None:
    placed = place_day(world)
    shopline = Seam(world.shopline_app)

    async def forbidden(request: httpx.Request, forward: Any) -> httpx.Response:
        return httpx.Response(403, json={"errors": "scope read_orders missing"})

    shopline.on("GET", f"/orders/{placed['klarna']['id']}/transactions.json", forbidden)
    report = post(world, start=DAY, end=DAY, shopline=shopline)
    assert not report.ok and not report.fetch_ok
    assert "nothing was posted" in report.errors[0]
    assert not stokly_journals(world) and not world.store.batches.list("demo-outdoor")


# -- dry runs and approval ----------------------------------------------------------------------


def test_a_dry_run_writes_nothing_anywhere(world: World) -> None:
    place_day(world)
    stokly_before = world.stokly_summary()
    store_before = world.store_rows()
    report = post(world, start=DAY, end=DAY, dry_run=True)
    assert report.dry_run and report.ok
    assert sorted(r["batch"] for r in report.would_post) == sorted(EXPECTED)
    assert {r["outcome"] for r in report.batches} == {"would post"}
    assert {
        j.batch_key: {
            (
                ln.account,
                ln.description,
                str(ln.debit) if ln.debit else "0",
                str(ln.credit) if ln.credit else "0",
            )
            for ln in j.lines
        }
        for j in report.journals
    } == {k: expected(v) for k, v in EXPECTED.items()}
    assert world.stokly_summary() == stokly_before
    assert world.store_rows() == store_before

    # Dry after a real post: it reports what is posted and still writes nothing.
    post(world, start=DAY, end=DAY)
    stokly_before, store_before = world.stokly_summary(), world.store_rows()
    again = post(world, start=DAY, end=DAY, dry_run=True)
    assert again.already_posted == 4 and not again.journals
    assert world.stokly_summary() == stokly_before and world.store_rows() == store_before


def test_only_journals_exactly_as_approved_are_posted(world: World) -> None:
    place_day(world)
    preview = post(world, start=DAY, end=DAY, dry_run=True)
    approved = preview.approval()
    assert sorted(approved) == sorted(EXPECTED)
    # Between the preview and the approval, a late PayPal order of the day shows up.
    _place(
        world, [("TENT-2P-GRN", 1, "24.00")], "DPD Next Day", "paypal", "2025-06-15T15:00:00+00:00"
    )
    report = post(world, start=DAY, end=DAY, approved=approved, approval_note="ok by finance")
    assert report.posted == 3 and report.not_approved == 1
    (held,) = [r for r in report.batches if r["outcome"].startswith("not posted")]
    assert held["batch"] == "demo-outdoor:2025-06-15:paypal:GBP"
    assert held["outcome"] == "not posted: changed since it was approved"
    assert "demo-outdoor:2025-06-15:paypal:GBP" not in stokly_journals(world)
    (entry, *_) = [e for e in world.store.audit.list("demo-outdoor") if e.action == "post_journal"]
    assert entry.details["approved"] is True and entry.details["approval_note"] == "ok by finance"


def test_a_new_grouping_reverses_the_old_batches_and_posts_the_new(world: World) -> None:
    place_day(world)
    post(world, start=DAY, end=DAY)
    regrouped = world.mapping_with(
        lambda t: t.replace("group_by: [day, gateway, currency]", "group_by: [day, currency]")
    )
    report = post(world, regrouped, start=DAY, end=DAY)
    # Two new journals (GBP, EUR) and a reversal of each of the four by gateway.
    assert report.ok and report.posted == 6 and report.adjustments == 4
    journals = stokly_journals(world)
    assert "demo-outdoor:2025-06-15:all:GBP" in journals
    reversal = journals["demo-outdoor:2025-06-15:klarna:GBP:adj1"]
    assert stokly_lines(reversal) == expected(
        {
            ("1230", "receipts klarna", "0", "10.00"),
            ("4000", "sales", "8.33", "0"),
            ("2200", "tax standard", "1.67", "0"),
        }
    )
    # Across all journals of the day, every account nets to what one grouping would post.
    net: dict[str, Decimal] = {}
    for key, journal in journals.items():
        if key.endswith(":GBP") or ":GBP:" in key:
            for ln in journal["lines"]:
                net[ln["account"]] = (
                    net.get(ln["account"], D(0)) + D(str(ln["debit"])) - D(str(ln["credit"]))
                )
    assert net["1230"] == D("10.00") and net["1220"] == D("39.95") and net["1210"] == D("123.95")
    assert post(world, regrouped, start=DAY, end=DAY).posted == 0


# -- the period -----------------------------------------------------------------------------------


def test_the_default_period_is_yesterday_in_the_clients_timezone(world: World) -> None:
    mapping = world.mapping
    # 23:30 UTC on 15 June is already the 16th in London: yesterday is the 15th.
    assert default_period(mapping, datetime(2025, 6, 15, 23, 30, tzinfo=UTC)) == (DAY, DAY)
    assert default_period(mapping, datetime(2025, 6, 15, 22, 30, tzinfo=UTC)) == (
        DAY - timedelta(days=1),
        DAY - timedelta(days=1),
    )
    now = datetime(2025, 6, 20, 12, tzinfo=UTC)
    assert resolve_period(mapping, None, None, now) == (date(2025, 6, 19), date(2025, 6, 19))
    assert resolve_period(mapping, DAY, None, now) == (DAY, DAY)
    assert resolve_period(mapping, None, DAY, now) == (DAY, DAY)
    assert resolve_period(mapping, date(2025, 6, 1), DAY, now) == (date(2025, 6, 1), DAY)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (date(2025, 6, 16), DAY, "starts on 2025-06-16, after it ends on 2025-06-15"),
        (DAY, date(2025, 6, 21), "ends on 2025-06-21, after today (2025-06-20 in Europe/London)"),
        (date(2024, 1, 1), DAY, f"post at most {MAX_PERIOD_DAYS}"),
    ],
)
def test_a_period_that_cannot_be_posted_is_refused(
    world: World, start: date, end: date, message: str
) -> None:
    with pytest.raises(PeriodError, match=re.escape(message)):
        resolve_period(world.mapping, start, end, datetime(2025, 6, 20, 12, tzinfo=UTC))


def test_the_store_keeps_what_was_posted_and_the_orders_behind_it(world: World) -> None:
    placed = place_day(world)
    post(world, start=DAY, end=DAY)
    batch = world.store.batches.get("demo-outdoor", "demo-outdoor:2025-06-15:klarna:GBP")
    assert batch is not None
    totals = batch.totals
    assert totals["base"] == "demo-outdoor:2025-06-15:klarna:GBP"
    assert (totals["date"], totals["gateway"], totals["currency"]) == (
        "2025-06-15",
        "klarna",
        "GBP",
    )
    assert totals["debits"] == "10.00" and len(totals["hash"]) == 64
    assert totals["orders"] == [f"{placed['klarna']['name']} ({placed['klarna']['id']})"]
    assert {tuple(sorted(ln)) for ln in totals["lines"]} == {
        ("account", "credit", "debit", "description")
    }
