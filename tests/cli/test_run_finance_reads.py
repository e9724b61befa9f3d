"""`stokline run finance` reads SHOPLINE's money once, as the finance flow does.

Both sandboxes on loopback, the SHOPLINE one behind a counter of the API requests it receives (its
control endpoints under /_sandbox are not counted). A quiet shop takes a day of paid orders over
three gateways, the orders sync imports them, two are refunded; then `stokline run finance --yes`
records the payments and refunds and posts the journals — the approval the demo mapping requires
builds the journals twice (preview, then post) — with exactly the SHOPLINE requests of one read:
one order page, one transactions read per order, one refunds read per refunded order. Reading
once per step would cost about three times that.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from stokline.cli import main
from stokline.sandbox.common import ServerThread
from stokline.store import Store
from tests.flows.sandboxes import (
    DEMO_MAPPING,
    KNOWN_SKU,
    demo_apps,
    demo_credentials,
    point_mapping_at,
)

pytestmark = pytest.mark.slow

CLIENT = "demo-outdoor"
GATEWAYS = ("shopline_payments", "paypal", "klarna")
ORDERS, REFUNDED = 6, 2
PAGE = 100  # orders per SHOPLINE page


class CountedRequests:
    """An ASGI app in front of the SHOPLINE sandbox: the last path segment of every API request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sandbox"):
            self.paths.append(scope["path"].rsplit("/", 1)[-1])
        await self.app(scope, receive, send)


@dataclass
class Shop:
    shopline: ServerThread
    stokly: ServerThread
    requests: CountedRequests
    mapping: Path

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(f"{self.shopline.url}/_sandbox{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def journals(self) -> int:
        response = httpx.get(f"{self.stokly.url}/_sandbox/state", timeout=10)
        response.raise_for_status()
        return response.json()["data"]["counts"]["journal"]


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    """Seeded, unthrottled sandboxes without the seed's orders; demo secrets; a private store."""
    creds = demo_credentials()
    for name, value in creds.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STOKLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.chdir(tmp_path)
    shopline_app, stokly_app = demo_apps(40)
    seeded = shopline_app.state.shopline.store
    for order in seeded.list("order"):  # a quiet shop: only the test's orders move money
        seeded.delete("order", order["id"])
    requests = CountedRequests(shopline_app)
    try:
        with ServerThread(requests) as shop, ServerThread(stokly_app) as stok:
            mapping = point_mapping_at(DEMO_MAPPING, tmp_path / "demo.yaml", shop.url, stok.url)
            yield Shop(shop, stok, requests, mapping)
    finally:
        shopline_app.state.shopline.close()
        stokly_app.state.sandbox.close()


def payments_table(out: str) -> dict[str, str]:
    """The figures of the payments' summary: the table after "payments:", to the blank line."""
    lines = out.split("payments:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return dict(line.strip().rsplit(None, 1) for line in lines[1:])


def test_run_finance_reads_shopline_once_for_payments_preview_and_post(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    placed = [
        shop.post(
            "/orders",
            {
                "lines": [{"sku": KNOWN_SKU, "quantity": 1}],
                "customer": {"email": f"finance-reads{i}@example.com"},
                "gateway": GATEWAYS[i % len(GATEWAYS)],
            },
        )["order"]
        for i in range(ORDERS)
    ]
    mapping = str(shop.mapping)
    assert main(["run", "orders", "--mapping", mapping]) == 0
    for order in placed[:REFUNDED]:
        shop.post(f"/orders/{order['id']}/refund", {"note": "Returned unused"})
    today = datetime.now(ZoneInfo("Europe/London")).date()
    yesterday = today - timedelta(days=1)  # the period holds today even just after midnight
    journals = shop.journals()
    capsys.readouterr()
    shop.requests.paths.clear()

    period = ["--from", str(yesterday), "--to", str(today)]
    assert main(["run", "finance", "--mapping", mapping, *period, "--yes"]) == 0
    out, err = capsys.readouterr()

    # One read of SHOPLINE's money served the payments, the journals' preview and their post.
    paths = shop.requests.paths
    assert paths.count("orders.json") == math.ceil(ORDERS / PAGE), paths
    assert paths.count("transactions.json") == ORDERS, paths
    assert paths.count("refunds.json") == REFUNDED, paths
    assert len(paths) == math.ceil(ORDERS / PAGE) + ORDERS + REFUNDED, paths

    # What it did: every payment and refund recorded, one journal per gateway posted once.
    rows = payments_table(out)
    assert rows["payments recorded"] == str(ORDERS), out
    assert rows["refunds recorded (credit notes)"] == str(REFUNDED), out
    assert rows["refund payments recorded"] == str(REFUNDED), out
    assert rows["deferred to the next run"] == "0", out
    assert "post these" not in out  # --yes answered the approval
    assert shop.journals() == journals + len(GATEWAYS)
    with Store() as store:
        batches = {b.batch_key for b in store.batches.list(CLIENT)}
        payments = store.links.all(CLIENT, "payment")
    assert batches == {f"{CLIENT}:{today}:{gateway}:GBP" for gateway in GATEWAYS}
    assert len(payments) == ORDERS + REFUNDED  # the payments, then the refunds' money
    assert "journals posted" in out and "Traceback" not in err

    # A rerun reads once again (nothing is cached across runs) and posts nothing twice.
    shop.requests.paths.clear()
    assert main(["run", "finance", "--mapping", mapping, *period, "--yes"]) == 0
    out = capsys.readouterr().out
    assert len(shop.requests.paths) == math.ceil(ORDERS / PAGE) + ORDERS + REFUNDED
    assert "already posted" in out and shop.journals() == journals + len(GATEWAYS)
