"""The business that goes on while the campaign breaks things: buyers, the merchant, the warehouse.

`Traffic` drives both sandboxes through their control APIs only (``/_sandbox/``, never faulted),
so it works the same against sandboxes served in this process and against the running stack.
One `step` is one thing a person does:

- a buyer places an order drawn from the order shapes the whole project shares
  (`stokline.sandbox.shopline.shapes.draw_order`): line discounts, discount codes, order-level
  discounts no line carries, free or discounted shipping, several VAT rates, phone-only buyers,
  omitted or null keys, orders paid later or authorised and captured later — some with SKUs
  Stokly does not know (the demo seed's deliberate gaps);
- the buyer or the merchant does the next thing drawn for an order placed earlier
  (`shapes.draw_follow_ups`): pay it, capture its authorisation (in parts, a few steps apart:
  the campaign's "days later"), edit it, refund units of a line before dispatch, return units
  after dispatch, refund an amount, refund the shipping, refund everything, or cancel it. A
  refund drawn for after dispatch waits until SHOPLINE shows the line shipped (and returns no
  more than was shipped); one drawn for before dispatch is given up when SHOPLINE already shows
  the order shipped (the warehouse was quicker than the buyer);
- warehouse staff receive goods, correct a count, or pick and dispatch a waiting sale order of
  the campaign, sometimes in two parcels (as `stokly.warehouse` does, but never the demo seed's
  old orders, whose SHOPLINE side does not exist). The warehouse knows only Stokly: it ships
  what the sale order says, whatever SHOPLINE refunded meanwhile.

The campaign's mix (`ORDER_MIX`, `FOLLOW_UP_MIX`) is denser in the rarer shapes than the
storefront simulator's default, so that a campaign of a few dozen orders meets every shape.
Every draw comes from one seeded generator, so a campaign's traffic replays identically (what
the sandboxes answer — sold out, already shipped — depends on timing). `counts` says what was
done, `shapes` which order shapes were placed, `follow_ups` which follow-ups were done, refused
or given up, for the campaign's report.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from stokline.sandbox.catalogue import demo_catalogue
from stokline.sandbox.shopline import shapes
from stokline.sandbox.stokly.warehouse import LOCATIONS

__all__ = ["FOLLOW_UP_MIX", "ORDER_MIX", "Traffic", "follow_up_label"]

CATALOGUE_SEED = 7  # both sandboxes' demo seed
SHORT = re.compile(
    r"Insufficient stock of (?P<sku>\S+) at (?P<location>.+?): .*?(?P<needed>\d+) needed"
)
"""The Stokly sandbox's answer when a location lacks the goods to ship (a 422)."""

ORDER_MIX: dict[str, float] = {
    **shapes.ORDER_MIX,
    "line_discount": 0.25,
    "discount_code": 0.25,
    "order_discount": 0.15,
    "free_shipping": 0.2,
    "shipping_discount": 0.15,
    "multi_rate": 0.3,
    "phone_only": 0.2,
    "omit_keys": 0.12,
    "omit_null": 0.1,
    "unpaid": 0.12,
    "authorized": 0.18,
}
"""Order shapes of the campaign: every shape of `shapes.ORDER_MIX`, the rare ones more often."""
FOLLOW_UP_MIX: dict[str, float] = {
    **shapes.FOLLOW_UP_MIX,
    "edit": 0.12,
    "refund_before_dispatch": 0.14,
    "refund_after_dispatch": 0.14,
    "refund_amount": 0.08,
    "refund_shipping": 0.07,
    "refund_full": 0.06,
    "cancel": 0.06,
}
"""Follow-ups of the campaign: about half the orders are refunded, edited or cancelled."""

# What one step does, by weight.
ACTIONS = (
    ("place", 30),
    ("follow_up", 35),
    ("warehouse", 35),
)
STEPS_PER_DAY = 2
"""A capture drawn for ``days_later`` waits this many steps a day (wall-clock time: the sandbox
stamps captures now, so the journals of the campaign's one day post them all)."""
GIVE_UP_AFTER = 40
"""Follow-up attempts that find the order not shipped yet before a return is given up."""


