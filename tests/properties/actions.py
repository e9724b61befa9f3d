"""Follow-ups drawn by `stokline.sandbox.shopline.shapes.draw_follow_ups`, sent to the SHOPLINE
sandbox's control API as the merchant and the buyer would make them.

``at`` is the moment a capture happens (tests spread captures over days); a refund drawn for
after dispatch is left to the caller (``after_dispatch``) because only the warehouse decides when
an order ships.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx


def after_dispatch(action: dict[str, Any]) -> bool:
    return action["action"] == "refund" and action.get("when") == "after_dispatch"


def apply_follow_up(
    http: httpx.Client, order_id: str, action: dict[str, Any], *, day: datetime | None = None
) -> httpx.Response:
    """Send ``action`` for ``order_id``; captures happen ``days_later`` after ``day`` when given."""
    name = action["action"]
    base = f"/_sandbox/orders/{order_id}"
    if name == "pay":
        return http.post(f"{base}/pay")
    if name == "capture":
        body: dict[str, Any] = {"reuse_deal_id": bool(action.get("reuse_deal_id"))}
        if action.get("amount"):
            body["amount"] = action["amount"]
        if day is not None:
            body["at"] = (day + timedelta(days=int(action.get("days_later") or 0))).isoformat()
        return http.post(f"{base}/capture", json=body)
    if name == "edit":
        body = {
            k: action.get(k) or ({} if k == "quantities" else [])
            for k in ("quantities", "add", "remove")
        }
        return http.post(f"{base}/edit", json=body)
    if name == "cancel":
        return http.post(f"{base}/cancel", json={"reason": "customer"})
    if name == "refund":
        return http.post(f"{base}/refund", json=action.get("body") or {})
    raise ValueError(f"unknown follow-up {name!r}")
