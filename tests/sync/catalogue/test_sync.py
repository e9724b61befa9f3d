"""The catalogue sync end to end against both sandboxes: delta-only writes, policies, exceptions.

Both sandboxes run in-process; a recording transport at the seam counts every request each side
received, so "zero writes" and "exactly that variant" are checked on the wire, and SHOPLINE's own
state is read back. Stokly is changed the way a merchant would change it: through its API.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from stokline.config import Mapping
from stokline.sync.catalogue.sync import CatalogueReport, sync_catalogue
from stokline.sync.clients import open_clients
from tests.sync.conftest import CLIENT_ID, CLIENT_SECRET, World

CLIENT = "demo-outdoor"
ORANGE = "ACME-TENT-2P-ORANGE"  # a variant of a variable item
STOVE = "JETBOIL-MINI-01"  # a simple item, listed on SHOPLINE as STOVE-MINI (an override)
BOTTLE = "ACME-BOTTLE-1L"  # listed on SHOPLINE as acme-bottle-1l (case-insensitive match)
CHAIR = "ACME-CHAIR-LITE"  # in Stokly, not on SHOPLINE
HAMMOCK = "ACME-HAMMOCK-XL-RED"  # on SHOPLINE, unknown to Stokly


class Recording(httpx.AsyncBaseTransport):
    """A sandbox behind the seam, with the (method, path) of every request it was sent."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.requests: list[tuple[str, str]] = []
        self.refuse: str | None = None  # a method whose requests get a 422, as SHOPLINE answers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if request.method == self.refuse:
            body = {"code": "422", "message": "Unprocessable", "errors": {"price": ["is invalid"]}}
            return httpx.Response(422, json=body, request=request)
        return await self.inner.handle_async_request(request)

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if m != "GET" and not p.endswith("/v1/grant")]


