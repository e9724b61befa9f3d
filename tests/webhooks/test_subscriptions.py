"""`stokline webhooks subscribe|list|unsubscribe` against the SHOPLINE sandbox served on loopback:
idempotent, limited to the client's own address, and clear about bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stokline.cli import main
from stokline.config import load_mapping
from stokline.sandbox.common import ServerThread
from stokline.webhooks.subscriptions import ORDER_TOPICS, shopline_for, subscribe
from tests.flows.sandboxes import DEMO_MAPPING, demo_apps, demo_credentials, point_mapping_at

RECEIVER = "https://hooks.example.com"
ADDRESS = f"{RECEIVER}/webhooks/demo-outdoor"


class Writes:
    """The SHOPLINE sandbox behind a count of the API writes it receives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.methods: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "/webhooks" in scope["path"]:
            self.methods.append(scope["method"])
        await self.app(scope, receive, send)

    def writes(self) -> int:
        return sum(1 for m in self.methods if m != "GET")


@dataclass
class Store:
    app: Any
    writes: Writes
    mapping: Path

    def subscriptions(self) -> list[dict[str, Any]]:
        return list(self.app.state.shopline.store.list("webhook"))

    def add(self, address: str, topic: str, api_version: str = "v20251201") -> None:
        store = self.app.state.shopline.store
        number = str(9_000_000 + len(self.subscriptions()))
        doc = {"id": number, "address": address, "topic": topic, "api_version": api_version,
               "format": "json", "created_at": "2026-01-01T00:00:00+00:00",
               "updated_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
        store.insert("webhook", doc, id=number)

    def cli(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(["webhooks", *argv[:1], "--mapping", str(self.mapping), *argv[1:]])
        out, err = capsys.readouterr()
        return status, out, err


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    for name, value in demo_credentials().items():
        monkeypatch.setenv(name, value)
    shopline_app, stokly_app = demo_apps(10)
    writes = Writes(shopline_app)
    try:
        with ServerThread(writes) as shop:
            mapping = point_mapping_at(
                DEMO_MAPPING, tmp_path / "demo.yaml", shop.url, "http://127.0.0.1:9"
            )
            yield Store(shopline_app, writes, mapping)
    finally:
        shopline_app.state.shopline.close()
        stokly_app.state.sandbox.close()


def test_subscribe_makes_the_missing_topics_and_again_changes_nothing(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store.add(ADDRESS, "orders/paid")
    status, out, err = store.cli(capsys, "subscribe", "--url", RECEIVER + "/", "--dry-run")
    assert status == 0, err
    assert "demo-outdoor: 3 to subscribe, 1 already there (dry run: nothing changed)" in out
    assert store.writes.writes() == 0

    status, out, err = store.cli(capsys, "subscribe", "--url", RECEIVER)
    assert status == 0, err
    assert "3 subscribed, 1 already there" in out
    mine = {(w["topic"], w["address"]) for w in store.subscriptions()}
    assert mine == {(topic, ADDRESS) for topic in ORDER_TOPICS}

    before = store.writes.writes()
    status, out, _ = store.cli(capsys, "subscribe", "--url", ADDRESS)  # the full address too
    assert status == 0 and "4 already there" in out
    assert store.writes.writes() == before  # nothing written the second time


def test_a_subscription_of_another_api_version_is_brought_to_the_mappings(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store.add(ADDRESS, "orders/updated", api_version="v20240301")
    status, out, err = store.cli(capsys, "subscribe", "--url", RECEIVER)
    assert status == 0, err
    assert "API version v20240301 → v20251201" in out
    versions = {w["api_version"] for w in store.subscriptions()}
    assert versions == {load_mapping(store.mapping).connections.shopline.api_version}


def test_unsubscribe_ends_only_this_clients_order_subscriptions(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    old = "http://old-receiver.example.com:8803/webhooks/demo-outdoor"
    for topic in ORDER_TOPICS:
        store.add(ADDRESS, topic)
    store.add(old, "orders/paid")
    store.add("https://hooks.example.com/webhooks/acme-outdoor", "orders/paid")  # another client
    store.add("https://analytics.example.com/in", "orders/paid")  # another app
    store.add(ADDRESS, "products/update")  # not an order topic: left alone

    status, out, _ = store.cli(capsys, "list", "--url", RECEIVER)
    assert status == 0
    assert out.count("← demo-outdoor") == 6
    assert f"{ADDRESS} has every order topic" in out

    status, out, _ = store.cli(capsys, "subscribe", "--url", RECEIVER)
    assert f"orders/paid is also sent to {old}" in out  # the old receiver is pointed out

    status, out, err = store.cli(capsys, "unsubscribe", "--url", old)
    assert status == 0, err
    assert "1 ended" in out
    status, out, err = store.cli(capsys, "unsubscribe")
    assert status == 0, err
    assert "4 ended" in out
    left = {(w["address"], w["topic"]) for w in store.subscriptions()}
    assert left == {
        ("https://hooks.example.com/webhooks/acme-outdoor", "orders/paid"),
        ("https://analytics.example.com/in", "orders/paid"),
        (ADDRESS, "products/update"),
    }
    status, out, _ = store.cli(capsys, "unsubscribe")
    assert status == 0 and "no subscription to end" in out


def test_two_subscribes_at_once_make_each_subscription_once(store: Store) -> None:
    mapping = load_mapping(store.mapping)

    async def one() -> Any:
        async with shopline_for(mapping) as shopline:
            return await subscribe(shopline, "demo-outdoor", ADDRESS)

    async def both() -> list[Any]:
        return list(await asyncio.gather(one(), one()))

    results = asyncio.run(both())
    assert sum(r.count("create") for r in results) == len(ORDER_TOPICS)
    assert sorted(w["topic"] for w in store.subscriptions()) == sorted(ORDER_TOPICS)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://hooks.example.com", "is not an http(s) URL"),
        ("hooks.example.com", "is not an http(s) URL"),
        ("https://hooks.example.com/?x=1", "without ? or #"),
        ("https://hooks.example.com/webhooks/acme-outdoor", "another client's address"),
    ],
)
def test_a_bad_url_is_a_usage_error_and_changes_nothing(
    store: Store, capsys: pytest.CaptureFixture[str], url: str, says: str
) -> None:
    status, _, err = store.cli(capsys, "subscribe", "--url", url)
    assert status == 2 and says in err
    assert store.writes.methods == []


def test_an_unset_token_is_named_and_its_value_never_shown(
    store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = demo_credentials()["SHOPLINE_ACCESS_TOKEN"]
    monkeypatch.delenv("SHOPLINE_ACCESS_TOKEN")
    status, out, err = store.cli(capsys, "list")
    assert status == 1
    assert "SHOPLINE_ACCESS_TOKEN" in err and token not in out + err
    assert store.writes.methods == []


def test_a_token_shopline_refuses_is_an_error_without_the_token(
    store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPLINE_ACCESS_TOKEN", "not-the-stores-token-123")
    status, out, err = store.cli(capsys, "subscribe", "--url", RECEIVER)
    assert status == 1
    assert "SHOPLINE" in err and "401" in err
    assert "not-the-stores-token-123" not in out + err
    assert store.subscriptions() == []
