"""A storefront simulation: buyers placing orders against a running sandbox at a steady rate.

It drives only the control API (``/_sandbox/``), so it works against any running SHOPLINE
sandbox, in-process or not. The CLI runs it for demos and soak tests.

Orders and what happens to them afterwards are drawn from :mod:`~stokline.sandbox.shopline.shapes`
(discounts, free delivery, several VAT rates, phone-only buyers, omitted keys, authorisations
captured in parts, edits, refunds by line, amount or shipping, cancellations), so every shape
reaches the demo and the load runs. Follow-ups run in order, one per order at a time, a few
orders later than the order they belong to; refunds after dispatch wait until the order has
shipped (and are dropped if it never does while the simulator runs). Captures drawn for "days
later" happen a few orders later in wall-clock time: the simulator never writes timestamps in
the future (tests that need captures on different days pass ``at`` to ``/capture``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from stokline.sandbox.shopline.shapes import draw_follow_ups, draw_order

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    """An order's follow-ups still to do, and the step at which the next one may run."""

    order: dict[str, Any]
    actions: list[dict[str, Any]]
    due: int
    waited: int = field(default=0)


def _run_action(http: httpx.Client, pending: _Pending) -> str:
    """Do the next follow-up of an order: ``done``, ``wait`` (not yet possible) or ``failed``."""
    order_id = pending.order["id"]
    action = pending.actions[0]
    name = action["action"]
    if name == "pay":
        response = http.post(f"/_sandbox/orders/{order_id}/pay")
    elif name == "capture":
        body: dict[str, Any] = {"reuse_deal_id": bool(action.get("reuse_deal_id"))}
        if action.get("amount"):
            body["amount"] = action["amount"]
        response = http.post(f"/_sandbox/orders/{order_id}/capture", json=body)
    elif name == "edit":
        body = {
            "quantities": action.get("quantities") or {},
            "add": action.get("add") or [],
            "remove": action.get("remove") or [],
        }
        response = http.post(f"/_sandbox/orders/{order_id}/edit", json=body)
    elif name == "cancel":
        response = http.post(f"/_sandbox/orders/{order_id}/cancel", json={"reason": "customer"})
    elif name == "refund":
        if action.get("when") in ("before_dispatch", "after_dispatch"):
            current = http.get(f"/_sandbox/orders/{order_id}")
            if current.status_code != 200:
                return "failed"
            shipped = current.json()["order"].get("fulfillment_status") is not None
            if action["when"] == "after_dispatch" and not shipped:
                return "wait"
            if action["when"] == "before_dispatch" and shipped:
                return "failed"  # the warehouse was quicker than the buyer
        response = http.post(f"/_sandbox/orders/{order_id}/refund", json=action.get("body") or {})
    else:
        return "failed"
    if response.status_code != 200:
        log.info(
            "storefront %s of %s refused: %s %s",
            name,
            order_id,
            response.status_code,
            response.text,
        )
        return "failed"
    return "done"


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

    Orders and their follow-ups come from :func:`shapes.draw_order` and
    :func:`shapes.draw_follow_ups` with their default mix: most orders are paid at checkout and
    import cleanly; some are paid or captured later, edited, refunded or cancelled by the
    merchant. Returns the number of orders placed.
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
    step = 0
    pending: list[_Pending] = []
    try:
        listed = http.get("/_sandbox/skus").raise_for_status().json()
        skus = listed["skus"]
        tax_titles = listed.get("tax_titles") or {}
        while not stop.is_set():
            if count is not None and placed >= count:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            step += 1
            body = draw_order(rng, skus, tax_titles=tax_titles)
            response = http.post("/_sandbox/orders", json=body)
            if response.status_code == 200:
                placed += 1
                refusals = 0
                order = response.json()["order"]
                actions = draw_follow_ups(rng, order, skus=skus)
                if actions:
                    pending.append(_Pending(order, actions, due=step + rng.randint(0, 3)))
            else:
                # Sold-out items are refused at checkout; a buyer simply tries something else.
                refusals += 1
                log.info("storefront order refused: %s %s", response.status_code, response.text)
                if refusals >= 50:
                    log.warning("storefront stopped: 50 orders refused in a row")
                    break
            _follow_up(http, rng, pending, step)
            stop.wait(interval)
    finally:
        if own:
            http.close()
    return placed


def _follow_up(http: httpx.Client, rng: random.Random, pending: list[_Pending], step: int) -> None:
    """Run at most one due follow-up of each waiting order; later ones wait a few steps more."""
    for item in list(pending):
        if item.due > step:
            continue
        outcome = _run_action(http, item)
        if outcome == "wait":
            item.waited += 1
            item.due = step + 2
            if item.waited > 30:  # never shipped while we ran: the buyer gives up
                pending.remove(item)
            continue
        if outcome == "failed" and item.actions[0]["action"] in ("pay", "capture", "edit"):
            # The order did not get paid (or edited) as planned: later steps may not fit it.
            pending.remove(item)
            continue
        item.actions.pop(0)
        if not item.actions:
            pending.remove(item)
        else:
            item.due = step + 1 + rng.randint(0, 2)