def follow_up_label(action: dict[str, Any]) -> str:
    """The follow-up's name in the report: the action, refunds by what they refund."""
    name = str(action["action"])
    if name != "refund":
        return name
    when = action.get("when")
    if when in ("before_dispatch", "after_dispatch"):
        return f"refund_{when}"
    body = action.get("body") or {}
    if not body:
        return "refund_full"
    if body.get("amount"):
        return "refund_amount"
    if body.get("shipping") and not body.get("lines"):
        return "refund_shipping"
    return "refund_other"


@dataclass
class Pending:
    """An order's follow-ups still to do, and the step from which the next one may run."""

    order: dict[str, Any]
    actions: list[dict[str, Any]]
    due: int
    waited: int = 0


class Traffic:
    """Buyers, the merchant and warehouse staff acting on the two sandboxes, one step at a time."""

    def __init__(
        self,
        shopline_url: str,
        stokly_url: str,
        *,
        catalogue_skus: int,
        seed: int = 8,
        order_mix: dict[str, float] | None = None,
        follow_up_mix: dict[str, float] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.order_mix = dict(ORDER_MIX if order_mix is None else order_mix)
        self.follow_up_mix = dict(FOLLOW_UP_MIX if follow_up_mix is None else follow_up_mix)
        # The warehouse handles what Stokly stocks: the seed's items both sides know.
        self.warehouse_skus = [
            e.sku
            for e in demo_catalogue(catalogue_skus, CATALOGUE_SEED)
            if e.known_to_stokly and e.listed_on_shopline and not e.gift_card
        ]
        self.shop = httpx.Client(base_url=shopline_url, timeout=30.0)
        self.stok = httpx.Client(base_url=stokly_url, timeout=30.0)
        self.counts: Counter[str] = Counter()
        self.shapes: Counter[str] = Counter()
        self.follow_ups: Counter[str] = Counter()
        self.placed: set[str] = set()
        self.pending: list[Pending] = []
        self.steps = 0
        self._skus: list[str] | None = None
        self._tax_titles: dict[str, str] = {}

    def close(self) -> None:
        self.shop.close()
        self.stok.close()

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the storefront sells ---------------------------------------------------------------

    def skus(self) -> list[str]:
        """SKUs buyers can put in a basket (the storefront's active products, less gift cards)."""
        if self._skus is None:
            listed = self.shop.get("/_sandbox/skus").raise_for_status().json()
            self._skus = sorted(
                s for s in listed["skus"] if not s.upper().startswith(shapes.NEVER_SOLD)
            )
            self._tax_titles = dict(listed.get("tax_titles") or {})
        return self._skus

    # -- the report ------------------------------------------------------------------------------

    def left_undone(self) -> Counter[str]:
        """Follow-ups drawn but not done when the traffic stopped, by name."""
        return Counter(follow_up_label(a) for p in self.pending for a in p.actions)

    def summary(self) -> dict[str, dict[str, int]]:
        """What the traffic did: its counts, the order shapes placed, the follow-ups done,
        refused (by SHOPLINE), given up (no longer possible) and left undone at the end."""
        return {
            "traffic": dict(self.counts.most_common()),
            "order_shapes": dict(self.shapes.most_common()),
            "follow_ups": dict(self.follow_ups.most_common()),
            "follow_ups_left_undone": dict(self.left_undone().most_common()),
        }

    # -- steps -----------------------------------------------------------------------------------

    def step(self) -> str:
        """Do one thing; returns a line saying what (or why nothing happened)."""
        self.steps += 1
        names = [name for name, _ in ACTIONS]
        weights = [weight for _, weight in ACTIONS]
        action = self.rng.choices(names, weights)[0]
        return getattr(self, action)()

    def place(self) -> str:
        skus = self.skus()
        body = shapes.draw_order(self.rng, skus, tax_titles=self._tax_titles, mix=self.order_mix)
        response = self.shop.post("/_sandbox/orders", json=body)
        if response.status_code != 200:  # sold out at checkout: the buyer goes elsewhere
            self.counts["refused_at_checkout"] += 1
            return f"checkout refused: {response.status_code}"
        order = response.json()["order"]
        self.counts["placed"] += 1
        drawn = body.get("shapes") or []
        self.shapes.update(drawn or ["plain"])
        self.placed.add(order["id"])
        status = order.get("financial_status")
        self.counts[f"placed_{status}"] += 1
        actions = shapes.draw_follow_ups(self.rng, order, skus=skus, mix=self.follow_up_mix)
        if actions:
            self.pending.append(Pending(order, actions, due=self.steps + self.rng.randint(1, 6)))
        return f"placed {order['name']} ({status}; {', '.join(drawn) or 'plain'})"

    def follow_up(self) -> str:
        """The next follow-up of an order placed earlier whose time has come (else an order)."""
        due = [p for p in self.pending if p.due <= self.steps]
        if not due:
            return self.place()
        item = self.rng.choice(due)
        action = item.actions[0]
        label = follow_up_label(action)
        outcome, why = self._run(item.order, action)
        name = item.order.get("name")
        if outcome == "wait":
            item.waited += 1
            item.due = self.steps + 2
            if item.waited > GIVE_UP_AFTER:  # never shipped while the campaign ran
                self.pending.remove(item)
                self.follow_ups[f"{label}_given_up"] += len(item.actions)
                return f"{label} of {name} given up: {why}"
            return f"{label} of {name} waits: {why}"
        if outcome == "skip":
            self.follow_ups[f"{label}_given_up"] += 1
        elif outcome == "refused":
            self.follow_ups[f"{label}_refused"] += 1
            if action["action"] in ("pay", "capture", "edit"):
                # The order was not paid (or edited) as drawn: what follows may not fit it.
                self.pending.remove(item)
                self.follow_ups["dropped_after_a_refusal"] += len(item.actions) - 1
                return f"{label} of {name} refused ({why}); its other follow-ups dropped"
        else:
            self.follow_ups[label] += 1
        item.actions.pop(0)
        if not item.actions:
            self.pending.remove(item)
        else:
            nxt = item.actions[0]
            wait = 1 + self.rng.randint(0, 2)
            if nxt["action"] == "capture":
                wait += STEPS_PER_DAY * int(nxt.get("days_later") or 0)
            item.due = self.steps + wait
        return f"{label} of {name}: {outcome}{f' ({why})' if why else ''}"

    def _run(self, order: dict[str, Any], action: dict[str, Any]) -> tuple[str, str]:
        """Send one follow-up: (``done`` | ``wait`` | ``skip`` | ``refused``, why)."""
        base = f"/_sandbox/orders/{order['id']}"
        name = action["action"]
        if name == "pay":
            response = self.shop.post(f"{base}/pay")
        elif name == "capture":
            body: dict[str, Any] = {"reuse_deal_id": bool(action.get("reuse_deal_id"))}
            if action.get("amount"):
                body["amount"] = action["amount"]
            response = self.shop.post(f"{base}/capture", json=body)
        elif name == "edit":
            body = {
                "quantities": action.get("quantities") or {},
                "add": action.get("add") or [],
                "remove": action.get("remove") or [],
            }
            response = self.shop.post(f"{base}/edit", json=body)
        elif name == "cancel":
            response = self.shop.post(f"{base}/cancel", json={"reason": "customer"})
        elif name == "refund":
            body = dict(action.get("body") or {})
            when = action.get("when")
            if when in ("before_dispatch", "after_dispatch"):
                current = self.shop.get(base)
                if current.status_code != 200:
                    return "refused", f"order not readable: {current.status_code}"
                now = current.json()["order"]
                shipped = now.get("fulfillment_status") is not None
                if when == "before_dispatch" and shipped:
                    return "skip", "SHOPLINE shows it shipped already"
                if when == "after_dispatch":
                    body, why = _returnable(now, body)
                    if not body:
                        return "wait", why
            response = self.shop.post(f"{base}/refund", json=body)
        else:
            return "refused", f"unknown follow-up {name}"
        if response.status_code != 200:
            return "refused", f"{response.status_code}"
        return "done", ""

    def warehouse(self) -> str:
        """Warehouse staff: dispatch a waiting order of the campaign (half the time, sometimes
        in two parcels), else receive goods or correct a count after a stock take."""
        if self.rng.random() < 0.5:
            waiting = self.stok.get("/_sandbox/awaiting-dispatch", params={"limit": 500})
            ours = [
                o
                for o in waiting.raise_for_status().json()["data"]
                if o["sourceReferenceId"] in self.placed
            ]
            if ours:
                return self._dispatch(self.rng.choice(ours))
        sku = self.rng.choice(self.warehouse_skus)
        location = self.rng.choice(LOCATIONS)
        if self.rng.random() < 0.7:
            quantity = self.rng.randint(5, 30)
            body = {"location": location, "items": [{"sku": sku, "quantity": quantity}]}
            self.stok.post("/_sandbox/goods-receipt", json=body).raise_for_status()
            self.counts["goods_receipts"] += 1
            return f"received {quantity} x {sku} at {location}"
        delta = -self.rng.randint(1, 3)
        body = {
            "location": location,
            "reference": "stock take",
            "items": [{"sku": sku, "quantity": delta}],
        }
        if self.stok.post("/_sandbox/adjust", json=body).status_code < 300:
            self.counts["stock_counts"] += 1
            return f"counted {delta} x {sku} at {location}"
        return f"count of {sku} at {location} left unchanged"

    def _dispatch(self, order: dict[str, Any]) -> str:
        carrier = self.rng.choice(("royal-mail", "dpd"))
        number = self.rng.randrange(10**8, 10**9)
        tracking = f"RM{number}GB" if carrier == "royal-mail" else f"15501{number}"
        body: dict[str, Any] = {
            "saleOrderId": order["saleOrderId"],
            "carrier": carrier,
            "trackingNumbers": [tracking],
        }
        lines = order["lines"]
        partial = len(lines) > 1 and self.rng.random() < 0.4
        if partial:  # the first parcel carries one line; the rest follows later
            body["items"] = [{"lineId": lines[0]["lineId"], "quantity": lines[0]["left"]}]
        response = self.stok.post("/_sandbox/dispatch", json=body)
        short = SHORT.search(response.text) if response.status_code == 422 else None
        if short:  # the goods are not there yet: receive them, then ship
            sku, location, needed = (
                short.group("sku"),
                short.group("location"),
                short.group("needed"),
            )
            receipt = {"location": location, "items": [{"sku": sku, "quantity": int(needed) + 5}]}
            if self.stok.post("/_sandbox/goods-receipt", json=receipt).status_code < 300:
                self.counts["goods_receipts"] += 1
                response = self.stok.post("/_sandbox/dispatch", json=body)
        if response.status_code >= 300:  # e.g. removed meanwhile: the order was cancelled
            self.counts["dispatch_refused"] += 1
            return f"could not dispatch {order['saleOrderId']}: {response.status_code}"
        self.counts["parcels_dispatched"] += 1
        return f"dispatched {'part' if partial else 'all'} of {order['sourceReferenceId']}"


def _returnable(order: dict[str, Any], body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The after-dispatch refund ``body`` cut to the units SHOPLINE shows shipped and not yet
    returned; empty (with why) while none of them has shipped."""
    unshipped: Counter[str] = Counter()
    returned: Counter[str] = Counter()
    for refund in order.get("refunds") or []:
        for item in refund.get("refund_line_items") or []:
            into = returned if item.get("type") == "Returned" else unshipped
            into[str(item.get("line_item_id"))] += int(item.get("quantity") or 0)
    lines = {str(li["id"]): li for li in order.get("line_items") or []}
    kept = []
    for wanted in body.get("lines") or []:
        line = lines.get(str(wanted["line_item_id"]))
        if line is None:
            continue
        key = str(line["id"])
        shipped = int(line["quantity"]) - int(line.get("fulfillable_quantity") or 0)
        shipped -= unshipped[key]
        can = shipped - returned[key]
        if can > 0:
            kept.append({**wanted, "quantity": min(int(wanted["quantity"]), can)})
    if not kept:
        return {}, "nothing of it shipped yet"
    return {**body, "lines": kept}, ""
