"""The demo seed holds an example of every gap the system audit looks for.

A fresh pair of demo sandboxes (the demo's 300 SKUs) must show, under the demo mapping: SHOPLINE
SKUs one typo away from a Stokly SKU and not matched, old orders shipped by a method the mapping
does not map (and that the demo's orders sync never imports), a phone-only buyer whose phone is a
Stokly customer's with an email, Stokly customers sharing a phone, and SHOPLINE levels above and
below what Stokly can sell.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from stokline.config import Mapping, load_mapping
from stokline.mapping.translate import SkuMatcher, Untranslatable
from stokline.sandbox.catalogue import NEAR_MATCHES_FROM, demo_catalogue
from stokline.sandbox.shopline.app import create_app as create_shopline
from stokline.sandbox.shopline.seed import DRIFTED_LEVELS
from stokline.sandbox.stokly.app import create_app as create_stokly
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.orders.identity import normalise_email, normalise_phone
from stokline.sync.orders.translate import is_importable
from stokline.sync.stock.reconcile import LevelComparison, reconcile_stock

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sandbox-shopline-token-gaps"
APP_SECRET = "sandbox-app-secret-gaps"
CLIENT_ID = "stokline-gap-tests"
CLIENT_SECRET = "sandbox-stokly-secret-gaps"
ENV = {
    "STOKLY_CLIENT_ID": CLIENT_ID,
    "STOKLY_CLIENT_SECRET": CLIENT_SECRET,
    "SHOPLINE_ACCESS_TOKEN": TOKEN,
    "SHOPLINE_APP_SECRET": APP_SECRET,
}
DEMO_SKUS = 300  # `stokline sandbox`'s default, so what `make demo` seeds


@dataclass
class Demo:
    mapping: Mapping
    shopline_app: Any
    stokly_app: Any

    @property
    def shopline_store(self) -> Any:
        return self.shopline_app.state.shopline.store

    @property
    def stokly_state(self) -> Any:
        return self.stokly_app.state.sandbox.state

    def variants(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(p, v) for p in self.shopline_store.list("product") for v in p["variants"]]

    def orders(self) -> list[dict[str, Any]]:
        return self.shopline_store.list("order")


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in ENV.items():
            env.setenv(name, value)
        shopline_app = create_shopline(
            access_token=TOKEN, app_secret=APP_SECRET, skus=DEMO_SKUS, rate_per_s=None
        )
        stokly_app = create_stokly(
            account_key="demo-outdoor",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            seed_skus=DEMO_SKUS,
            rate_per_minute=None,
        )
        try:
            yield Demo(load_mapping(ROOT / "mappings/demo.yaml"), shopline_app, stokly_app)
        finally:
            shopline_app.state.shopline.close()


def _without_separators(sku: str) -> str:
    return re.sub(r"[\s\-_./]+", "", sku.strip().casefold())


def _without_leading_zeros(sku: str) -> str:
    return re.sub(r"0+(?=\d)", "", _without_separators(sku))


def _parsed(stamp: str) -> datetime:
    value = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- catalogue ---------------------------------------------------------------------------------


def test_near_match_skus_are_one_typo_from_a_stokly_sku_and_not_matched(demo: Demo) -> None:
    stokly_skus = [i["sku"] for i in demo.stokly_state.items if i["format"] != 2]  # no parents
    matcher = SkuMatcher(demo.mapping, stokly_skus)
    by_separators = defaultdict(list)
    by_zeros = defaultdict(list)
    for sku in stokly_skus:
        by_separators[_without_separators(sku)].append(sku)
        by_zeros[_without_leading_zeros(sku)].append(sku)

    kinds: dict[str, str] = {}  # SHOPLINE SKU → the typo that separates it from its Stokly SKU
    near_products = []
    for product, variant in demo.variants():
        sku = variant["sku"]
        try:
            matcher.match(sku)
            continue
        except Untranslatable as exc:
            assert exc.code == "unmapped_sku"
        if len(by_separators[_without_separators(sku)]) == 1:
            kinds[sku] = "separator"
        elif len(by_zeros[_without_leading_zeros(sku)]) == 1:
            kinds[sku] = "leading zero"
        else:
            continue
        near_products.append(product)
    assert set(kinds.values()) == {"separator", "leading zero"}, kinds

    # Drafts: the simulated storefront, which sells what /_sandbox/skus lists, never orders them,
    # so the demo's live orders raise no unmapped_sku for them.
    assert {p["status"] for p in near_products} == {"draft"}
    with TestClient(demo.shopline_app) as client:
        sold = set(client.get("/_sandbox/skus").json()["skus"])
    assert not sold & set(kinds)


def test_small_catalogues_have_no_near_matches() -> None:
    """The tests' small worlds keep the hammock as their one SKU Stokly does not know."""
    small = demo_catalogue(NEAR_MATCHES_FROM - 1)
    assert all(e.shopline_status == "active" for e in small)
    assert [e.sku for e in small if e.shopline_sku.casefold() != e.sku.casefold()] == [
        "ACME-TENT-2P-GREEN",  # the two overrides
        "JETBOIL-MINI-01",
    ]


