"""A simulated warehouse driving the Stokly sandbox through its control API.

Staff receive goods, correct counts after a stock take, and pick and dispatch waiting sale
orders — sometimes in two parcels, so partial shipments happen — each with tracking numbers.
Used by `stokline sandbox --warehouse-rate` and `stokline simulate warehouse`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import httpx

LOCATIONS = ("Leeds DC", "York Store", "Bristol DC")
CARRIERS = {"royal-mail": "RM{n:09d}GB", "dpd": "15501{n:09d}"}


def _tracking(rng: random.Random, carrier: str) -> str:
    return CARRIERS[carrier].format(n=rng.randrange(10**8, 10**9))


def warehouse_step(http: httpx.Client, rng: random.Random, skus: list[str]) -> str:
    """One thing warehouse staff do; returns a line saying what."""
    roll = rng.random()
    if roll < 0.5:
        waiting = http.get("/_sandbox/awaiting-dispatch", params={"limit": 5}).json()["data"]
        if waiting:
            order = waiting[0]
            carrier = rng.choice(list(CARRIERS))
            lines = order["lines"]
            body: dict[str, object] = {
                "saleOrderId": order["saleOrderId"],
                "carrier": carrier,
                "trackingNumbers": [_tracking(rng, carrier)],
            }
            partial = len(lines) > 1 and rng.random() < 0.3
            if partial:  # the first parcel carries one line; the rest follows later
                body["items"] = [{"lineId": lines[0]["lineId"], "quantity": lines[0]["left"]}]
            response = http.post("/_sandbox/dispatch", json=body)
            if response.status_code < 300:
                kind = "part of" if partial else "all of"
                return (
                    f"dispatched {kind} order {order['sourceReferenceId'] or order['saleOrderId']}"
                )
            return f"could not dispatch {order['saleOrderId']}: {response.json().get('message')}"
    sku = rng.choice(skus)
    location = rng.choice(LOCATIONS)
    if roll < 0.85:
        quantity = rng.randint(5, 40)
        http.post(
            "/_sandbox/goods-receipt",
            json={"location": location, "items": [{"sku": sku, "quantity": quantity}]},
        )
        return f"received {quantity} x {sku} at {location}"
    delta = -rng.randint(1, 3)
    response = http.post(
        "/_sandbox/adjust",
        json={
            "location": location,
            "reference": "stock take",
            "items": [{"sku": sku, "quantity": delta}],
        },
    )
    if response.status_code < 300:
        return f"counted {delta} x {sku} at {location}"
    return f"count of {sku} at {location} left unchanged"


def run_warehouse(
    base_url: str,
    *,
    actions_per_minute: float = 6.0,
    count: int | None = None,
    stop: threading.Event | None = None,
    seed: int = 23,
    skus: list[str] | None = None,
    report: Callable[[str], None] | None = None,
) -> int:
    """Act at a steady rate until ``count`` actions or ``stop``; returns the number of actions."""
    rng = random.Random(seed)
    stop = stop or threading.Event()
    interval = 60.0 / actions_per_minute
    done = 0
    with httpx.Client(base_url=base_url, timeout=10.0) as http:
        if skus is None:
            from stokline.sandbox.catalogue import demo_catalogue

            skus = [entry.sku for entry in demo_catalogue(300, 7) if entry.known_to_stokly]
        while not stop.is_set() and (count is None or done < count):
            line = warehouse_step(http, rng, skus)
            done += 1
            if report:
                report(line)
            stop.wait(interval)
    return done
