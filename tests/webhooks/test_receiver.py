"""The webhook receiver over real HTTP: signatures, dedupe under concurrency, poison, limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from stokline.sandbox.common import ServerThread
from stokline.store import Store
from stokline.webhooks import ClientEndpoint, create_app

SECRET = "demo-shopline-app-secret"


def signature(body: bytes, secret: str = SECRET, *, b64: bool = False) -> str:
    # Written here independently of stokline.webhooks.signature.
    mac = hmac.new(secret.encode("utf-8"), body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode() if b64 else mac.hexdigest()


def headers(
    body: bytes, webhook_id: str = "wh-1", topic: str = "orders/paid", **extra: str
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopline-Topic": topic,
        "X-Shopline-Hmac-Sha256": signature(body),
        "X-Shopline-Webhook-Id": webhook_id,
        "X-Shopline-Shop-Domain": "demo-outdoor.myshopline.com",
        **extra,
    }


ORDER = json.dumps(
    {"id": "21050224312121887324667162", "name": "#1001", "financial_status": "paid"}
).encode()


@pytest.fixture
def env(tmp_path):
    signals: list[tuple[str, str]] = []
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    app = create_app(
        {"demo-outdoor": ClientEndpoint("demo-outdoor", SECRET, poison_team="operations")},
        store,
        signal=lambda client, topic: signals.append((client, topic)),
        max_body_bytes=64 * 1024,
    )
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        yield http, store, signals
    store.close()


def test_a_signed_delivery_is_stored_and_signals_once(env):
    http, store, signals = env
    response = http.post("/webhooks/demo-outdoor", content=ORDER, headers=headers(ORDER))
    assert response.status_code == 200 and response.json() == {"status": "stored"}
    [event] = store.inbox.claim("demo-outdoor", "test")
    assert (event.webhook_id, event.topic, event.body) == ("wh-1", "orders/paid", ORDER)
    deadline = time.monotonic() + 5
    while not signals and time.monotonic() < deadline:
        time.sleep(0.01)
    assert signals == [("demo-outdoor", "orders/paid")]


def test_base64_signatures_are_accepted(env):
    http, store, _ = env
    h = headers(ORDER) | {"X-Shopline-Hmac-Sha256": signature(ORDER, b64=True)}
    assert http.post("/webhooks/demo-outdoor", content=ORDER, headers=h).status_code == 200
    assert store.inbox.count("demo-outdoor") == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"X-Shopline-Hmac-Sha256": ""},
        {"X-Shopline-Hmac-Sha256": signature(ORDER, "another-secret")},
        {"X-Shopline-Hmac-Sha256": signature(ORDER + b" ")},
        {"X-Shopline-Hmac-Sha256": "not-a-signature"},
    ],
    ids=["missing", "wrong secret", "other body", "garbage"],
)
def test_a_bad_signature_is_401_and_stores_nothing(env, bad):
    http, store, signals = env
    response = http.post("/webhooks/demo-outdoor", content=ORDER, headers=headers(ORDER) | bad)
    assert response.status_code == 401
    assert store.inbox.count("demo-outdoor") == 0 and signals == []


def test_the_same_delivery_three_times_concurrently_is_stored_once(env):
    http, store, _ = env
    barrier = threading.Barrier(3)

    def send(_):
        barrier.wait()
        return http.post("/webhooks/demo-outdoor", content=ORDER, headers=headers(ORDER)).json()[
            "status"
        ]

    with ThreadPoolExecutor(3) as pool:
        statuses = sorted(pool.map(send, range(3)))
    assert statuses == ["duplicate", "duplicate", "stored"]
    assert store.inbox.count("demo-outdoor") == 1


def test_a_signed_body_that_is_not_json_becomes_a_poison_exception(env):
    http, store, signals = env
    body = b'{"id": "2105", "name": "#10'  # truncated
    response = http.post("/webhooks/demo-outdoor", content=body, headers=headers(body, "wh-poison"))
    assert response.status_code == 200 and response.json()["status"] == "poison"
    assert store.inbox.count("demo-outdoor", "poison") == 1
    [exc] = store.exceptions.list(client="demo-outdoor", code="poison_message")
    assert exc.entity_id == "wh-poison" and exc.team == "operations" and "not JSON" in exc.message
    assert store.inbox.claim("demo-outdoor", "t") == []  # never processed as an order
    http.post("/webhooks/demo-outdoor", content=body, headers=headers(body, "wh-poison"))
    assert store.exceptions.get(exc.id).attempts == 1  # a re-delivery adds nothing
    time.sleep(0.05)
    assert signals == []  # nothing for the orders flow to do


@pytest.mark.parametrize(
    "body",
    [b"[1, 2, 3]", b'"just a string"', ("[" * 100 + "]" * 100).encode(), b"\xff\xfe"],
    ids=["array", "string", "deep", "not utf-8"],
)
def test_other_unreadable_bodies_are_poison_too(env, body):
    http, store, _ = env
    response = http.post("/webhooks/demo-outdoor", content=body, headers=headers(body))
    assert response.json()["status"] == "poison"
    assert store.inbox.count("demo-outdoor", "poison") == 1


def test_oversized_bodies_are_refused_before_storing(env):
    http, store, _ = env
    big = json.dumps({"note": "x" * 70_000}).encode()
    assert http.post("/webhooks/demo-outdoor", content=big, headers=headers(big)).status_code == 413

    def chunks():  # no Content-Length: the limit still holds while reading
        for _ in range(20):
            yield b"x" * 8192

    response = http.post(
        "/webhooks/demo-outdoor", content=chunks(), headers=headers(b"", "wh-stream")
    )
    assert response.status_code == 413
    assert store.inbox.count("demo-outdoor") == 0


def test_unknown_client_and_docs(env):
    http, _, _ = env
    assert http.post("/webhooks/nobody", content=ORDER, headers=headers(ORDER)).status_code == 404
    assert http.get("/docs").status_code == 200
    spec = http.get("/openapi.json").json()
    assert "/webhooks/{client}" in spec["paths"]