# -- orders and shipping -----------------------------------------------------------------------


def test_old_orders_use_a_shipping_method_the_mapping_does_not_map(demo: Demo) -> None:
    methods = demo.mapping.shipping.methods
    titles = {m.shopline_title.casefold() for m in methods}
    codes = {m.shopline_code for m in methods if m.shopline_code}

    def unmapped(order: dict[str, Any]) -> bool:
        [line] = order["shipping_lines"]
        return line["title"].casefold() not in titles and line["code"] not in codes

    settings = demo.mapping.syncs.orders
    assert settings is not None
    first_sweep_from = datetime.now(UTC) - settings.lookback
    never_imported = [
        o
        for o in demo.orders()
        if unmapped(o)
        and not is_importable(o["financial_status"], settings.import_when)
        and _parsed(o["updated_at"]) < first_sweep_from
    ]
    assert len(never_imported) >= 3
    # Every order with those methods is one of them: none is read by the demo's first sweep or
    # imported later, so the demo's orders sync never meets the method.
    old_titles = {o["shipping_lines"][0]["title"] for o in never_imported}
    assert [o for o in demo.orders() if o["shipping_lines"][0]["title"] in old_titles] == (
        never_imported
    )


# -- customers ---------------------------------------------------------------------------------


def _stokly_emails_by_phone(demo: Demo) -> dict[str, set[str]]:
    region = demo.mapping.customers.phone_region
    emails: dict[str, set[str]] = defaultdict(set)
    for customer in demo.stokly_state.customers:
        phone = normalise_phone(customer.get("phone"), None, region)
        email = normalise_email(customer.get("email"))
        if phone and email:
            emails[phone].add(email)
    return emails


def test_a_phone_only_buyer_has_the_phone_of_a_stokly_customer_with_an_email(
    demo: Demo,
) -> None:
    assert "phone" in demo.mapping.customers.identity  # so the two are linked by phone
    region = demo.mapping.customers.phone_region
    with_email = _stokly_emails_by_phone(demo)
    linked = [
        o
        for o in demo.orders()
        if not normalise_email(o.get("email"))
        and normalise_phone(o.get("phone"), None, region) in with_email
    ]
    assert linked


def test_two_stokly_customers_share_a_phone_under_different_emails(demo: Demo) -> None:
    shared = {p: e for p, e in _stokly_emails_by_phone(demo).items() if len(e) > 1}
    assert shared


# -- stock -------------------------------------------------------------------------------------


def test_shopline_shows_more_and_less_than_stokly_can_sell(demo: Demo, tmp_path: Path) -> None:
    async def compare() -> list[LevelComparison]:
        with Store(f"sqlite:///{tmp_path / 'state.db'}") as store:
            async with open_clients(
                demo.mapping,
                lift_limits=True,
                shopline_transport=httpx.ASGITransport(app=demo.shopline_app),
                stokly_transport=httpx.ASGITransport(app=demo.stokly_app),
            ) as (shopline, stokly):
                result = await reconcile_stock(
                    demo.mapping, shopline=shopline, stokly=stokly, store=store
                )
        return result.comparisons

    with pytest.MonkeyPatch.context() as env:
        for name, value in ENV.items():
            env.setenv(name, value)
        comparisons = asyncio.run(compare())
    drifted = {
        (c.shopline_sku, c.location): c
        for c in comparisons
        if (c.shopline_sku, c.location) in DRIFTED_LEVELS
    }
    assert set(drifted) == set(DRIFTED_LEVELS)
    assert all(c.shopline == DRIFTED_LEVELS[key] for key, c in drifted.items())
    assert any(c.oversell_risk for c in drifted.values())
    assert any(c.shopline is not None and c.shopline < c.sellable for c in drifted.values())
