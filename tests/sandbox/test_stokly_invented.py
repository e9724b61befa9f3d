"""The Stokly sandbox's invented [I] contracts and its control API."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stokline.sandbox.stokly import SHOPLINE_CHANNEL_ID, create_app
from stokline.sandbox.stokly.invented import INVENTED_PATHS

ACCOUNT, CLIENT_ID, SECRET = "demo-outdoor", "sandbox-client", "sandbox-secret-value"


@pytest.fixture
def api() -> Iterator[TestClient]:
    app = create_app(
        account_key=ACCOUNT,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        rate_per_minute=None,
        seed_skus=300,
    )
    with TestClient(app) as client:
        signature = hmac.new(SECRET.encode(), CLIENT_ID.encode(), hashlib.sha256).hexdigest()
        body = {"accountkey": ACCOUNT, "clientId": CLIENT_ID, "signature": signature}
        token = client.post("/v1/grant", json=body).json()["data"]["authenticationResult"]
        client.headers["Authorization"] = f"Bearer {token['accessToken']}"
        yield client


def item_id(api: TestClient, sku: str) -> str:
    return api.get("/v0/items", params={"filter": f"[sku]=={{{sku}}}"}).json()["data"][0]["itemId"]


def location_id(api: TestClient, name: str) -> str:
    rows = api.get("/v0/locations", params={"filter": f"[name]=={{{name}}}"}).json()["data"]
    return rows[0]["locationId"]


def new_order(api: TestClient, reference: str, lines: list[tuple[str, int]], **extra: Any) -> str:
    body = {
        "currency": "GBP",
        "sourceId": SHOPLINE_CHANNEL_ID,
        "sourceReferenceId": reference,
        "items": [
            {"referenceId": item_id(api, sku), "quantity": qty, "displayPrice": 10.0}
            for sku, qty in lines
        ],
        "payments": [{"method": 4, "amount": 10.0 * sum(q for _, q in lines)}],
        **extra,
    }
    response = api.post("/v2/saleorders", json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def events(api: TestClient, after: str = "0", **params: Any) -> dict[str, Any]:
    response = api.get("/v0/events", params={"after": after, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_every_invented_path_is_in_the_openapi_document(api: TestClient) -> None:
    def shape(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path)

    served = {
        (method.upper(), shape(path))
        for path, operations in api.get("/openapi.json").json()["paths"].items()
        for method in operations
    }
    assert {(method, shape(path)) for method, path in INVENTED_PATHS} <= served
    assert ("POST", "/_sandbox/dispatch") in served


def test_partial_then_full_shipment_with_tracking(api: TestClient) -> None:
    leeds = location_id(api, "Leeds DC")
    order_id = new_order(api, "41000001", [("JETBOIL-MINI-01", 2), ("ACME-BOTTLE-1L", 1)])
    lines = api.get(f"/v2/saleorders/{order_id}/items").json()["data"]
    stove = next(line for line in lines if line["itemSku"] == "JETBOIL-MINI-01")
    first = api.post(
        f"/v2/saleorders/{order_id}/shipments",
        json={
            "locationId": leeds,
            "carrier": "royal-mail",
            "trackingNumbers": ["RM100000001GB"],
            "items": [{"lineId": stove["lineId"], "quantity": 1}],
        },
    )
    assert first.status_code == 200, first.text
    statuses = api.get(f"/v2/saleorders/{order_id}").json()["data"]["itemStatuses"]
    assert statuses == ["partially_dispatched", "unprocessed"]
    second = api.post(
        f"/v2/saleorders/{order_id}/shipments",
        json={"locationId": leeds, "carrier": "dpd", "trackingNumbers": ["DPD-2"]},
    )
    assert second.status_code == 200
    order = api.get(f"/v2/saleorders/{order_id}").json()["data"]
    assert order["itemStatuses"] == ["dispatched"]
    assert order["carrierReference"] == "RM100000001GB"
    shipments = api.get(f"/v2/saleorders/{order_id}/shipments").json()["data"]
    assert [(s["trackingNumbers"], sum(i["quantity"] for i in s["items"])) for s in shipments] == [
        (["RM100000001GB"], 1),
        (["DPD-2"], 2),
    ]
    flt = f"[sourceReferenceId]=={{41000001}}&&[sourceId]=={{{SHOPLINE_CHANNEL_ID}}}"
    assert api.get("/v0/shipments", params={"filter": flt}).json()["metadata"]["count"] == 2
    nothing_left = api.post(
        f"/v2/saleorders/{order_id}/shipments", json={"locationId": leeds, "carrier": "dpd"}
    )
    assert nothing_left.status_code == 422
    assert "nothing left to ship" in nothing_left.json()["message"]
    cancelled = api.patch(
        f"/v0/shipments/{shipments[1]['shipmentId']}", json={"status": "cancelled"}
    )
    assert cancelled.status_code == 200
    assert api.get(f"/v2/saleorders/{order_id}").json()["data"]["itemStatuses"] == [
        "collected",
        "partially_dispatched",
    ]


def test_change_feed_is_ordered_and_resumes_from_its_cursor(api: TestClient) -> None:
    start = events(api)
    assert start["data"] == []  # seeding is history, not news
    cursor = start["metadata"]["cursor"]
    leeds = location_id(api, "Leeds DC")
    stove = item_id(api, "JETBOIL-MINI-01")
    for delta in (5, -2, 3):
        body = {"locationId": leeds, "items": [{"itemId": stove, "quantity": delta}]}
        assert api.post("/v1/adjustments", json=body).status_code == 200
    order_id = new_order(api, "41000002", [("JETBOIL-MINI-01", 1)])
    api.post("/_sandbox/dispatch", json={"saleOrderId": order_id, "location": "Leeds DC"})

    page = events(api, cursor, size=2)
    assert [e["data"]["delta"] for e in page["data"]] == [5, -2]
    assert page["metadata"]["hasMore"] is True
    rest = events(api, page["metadata"]["cursor"], size=100)
    types = [e["type"] for e in rest["data"]]
    assert types == [
        "stock.movement",
        "saleorder.created",
        "stock.movement",
        "shipment.created",
    ]
    assert [e["data"].get("reason") for e in rest["data"]][::2] == ["adjustment", "collection"]
    everything = page["data"] + rest["data"]
    cursors = [int(e["cursor"]) for e in everything]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    assert rest["metadata"]["hasMore"] is False
    done = events(api, rest["metadata"]["cursor"])
    assert done["data"] == [] and done["metadata"]["cursor"] == rest["metadata"]["cursor"]

    only = events(api, cursor, type="shipment.created")
    assert [e["type"] for e in only["data"]] == ["shipment.created"]
    assert only["data"][0]["data"]["sourceReferenceId"] == "41000002"
    bad = api.get("/v0/events", params={"after": "yesterday"})
    assert bad.status_code == 400
    assert "cursor" in bad.json()["message"]


def journal(reference: str, credit_sales: float) -> dict[str, Any]:
    return {
        "reference": reference,
        "date": "2026-11-26",
        "currency": "GBP",
        "description": "SHOPLINE takings",
        "lines": [
            {"account": "1210", "debit": 120.0, "credit": 0},
            {"account": "4000", "debit": 0, "credit": credit_sales},
            {"account": "2200", "debit": 0, "credit": 20.0},
        ],
    }


def test_journals_must_balance_and_post_once(api: TestClient) -> None:
    posted = api.post("/v0/journals", json=journal("2026-11-26:shopline_payments:GBP", 100.0))
    assert posted.status_code == 200
    journal_id = posted.json()["data"]["id"]
    stored = api.get(f"/v0/journals/{journal_id}").json()["data"]
    assert (stored["total"], stored["status"], len(stored["lines"])) == (120.0, "posted", 3)

    unbalanced = api.post("/v0/journals", json=journal("2026-11-26:paypal:GBP", 99.99))
    assert unbalanced.status_code == 422
    assert "not balanced" in unbalanced.json()["message"]
    assert "0.01" in unbalanced.json()["message"]

    again = api.post("/v0/journals", json=journal("2026-11-26:shopline_payments:GBP", 100.0))
    assert again.status_code == 409
    assert again.json()["journalId"] == journal_id

    one_sided = journal("x", 100.0)
    one_sided["lines"][0]["credit"] = 5
    assert api.post("/v0/journals", json=one_sided).status_code == 400
    assert api.get("/v0/journals").json()["metadata"]["count"] == 1


def test_refunds_and_payments_carry_channel_and_gateway_ids(api: TestClient) -> None:
    order_id = new_order(api, "41000003", [("ACME-BOTTLE-1L", 2)])
    line = api.get(f"/v2/saleorders/{order_id}/items").json()["data"][0]
    payment = {
        "method": 4,
        "gateway": "shopline_payments",
        "transactionId": "tx_1",
        "amount": 20.0,
        "fee": 0.5,
    }
    assert api.post(f"/v2/saleorders/{order_id}/payments", json=payment).status_code == 200
    assert api.post(f"/v2/saleorders/{order_id}/payments", json=payment).status_code == 409
    rows = api.get("/v0/payments", params={"filter": "[transactionId]=={tx_1}"}).json()["data"]
    assert [(r["saleOrderId"], r["gateway"], r["fee"]) for r in rows] == [
        (order_id, "shopline_payments", 0.5)
    ]

    refund = {
        "sourceReferenceId": "RF-1",
        "reason": "damaged",
        "amount": 10.0,
        "items": [{"lineId": line["lineId"], "quantity": 1, "amount": 10.0}],
        "payments": [{"method": 4, "amount": 10.0, "transactionId": "tx_r1"}],
    }
    created = api.post(f"/v2/saleorders/{order_id}/refunds", json=refund)
    assert created.status_code == 200
    stored = api.get(f"/v2/saleorders/{order_id}/refunds").json()["data"][0]
    assert stored["creditNoteNumber"].startswith("CN-")
    assert api.post(f"/v2/saleorders/{order_id}/refunds", json=refund).status_code == 409
    too_much = {**refund, "sourceReferenceId": "RF-2", "amount": 30.0}
    too_much["items"] = [{"lineId": line["lineId"], "quantity": 2, "amount": 30.0}]
    response = api.post(f"/v2/saleorders/{order_id}/refunds", json=too_much)
    assert response.status_code == 422
    assert "exceed" in response.json()["message"]
    mismatch = {**refund, "sourceReferenceId": "RF-3", "amount": 12.0}
    assert api.post(f"/v2/saleorders/{order_id}/refunds", json=mismatch).status_code == 422


def test_open_orders_allocate_stock_until_collected(api: TestClient) -> None:
    leeds = location_id(api, "Leeds DC")
    stove = item_id(api, "JETBOIL-MINI-01")
    flt = f"[itemId]=={{{stove}}}&&[locationId]=={{{leeds}}}"

    def allocated() -> int:
        rows = api.get("/v0/allocations", params={"filter": flt}).json()["data"]
        return sum(row["allocated"] for row in rows)

    base = allocated()
    order_id = new_order(api, "41000004", [("JETBOIL-MINI-01", 3)], locationId=leeds)
    assert allocated() == base + 3
    line = api.get(f"/v2/saleorders/{order_id}/items").json()["data"][0]
    collect = {"locationId": leeds, "items": [{"lineId": line["lineId"], "quantity": 2}]}
    assert api.post(f"/v2/saleorders/{order_id}/collect-items", json=collect).status_code == 202
    assert allocated() == base + 1
    assert api.patch(f"/v2/saleorders/{order_id}", json={"stage": "removed"}).status_code == 200
    assert allocated() == base


def test_control_api_drives_the_warehouse(api: TestClient) -> None:
    stove = item_id(api, "JETBOIL-MINI-01")
    york = location_id(api, "York Store")
    flt = f"[itemId]=={{{stove}}}&&[locationId]=={{{york}}}"

    def on_hand() -> int:
        rows = api.get("/v1/inventory-records", params={"filter": flt}).json()["data"]
        return sum(row["onHand"] for row in rows)

    before = on_hand()
    receipt = {"location": "york store", "items": [{"sku": "jetboil-mini-01", "quantity": 12}]}
    assert api.post("/_sandbox/goods-receipt", json=receipt).status_code == 200
    assert on_hand() == before + 12
    receipt["items"][0]["quantity"] = -1
    assert api.post("/_sandbox/goods-receipt", json=receipt).status_code == 400
    count = {"location": "York Store", "items": [{"sku": "JETBOIL-MINI-01", "quantity": -4}]}
    assert api.post("/_sandbox/adjust", json=count).status_code == 200
    assert on_hand() == before + 8
    held = {"location": "York Store", "items": [{"sku": "JETBOIL-MINI-01", "quantity": 2}]}
    rows = api.post("/_sandbox/quarantine", json=held).json()["data"]
    assert [(row["onHand"], row["quarantined"]) for row in rows] == [(before + 8, 2)]
    held["items"][0]["quantity"] = 0
    assert api.post("/_sandbox/quarantine", json=held).status_code == 200
    unknown = api.post("/_sandbox/adjust", json={**count, "location": "Mars"})
    assert unknown.status_code == 404
    assert "Leeds DC" in unknown.json()["message"]

    new_order(api, "41000005", [("JETBOIL-MINI-01", 2), ("ACME-BOTTLE-1L", 1)])
    partial = api.post(
        "/_sandbox/dispatch",
        json={
            "sourceReferenceId": "41000005",
            "location": "York Store",
            "trackingNumbers": ["RM1"],
            "items": [{"sku": "JETBOIL-MINI-01", "quantity": 1}],
        },
    )
    assert partial.status_code == 200, partial.text
    assert partial.json()["data"]["items"][0]["quantity"] == 1
    assert on_hand() == before + 7


def test_faults_rate_limit_and_reset_at_runtime(api: TestClient) -> None:
    hostile = api.put("/_sandbox/faults", json={"profile": "hostile", "changes": {"error_rate": 1}})
    assert hostile.json()["data"]["name"] == "hostile"
    failing = api.get("/v0/locations")
    assert failing.status_code in (500, 502, 503)
    assert set(failing.json()) == {"message"}
    assert api.get("/_sandbox/faults").status_code == 200  # control stays reachable
    bad = api.put("/_sandbox/faults", json={"changes": {"no_such_knob": 1}})
    assert bad.status_code == 400
    assert "valid fields" in bad.json()["message"]
    api.put("/_sandbox/faults", json={"profile": "none"})
    assert api.get("/v0/locations").status_code == 200

    api.put("/_sandbox/rate-limit", json={"rate_per_minute": 2})
    assert api.get("/v0/locations").status_code == 200
    assert api.get("/v0/locations").status_code == 200
    assert api.get("/v0/locations").status_code == 429
    api.put("/_sandbox/rate-limit", json={"rate_per_minute": None})

    new_order(api, "41000006", [("ACME-BOTTLE-1L", 1)])
    reset = api.post("/_sandbox/reset", json={"seed": True, "skus": 50})
    counts = reset.json()["data"]["counts"]
    assert counts["saleorder"] == 4 and counts["token"] == 0
    assert api.get("/v0/items").status_code == 401  # a reset forgets issued tokens too
