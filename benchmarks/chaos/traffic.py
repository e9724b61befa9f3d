"""The business that goes on while the campaign breaks things: buyers, the merchant, the warehouse.

`Traffic` drives both sandboxes through their control APIs only (``/_sandbox/``, never faulted),
so it works the same against sandboxes served in this process and against the running stack.
One `step` is one thing a person does:

- a buyer places an order (most paid at checkout, some paid later, some with SKUs Stokly does
  not know — the demo seed's deliberate gaps);
- a buyer pays an order placed earlier;
- the merchant cancels an order, refunds one in full, or refunds one unit of one line;
- warehouse staff receive goods, correct a count, or pick and dispatch a waiting sale order of
  the campaign, sometimes in two parcels (as `stokly.warehouse` does, but never the demo seed's
  old orders, whose SHOPLINE side does not exist).

Every draw comes from one seeded generator, so a campaign's traffic replays identically. `counts`
says what was done, for the campaign's report.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

import httpx

from stokline.sandbox.catalogue import demo_catalogue
from stokline.sandbox.stokly.warehouse import LOCATIONS

__all__ = ["Traffic"]

SHIPPING = (
    "Royal Mail Tracked 48",
    "Royal Mail Tracked 48",
    "DPD Next Day",
    "Click & Collect Bristol",
)
GATEWAYS = ("shopline_payments", "shopline_payments", "paypal", "klarna")
NAMES = ("Ada", "Alan", "Grace", "Tim", "Mary", "Rosalind", "Charles", "Dorothy")
NEVER_SOLD = ("GIFT-CARD-", "SAMPLE-")
CATALOGUE_SEED = 7  # both sandboxes' demo seed
SHORT = re.compile(
    r"Insufficient stock of (?P<sku>\S+) at (?P<location>.+?): .*?(?P<needed>\d+) needed"
)
"""The Stokly sandbox's answer when a location lacks the goods to ship (a 422)."""

# What one step does, by weight.
ACTIONS = (
    ("place", 44),
    ("pay_later", 8),
    ("cancel", 3),
    ("refund_full", 4),
    ("refund_line", 6),
    ("warehouse", 35),
)


class Traffic:
    """Buyers, the merchant and warehouse staff acting on the two sandboxes, one step at a time."""

    def __init__(
        self, shopline_url: str, stokly_url: str, *, catalogue_skus: int, seed: int = 8
    ) -> None:
        self.rng = random.Random(seed)
        # The warehouse handles what Stokly stocks: the seed's items both sides know.
        self.warehouse_skus = [
            e.sku
            for e in demo_catalogue(catalogue_skus, CATALOGUE_SEED)
            if e.known_to_stokly and e.listed_on_shopline and not e.gift_card
        ]
        self.shop = httpx.Client(base_url=shopline_url, timeout=30.0)
        self.stok = httpx.Client(base_url=stokly_url, timeout=30.0)
        self.counts: Counter[str] = Counter()
        self.placed: set[str] = set()
        self.unpaid: list[str] = []
        self.paid: list[dict[str, Any]] = []
        self._skus: list[str] | None = None

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
            listed = self.shop.get("/_sandbox/skus").raise_for_status().json()["skus"]
            self._skus = sorted(s for s in listed if not s.upper().startswith(NEVER_SOLD))
        return self._skus

    # -- steps -----------------------------------------------------------------------------------

    def step(self) -> str:
        """Do one thing; returns a line saying what (or why nothing happened)."""
        names = [name for name, _ in ACTIONS]
        weights = [weight for _, weight in ACTIONS]
        action = self.rng.choices(names, weights)[0]
        return getattr(self, action)()

    def _buyer(self) -> dict[str, Any]:
        name = self.rng.choice(NAMES)
        roll = self.rng.random()
        buyer: dict[str, Any] = {"first_name": name, "last_name": "Chaos"}
        if roll < 0.8:
            buyer["email"] = f"{name.lower()}.{self.rng.randint(1, 60)}@example.com"
        if roll > 0.6:
            buyer["phone"] = f"7700900{self.rng.randint(0, 999):03d}"
        return buyer

    def place(self) -> str:
        skus = self.skus()
        lines = [
            {"sku": sku, "quantity": self.rng.choice((1, 1, 2))}
            for sku in self.rng.sample(skus, self.rng.choice((1, 1, 2, 3)))
        ]
        paid = self.rng.random() < 0.85
        response = self.shop.post(
            "/_sandbox/orders",
            json={
                "lines": lines,
                "customer": self._buyer(),
                "shipping_title": self.rng.choice(SHIPPING),
                "gateway": self.rng.choice(GATEWAYS),
                "paid": paid,
            },
        )
        if response.status_code != 200:  # sold out at checkout: the buyer goes elsewhere
            self.counts["refused_at_checkout"] += 1
            return f"checkout refused: {response.status_code}"
        order = response.json()["order"]
        self.counts["placed"] += 1
        self.placed.add(order["id"])
        if paid:
            self.counts["paid_at_checkout"] += 1
            self.paid.append(order)
        else:
            self.unpaid.append(order["id"])
        return f"placed {order['name']} ({'paid' if paid else 'unpaid'})"

    def pay_later(self) -> str:
        if not self.unpaid:
            return self.place()
        order_id = self.unpaid.pop(0)
        response = self.shop.post(f"/_sandbox/orders/{order_id}/pay")
        if response.status_code != 200:
            return f"payment of {order_id} refused: {response.status_code}"
        order = response.json()["order"]
        self.counts["paid_later"] += 1
        self.paid.append(order)
        return f"paid {order['name']} later"

    def _recent_paid(self) -> dict[str, Any] | None:
        if not self.paid:
            return None
        # Mostly recent orders (maybe not imported yet), sometimes older ones (maybe shipped).
        index = len(self.paid) - 1 - min(int(self.rng.expovariate(0.3)), len(self.paid) - 1)
        return self.paid[index]

    def cancel(self) -> str:
        order = self._recent_paid()
        if order is None:
            return self.place()
        response = self.shop.post(f"/_sandbox/orders/{order['id']}/cancel", json={})
        if response.status_code != 200:  # e.g. already fulfilled in part
            self.counts["cancel_refused"] += 1
            return f"cancel of {order['name']} refused: {response.status_code}"
        self.paid.remove(order)
        self.counts["cancelled"] += 1
        return f"cancelled {order['name']}"

    def refund_full(self) -> str:
        order = self._recent_paid()
        if order is None:
            return self.place()
        response = self.shop.post(f"/_sandbox/orders/{order['id']}/refund", json={})
        if response.status_code != 200:
            self.counts["refund_refused"] += 1
            return f"refund of {order['name']} refused: {response.status_code}"
        self.paid.remove(order)
        self.counts["refunded_in_full"] += 1
        return f"refunded {order['name']} in full"

    def refund_line(self) -> str:
        order = self._recent_paid()
        if order is None:
            return self.place()
        line = self.rng.choice(order["line_items"])
        body = {
            "lines": [{"line_item_id": line["id"], "quantity": 1}],
            "note": "one unit returned",
        }
        response = self.shop.post(f"/_sandbox/orders/{order['id']}/refund", json=body)
        if response.status_code != 200:
            self.counts["refund_refused"] += 1
            return f"partial refund of {order['name']} refused: {response.status_code}"
        self.counts["refunded_one_unit"] += 1
        if len(order["line_items"]) == 1 and line["quantity"] == 1:
            self.paid.remove(order)  # nothing left to refund
        return f"refunded one unit of {line.get('sku')} on {order['name']}"

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
