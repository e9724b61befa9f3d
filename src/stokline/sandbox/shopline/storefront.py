"""A storefront simulation: buyers placing orders against a running sandbox at a steady rate.

It drives only the control API (``/_sandbox/``), so it works against any running SHOPLINE
sandbox, in-process or not. The CLI runs it for demos and soak tests.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

import httpx

log = logging.getLogger(__name__)

_SHIPPING = (
    "Royal Mail Tracked 48",
    "Royal Mail Tracked 48",
    "DPD Next Day",
    "Click & Collect Bristol",
)
_GATEWAYS = ("shopline_payments", "shopline_payments", "shopline_payments", "paypal", "klarna")
_NAMES = ("Ada", "Alan", "Grace", "Tim", "Mary", "Rosalind", "Charles", "Dorothy", "Kath")


def _buyer(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(_NAMES)
    kind = rng.random()
    buyer: dict[str, Any] = {"first_name": name, "last_name": "Buyer"}
    if kind < 0.8:
        buyer["email"] = f"{name.lower()}.buyer{rng.randint(1, 400)}@example.com"
    if kind > 0.6:
        buyer["phone"] = f"7700900{rng.randint(0, 999):03d}"
    return buyer


def run_storefront(
    base_url: str,
    *,
    orders_per_minute: float = 6.0,
    count: int | None = None,
    duration_s: float | None = None,
    seed: int = 11,
    stop: threading.Event | None = None,
    client: httpx.Client | None = None,
) -> int:
    """Place orders until ``count`` orders, ``duration_s`` seconds or ``stop`` is set.

    Most orders are paid at checkout; some are paid a little later (``orders/paid`` after
    ``orders/create``), a few are cancelled or refunded by the merchant. Returns the number of
    orders placed.
    """
    if orders_per_minute <= 0:
        raise ValueError("orders_per_minute must be positive")
    rng = random.Random(seed)
    own = client is None
    http = client or httpx.Client(base_url=base_url, timeout=10.0)
    stop = stop or threading.Event()
    interval = 60.0 / orders_per_minute
    deadline = time.monotonic() + duration_s if duration_s is not None else None
    placed = 0
    refusals = 0
    unpaid: list[str] = []
    try:
        skus = http.get("/_sandbox/skus").raise_for_status().json()["skus"]
        sellable = [s for s in skus if not s.upper().startswith(("GIFT-CARD-", "SAMPLE-"))]
        while not stop.is_set():
            if count is not None and placed >= count:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            lines = [
                {"sku": sku, "quantity": rng.choice((1, 1, 1, 2))}
                for sku in rng.sample(sellable, rng.choice((1, 1, 2, 3)))
            ]
            paid = rng.random() < 0.85
            response = http.post(
                "/_sandbox/orders",
                json={
                    "lines": lines,
                    "customer": _buyer(rng),
                    "shipping_title": rng.choice(_SHIPPING),
                    "gateway": rng.choice(_GATEWAYS),
                    "paid": paid,
                },
            )
            if response.status_code == 200:
                placed += 1
                order = response.json()["order"]
                if not paid:
                    unpaid.append(order["id"])
                roll = rng.random()
                if roll < 0.03:
                    http.post(f"/_sandbox/orders/{order['id']}/cancel", json={"reason": "customer"})
                elif roll < 0.06 and paid:
                    http.post(f"/_sandbox/orders/{order['id']}/refund", json={})
                refusals = 0
            else:
                # Sold-out items are refused at checkout; a buyer simply tries something else.
                refusals += 1
                log.info("storefront order refused: %s %s", response.status_code, response.text)
                if refusals >= 50:
                    log.warning("storefront stopped: 50 orders refused in a row")
                    break
            if unpaid and rng.random() < 0.5:
                http.post(f"/_sandbox/orders/{unpaid.pop(0)}/pay")
            stop.wait(interval)
    finally:
        if own:
            http.close()
    return placed
