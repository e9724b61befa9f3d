"""The SHOPLINE webhook receiver (``stokline receiver``): verify, persist, acknowledge, signal."""

from __future__ import annotations

from collections.abc import Iterable

from stokline.config import Mapping
from stokline.webhooks.app import create_app
from stokline.webhooks.clients import ClientEndpoint, Clients, endpoint_of
from stokline.webhooks.signature import sign, verify

__all__ = [
    "ClientEndpoint",
    "Clients",
    "create_app",
    "endpoints_for",
    "prefect_signal",
    "sign",
    "verify",
]

EVENT = "stokline.webhook.received"


def endpoints_for(mappings: Iterable[Mapping]) -> dict[str, ClientEndpoint]:
    """One endpoint per client; resolves each webhook secret (raises SecretUnavailable if unset)."""
    return {m.client.name: endpoint_of(m) for m in mappings}


def prefect_signal(client: str, topic: str) -> None:
    """Tell Prefect that a client has new deliveries; the orders deployment's trigger matches it."""
    from prefect.events import emit_event

    emit_event(
        event=EVENT,
        resource={"prefect.resource.id": f"stokline.client.{client}"},
        payload={"client": client, "topic": topic},
    )
