"""Mapping: SHOPLINE orders translated into Stokly sale orders per second, in one process.

The orders are paid storefront orders made by an in-memory demo store (1–3 lines each, the
buyers and shipping methods of the demo), read the way the orders sync reads them (through the
client's ``Order`` model); the catalogue is the demo Stokly account's items and locations. The
clock runs around `stokline.sync.orders.translate.translate_order` only — SKU matching, locations,
shipping, tax, payments, the Jinja2 field templates, the fingerprint — repeated over the same
orders until the measurement has lasted long enough to be steady.

Baseline: a JSON round trip (``json.loads(json.dumps(order))``) of the same orders, timed the
same way: the least any translation that reads every field and builds a new document must do.
The ratio says how many JSON round trips one translation costs.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from benchmarks.common import Figure, Result, parser, say, sized, use_demo_credentials
from benchmarks.sandboxes import DEMO_MAPPING, SEED, order_documents
from stokline.config import load_mapping
from stokline.connectors.shopline.models import Order
from stokline.sandbox.common import DocStore
from stokline.sandbox.stokly.seed import seed_demo as seed_stokly
from stokline.sync.orders.translate import OrderUntranslatable, StoklyCatalogue, translate_order

SKUS = 300


def catalogue_of_demo(mapping: Any) -> StoklyCatalogue:
    """The demo Stokly account's orderable items and its locations, as the sync would read them."""
    store = DocStore(None)
    try:
        seed_stokly(store, skus=SKUS, seed=SEED)
        items = [
            (i["sku"], i["itemId"])
            for i in store.list("item")
            if i.get("format") != 2 and i.get("status", 0) == 0
        ]
        locations = [(loc["name"], loc["locationId"]) for loc in store.list("location")]
    finally:
        store.close()
    return StoklyCatalogue.build(mapping, items, locations)


def rate(work: Callable[[], int], minimum_s: float) -> tuple[float, int, float]:
    """Run ``work`` (returns how many it did) until ``minimum_s`` passed; (per second, n, s)."""
    work()  # warm-up: imports, template caches, first allocations
    gc.collect()
    done, started = 0, time.perf_counter()
    while True:
        done += work()
        elapsed = time.perf_counter() - started
        if elapsed >= minimum_s:
            return done / elapsed, done, elapsed


def main(argv: list[str] | None = None) -> int:
    args = parser("mapping", __doc__ or "").parse_args(argv)
    count = sized(args.size, 2_000, 500, 50)
    minimum = sized(args.size, 10.0, 3.0, 0.2)
    result = Result(
        "mapping",
        "Mapping: orders translated per second",
        args.size,
        parameters={"distinct_orders": count, "seconds_each": minimum},
    )
    use_demo_credentials()
    mapping = load_mapping(DEMO_MAPPING)
    say(f"making {count:,} orders …")
    # As the client reads them: JSON decoded with Decimal for every number with a fraction.
    orders = [
        Order.model_validate(json.loads(json.dumps(doc), parse_float=Decimal)).model_dump()
        for doc in order_documents(count)
    ]
    catalogue = catalogue_of_demo(mapping)
    refused = 0
    for order in orders:
        try:
            translate_order(mapping, order, catalogue)
        except OrderUntranslatable:
            refused += 1

    def translate_all() -> int:
        for order in orders:
            with contextlib.suppress(OrderUntranslatable):
                translate_order(mapping, order, catalogue)
        return len(orders)

    def round_trip_all() -> int:
        for order in orders:
            json.loads(json.dumps(order, default=str))
        return len(orders)

    say(f"translating for {minimum:g} s …")
    ours, ours_n, ours_s = rate(translate_all, minimum)
    say(f"baseline: JSON round trips for {minimum:g} s …")
    base, base_n, base_s = rate(round_trip_all, minimum)
    result.add(
        Figure(
            "orders_per_second",
            "orders translated per second",
            round(ours),
            "orders/s",
            baseline=round(base),
            target=5000,
            goal="min",
            note="baseline: JSON round trips of the same orders per second",
        )
    )
    result.add(
        Figure(
            "round_trips_per_translation",
            "JSON round trips one translation costs",
            round(base / ours, 1) if ours else None,
            "",
        )
    )
    result.add(Figure("refused", "orders the mapping refused", refused, "", target=0, goal="equal"))
    result.notes += [
        f"translated {ours_n:,} orders in {ours_s:.1f} s and round-tripped {base_n:,} in"
        f" {base_s:.1f} s, one core",
    ]
    result.finish(args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
