"""The store's webhook subscriptions to the receiver: made, listed and ended idempotently.

SHOPLINE subscribes one address to one topic per call (``POST webhooks.json``) and refuses the
same address and topic twice. A client's receiver address is ``<receiver>/webhooks/<client>``;
`subscribe` lists what the store has and creates only the topics missing for that address
(a subscription made with another API version is brought to the mapping's), so running it again
changes nothing. `unsubscribe` ends this client's subscriptions, of one address or of every
address that points at the client on any receiver. Nothing here touches a subscription of
another address (another app's, or another client's), except to list it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from stokline.config import Mapping
from stokline.connectors import NotFoundError, ShoplineClient, ValidationError
from stokline.connectors.shopline.models import Webhook

__all__ = [
    "ORDER_TOPICS",
    "Change",
    "Subscriptions",
    "address_for",
    "shopline_for",
    "subscribe",
    "unsubscribe",
]

ORDER_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled")
"""The topics the orders sync takes from the receiver: a new order, its payment, any change to
it (refunds and edits included) and its cancellation. The sweep finds whatever a lost delivery
missed."""

Action = Literal["create", "update", "keep", "remove"]


@dataclass
class Change:
    action: Action
    topic: str
    address: str
    webhook_id: int | None = None
    detail: str = ""


@dataclass
class Subscriptions:
    """What one command did (or, in a dry run, would do) to one client's subscriptions."""

    client: str
    dry_run: bool
    changes: list[Change] = field(default_factory=list)
    others: list[Webhook] = field(default_factory=list)  # same topics, other addresses

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)


def address_for(url: str, client: str) -> str:
    """The receiver address of ``client``: ``url`` is the receiver's base URL, or already the
    client's own address. Raises ValueError for what cannot be a webhook address."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL (e.g. https://hooks.example.com)")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: give the receiver's base URL, without ? or #")
    base = url.strip().rstrip("/")
    own = f"/webhooks/{client}"
    if base.endswith(own):
        return base
    if "/webhooks/" in parts.path:
        raise ValueError(
            f"{url!r} is another client's address; give the receiver's base URL or "
            f"…{own} (this mapping's client is {client})"
        )
    return base + own


def points_at(address: str, client: str) -> bool:
    """Whether ``address`` is ``client``'s on some receiver (``…/webhooks/<client>``)."""
    return urlsplit(address).path.rstrip("/").endswith(f"/webhooks/{client}")


def shopline_for(mapping: Mapping) -> ShoplineClient:
    """A SHOPLINE client for the mapping's store; resolves only its access token (the Stokly
    secrets and the webhook secret are not needed to manage subscriptions)."""
    shop = mapping.connections.shopline
    return ShoplineClient(shop.url, shop.access_token.resolve(), api_version=shop.api_version)


async def subscribe(
    shopline: ShoplineClient,
    client: str,
    address: str,
    *,
    topics: Sequence[str] = ORDER_TOPICS,
    dry_run: bool = False,
) -> Subscriptions:
    """Make ``address`` subscribed to each of ``topics`` at the client's API version."""
    result = Subscriptions(client, dry_run)
    existing = await shopline.list_webhooks()
    mine = {w.topic: w for w in existing if w.address == address}
    result.others = [
        w
        for w in existing
        if w.topic in topics and w.address != address and points_at(w.address, client)
    ]
    for topic in topics:
        found = mine.get(topic)
        if found is None:
            change = Change("create", topic, address)
            if not dry_run:
                try:
                    made = await shopline.create_webhook(address, topic)
                    change.webhook_id = made.id
                except ValidationError as exc:  # made meanwhile, by another run of this
                    if "taken" not in (exc.api_message or ""):
                        raise
                    change = Change("keep", topic, address, detail="made meanwhile")
            result.changes.append(change)
        elif found.api_version and found.api_version != shopline.api_version:
            detail = f"API version {found.api_version} → {shopline.api_version}"
            change = Change("update", topic, address, found.id, detail)
            if not dry_run:
                await shopline.update_webhook(found.id, api_version=shopline.api_version)
            result.changes.append(change)
        else:
            result.changes.append(Change("keep", topic, address, found.id))
    return result


async def unsubscribe(
    shopline: ShoplineClient,
    client: str,
    address: str | None,
    *,
    topics: Sequence[str] = ORDER_TOPICS,
    dry_run: bool = False,
) -> Subscriptions:
    """End ``address``'s subscriptions to ``topics``; with no address, those of every address
    that points at ``client`` (``…/webhooks/<client>``), wherever its receiver was."""
    result = Subscriptions(client, dry_run)
    for webhook in await shopline.list_webhooks():
        ours = webhook.address == address if address else points_at(webhook.address, client)
        if not ours or webhook.topic not in topics:
            continue
        result.changes.append(Change("remove", webhook.topic, webhook.address, webhook.id))
        if not dry_run:
            with suppress(NotFoundError):  # already gone: what was asked
                await shopline.delete_webhook(webhook.id)
    return result
