"""The Stokly sandbox's confirmed [C] surface: auth, envelopes, catalogue, stock, sale orders."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stokline.sandbox.catalogue import demo_catalogue
from stokline.sandbox.common import ServerThread
from stokline.sandbox.stokly import SHOPLINE_CHANNEL_ID, create_app, seed_demo

ACCOUNT, CLIENT_ID, SECRET = "demo-outdoor", "sandbox-client", "sandbox-secret-value"


def sign(client_id: str = CLIENT_ID, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), client_id.encode(), hashlib.sha256).hexdigest()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_app(data_dir: Path | None = None, **options: Any) -> FastAPI:
    options.setdefault("rate_per_minute", None)
    options.setdefault("seed_skus", 300)
    return create_app(
        data_dir=data_dir, account_key=ACCOUNT, client_id=CLIENT_ID, client_secret=SECRET, **options
    )


def grant(client: TestClient | httpx.Client) -> str:
    body = {"accountkey": ACCOUNT, "clientId": CLIENT_ID, "signature": sign()}
    response = client.post("/v1/grant", json=body)
    assert response.status_code == 200, response.text
    token = response.json()["data"]["authenticationResult"]["accessToken"]
    client.headers["Authorization"] = f"Bearer {token}"
    return token


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(make_app()) as client:
        grant(client)
        yield client


def ids_of(response: httpx.Response, field: str) -> list[str]:
    assert response.status_code == 200, response.text
    return [row[field] for row in response.json()["data"]]


def location_ids(api: TestClient) -> dict[str, str]:
    rows = api.get("/v0/locations").json()["data"]
    return {row["name"]: row["locationId"] for row in rows}


def item_by_sku(api: TestClient, sku: str) -> dict[str, Any]:
    rows = api.get("/v0/items", params={"filter": f"[sku]=={{{sku}}}"}).json()["data"]
    assert len(rows) == 1, rows
    return rows[0]


# -- auth ----------------------------------------------------------------------------------------


def test_grant_with_a_correct_signature_returns_a_working_token() -> None:
    clock = Clock()
    with TestClient(make_app(clock=clock, token_ttl_s=900)) as client:
        body = {"accountkey": ACCOUNT, "clientId": CLIENT_ID, "signature": sign()}
        response = client.post("/v1/grant", json=body)
        assert response.status_code == 200
        result = response.json()["data"]["authenticationResult"]
        assert datetime.fromisoformat(result["expiry"]) == clock.now + timedelta(seconds=900)
        headers = {"Authorization": f"Bearer {result['accessToken']}"}
        assert client.get("/v0/items", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"accountkey": ACCOUNT, "clientId": CLIENT_ID, "signature": sign(secret="wrong")},
        {"accountkey": ACCOUNT, "clientId": CLIENT_ID, "signature": sign().upper()[:-1]},
        {"accountkey": "other-account", "clientId": CLIENT_ID, "signature": sign()},
        {"accountkey": ACCOUNT, "clientId": "intruder", "signature": sign("intruder")},
    ],
)
def test_grant_with_a_wrong_signature_is_refused(body: dict[str, str]) -> None:
    with TestClient(make_app(seed_skus=None)) as client:
        response = client.post("/v1/grant", json=body)
        assert response.status_code == 401
        assert "signature" in response.json()["message"]
        assert SECRET not in response.text


def test_grant_with_a_missing_field_is_a_400_with_a_message() -> None:
    with TestClient(make_app(seed_skus=None)) as client:
        response = client.post("/v1/grant", json={"accountkey": ACCOUNT, "clientId": CLIENT_ID})
        assert response.status_code == 400
        assert "signature" in response.json()["message"]


def test_missing_or_unknown_tokens_are_401() -> None:
    with TestClient(make_app(seed_skus=None)) as client:
        missing = client.get("/v0/items")
        assert missing.status_code == 401
        assert missing.json()["message"].startswith("Unauthorized")
        forged = client.get("/v0/items", headers={"Authorization": "Bearer forged"})
        assert forged.status_code == 401
        assert "invalid access token" in forged.json()["message"]


def test_an_expired_token_gets_jwt_expired_and_a_new_grant_works() -> None:
    clock = Clock()
    with TestClient(make_app(clock=clock, token_ttl_s=60, seed_skus=None)) as client:
        grant(client)
        assert client.get("/v0/locations").status_code == 200
        clock.advance(61)
        stale = client.get("/v0/locations")
        assert stale.status_code == 401
        assert stale.json() == {"message": "jwt expired"}
        grant(client)
        assert client.get("/v0/locations").status_code == 200
        assert client.post("/_sandbox/expire-tokens").json()["data"]["expired"] == 2
        assert client.get("/v0/locations").json() == {"message": "jwt expired"}


# -- envelopes, paging, filters ------------------------------------------------------------------


def test_list_envelope_and_paging_across_pages(api: TestClient) -> None:
    total = api.get("/v0/items", params={"size": 1}).json()["metadata"]["count"]
    seen: list[str] = []
    page = 0
    while True:
        response = api.get("/v0/items", params={"page": page, "size": 100})
        body = response.json()
        assert set(body) == {"metadata", "data"}
        assert body["metadata"]["count"] == total
        if not body["data"]:
            break
        seen += [row["itemId"] for row in body["data"]]
        page += 1
    assert page >= 3
    assert len(seen) == len(set(seen)) == total
    assert all(uuid.UUID(item_id) for item_id in seen)


def test_sorting_and_page_size_bounds(api: TestClient) -> None:
    params = {"sortField": "sku", "sortDirection": "DESC", "size": 20}
    skus = [row["sku"] for row in api.get("/v0/items", params=params).json()["data"]]
    assert skus == sorted(skus, reverse=True)
    by_price = {"sortField": "salePrice.amount", "size": 1000, "filter": "[format]=={0}"}
    prices = [
        r["salePrice"]["amount"] for r in api.get("/v0/items", params=by_price).json()["data"]
    ]
    assert prices == sorted(prices)
    blank = api.get("/v0/items", params={"filter": "", "sortDirection": "", "sortField": ""})
    assert blank.status_code == 200
    sideways = api.get("/v0/items", params={"sortDirection": "sideways"})
    assert sideways.status_code == 400
    assert "sortDirection" in sideways.json()["message"]
    too_big = api.get("/v0/items", params={"size": 1001})
    assert too_big.status_code == 400
    assert "size" in too_big.json()["message"]


def test_filters_over_http(api: TestClient) -> None:
    wanted = "[sku]=*{ACME-TENT-2P-GREEN,JETBOIL-MINI-01,NOT-A-SKU}"
    skus = ids_of(api.get("/v0/items", params={"filter": wanted}), "sku")
    assert sorted(skus) == ["ACME-TENT-2P-GREEN", "JETBOIL-MINI-01"]
    variable = api.get("/v0/items", params={"filter": "([status]!={1})&&([format]=={2})"})
    assert variable.json()["metadata"]["count"] > 0
    assert {row["format"] for row in variable.json()["data"]} == {2}
    bad = api.get("/v0/items", params={"filter": "[sku]=={unterminated"})
    assert bad.status_code == 400
    assert "invalid filter" in bad.json()["message"]


# -- items ---------------------------------------------------------------------------------------


def test_item_create_read_update_delete(api: TestClient) -> None:
    body = {
        "format": 0,
        "name": "Trail Stove",
        "sku": "TEST-STOVE-1",
        "barcodes": ["5000000000017"],
        "taxClassId": "standard",
        "salePrice": {"amount": 49.99, "currency": "GBP"},
    }
    created = api.post("/v0/items", json=body)
    assert created.status_code == 200
    item_id = created.json()["data"]["id"]
    item = api.get(f"/v0/items/{item_id}").json()["data"]
    assert (item["sku"], item["format"], item["status"]) == ("TEST-STOVE-1", 0, 0)
    duplicate = api.post("/v0/items", json=body)
    assert duplicate.status_code == 409
    assert duplicate.json()["itemId"] == item_id
    patched = api.patch(f"/v0/items/{item_id}", json={"salePrice": {"amount": 44.0}})
    assert patched.json() == {"data": {"id": item_id}}
    assert api.get(f"/v0/items/{item_id}").json()["data"]["salePrice"]["amount"] == 44.0
    barcodes = api.get("/v0/item-barcodes", params={"filter": "[barcode]=={5000000000017}"})
    assert ids_of(barcodes, "itemId") == [item_id]
    assert api.delete(f"/v0/items/{item_id}").status_code == 200
    assert api.get(f"/v0/items/{item_id}").json()["data"]["status"] == 1
    live = api.get("/v0/items", params={"filter": "[sku]=={TEST-STOVE-1}&&[status]!={1}"})
    assert live.json()["metadata"]["count"] == 0
    assert api.post("/v0/items", json={"sku": "X"}).json() == {"message": "name is required"}
    missing = api.get(f"/v0/items/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "not found" in missing.json()["message"]


def test_variable_items_and_children(api: TestClient) -> None:
    parent = item_by_sku(api, "ACME-TENT-2P")
    assert parent["format"] == 2
    children = api.get(f"/v0/items/{parent['itemId']}/children").json()["data"]
    assert sorted(c["sku"] for c in children) == ["ACME-TENT-2P-GREEN", "ACME-TENT-2P-ORANGE"]
    assert {c["variableItemId"] for c in children} == {parent["itemId"]}
    single = api.get(f"/v0/variable-items/{parent['itemId']}").json()["data"]
    assert single["variableAttributes"] == [{"name": "Colour", "values": ["Green", "Orange"]}]
    one = api.post("/v0/items", json={"name": "Mug - Red", "sku": "T-MUG-RED"}).json()
    created = api.post(
        "/v0/variable-items",
        json={"name": "Mug", "sku": "T-MUG", "variantItems": [one["data"]["id"]]},
    )
    assert created.status_code == 200
    again = api.post(
        "/v0/variable-items",
        json={"name": "Mug 2", "sku": "T-MUG-2", "variantItems": [one["data"]["id"]]},
    )
    assert again.status_code == 422
    assert "already belongs" in again.json()["message"]


# -- locations, inventory, adjustments -----------------------------------------------------------


def test_locations_bins_and_patch(api: TestClient) -> None:
    locations = location_ids(api)
    assert set(locations) == {"Leeds DC", "York Store", "Bristol DC", "Returns Bay"}
    leeds = locations["Leeds DC"]
    bins = api.get(f"/v0/locations/{leeds}/bins", params={"filter": "[default]=={1}"})
    assert [b["name"] for b in bins.json()["data"]] == ["Default"]
    assert api.patch(f"/v0/locations/{leeds}", json={"name": "Leeds DC (main)"}).status_code == 200
    assert api.get(f"/v0/locations/{leeds}").json()["data"]["name"] == "Leeds DC (main)"
    assert api.patch(f"/v0/locations/{leeds}", json={"colour": "red"}).status_code == 400


def test_inventory_records_per_item_location_and_bin(api: TestClient) -> None:
    item = item_by_sku(api, "ACME-TENT-2P-GREEN")
    rows = api.get(
        "/v1/inventory-records", params={"filter": f"[itemId]=*{{{item['itemId']}}}"}
    ).json()["data"]
    by_location = {row["locationName"]: row for row in rows}
    assert set(by_location) == {"Leeds DC", "York Store", "Bristol DC"}
    assert by_location["York Store"]["binId"] == "UNASSIGNED"
    assert by_location["Leeds DC"]["binName"] == "Default"
    leeds = by_location["Leeds DC"]
    assert (leeds["onHand"], leeds["quarantined"], leeds["itemSku"]) == (24, 1, item["sku"])
    york = location_ids(api)["York Store"]
    at_york = api.get("/v1/inventory-records", params={"filter": f"[locationId]=={{{york}}}"})
    assert {row["locationName"] for row in at_york.json()["data"]} == {"York Store"}


def stock_at(api: TestClient, item_id: str, location_id: str) -> int:
    flt = f"[itemId]=={{{item_id}}}&&[locationId]=={{{location_id}}}"
    rows = api.get("/v1/inventory-records", params={"filter": flt}).json()["data"]
    return sum(row["onHand"] for row in rows)


def test_adjustments_apply_signed_deltas_and_refuse_negative_stock(api: TestClient) -> None:
    item = item_by_sku(api, "JETBOIL-MINI-01")
    york = location_ids(api)["York Store"]
    before = stock_at(api, item["itemId"], york)
    body = {"locationId": york, "reason": "count", "items": [{"itemId": item["itemId"]}]}
    body["items"][0]["quantity"] = 5
    assert api.post("/v1/adjustments", json=body).status_code == 200
    body["items"][0]["quantity"] = -3
    assert api.post("/v1/adjustments", json=body).status_code == 200
    assert stock_at(api, item["itemId"], york) == before + 2
    body["items"][0]["quantity"] = -(before + 3)
    refused = api.post("/v1/adjustments", json=body)
    assert refused.status_code == 422
    assert "below zero" in refused.json()["message"]
    assert stock_at(api, item["itemId"], york) == before + 2
    nowhere = api.post("/v1/adjustments", json={**body, "locationId": str(uuid.uuid4())})
    assert nowhere.status_code == 422


# -- channels, listings, customers ---------------------------------------------------------------


def test_channels_and_listings(api: TestClient) -> None:
    channels = api.get("/v0/channels", params={"filter": "[type]=={7}"}).json()["data"]
    assert [c["channelId"] for c in channels] == [SHOPLINE_CHANNEL_ID]
    listings = api.get(f"/v0/channels/{SHOPLINE_CHANNEL_ID}/listings", params={"size": 1000})
    skus = {row["sku"] for row in listings.json()["data"]}
    assert "ACME-TENT-2P-GREEN" in skus
    assert "ACME-CHAIR-LITE" not in skus  # in Stokly, not listed on SHOPLINE
    listing = listings.json()["data"][0]
    patched = api.patch(f"/v0/listings/{listing['listingId']}", json={"referenceId": "1601"})
    assert patched.status_code == 200
    assert api.get(f"/v0/listings/{listing['listingId']}").json()["data"]["referenceId"] == "1601"


def test_customers_by_email_and_phone(api: TestClient) -> None:
    by_email = api.get("/v0/customers", params={"filter": "[email]=={ada@example.com}"})
    assert by_email.json()["data"][0]["fullName"] == "Ada Lovelace"
    by_phone = api.get("/v0/customers", params={"filter": "[phone]=={+447700900123}"})
    assert [c["email"] for c in by_phone.json()["data"]] == ["morgan.hale@example.com"]
    created = api.post(
        "/v0/customers",
        json={"name": {"forename": "Kit", "surname": "Marlowe"}, "email": "kit@example.com"},
    )
    customer_id = created.json()["data"]["id"]
    assert api.get(f"/v0/customers/{customer_id}").json()["data"]["fullName"] == "Kit Marlowe"
    assert api.post("/v0/customers", json={"email": "not-an-email"}).status_code == 400


# -- sale orders ---------------------------------------------------------------------------------


def order_body(item: dict[str, Any], reference: str, quantity: int = 2) -> dict[str, Any]:
    return {
        "stage": "order",
        "currency": "GBP",
        "sourceType": "other",
        "sourceId": SHOPLINE_CHANNEL_ID,
        "sourceReferenceId": reference,
        "customerReference": f"SL{reference}",
        "tags": ["shopline"],
        "shipping": {
            "name": {"forename": "Ada", "surname": "Lovelace"},
            "address": {
                "line1": "1 Park Row",
                "line2": "Floor 2",
                "city": "Leeds",
                "region": "West Yorkshire",
                "country": "GB",
                "postcode": "LS1 5AB",
            },
            "option": "RM48",
            "cost": 3.99,
            "tax": 0.67,
        },
        "items": [
            {
                "type": "item",
                "referenceId": item["itemId"],
                "quantity": quantity,
                "displayPrice": 139.95,
                "displayTax": 23.33,
                "displayLineTotal": 139.95 * quantity,
            }
        ],
        "payments": [{"method": 4, "amount": round(139.95 * quantity + 3.99, 2)}],
    }


def test_sale_order_create_read_collect_and_invoice(api: TestClient) -> None:
    item = item_by_sku(api, "JETBOIL-MINI-01")
    leeds = location_ids(api)["Leeds DC"]
    created = api.post("/v2/saleorders", json=order_body(item, "31000001"))
    assert created.status_code == 200
    order_id = created.json()["data"]["id"]

    order = api.get(f"/v2/saleorders/{order_id}").json()["data"]
    assert order["shippingAddressLine1"] == "1 Park Row"
    assert order["shippingAddressLine2"] == "Floor 2"
    assert (order["shippingAddressCity"], order["shippingAddressRegion"]) == (
        "Leeds",
        "West Yorkshire",
    )
    assert "shipping" not in order
    assert (order["stage"], order["itemStatuses"]) == ("order", ["unprocessed"])
    assert order["channelName"].startswith("SHOPLINE")

    search = "[sourceReferenceId]=*{31000001,31000002}&&[sourceId]=={" + SHOPLINE_CHANNEL_ID + "}"
    assert ids_of(api.get("/v2/saleorders", params={"filter": search}), "saleOrderId") == [order_id]

    lines = api.get(f"/v2/saleorders/{order_id}/items").json()["data"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["referenceId"], line["itemSku"], line["quantity"], line["status"]) == (
        item["itemId"],
        "JETBOIL-MINI-01",
        2,
        "unprocessed",
    )
    assert line["displayPrice"] == 139.95

    before = stock_at(api, item["itemId"], leeds)
    collect = {"locationId": leeds, "items": [{"lineId": line["lineId"], "quantity": 2}]}
    collected = api.post(f"/v2/saleorders/{order_id}/collect-items", json=collect)
    assert collected.status_code == 202
    assert stock_at(api, item["itemId"], leeds) == before - 2
    assert api.get(f"/v2/saleorders/{order_id}/items").json()["data"][0]["status"] == "collected"
    again = api.post(f"/v2/saleorders/{order_id}/collect-items", json=collect)
    assert again.status_code == 422

    invoice = {
        "invoices": [
            {
                "status": "paid",
                "currency": "GBP",
                "payments": [{"method": 4, "amount": 279.9}],
                "items": [
                    {
                        "referenceType": "item",
                        "referenceId": item["itemId"],
                        "itemName": item["name"],
                        "quantity": 2,
                        "displayPrice": 139.95,
                        "displayTax": 23.33,
                    }
                ],
            }
        ]
    }
    invoiced = api.post(f"/v2/saleorders/{order_id}/invoices", json=invoice)
    assert invoiced.status_code == 200
    found = api.get("/v0/invoices", params={"filter": f"[saleOrderId]=={{{order_id}}}"})
    rows = found.json()["data"]
    assert len(rows) == 1
    assert rows[0]["saleInvoiceId"] == invoiced.json()["data"]["id"]
    assert (rows[0]["status"], rows[0]["currency"], rows[0]["total"]) == ("paid", "GBP", 279.9)
    assert rows[0]["invoiceNumber"].startswith("INV-")

    patched = api.patch(f"/v2/saleorders/{order_id}", json={"tags": ["shopline", "web"]})
    assert patched.status_code == 200
    assert api.get(f"/v2/saleorders/{order_id}").json()["data"]["tags"] == ["shopline", "web"]
    assert api.patch(f"/v2/saleorders/{order_id}", json={"currency": "EUR"}).status_code == 400


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"items": []}, 400, "items must be a non-empty list"),
        ({"currency": None}, 400, "currency is required"),
        ({"items": [{"referenceId": "no-such-item", "quantity": 1}]}, 422, "not a known item"),
        ({"items": [{"quantity": 1}]}, 400, "referenceId is required"),
        ({"items": [{"referenceId": "$item", "quantity": 0}]}, 400, "positive integer"),
        ({"sourceId": "no-such-channel"}, 422, "not a channel"),
        ({"customer": {"customerId": "nobody"}}, 422, "Customer nobody does not exist"),
        ({"payments": [{"method": "card", "amount": 1}]}, 400, "payment method id"),
    ],
)
def test_sale_order_validation(
    api: TestClient, change: dict[str, Any], status: int, message: str
) -> None:
    item = item_by_sku(api, "JETBOIL-MINI-01")
    body = {**order_body(item, "31000009"), **change}
    for line in body["items"]:
        if line.get("referenceId") == "$item":
            line["referenceId"] = item["itemId"]
    response = api.post("/v2/saleorders", json=body)
    assert response.status_code == status
    assert message in response.json()["message"]


def test_duplicate_sale_orders_are_possible_and_reported(api: TestClient) -> None:
    """Stokly has no idempotency key [C]: the sandbox lets a careless client make duplicates."""
    item = item_by_sku(api, "JETBOIL-MINI-01")
    api.post("/v2/saleorders", json=order_body(item, "31000077"))
    api.post("/v2/saleorders", json=order_body(item, "31000077"))
    assert api.get("/_sandbox/state").json()["data"]["duplicateSaleOrders"] == ["31000077"]


# -- rate limit, persistence, scale --------------------------------------------------------------


def test_over_the_rate_limit_is_429_with_retry_after() -> None:
    with TestClient(make_app(rate_per_minute=5, seed_skus=None)) as client:
        grant(client)
        remaining = [client.get("/v0/locations").headers["x-ratelimit-remaining"] for _ in range(4)]
        assert remaining == ["3", "2", "1", "0"]
        limited = client.get("/v0/locations")
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["x-ratelimit-remaining"] == "0"
        assert "Rate limit" in limited.json()["message"]
        assert client.get("/_sandbox/state").status_code == 200  # the control API is never limited
        client.put("/_sandbox/rate-limit", json={"rate_per_minute": None})
        unlimited = client.get("/v0/locations")
        assert unlimited.status_code == 200
        assert int(unlimited.headers["x-ratelimit-remaining"]) > 3


def test_state_survives_a_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    first = make_app(tmp_path)
    with ServerThread(first) as server, httpx.Client(base_url=server.url) as client:
        token = grant(client)
        created = client.post("/v0/items", json={"name": "Kept", "sku": "KEEP-ME"})
        item_id = created.json()["data"]["id"]
        leeds = {r["name"]: r["locationId"] for r in client.get("/v0/locations").json()["data"]}
        adjustment = {
            "locationId": leeds["Leeds DC"],
            "items": [{"itemId": item_id, "quantity": 7}],
        }
        assert client.post("/v1/adjustments", json=adjustment).status_code == 200
    first.state.sandbox.close()
    assert (tmp_path / "stokly.sqlite3").exists()

    with ServerThread(make_app(tmp_path)) as server, httpx.Client(base_url=server.url) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        item = client.get(f"/v0/items/{item_id}")
        assert item.status_code == 200
        assert item.json()["data"]["sku"] == "KEEP-ME"
        rows = client.get(
            "/v1/inventory-records", params={"filter": f"[itemId]=={{{item_id}}}"}
        ).json()["data"]
        assert [(r["locationName"], r["onHand"]) for r in rows] == [("Leeds DC", 7)]
        count = client.get("/v0/items", params={"size": 1}).json()["metadata"]["count"]
        assert count > 300


def test_seed_scales_to_20000_skus() -> None:
    app = make_app(seed_skus=None)
    counts = seed_demo(app.state.sandbox.store, skus=20_000)
    app.state.sandbox.state.reload()
    known = [e for e in demo_catalogue(20_000, 7) if e.known_to_stokly]
    groups: dict[str, list[Any]] = {}
    for entry in known:
        groups.setdefault(entry.product_key, []).append(entry)
    parents = sum(1 for group in groups.values() if len(group) > 1 or group[0].options)
    assert counts["item"] == len(known) + parents
    assert counts["listing"] == sum(1 for e in known if e.listed_on_shopline)
    assert counts["inventory"] > len(known)
    assert (counts["location"], counts["channel"], counts["saleorder"]) == (4, 2, 4)
    with TestClient(app) as client:
        grant(client)
        wanted = "[sku]=*{ACME-TENT-2P-GREEN,JETBOIL-MINI-01}&&[status]!={1}"
        assert client.get("/v0/items", params={"filter": wanted}).json()["metadata"]["count"] == 2
        total = client.get("/v0/items", params={"size": 1}).json()["metadata"]["count"]
        assert total == counts["item"]