class Catalogue:
    """The world of `conftest.World`, driven through the catalogue sync."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.shopline = Recording(world.shopline_app)
        self.stokly = Recording(world.stokly_app)
        self.stokly_api = TestClient(world.stokly_app)
        signature = hmac.new(CLIENT_SECRET.encode(), CLIENT_ID.encode(), hashlib.sha256)
        grant = self.stokly_api.post(
            "/v1/grant",
            json={
                "accountkey": "demo-outdoor",
                "clientId": CLIENT_ID,
                "signature": signature.hexdigest(),
            },
        )
        token = grant.json()["data"]["authenticationResult"]["accessToken"]
        self.stokly_api.headers["Authorization"] = f"Bearer {token}"

    def run(self, mapping: Mapping | None = None, **options: Any) -> CatalogueReport:
        mapping = mapping or self.world.mapping
        self.shopline.requests.clear()
        self.stokly.requests.clear()

        async def scenario() -> CatalogueReport:
            async with open_clients(
                mapping,
                lift_limits=True,
                shopline_transport=self.shopline,
                stokly_transport=self.stokly,
            ) as (shopline, stokly):
                return await sync_catalogue(
                    mapping, shopline=shopline, stokly=stokly, store=self.world.store, **options
                )

        report = asyncio.run(scenario())
        assert self.stokly.writes() == [], "the catalogue sync wrote to Stokly"
        return report

    # -- Stokly, as the merchant changes it ------------------------------------------------------

    def item(self, sku: str) -> dict[str, Any]:
        return next(i for i in self.world.stokly_state.items if i["sku"] == sku)

    def patch_item(self, sku: str, changes: dict[str, Any]) -> None:
        response = self.stokly_api.patch(f"/v0/items/{self.item(sku)['itemId']}", json=changes)
        assert response.status_code == 200, response.text

    def delete_item(self, sku: str) -> None:
        response = self.stokly_api.delete(f"/v0/items/{self.item(sku)['itemId']}")
        assert response.status_code == 200, response.text

    def create_item(self, sku: str, name: str) -> str:
        body = {
            "format": 0,
            "name": name,
            "sku": sku,
            "salePrice": {"amount": 5, "currency": "GBP"},
        }
        response = self.stokly_api.post("/v0/items", json=body)
        assert response.status_code == 200, response.text
        return response.json()["data"]["id"]

    # -- SHOPLINE, as it stands ------------------------------------------------------------------

    def products(self) -> list[dict[str, Any]]:
        response = self.world.shop.get(
            "/admin/openapi/v20251201/products/products.json",
            params={"limit": 1000},
            headers={"Authorization": "Bearer sandbox-shopline-token-abcdef"},
        )
        assert response.status_code == 200, response.text
        return response.json()["products"]

    def variant(self, sku: str) -> tuple[dict[str, Any], dict[str, Any]]:
        for product in self.products():
            for variant in product["variants"]:
                if variant["sku"].casefold() == sku.casefold():
                    return product, variant
        raise AssertionError(f"no SHOPLINE variant {sku}")


@pytest.fixture
def cat(world: World) -> Catalogue:
    return Catalogue(world)


def test_a_first_pass_links_and_a_second_pass_over_the_same_catalogue_writes_nothing(
    cat: Catalogue,
) -> None:
    first = cat.run()
    assert first.ok and first.items_seen > 20 and first.linked >= 20
    _, green = cat.variant("TENT-2P-GRN")  # linked through the SKU override
    link = cat.world.store.links.get(CLIENT, "variant", green["id"])
    assert link is not None and link.stokly_id == cat.item("ACME-TENT-2P-GREEN")["itemId"]
    assert link.data["inventory_item_id"] == green["inventory_item_id"]
    assert link.data["product_id"] == green["product_id"] and link.data["hash"]
    product, _ = cat.variant("TENT-2P-GRN")
    tent = cat.world.store.links.get(CLIENT, "product", product["id"])
    assert tent is not None and tent.stokly_id == cat.item("ACME-TENT-2P")["itemId"]
    # The templates reached SHOPLINE: the demo's description template, the vendor.
    assert product["body_html"] == cat.item("ACME-TENT-2P")["description"]
    assert len(cat.shopline.writes()) == first.writes

    second = cat.run()
    assert cat.shopline.writes() == []
    assert second.writes == 0 and second.unchanged == first.unchanged + first.writes
    assert second.api_calls <= 4  # a token, the items, the products: reads only


def test_a_price_change_in_stokly_reaches_that_variant_and_nothing_else(cat: Catalogue) -> None:
    cat.run()
    _, before = cat.variant(ORANGE)
    cat.patch_item(ORANGE, {"salePrice": {"amount": 139.5, "currency": "GBP"}})

    progress: list[tuple[int, int]] = []
    changed = cat.run(progress=lambda done, total: progress.append((done, total)))
    assert progress == [(1, 1)]
    assert cat.shopline.writes() == [
        ("PUT", f"/admin/openapi/v20251201/products/variants/{before['id']}.json")
    ]
    assert changed.updated == 1 and changed.writes == 1
    _, after = cat.variant(ORANGE)
    assert after["price"] == "139.50"
    assert {k: v for k, v in after.items() if k not in ("price", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("price", "updated_at")
    }
    [audit] = cat.world.store.audit.list(CLIENT, f"variant:{before['id']}")
    assert audit.action == "update_variant" and audit.details["fields"] == ["price"]

    assert cat.run().writes == 0 and cat.shopline.writes() == []


def test_missing_items_are_reported_then_created_when_the_mapping_allows(cat: Catalogue) -> None:
    reported = cat.run()
    assert CHAIR in {row["sku"] for row in reported.missing}
    assert reported.created == 0 and reported.reported_missing >= 1
    assert not any(m == "POST" for m, _ in cat.shopline.writes())

    allow = cat.world.mapping_with(
        lambda text: text.replace("create_missing: false", "create_missing: true", 1)
    )
    created = cat.run(allow)
    assert created.created >= 1 and created.missing == []
    product, variant = cat.variant(CHAIR)
    chair = cat.item(CHAIR)
    assert product["title"] == chair["name"] and product["vendor"] == "Demo Outdoor"
    assert variant["price"] == "64.00" and variant["barcode"] == chair["barcodes"][0]
    link = cat.world.store.links.get(CLIENT, "variant", variant["id"])
    assert link is not None and link.stokly_id == chair["itemId"]

    again = cat.run(allow)
    assert again.writes == 0 and cat.shopline.writes() == []
    assert sum(1 for p in cat.products() for v in p["variants"] if v["sku"] == CHAIR) == 1


@pytest.mark.parametrize(
    ("policy", "status"), [("archive", "archived"), ("unpublish", "draft"), ("report", "active")]
)
def test_a_deleted_stokly_item_is_archived_unpublished_or_reported_never_deleted(
    cat: Catalogue, policy: str, status: str
) -> None:
    mapping = cat.world.mapping_with(
        lambda text: text.replace("on_removed: archive", f"on_removed: {policy}", 1)
    )
    cat.run(mapping)
    cat.delete_item(STOVE)

    removed = cat.run(mapping)
    product, _ = cat.variant("STOVE-MINI")
    assert product["status"] == status
    assert not any(m == "DELETE" for m, _ in cat.shopline.writes())
    if policy == "report":
        assert cat.shopline.writes() == [] and removed.archived == 0
        assert any(r["sku"] == STOVE and "removed" in r["state"] for r in removed.missing)
    else:
        assert removed.archived == 1 and len(cat.shopline.writes()) == 1
        assert cat.run(mapping).writes == 0
    # No SKU that Stokly still knows became an exception on the way.
    assert not any(STOVE in e["message"] for e in removed.exceptions)


def test_unknown_shopline_skus_and_colliding_stokly_skus_become_exceptions(cat: Catalogue) -> None:
    first = cat.run()
    [unknown] = [e for e in first.exceptions if e["code"] == "unknown_shopline_sku"]
    assert HAMMOCK in unknown["message"] and unknown["team"] == "ecommerce"

    # A second Stokly item whose SKU differs from the bottle's only by case.
    twin = cat.create_item(BOTTLE.lower(), "Bottle (duplicate)")
    cat.patch_item(BOTTLE, {"salePrice": {"amount": 23, "currency": "GBP"}})
    collided = cat.run()
    [collision] = [e for e in collided.exceptions if e["code"] == "sku_collision"]
    assert BOTTLE in collision["message"] and BOTTLE.lower() in collision["message"]
    assert collision["team"] == "ecommerce"
    _, bottle = cat.variant(BOTTLE)
    assert bottle["price"] == "22.00"  # neither twin is written while they collide
    stored = cat.world.store.exceptions.list(client=CLIENT, status="open")
    # One exception per SHOPLINE variant, under the entity kind the stock sync uses too.
    assert {(r.code, r.entity_kind) for r in stored} == {
        ("unknown_shopline_sku", "variant"),
        ("sku_collision", "stokly_sku"),
    }

    response = cat.stokly_api.delete(f"/v0/items/{twin}")
    assert response.status_code == 200, response.text
    healed = cat.run()
    assert healed.exceptions_resolved == 1
    _, bottle = cat.variant(BOTTLE)
    assert bottle["price"] == "23.00"
    [still] = cat.world.store.exceptions.list(client=CLIENT, status=("open", "retrying"))
    assert still.code == "unknown_shopline_sku"


def test_a_dry_run_lists_what_would_change_and_writes_nothing(cat: Catalogue) -> None:
    cat.run()
    cat.patch_item(ORANGE, {"salePrice": {"amount": 120, "currency": "GBP"}})
    cat.delete_item(STOVE)
    before = cat.world.store_rows()

    dry = cat.run(dry_run=True)
    assert cat.shopline.writes() == []
    assert cat.world.store_rows() == before
    actions = {(row["action"], row["stokly_sku"]) for row in dry.would_write}
    assert actions == {("update_variant", ORANGE), ("archive_product", STOVE)}
    assert dry.summary_rows()[2]["value"] == "dry run (nothing written)"
    _, orange = cat.variant(ORANGE)
    assert orange["price"] == "149.00"

    live = cat.run()
    assert live.updated == 1 and live.archived == 1


def test_a_refused_write_becomes_an_exception_and_succeeds_on_a_later_pass(cat: Catalogue) -> None:
    cat.run()
    cat.patch_item(ORANGE, {"salePrice": {"amount": 129, "currency": "GBP"}})
    cat.shopline.refuse = "PUT"
    refused = cat.run()
    [rejected] = [e for e in refused.exceptions if e["code"] == "api_rejected"]
    assert ORANGE in rejected["entity"] and "invalid" in rejected["message"]
    assert refused.updated == 0

    cat.shopline.refuse = None
    retried = cat.run()  # the hash was not stored, so the write is due again
    assert retried.updated == 1 and retried.exceptions_resolved == 1
    assert cat.variant(ORANGE)[1]["price"] == "129.00"


def test_a_deleted_variant_of_a_live_product_is_reported_and_the_product_stays(
    cat: Catalogue,
) -> None:
    cat.run()
    cat.delete_item(ORANGE)
    report = cat.run()
    assert cat.shopline.writes() == [] and report.archived == 0
    product, _ = cat.variant(ORANGE)
    assert product["status"] == "active"
    [row] = [r for r in report.missing if r["sku"] == ORANGE]
    assert "cannot archive one variant" in row["state"]


# -- the event pass: only the items that changed ---------------------------------------------


def test_an_event_pass_writes_the_changed_item_reading_only_its_product(cat: Catalogue) -> None:
    cat.run()
    _, before = cat.variant(ORANGE)
    cat.patch_item(ORANGE, {"salePrice": {"amount": 141.25, "currency": "GBP"}})
    changed = cat.run(items=[cat.item(ORANGE)["itemId"]], trigger="event")
    assert changed.ok and changed.updated == 1
    assert cat.shopline.writes() == [
        ("PUT", f"/admin/openapi/v20251201/products/variants/{before['id']}.json")
    ]
    _, after = cat.variant(ORANGE)
    assert after["price"] == "141.25"
    # By id, not the whole catalogues: one SHOPLINE product, a few Stokly items.
    shop_reads = [p for m, p in cat.shopline.requests if m == "GET"]
    assert shop_reads == [f"/admin/openapi/v20251201/products/{before['product_id']}.json"]
    stokly_reads = [p for m, p in cat.stokly.requests if m == "GET"]
    assert all(p.startswith("/v0/items/") for p in stokly_reads) and len(stokly_reads) <= 8
    # The full pass that follows finds nothing left to write.
    assert cat.run().writes == 0


def test_an_event_pass_archives_a_product_whose_item_was_deleted(cat: Catalogue) -> None:
    cat.run()
    cat.delete_item(STOVE)
    removed = cat.run(items=[cat.item(STOVE)["itemId"]], trigger="event")
    assert removed.archived == 1
    product, _ = cat.variant("STOVE-MINI")
    assert product["status"] == "archived"
    assert not any(m == "DELETE" for m, _ in cat.shopline.writes())


def test_an_event_pass_creates_nothing_resolves_nothing_and_skips_collided_skus(
    cat: Catalogue,
) -> None:
    cat.run()
    open_before = cat.world.store.exceptions.list(client=CLIENT, status="open")
    assert open_before  # the unknown SHOPLINE SKU of the demo
    chair = cat.create_item("ACME-NEW-CHAIR", "A new chair")  # not linked to any variant
    cat.create_item(BOTTLE.lower(), "Bottle (duplicate)")
    cat.patch_item(BOTTLE, {"salePrice": {"amount": 29, "currency": "GBP"}})
    cat.run()  # the full pass sees the collision and leaves the bottle alone
    cat.patch_item(BOTTLE, {"salePrice": {"amount": 31, "currency": "GBP"}})
    event = cat.run(
        mapping=cat.world.mapping_with(
            lambda text: text.replace("create_missing: false", "create_missing: true", 1)
        ),
        items=[chair, cat.item(BOTTLE)["itemId"]],  # not the twin: the collision is unseen
        trigger="event",
    )
    assert event.created == 0 and not any(m == "POST" for m, _ in cat.shopline.writes())
    _, bottle = cat.variant(BOTTLE)
    assert bottle["price"] == "22.00"  # collided: not written from a partial view either
    assert event.exceptions_resolved == 0
    still = {(r.code, r.entity_id) for r in cat.world.store.exceptions.list(client=CLIENT)}
    assert {(r.code, r.entity_id) for r in open_before} <= still
