"""Orders: a backlog of 5,000 paid orders through the orders flow, limits lifted.

The SHOPLINE sandbox is seeded with the demo store plus a backlog of paid orders (1–3 lines of
SKUs Stokly knows, buyers drawn from a pool of 3,600 like the storefront simulator's: most with
an email, some with a phone too, one in five with a phone only). A throwaway Prefect server
runs; ``flows/orders.py:orders_flow`` runs once in a process of its own and imports the backlog
(every order of the look-back window, in batches). Measured: orders per second from the flow
call to its return, API calls per imported order (the run's report), peak memory, and Stokly's
own check that no sale order exists twice.

Baseline, same run, over the same backlog in fresh sandboxes: `benchmarks.orders_baseline` —
one Prefect task run and one Stokly search per order.
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import Figure, Result, parser, run_json, say, sized
from benchmarks.prefect_server import PrefectServer
from benchmarks.sandboxes import Sandboxes, add_paid_orders, benchmark_mapping, seed, serve

SKUS = 300  # the demo catalogue: orders need variety, not a large catalogue
BUYERS = 3_600


def stokly_state(sandboxes: Sandboxes) -> dict[str, Any]:
    response = httpx.get(f"{sandboxes.stokly_url}/_sandbox/state", timeout=60)
    response.raise_for_status()
    return response.json()["data"]


def backlog_run(
    work: Path, server: PrefectServer, orders: int, *, mode: str, rng: random.Random
) -> dict[str, Any]:
    """Seed fresh sandboxes with ``orders`` paid orders, run one flow, return what happened."""
    data = work / f"sandbox-{mode}"
    seed(data, SKUS)
    add_paid_orders(data, orders, skus=SKUS, buyers=BUYERS, rng=rng)
    sandboxes = serve(data, SKUS, work / f"sandbox-{mode}.log")
    try:
        mapping = benchmark_mapping(
            work / f"orders-{mode}.yaml", sandboxes.shopline_url, sandboxes.stokly_url
        )
        before = stokly_state(sandboxes)["counts"]
        say(f"{mode}: importing a backlog of {orders:,} paid orders …")
        env = server.env(STOKLINE_DATABASE_URL=f"sqlite:///{work / f'state-{mode}.db'}")
        out = run_json(
            [
                sys.executable,
                "-m",
                "benchmarks.orders_pass",
                "--mapping",
                str(mapping),
                "--mode",
                mode,
            ],
            env=env,
            timeout=4 * 3600,
            what=f"the {mode} flow",
        )
        after = stokly_state(sandboxes)
    finally:
        sandboxes.stop()
    out["created"] = after["counts"]["saleorder"] - before["saleorder"]
    out["customers_created"] = after["counts"]["customer"] - before["customer"]
    out["duplicate_sale_orders"] = len(after["duplicateSaleOrders"])
    out["backlog"] = orders
    say(
        f"{mode}: {out['state']} in {out['seconds']:.1f} s; {out['created']:,} sale orders,"
        f" {out['customers_created']:,} customers created"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    args = parser("orders", __doc__ or "").parse_args(argv)
    orders = sized(args.size, 5_000, 500, 20)
    result = Result(
        "orders",
        "Orders: a backlog of paid orders through the orders flow, limits lifted",
        args.size,
        parameters={"backlog": orders, "buyer_pool": BUYERS},
    )
    with tempfile.TemporaryDirectory(prefix="stokline-bench-orders-") as tmp:
        work = Path(tmp)
        say("starting a Prefect server …")
        with PrefectServer(work / "prefect", work / "prefect-server.log") as server:
            ours = backlog_run(work, server, orders, mode="flow", rng=random.Random(5000))
            base = backlog_run(work, server, orders, mode="baseline", rng=random.Random(5000))
    figures(result, ours, base)
    result.finish(args.results_dir)
    return 0 if ours["state"] == "Completed" else 1


def figures(result: Result, ours: dict[str, Any], base: dict[str, Any]) -> None:
    def rate(run: dict[str, Any]) -> float | None:
        return round(run["created"] / run["seconds"], 1) if run["seconds"] else None

    def calls(run: dict[str, Any], *, aside_customers: bool = False) -> float | None:
        numbers = run.get("numbers") or {}
        if "api_calls" not in numbers or not run["created"]:
            return None
        total = numbers["api_calls"] - (run["customers_created"] if aside_customers else 0)
        return round(total / run["created"], 3)

    result.add(
        Figure("imported", "sale orders created", ours["created"], "", baseline=base["created"])
    )
    result.add(
        Figure(
            "orders_per_second",
            "orders/s end to end through the flow",
            rate(ours),
            "orders/s",
            baseline=rate(base),
            target=50,
            goal="min",
        )
    )
    result.add(
        Figure(
            "calls_per_order",
            "API calls per imported order",
            calls(ours),
            "",
            baseline=calls(base),
            target=1.2,
            goal="max",
            note="every HTTP request of the import (the run's report), new customers included",
        )
    )
    result.add(
        Figure(
            "calls_per_order_without_customers",
            "API calls per order, new customers aside",
            calls(ours, aside_customers=True),
            "",
            baseline=calls(base, aside_customers=True),
            note="each new buyer costs one customer create: Stokly has no bulk create",
        )
    )
    result.add(
        Figure(
            "customers_per_order",
            "new Stokly customers per order",
            round(ours["customers_created"] / ours["created"], 3) if ours["created"] else None,
            "",
            baseline=round(base["customers_created"] / base["created"], 3)
            if base["created"]
            else None,
        )
    )
    result.add(
        Figure(
            "peak_rss",
            "peak memory of the flow process (RSS)",
            ours["peak_rss_mb"],
            "MB",
            baseline=base["peak_rss_mb"],
            note=f"RSS before the flow started (interpreter, Prefect, imports): {ours['rss_before_flow_mb']} MB",
        )
    )
    result.add(
        Figure(
            "duplicates",
            "sale orders in Stokly twice",
            ours["duplicate_sale_orders"],
            "",
            baseline=base["duplicate_sale_orders"],
            target=0,
            goal="equal",
        )
    )
    if ours["state"] != "Completed":
        result.notes.append(f"the orders flow ended {ours['state']}: {ours['message']}")
    result.notes += [
        "both flows run with the client-side pacing lifted (and the sandboxes' limits off); the"
        " flow's own concurrency is unchanged",
        "orders/s counts sale orders created in Stokly (the demo seed's own orders included) over"
        " the time from the flow call to its return, the flow run's start-up included",
        "peak memory is getrusage ru_maxrss of the process that ran the flow",
    ]
    result.details = {"flow": ours, "baseline": base}


if __name__ == "__main__":
    raise SystemExit(main())
