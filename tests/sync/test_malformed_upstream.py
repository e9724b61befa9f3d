"""Every sync against a broken upstream: both sandboxes serve the ``malformed`` fault.

Each test drives one sync in a `World` (both sandboxes in-process) beside a *twin* world that
gets the same business and the same passes without any fault: what the twin holds is what a
clean run gives. A sync's pass under the fault must end in a report whose problems are one line
each, or — for the reads a pass cannot do without, which the flows retry — in one
`ConnectorError` line; nothing else may escape. Answers with unknown extra fields must change
nothing at all: the report and the state are the twin's. Once the fault is cleared, the next
pass must converge: the sandboxes and the state store hold what the twin's hold.

Faults come only from the sandboxes (`/_sandbox/faults`), at the transport seam; the clients
retry without real pauses (`FAST`), so a pass takes a second or less.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from stokline.config import load_mapping
from stokline.connectors import ConnectorError, RetryPolicy, ShoplineClient, StoklyClient
from stokline.store.exceptions import ACTIVE
from stokline.sync.catalogue.sync import sync_catalogue
from stokline.sync.clients import LIFTED, CountingPacer
from stokline.sync.finance.ledger.sync import post_ledger
from stokline.sync.finance.payments.sync import sync_payments
from stokline.sync.fulfilment.sync import PushRetry, sync_fulfilment
from stokline.sync.orders.sync import sync_orders
from stokline.sync.stock.sync import sync_stock
from tests.sync.conftest import CLIENT_ID, CLIENT_SECRET, ROOT, TOKEN, World

CLIENT = "demo-outdoor"
RATE = 0.35
"""Share of API requests answered malformed while the fault is on."""
SEEDS = (21, 22, 23)
"""One faulted pass per seed: each replays exactly, whatever the interleaving of requests."""
FAST = RetryPolicy(max_attempts=3, max_elapsed=5.0, backoff_base=0.001, backoff_max=0.005)
TENT = "ACME-TENT-2P-ORANGE"
SOCKS = "CRAG-SOCKS-75-M"
KNOWN = "TENT-2P-GRN"  # SHOPLINE's spelling of a Stokly item (a mapping override)

UseCase = Callable[..., Any]


# -- the two worlds ------------------------------------------------------------------------------


@pytest.fixture
def twin(world: World, tmp_path: Path) -> Iterator[World]:
    """A second world, the same business, never faulted (the `world` fixture set the secrets)."""
    (tmp_path / "twin").mkdir()
    clean = World(tmp_path / "twin", load_mapping(ROOT / "mappings/demo.yaml"))
    yield clean
    clean.close()


def both(world: World, twin: World, action: Callable[[World], Any]) -> None:
    action(world)
    action(twin)


@asynccontextmanager
async def clients(world: World) -> AsyncIterator[tuple[ShoplineClient, StoklyClient]]:
    conn = world.mapping.connections
    shopline = ShoplineClient(
        conn.shopline.url,
        SecretStr(TOKEN),
        api_version=conn.shopline.api_version,
        pacer=CountingPacer(LIFTED),
        retry=FAST,
        transport=httpx.ASGITransport(app=world.shopline_app),
    )
    stokly = StoklyClient(
        conn.stokly.base_url,
        account_key=conn.stokly.account_key,
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        pacer=CountingPacer(LIFTED),
        retry=FAST,
        transport=httpx.ASGITransport(app=world.stokly_app),
    )
    try:
        yield shopline, stokly
    finally:
        await shopline.aclose()
        await stokly.aclose()


def run(world: World, use_case: UseCase, **options: Any) -> Any:
    async def scenario() -> Any:
        async with clients(world) as (shopline, stokly):
            return await use_case(
                world.mapping, shopline=shopline, stokly=stokly, store=world.store, **options
            )

    return asyncio.run(scenario())


# -- faults --------------------------------------------------------------------------------------


def set_faults(world: World, *, shopline: bool = True, **fields: Any) -> None:
    """The ``malformed`` profile with ``fields`` on both sandboxes (or Stokly's only)."""
    if shopline:
        shop = world.shop.put("/_sandbox/faults", json={"profile": "malformed", **fields})
        assert shop.status_code == 200, shop.text
    stokly = TestClient(world.stokly_app)
    stok = stokly.put("/_sandbox/faults", json={"profile": "malformed", "changes": fields})
    assert stok.status_code == 200, stok.text


def clear_faults(world: World) -> None:
    assert world.shop.put("/_sandbox/faults", json={"profile": "none"}).status_code == 200
    stokly = TestClient(world.stokly_app).put("/_sandbox/faults", json={"profile": "none"})
    assert stokly.status_code == 200


def injected(world: World) -> Counter[str]:
    """Malformed answers both sandboxes sent under their current settings."""
    shop = world.shop.get("/_sandbox/faults/injected").json()["injected"]
    stok = TestClient(world.stokly_app).get("/_sandbox/faults/injected").json()
    return Counter(shop) + Counter(stok["data"]["injected"])


def lines_of(outcome: Any) -> list[str]:
    """What a pass says went wrong: its errors and exception messages, or the error it raised."""
    if isinstance(outcome, ConnectorError):
        return [str(outcome)]
    return [*outcome.errors, *(e["message"] for e in outcome.exceptions)]


def assert_one_line_each(outcome: Any) -> None:
    for line in lines_of(outcome):
        assert "\n" not in line and "\r" not in line, line
        assert "Traceback" not in line and len(line) <= 1200, line


def under_the_fault(
    world: World,
    use_case: UseCase,
    *,
    may_raise: bool = False,
    rate: float = RATE,
    seeds: tuple[int, ...] = SEEDS,
    **options: Any,
) -> list[Any]:
    """One pass per seed with the fault on; each ends in a report (or, when ``may_raise``, a
    `ConnectorError`) whose problems are one line each. The fault is cleared afterwards."""
    outcomes: list[Any] = []
    sent: Counter[str] = Counter()
    for seed in seeds:
        set_faults(world, malformed_rate=rate, seed=seed)
        try:
            outcome = run(world, use_case, **options)
        except ConnectorError as exc:
            if not may_raise:
                raise
            outcome = exc
        assert_one_line_each(outcome)
        outcomes.append(outcome)
        sent += injected(world)
    clear_faults(world)
    assert sum(sent.values()) >= 3, f"the fault hardly bit: {dict(sent)}"
    assert any(lines_of(o) for o in outcomes), "no pass noticed anything"
    return outcomes


def with_extra_fields(world: World, use_case: UseCase, **options: Any) -> Any:
    """A pass whose every answer carries fields no contract names."""
    set_faults(world, malformed_rate=1.0, malformed_kinds=["extra_fields"])
    try:
        report = run(world, use_case, **options)
        assert injected(world)["extra_fields"] > 0
    finally:
        clear_faults(world)
    return report


def figures(report: Any) -> list[dict[str, Any]]:
    """A report's summary without what depends on timing or retries."""
    return [
        row
        for row in report.summary_rows()
        if not any(word in str(row.get("metric", "")) for word in ("api", "second", "duration"))
    ]


def open_exceptions(world: World) -> Counter[tuple[str, str]]:
    records = world.store.exceptions.list(client=CLIENT, status=ACTIVE)
    return Counter((r.code, r.entity_kind) for r in records)


# -- orders --------------------------------------------------------------------------------------


def place_orders(world: World, batch: str) -> None:
    world.place((KNOWN, 1), customer={"email": f"{batch}-a@example.com"})
    world.place((TENT, 2), (SOCKS, 1), customer={"email": f"{batch}-b@example.com"})
    world.place((SOCKS, 3), customer={"phone": "7700900123", "first_name": "Phone"})
    world.place(("ACME-HAMMOCK-XL-RED", 1), customer={"email": f"{batch}-c@example.com"})


def orders_state(world: World) -> dict[str, Any]:
    names = {o["id"]: o["name"] for _, o in world.shopline_app.state.shopline.store.scan("order")}
    sale_orders = Counter(
        names.get(s.get("sourceReferenceId"), "?")
        for s in world.stokly_state.saleorders
        if s.get("sourceReferenceId")
    )
    exceptions = Counter(
        (r.code, names.get(r.entity_id, r.entity_id))
        for r in world.store.exceptions.list(client=CLIENT, status=ACTIVE)
    )
    return {
        "sale orders": sale_orders,
        "customers": len(world.stokly_state.customers),
        "exceptions": exceptions,
        "duplicates": world.stokly_summary()["duplicateSaleOrders"],
    }


def test_orders_under_malformed_answers_report_in_lines_and_converge(
    world: World, twin: World
) -> None:
    both(world, twin, lambda w: place_orders(w, "first"))
    extra, clean = with_extra_fields(world, sync_orders), run(twin, sync_orders)
    assert extra.ok and extra.errors == [] and figures(extra) == figures(clean)
    assert orders_state(world) == orders_state(twin)

    both(world, twin, lambda w: place_orders(w, "second"))
    under_the_fault(world, sync_orders)
    run(twin, sync_orders)
    after = run(world, sync_orders)
    assert after.ok, after.errors
    assert orders_state(world) == orders_state(twin)
    assert orders_state(world)["duplicates"] == []


# -- stock ---------------------------------------------------------------------------------------


def receive(world: World, location: str, sku: str, quantity: int) -> None:
    body = {"location": location, "items": [{"sku": sku, "quantity": quantity}]}
    response = TestClient(world.stokly_app).post("/_sandbox/goods-receipt", json=body)
    assert response.status_code == 200, response.text


def levels(world: World) -> dict[tuple[str, str], int]:
    store = world.shopline_app.state.shopline.store
    sku_of = {
        str(v["inventory_item_id"]): v["sku"]
        for _, product in store.scan("product")
        for v in product["variants"]
    }
    return {
        (sku_of.get(str(lv["inventory_item_id"]), "?"), str(lv["location_id"])): lv["available"]
        for _, lv in store.scan("inventory_level")
    }


RECEIVED = (
    TENT,
    SOCKS,
    "JETBOIL-MINI-01",
    "ACME-BOTTLE-1L",
    "PIKE-GAS-230-25",
    "MOOR-TENT-3P-29-GREEN",
)
"""Goods in at two warehouses: twelve SHOPLINE levels to set, some of them answered malformed."""


def test_stock_under_malformed_answers_reports_in_lines_and_converges(
    world: World, twin: World
) -> None:
    both(world, twin, lambda w: w.run())  # the seeded paid orders, imported cleanly
    extra, clean = with_extra_fields(world, sync_stock), run(twin, sync_stock)
    assert extra.ok and extra.errors == [] and figures(extra) == figures(clean)
    assert levels(world) == levels(twin)

    def goods_in(w: World) -> None:
        for quantity, sku in enumerate(RECEIVED, start=5):
            receive(w, "Leeds DC", sku, quantity)
            receive(w, "Bristol DC", sku, quantity + 1)

    both(world, twin, goods_in)
    under_the_fault(world, sync_stock, may_raise=True)
    run(twin, sync_stock)
    after = run(world, sync_stock)
    assert after.ok, after.errors
    assert levels(world) == levels(twin)
    assert open_exceptions(world) == open_exceptions(twin)
    assert run(world, sync_stock, dry_run=True).would_push == []


# -- catalogue -----------------------------------------------------------------------------------


def stokly_api(world: World) -> TestClient:
    """Stokly's API as the merchant uses it (a bearer token of its own)."""
    api = TestClient(world.stokly_app)
    signature = hmac.new(CLIENT_SECRET.encode(), CLIENT_ID.encode(), hashlib.sha256).hexdigest()
    grant = api.post(
        "/v1/grant",
        json={"accountkey": CLIENT, "clientId": CLIENT_ID, "signature": signature},
    )
    api.headers["Authorization"] = (
        f"Bearer {grant.json()['data']['authenticationResult']['accessToken']}"
    )
    return api


def merchant_edits(world: World) -> None:
    api = stokly_api(world)
    ids = {i["sku"]: i["itemId"] for i in world.stokly_state.items}
    for amount, sku in enumerate((TENT, SOCKS, "ACME-BOTTLE-1L", "PIKE-GAS-230-25"), start=11):
        changes = {"salePrice": {"amount": amount, "currency": "GBP"}}
        assert api.patch(f"/v0/items/{ids[sku]}", json=changes).status_code == 200
    assert api.delete(f"/v0/items/{ids['JETBOIL-MINI-01']}").status_code == 200


def _stable(value: Any) -> Any:
    """A document without its ids and times (they differ between the two worlds)."""
    if isinstance(value, dict):
        return {
            k: _stable(v)
            for k, v in sorted(value.items())
            if not (k == "id" or k.endswith(("_id", "_at", "Id", "At")))
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def products(world: World) -> dict[str, Any]:
    store = world.shopline_app.state.shopline.store
    return {p["handle"]: _stable(p) for _, p in store.scan("product")}


def test_catalogue_under_malformed_answers_reports_in_lines_and_converges(
    world: World, twin: World
) -> None:
    extra, clean = with_extra_fields(world, sync_catalogue), run(twin, sync_catalogue)
    assert extra.ok and extra.errors == [] and figures(extra) == figures(clean)
    assert products(world) == products(twin)

    both(world, twin, merchant_edits)
    under_the_fault(world, sync_catalogue)
    run(twin, sync_catalogue)
    after = run(world, sync_catalogue)
    assert after.ok, after.errors
    assert products(world) == products(twin)
    assert open_exceptions(world) == open_exceptions(twin)


def test_an_empty_stokly_page_is_never_taken_for_the_whole_list(world: World) -> None:
    """Stokly's list pages all come back empty while ``metadata.count`` says records exist.

    Taken for the end of the list (as the client once did), an empty page of items had the
    catalogue call every SHOPLINE variant unknown: 26 exceptions opened for nothing. A short
    list must never become exceptions, levels or archived products: each pass stops in one line
    instead, having changed nothing anywhere.
    """
    world.run()
    assert run(world, sync_catalogue).ok and run(world, sync_stock).ok
    before = (products(world), levels(world), open_exceptions(world))
    set_faults(world, shopline=False, malformed_rate=1.0, malformed_kinds=["empty_page"])
    catalogue = run(world, sync_catalogue)
    try:
        stock: Any = run(world, sync_stock)
    except ConnectorError as exc:  # a read the pass cannot do without: the flow retries it
        stock = exc
    sent = injected(world)["empty_page"]
    clear_faults(world)
    assert (products(world), levels(world), open_exceptions(world)) == before
    assert sent >= 6  # each pass asked three times for its first page
    for outcome in (catalogue, stock):
        assert_one_line_each(outcome)
        assert any("came back empty 3 times" in line for line in lines_of(outcome)), outcome
    assert not catalogue.ok


# -- fulfilment ----------------------------------------------------------------------------------

NO_WAIT = PushRetry(attempts=3, delays=(0.0, 0.0))


def dispatch(world: World, name: str, *items: tuple[str, int], tracking: str) -> None:
    (order,) = [
        o for _, o in world.shopline_app.state.shopline.store.scan("order") if o["name"] == name
    ]
    body = {
        "sourceReferenceId": order["id"],
        "carrier": "royal-mail",
        "trackingNumbers": [tracking],
        "items": [{"sku": sku, "quantity": quantity} for sku, quantity in items],
    }
    response = TestClient(world.stokly_app).post("/_sandbox/dispatch", json=body)
    assert response.status_code == 200, response.text


def fulfillments(world: World) -> dict[str, list[Any]]:
    """Each order's fulfillments (by order name): status, tracking, lines shipped."""
    store = world.shopline_app.state.shopline.store
    return {
        order["name"]: [_stable(f) for f in order["_fulfillments"]]
        for _, order in store.scan("order")
        if order.get("_fulfillments")
    }


def test_fulfilment_under_malformed_answers_reports_in_lines_and_converges(
    world: World, twin: World
) -> None:
    def import_and_ship(w: World, batch: str) -> list[str]:
        names = [
            w.place((TENT, 2), (SOCKS, 1), customer={"email": f"{batch}-{i}@example.com"})["name"]
            for i in range(3)
        ]
        w.run()
        for i, name in enumerate(names):
            dispatch(w, name, (TENT, 1), tracking=f"RM{batch}{i}0GB")
        return names

    first = {w: import_and_ship(w, "10") for w in (world, twin)}
    extra = with_extra_fields(world, sync_fulfilment, retry=NO_WAIT)
    clean = run(twin, sync_fulfilment, retry=NO_WAIT)
    assert extra.ok and extra.errors == [] and figures(extra) == figures(clean)
    assert fulfillments(world) == fulfillments(twin)

    for w in (world, twin):
        import_and_ship(w, "20")
        for i, name in enumerate(first[w]):  # the rest of the first orders, a second parcel
            dispatch(w, name, (TENT, 1), (SOCKS, 1), tracking=f"RM30{i}0GB")
    under_the_fault(world, sync_fulfilment, rate=0.5, retry=NO_WAIT)  # a pass asks little
    run(twin, sync_fulfilment, retry=NO_WAIT)
    after = run(world, sync_fulfilment, retry=NO_WAIT)
    assert after.ok, after.errors
    assert fulfillments(world) == fulfillments(twin)
    assert open_exceptions(world) == open_exceptions(twin)


# -- finance: payments and journals ---------------------------------------------------------------

QUIET_DAY, BUSY_DAY = date(2025, 6, 14), date(2025, 6, 15)


def trade(world: World, day: date) -> date:
    """A day's paid orders (by card, PayPal, Klarna), one refunded in part now, imported by the
    orders sync from their webhooks. Returns the day of the refund (today, client's time)."""
    placed = []
    for hour, (gateway, sku, quantity) in enumerate(
        (("shopline_payments", KNOWN, 1), ("paypal", SOCKS, 2), ("klarna", TENT, 1)), start=9
    ):
        body = {
            "lines": [{"sku": sku, "quantity": quantity}],
            "customer": {"email": f"{gateway}-{day}@example.com"},
            "gateway": gateway,
            "created_at": f"{day}T{hour:02d}:00:00+00:00",
        }
        response = world.shop.post("/_sandbox/orders", json=body)
        assert response.status_code == 200, response.text
        placed.append(response.json()["order"])
    for order in placed:  # backdated, so only their webhooks bring them to the orders sync
        assert asyncio.run(world.deliver(order, "orders/paid", f"paid-{order['id']}")) == 200
    refunded = placed[-1]
    line = refunded["line_items"][0]["id"]
    refund = {"lines": [{"line_item_id": line, "quantity": 1}]}
    response = world.shop.post(f"/_sandbox/orders/{refunded['id']}/refund", json=refund)
    assert response.status_code == 200, response.text
    world.run()
    when = datetime.fromisoformat(response.json()["refund"]["created_at"])
    return when.astimezone(ZoneInfo(world.mapping.client.timezone)).date()


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def money_in_stokly(world: World) -> dict[str, Any]:
    names = {o["id"]: o["name"] for _, o in world.shopline_app.state.shopline.store.scan("order")}
    sale_to_name = {
        s["saleOrderId"]: names.get(s.get("sourceReferenceId"), "?")
        for s in world.stokly_state.saleorders
    }
    payments = Counter(
        (sale_to_name.get(p["saleOrderId"]), p["kind"], str(_decimal(p["amount"])))
        for p in world.stokly_state.payments
    )
    refunds = Counter(
        (sale_to_name.get(r["saleOrderId"]), str(_decimal(r["amount"])))
        for r in world.stokly_state.refunds
    )
    journals = {
        j["reference"]: sorted(
            (ln["account"], str(_decimal(ln["debit"])), str(_decimal(ln["credit"])))
            for ln in j["lines"]
        )
        for j in world.stokly_state.journals
    }
    for reference, lines in journals.items():
        debits = sum(_decimal(d) for _, d, _ in lines)
        credits = sum(_decimal(c) for _, _, c in lines)
        assert debits == credits, f"{reference} does not balance"
    return {"payments": payments, "refunds": refunds, "journals": journals}


def test_finance_under_malformed_answers_reports_in_lines_and_converges(
    world: World, twin: World
) -> None:
    both(world, twin, lambda w: trade(w, QUIET_DAY))
    refunds_day = trade(world, BUSY_DAY)
    assert trade(twin, BUSY_DAY) == refunds_day
    quiet = {"start": QUIET_DAY, "end": QUIET_DAY}
    for use_case in (sync_payments, post_ledger):
        extra, clean = with_extra_fields(world, use_case, **quiet), run(twin, use_case, **quiet)
        assert extra.ok and extra.errors == [] and figures(extra) == figures(clean)
    assert money_in_stokly(world) == money_in_stokly(twin)

    busy = {"start": BUSY_DAY, "end": BUSY_DAY}
    for use_case in (sync_payments, post_ledger):
        under_the_fault(world, use_case, rate=0.5, **busy)  # a pass asks little
        run(twin, use_case, **busy)
        after = run(world, use_case, **busy)
        assert after.ok, after.errors
    # A payment held back by the fault is recorded with all its order's money, whatever the day
    # (here today's refunds): the twin records those with today's payments.
    for w in (world, twin):
        assert run(w, sync_payments, start=refunds_day, end=refunds_day).ok
    held = money_in_stokly(world)
    assert held == money_in_stokly(twin)
    assert len(held["journals"]) >= 4 and sum(held["payments"].values()) >= 6
    assert open_exceptions(world) == open_exceptions(twin)
