"""Rate limiting and fault injection of the SHOPLINE sandbox."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from stokline.sandbox.common import ServerThread
from stokline.sandbox.shopline import create_app
from tests.sandbox.conftest import SHOPLINE_PREFIX, SHOPLINE_SECRET, SHOPLINE_TOKEN

AUTH = {"Authorization": f"Bearer {SHOPLINE_TOKEN}"}
PATH = f"{SHOPLINE_PREFIX}/locations/list.json"


@pytest.fixture
def limited() -> Iterator[httpx.Client]:
    """A small bucket (4/s, burst 10) so the limit is reached in a few requests."""
    app = create_app(
        access_token=SHOPLINE_TOKEN,
        app_secret=SHOPLINE_SECRET,
        rate_per_s=4.0,
        burst=10,
        seed=False,
    )
    try:
        with ServerThread(app) as server, httpx.Client(base_url=server.url) as client:
            yield client
    finally:
        app.state.shopline.close()


def test_requests_within_the_burst_are_all_admitted(limited: httpx.Client) -> None:
    statuses = [limited.get(PATH, headers=AUTH).status_code for _ in range(10)]
    assert statuses == [200] * 10


def test_exceeding_the_bucket_gives_429_with_retry_after(limited: httpx.Client) -> None:
    # 1/s drain: ten requests fit in the burst even on a slow machine.
    limited.put("/_sandbox/rate_limit", json={"rate_per_s": 1, "burst": 10})
    for _ in range(10):
        assert limited.get(PATH, headers=AUTH).status_code == 200
    refused = limited.get(PATH, headers=AUTH)
    assert refused.status_code == 429
    assert refused.json() == {"errors": "Too many request"}
    retry_after = int(refused.headers["Retry-After"])
    assert retry_after == 1
    assert refused.headers["traceId"]
    time.sleep(retry_after + 0.05)
    assert limited.get(PATH, headers=AUTH).status_code == 200


def test_paced_client_is_never_limited(limited: httpx.Client) -> None:
    limited.put("/_sandbox/rate_limit", json={"rate_per_s": 50, "burst": 2})
    statuses = []
    for _ in range(12):
        statuses.append(limited.get(PATH, headers=AUTH).status_code)
        time.sleep(0.025)
    assert statuses == [200] * 12


def test_control_api_and_bad_tokens_do_not_use_the_bucket(limited: httpx.Client) -> None:
    for _ in range(15):
        assert limited.get("/_sandbox/health").status_code == 200
        assert limited.get(PATH, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert limited.get(PATH, headers=AUTH).status_code == 200


def test_rate_limit_changes_at_runtime(limited: httpx.Client) -> None:
    assert (
        limited.put("/_sandbox/rate_limit", json={"rate_per_s": None, "burst": 1}).status_code
        == 200
    )
    assert {limited.get(PATH, headers=AUTH).status_code for _ in range(30)} == {200}
    limited.put("/_sandbox/rate_limit", json={"rate_per_s": 1, "burst": 1})
    statuses = [limited.get(PATH, headers=AUTH).status_code for _ in range(3)]
    assert statuses[0] == 200 and 429 in statuses


@pytest.fixture
def faulty() -> Iterator[httpx.Client]:
    app = create_app(
        access_token=SHOPLINE_TOKEN, app_secret=SHOPLINE_SECRET, rate_per_s=None, seed=False
    )
    try:
        with ServerThread(app) as server, httpx.Client(base_url=server.url) as client:
            yield client
    finally:
        app.state.shopline.close()


def test_error_rate_one_gives_only_5xx_in_shopline_shape(faulty: httpx.Client) -> None:
    faulty.put("/_sandbox/faults", json={"error_rate": 1.0, "error_statuses": [500, 502, 503]})
    responses = [faulty.get(PATH, headers=AUTH) for _ in range(30)]
    assert {r.status_code for r in responses} == {500, 502, 503}
    for response in responses:
        assert isinstance(response.json()["code"], str)
        assert response.headers["traceId"]


def test_fault_429_carries_retry_after(faulty: httpx.Client) -> None:
    faulty.put("/_sandbox/faults", json={"rate_limit_rate": 1.0, "retry_after_s": 2})
    response = faulty.get(PATH, headers=AUTH)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {"errors": "Too many request"}


def test_control_api_and_docs_are_never_faulted(faulty: httpx.Client) -> None:
    faulty.put("/_sandbox/faults", json={"error_rate": 1.0})
    assert faulty.get("/_sandbox/health").status_code == 200
    assert faulty.get("/openapi.json").status_code == 200
    assert faulty.get("/docs").status_code == 200


def test_flaky_and_hostile_profiles_mix_statuses(faulty: httpx.Client) -> None:
    faulty.put("/_sandbox/faults", json={"profile": "hostile"})
    # Timeouts and drops are exercised on their own below; here they would only slow the test.
    faulty.put("/_sandbox/faults", json={"timeout_rate": 0, "drop_rate": 0, "latency_ms": [0, 0]})
    counts = Counter(faulty.get(PATH, headers=AUTH).status_code for _ in range(400))
    assert set(counts) <= {200, 429, 500, 502, 503}
    assert counts[200] > 250
    assert counts[429] > 0 and counts[500] + counts[502] + counts[503] > 10
    faulty.put("/_sandbox/faults", json={"profile": "flaky", "latency_ms": [0, 0]})
    flaky = Counter(faulty.get(PATH, headers=AUTH).status_code for _ in range(300))
    assert flaky[200] > 270 and set(flaky) <= {200, 429, 500, 503}


def test_unknown_profile_or_field_is_422(faulty: httpx.Client) -> None:
    unknown = faulty.put("/_sandbox/faults", json={"profile": "chaotic"})
    assert unknown.status_code == 422
    assert "none, flaky, hostile" in unknown.json()["message"]
    assert faulty.put("/_sandbox/faults", json={"explode": True}).status_code == 422
    assert faulty.get("/_sandbox/faults").json()["name"] == "none"


def test_dropped_connection_and_timeout_over_real_http() -> None:
    app = create_app(
        access_token=SHOPLINE_TOKEN, app_secret=SHOPLINE_SECRET, rate_per_s=None, seed=False
    )
    try:
        with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=5) as client:
            client.put("/_sandbox/faults", json={"drop_rate": 1.0})
            with pytest.raises(httpx.RemoteProtocolError):
                client.get(PATH, headers=AUTH)
            client.put(
                "/_sandbox/faults", json={"drop_rate": 0, "timeout_rate": 1.0, "timeout_s": 1}
            )
            with pytest.raises(httpx.ReadTimeout):
                client.get(PATH, headers=AUTH, timeout=0.2)
            patient = client.get(PATH, headers=AUTH, timeout=3)
            assert patient.status_code == 504
            client.put("/_sandbox/faults", json={"profile": "none"})
            assert client.get(PATH, headers=AUTH).status_code == 200
    finally:
        app.state.shopline.close()


def test_limit_maxima_are_enforced_per_resource() -> None:
    app = create_app(
        access_token=SHOPLINE_TOKEN, app_secret=SHOPLINE_SECRET, rate_per_s=None, skus=3200
    )
    state = app.state.shopline.state
    for n in range(80):
        state.create_order({"line_items": [{"sku": "STOVE-MINI", "quantity": 1}], "paid": n % 2})
    for n in range(220):
        state.create_customer({"email": f"bulk{n}@example.com"})
    try:
        with ServerThread(app) as server, httpx.Client(base_url=server.url, headers=AUTH) as client:
            for path, key, maximum in [
                ("/products/products.json", "products", 1000),
                ("/orders.json?status=any", "orders", 100),
                ("/v2/customers.json", "customers", 250),
            ]:
                sep = "&" if "?" in path else "?"
                response = client.get(f"{SHOPLINE_PREFIX}{path}{sep}limit=5000")
                assert response.status_code == 200
                assert len(response.json()[key]) == maximum, key
                assert 'rel="next"' in response.headers["link"]
                default = client.get(f"{SHOPLINE_PREFIX}{path}")
                assert len(default.json()[key]) == 50
    finally:
        app.state.shopline.close()
