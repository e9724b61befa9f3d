"""One orders flow run in a process of its own, against a Prefect server (``PREFECT_API_URL``).

``--mode flow`` runs stokline's ``flows/orders.py:orders_flow`` exactly as a worker loads it;
``--mode baseline`` runs `benchmarks.orders_baseline.baseline_orders_flow`. The flows pace their
HTTP clients at the APIs' documented limits; the benchmark measures with the limits lifted, so
this process replaces the two pacing limits in `stokline.sync.clients` with its ``LIFTED`` one
before the flow starts — what ``open_clients(lift_limits=True)`` does, without touching the flow.
Concurrency stays as the flow sets it.

Prints one JSON object: the flow's state and return value, seconds from the call to the return
(imports excluded, the flow run's own start-up included) and the peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from benchmarks.common import ROOT, current_rss_mb, peak_rss_mb, use_demo_credentials


async def run(args: argparse.Namespace) -> dict[str, Any]:
    use_demo_credentials()
    import stokline.sync.clients as clients

    clients.SHOPLINE_RATE_LIMIT = clients.LIFTED
    clients.STOKLY_RATE_LIMIT = clients.LIFTED

    if args.mode == "flow":
        from prefect.flows import load_flow_from_entrypoint

        flow: Any = load_flow_from_entrypoint(f"{ROOT / 'flows' / 'orders.py'}:orders_flow")
        parameters: dict[str, Any] = {"mapping": args.mapping, "trigger": "manual"}
    else:
        from benchmarks.orders_baseline import baseline_orders_flow

        flow = baseline_orders_flow
        parameters = {"mapping": args.mapping}
    rss_before = current_rss_mb()
    started = time.monotonic()
    state = await flow(return_state=True, **parameters)
    seconds = time.monotonic() - started
    numbers = await state.result(raise_on_failure=False) if state.is_completed() else None
    return {
        "mode": args.mode,
        "state": state.name,
        "message": None if state.is_completed() else str(state.message)[:500],
        "numbers": numbers if isinstance(numbers, dict) else None,
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_flow_mb": round(rss_before, 1) if rss_before is not None else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mapping", required=True)
    p.add_argument("--mode", choices=("flow", "baseline"), default="flow")
    print(json.dumps(asyncio.run(run(p.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
