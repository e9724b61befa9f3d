"""The ``malformed`` fault in both sandboxes: switched through the control API, counted, and shaped
the way each API paginates (SHOPLINE's ``link`` header, Stokly's ``metadata``)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stokline.cli.sandbox import PROFILES
from stokline.sandbox.common import MALFORMED_KINDS, Faults
from stokline.sandbox.shopline.app import create_app as create_shopline
from stokline.sandbox.stokly.app import create_app as create_stokly

TOKEN = "malformed-shopline-token"
PRODUCTS = "/admin/openapi/v20251201/products/products.json"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def shop() -> Iterator[TestClient]:
    app: Any = create_shopline(
        access_token=TOKEN, app_secret="malformed-app-secret", skus=30, rate_per_s=None
    )
    with TestClient(app) as client:
        yield client
    app.state.shopline.close()


@pytest.fixture
def stok() -> Iterator[TestClient]:
    app: Any = create_stokly(
        account_key="acct",
        client_id="malformed-client",
        client_secret="malformed-secret",
        seed_skus=30,
        rate_per_minute=None,
    )
    with TestClient(app) as client:
        signature = hmac.new(b"malformed-secret", b"malformed-client", hashlib.sha256)
        grant = client.post(
            "/v1/grant",
            json={
                "accountkey": "acct",
                "clientId": "malformed-client",
                "signature": signature.hexdigest(),
            },
        )
        token = grant.json()["data"]["authenticationResult"]["accessToken"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client
    app.state.sandbox.close()


def test_the_cli_offers_every_profile() -> None:
    assert PROFILES == Faults.PROFILES


def test_shopline_empty_page_leads_back_to_the_records_it_left_out(shop: TestClient) -> None:
    clean = shop.get(PRODUCTS, params={"limit": 5, "fields": "id,title"}, headers=AUTH)
    faults = {"profile": "malformed", "malformed_rate": 1.0, "malformed_kinds": ["empty_page"]}
    switched = shop.put("/_sandbox/faults", json=faults)
    assert switched.status_code == 200 and switched.json()["malformed_kinds"] == ["empty_page"]
    empty = shop.get(PRODUCTS, params={"limit": 5, "fields": "id,title"}, headers=AUTH)
    assert empty.status_code == 200 and empty.json() == {"products": []}
    assert 'rel="next"' in empty.headers["link"]
    assert shop.get("/_sandbox/summary").status_code == 200  # the control API is never faulted
    assert shop.get("/_sandbox/faults/injected").json() == {"injected": {"empty_page": 1}}

    assert shop.put("/_sandbox/faults", json={"profile": "none"}).status_code == 200
    following = empty.headers["link"].split(">")[0].lstrip("<")
    assert shop.get(following, headers=AUTH).json() == clean.json()


def test_shopline_malformed_answers_are_replayed_by_seed(shop: TestClient) -> None:
    def answers(seed: int) -> list[tuple[int, bytes]]:
        body = {"profile": "malformed", "malformed_rate": 0.5, "seed": seed}
        assert shop.put("/_sandbox/faults", json=body).status_code == 200
        replies = [shop.get(PRODUCTS, params={"limit": 3}, headers=AUTH) for _ in range(12)]
        return [(r.status_code, r.content) for r in replies]

    first = answers(3)
    assert first == answers(3)
    assert first != answers(4)
    injected = shop.get("/_sandbox/faults/injected").json()["injected"]
    assert sum(injected.values()) > 0 and set(injected) <= set(MALFORMED_KINDS)


def test_stokly_faults_switch_through_changes_and_shape_its_envelopes(stok: TestClient) -> None:
    refused = stok.put("/_sandbox/faults", json={"profile": "malformed", "changes": {"x": 1}})
    assert refused.status_code == 400
    changes = {"malformed_rate": 1.0, "malformed_kinds": ["empty_page"]}
    switched = stok.put("/_sandbox/faults", json={"profile": "malformed", "changes": changes})
    assert switched.status_code == 200
    page = stok.get("/v0/items", params={"size": 5}).json()
    assert page["data"] == [] and page["metadata"]["count"] > 5
    stok.post(
        "/_sandbox/goods-receipt",
        json={"location": "Leeds DC", "items": [{"sku": "ACME-TENT-2P-ORANGE", "quantity": 1}]},
    )
    feed = stok.get("/v0/events", params={"after": "0", "size": 1}).json()
    assert feed["data"] == [] and feed["metadata"]["hasMore"] is True
    assert feed["metadata"]["count"] == 0
    assert feed["metadata"]["cursor"] == "0"  # no progress: the next read starts where it did
    injected = stok.get("/_sandbox/faults/injected").json()["data"]["injected"]
    assert injected == {"empty_page": 2}
    assert stok.put("/_sandbox/faults", json={"profile": "none"}).status_code == 200
    assert len(stok.get("/v0/items", params={"size": 5}).json()["data"]) == 5
