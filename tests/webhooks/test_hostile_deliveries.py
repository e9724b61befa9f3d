"""The hostile-delivery corpus (tests/corpus/webhooks.py) against the receiver over real HTTP.

Each delivery, on SQLite and on PostgreSQL, must get its status (never a 5xx), store exactly what its outcome says — nothing from
a refused one, the exact bytes of an accepted one, a poison row and one exception for a signed body
that is not a JSON object — and never echo the secret. Then the whole corpus goes, in order, into
one inbox, a valid order after it, and the orders sync drains the lot: the valid order arrives in
Stokly once and nothing crashes on the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stokline.config import load_mapping
from stokline.sandbox.common import ServerThread
from stokline.store import Store
from stokline.store.tables import inbox
from stokline.webhooks import ClientEndpoint, create_app
from stokline.webhooks.app import MAX_BODY_BYTES
from tests.corpus.webhooks import CLIENT, PATH, Delivery, deliveries, signature
from tests.pg import BACKENDS, database_for

SECRET = "hostile-corpus-app-secret"
LIMIT = 256 * 1024
CORPUS = deliveries(SECRET, LIMIT)


@pytest.fixture(scope="module", params=BACKENDS)
def receiver(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, Store]]:
    """One receiver per state-store backend: what SQLite forgives (a long value), PostgreSQL
    refuses, and the receiver must answer for it before the database does."""
    with database_for(request.param, request, tmp_path_factory.mktemp("hostile")) as url:
        store = Store(url)
        app = create_app({CLIENT: ClientEndpoint(CLIENT, SECRET)}, store, max_body_bytes=LIMIT)
        with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            yield http, store
        store.close()


def send(http: httpx.Client, delivery: Delivery) -> httpx.Response:
    content: Any = iter(delivery.chunks) if delivery.chunks else delivery.body
    return http.request(delivery.method, delivery.path, content=content, headers=delivery.headers)


def rows(store: Store, webhook_id: str | None = None) -> list[Any]:
    query = select(inbox)
    if webhook_id is not None:
        query = query.where(inbox.c.webhook_id == webhook_id)
    with store.engine.connect() as conn:
        return list(conn.execute(query))


def poison_exceptions(store: Store, webhook_id: str) -> list[Any]:
    found = store.exceptions.list(client=CLIENT, code="poison_message")
    return [e for e in found if e.entity_id == webhook_id]


def check(store: Store, delivery: Delivery, response: httpx.Response, total_before: int) -> None:
    """The response and the inbox are what ``delivery.outcome`` says."""
    assert response.status_code == delivery.status, response.text
    assert response.status_code < 500
    assert SECRET not in response.text
    mine = rows(store, delivery.webhook_id)
    total = len(rows(store))
    if delivery.outcome == "nothing":
        assert mine == [] and total == total_before
        assert poison_exceptions(store, delivery.webhook_id) == []
        return
    [row] = mine
    if delivery.outcome == "duplicate":
        assert total == total_before
        assert response.json()["status"] in {"duplicate", "poison"}
        assert row.body == delivery.replays.body  # type: ignore[union-attr]  # the first stays
        return
    assert total == total_before + 1
    assert bytes(row.body) == delivery.body
    if delivery.outcome == "stored":
        assert row.status == "pending" and response.json() == {"status": "stored"}
        expected_topic = delivery.topic or delivery.headers["X-Shopline-Topic"]
        assert row.topic == expected_topic
        assert poison_exceptions(store, delivery.webhook_id) == []
    else:
        assert delivery.outcome == "poison"
        assert row.status == "poison" and response.json()["status"] == "poison"
        [exception] = poison_exceptions(store, delivery.webhook_id)
        assert exception.status == "open" and exception.attempts == 1


@pytest.mark.parametrize("delivery", CORPUS, ids=[d.name for d in CORPUS])
def test_each_hostile_delivery_gets_its_status_and_stores_only_what_it_should(
    receiver: tuple[httpx.Client, Store], delivery: Delivery
) -> None:
    http, store = receiver
    if delivery.replays is not None and not rows(store, delivery.replays.webhook_id):
        send(http, delivery.replays)
    total_before = len(rows(store))
    check(store, delivery, send(http, delivery), total_before)


def test_the_corpus_is_large_enough_and_covers_every_outcome() -> None:
    assert len(CORPUS) >= 30
    assert len({d.name for d in CORPUS}) == len(CORPUS)
    assert {d.outcome for d in CORPUS} == {"nothing", "stored", "duplicate", "poison"}
    assert {401, 404, 405, 413, 400, 200} <= {d.status for d in CORPUS}


def test_the_body_limit_defaults_to_one_mebibyte() -> None:
    assert MAX_BODY_BYTES == 1024 * 1024


# ---------------------------------------------------------------------------------------------
# The whole corpus into one inbox, then the orders sync
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from tests.sync import conftest as sync

    for name, value in (
        ("STOKLY_CLIENT_ID", sync.CLIENT_ID),
        ("STOKLY_CLIENT_SECRET", sync.CLIENT_SECRET),
        ("SHOPLINE_ACCESS_TOKEN", sync.TOKEN),
        ("SHOPLINE_APP_SECRET", sync.APP_SECRET),
    ):
        monkeypatch.setenv(name, value)
    world = sync.World(tmp_path, load_mapping(sync.ROOT / "mappings/demo.yaml"))
    yield world
    world.close()


async def _campaign(world: Any, corpus: list[Delivery], valid: Delivery) -> list[int]:
    transport = httpx.ASGITransport(app=world.receiver)
    statuses = []
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as http:
        for delivery in [*corpus, valid]:
            content: Any = delivery.body
            if delivery.chunks:

                async def stream(chunks: tuple[bytes, ...] = delivery.chunks) -> Any:
                    for chunk in chunks:
                        yield chunk

                content = stream()
            response = await http.request(
                delivery.method, delivery.path, content=content, headers=delivery.headers
            )
            statuses.append(response.status_code)
    return statuses


def test_after_the_whole_corpus_a_valid_order_still_arrives_once_and_nothing_crashes(
    world: Any,
) -> None:
    from tests.sync import conftest as sync

    corpus = deliveries(sync.APP_SECRET, MAX_BODY_BYTES)
    order = world.place(("ACME-TENT-2P-ORANGE", 1), customer={"email": "after@example.com"})
    body = httpx.Request("POST", "/", json=order).content
    valid = Delivery(
        "valid-after-the-storm",
        "a genuine delivery after all the hostile ones",
        body,
        {
            "Content-Type": "application/json",
            "X-Shopline-Topic": "orders/paid",
            "X-Shopline-Hmac-Sha256": signature(body, sync.APP_SECRET),
            "X-Shopline-Webhook-Id": "wh-valid-after",
        },
        200,
        "stored",
        path=PATH,
    )
    statuses = asyncio.run(_campaign(world, corpus, valid))
    assert statuses == [d.status for d in corpus] + [200]
    expected_rows = sum(d.outcome in {"stored", "poison"} for d in corpus) + 1
    assert len(rows(world.store)) == expected_rows
    assert (
        world.store.inbox.count(CLIENT, "pending") == sum(d.outcome == "stored" for d in corpus) + 1
    )

    report = world.run(trigger="webhook")  # must not raise, whatever the inbox holds

    [sale] = world.sale_orders(str(order["id"]))
    assert sale["customerReference"] == "SL" + order["name"].lstrip("#")
    by_status: dict[str, int] = {}
    for row in rows(world.store):
        by_status[row.status] = by_status.get(row.status, 0) + 1
    # Order deliveries are all handled (done, or poison when not an order object); deliveries of
    # topics no sync takes stay pending, untouched.
    unclaimed = sum(
        1
        for d in corpus
        if d.outcome == "stored"
        and (d.topic or d.headers.get("X-Shopline-Topic")) in {"unknown", "products/delete"}
    )
    assert by_status.get("pending", 0) == unclaimed
    assert by_status.get("processing", 0) == 0
    assert report.imported >= 1
    again = world.run(trigger="schedule")
    assert again.imported == 0
    assert len(world.sale_orders(str(order["id"]))) == 1
