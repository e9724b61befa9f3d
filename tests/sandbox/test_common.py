"""The shared sandbox building blocks: LeakyBucket, DocStore, Faults, install_faults, ServerThread."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from stokline.sandbox.common import (
    MALFORMED_KINDS,
    DocStore,
    Faults,
    LeakyBucket,
    ServerThread,
    install_faults,
)

# -- LeakyBucket ----------------------------------------------------------------------------


def test_bucket_admits_capacity_then_says_how_long_to_wait() -> None:
    bucket = LeakyBucket(rate_per_s=4.0, capacity=3)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take()
    assert 0 < wait <= 0.25
    time.sleep(wait + 0.01)
    assert bucket.take() == 0.0


def test_bucket_without_rate_never_limits() -> None:
    bucket = LeakyBucket(rate_per_s=None, capacity=1)
    assert {bucket.take() for _ in range(1000)} == {0.0}


def test_bucket_reconfigures_at_runtime() -> None:
    bucket = LeakyBucket(rate_per_s=1.0, capacity=1)
    assert bucket.take() == 0.0
    assert bucket.take() > 0
    bucket.configure(rate_per_s=None, capacity=1)
    assert bucket.take() == 0.0
    with pytest.raises(ValueError, match="capacity"):
        bucket.configure(rate_per_s=1.0, capacity=0)


def test_bucket_is_thread_safe() -> None:
    bucket = LeakyBucket(rate_per_s=0.001, capacity=50)
    admitted = []

    def worker() -> None:
        admitted.extend(1 for _ in range(20) if bucket.take() == 0.0)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 50


# -- DocStore -------------------------------------------------------------------------------


def test_docstore_crud_and_order() -> None:
    store = DocStore(None)
    first = store.insert("thing", {"n": 1})
    second = store.insert("thing", {"n": 2}, id="b")
    store.insert("other", {"n": 3})
    assert first.isdigit() and second == "b"
    assert [d["n"] for d in store.list("thing")] == [1, 2]
    assert store.count("thing") == 2 and store.count("missing") == 0
    store.update("thing", first, {"n": 10})
    assert store.get("thing", first) == {"n": 10}
    assert [d["n"] for d in store.list("thing")] == [10, 2]
    assert store.delete("thing", "b") is True and store.delete("thing", "b") is False
    assert store.get("thing", "b") is None
    with pytest.raises(KeyError):
        store.update("thing", "nope", {})
    store.clear()
    assert store.count("thing") == 0 and store.count("other") == 0


def test_docstore_sequence_is_monotonic_and_duplicates_fail() -> None:
    store = DocStore(None)
    values = [store.next_seq() for _ in range(5)]
    assert values == sorted(values) and len(set(values)) == 5
    store.insert("thing", {}, id="x")
    with pytest.raises(Exception, match="UNIQUE"):
        store.insert("thing", {}, id="x")


def test_docstore_transaction_rolls_back_as_a_whole() -> None:
    store = DocStore(None)
    store.insert("thing", {"n": 1}, id="a")
    with pytest.raises(RuntimeError), store.transaction():
        store.update("thing", "a", {"n": 2})
        store.insert("thing", {"n": 3}, id="b")
        raise RuntimeError("boom")
    assert store.get("thing", "a") == {"n": 1} and store.get("thing", "b") is None
    with store.transaction(), store.transaction():
        store.insert("thing", {"n": 4}, id="c")
    assert store.get("thing", "c") == {"n": 4}


def test_docstore_bulk_scan_and_get_many() -> None:
    store = DocStore(None)
    ids = store.insert_many("item", [(f"i{n}", {"n": n}) for n in range(20000)])
    assert len(ids) == 20000 and store.count("item") == 20000
    page = store.scan("item", after_seq=store.seq_of("item", "i9"), limit=3)
    assert [doc["n"] for _, doc in page] == [10, 11, 12]
    back = store.scan("item", before_seq=store.seq_of("item", "i9"), descending=True, limit=2)
    assert [doc["n"] for _, doc in back] == [8, 7]
    assert [d["n"] for _, d in store.get_many("item", ["i5", "i2", "nope"])] == [2, 5]


def test_docstore_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "store.sqlite3"
    store = DocStore(path)
    store.insert("thing", {"n": 1}, id="a")
    seq = store.next_seq()
    store.set_meta("k", "v")
    store.close()
    reopened = DocStore(path)
    assert reopened.get("thing", "a") == {"n": 1}
    assert reopened.next_seq() > seq
    assert reopened.get_meta("k") == "v"
    reopened.close()


def test_docstore_is_usable_from_many_threads() -> None:
    store = DocStore(None)

    def worker(prefix: str) -> None:
        for n in range(100):
            with store.transaction():
                store.insert("thing", {"n": n}, id=f"{prefix}{n}")

    threads = [threading.Thread(target=worker, args=(p,)) for p in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count("thing") == 400


# -- Faults ---------------------------------------------------------------------------------


def test_unknown_profile_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid profiles: none, flaky, hostile, malformed"):
        Faults.profile("chaos")


def test_profiles_and_updates() -> None:
    assert Faults.profile("none").draw_request()[0] == "ok"
    hostile = Faults.profile("hostile")
    assert hostile.webhook_copies == 3 and hostile.webhook_reorder
    assert set(hostile.error_statuses) == {500, 502, 503}
    hostile.update(error_rate=0.5, error_statuses=[503])
    assert hostile.error_statuses == (503,)
    with pytest.raises(ValueError, match="unknown fault fields"):
        hostile.update(nonsense=1)


def test_fault_draws_are_deterministic_per_seed() -> None:
    def draws(seed: int) -> list:
        faults = Faults.profile("hostile", seed=seed)
        return [faults.draw_request()[0] for _ in range(300)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    outcomes = set(draws(1))
    assert {"ok", "error", "rate_limit", "timeout", "drop"} <= outcomes


def test_rate_limit_faults_come_in_bursts() -> None:
    faults = Faults(rate_limit_rate=1.0, rate_limit_burst=3)
    faults.draw_request()
    faults.update(rate_limit_rate=0.0)
    assert [faults.draw_request()[0] for _ in range(3)] == ["rate_limit", "rate_limit", "ok"]


# -- install_faults and ServerThread --------------------------------------------------------


def _faulty_app(faults: Faults) -> FastAPI:
    app = FastAPI()

    @app.get("/thing")
    def thing() -> dict:
        return {"ok": True}

    @app.get("/_sandbox/ping")
    def ping() -> dict:
        return {"pong": True}

    def error(status: int, retry_after: float | None) -> JSONResponse:
        headers = {"Retry-After": str(int(retry_after))} if retry_after else {}
        return JSONResponse({"mine": status}, status_code=status, headers=headers)

    install_faults(app, lambda: faults, error)
    return app


def test_install_faults_uses_the_sandboxs_error_body() -> None:
    faults = Faults(error_rate=1.0, error_statuses=(502,))
    with ServerThread(_faulty_app(faults)) as server, httpx.Client(base_url=server.url) as client:
        response = client.get("/thing")
        assert response.status_code == 502 and response.json() == {"mine": 502}
        assert client.get("/_sandbox/ping").status_code == 200
        faults.update(error_rate=0.0, rate_limit_rate=1.0, retry_after_s=3)
        limited = client.get("/thing")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
        faults.update(rate_limit_rate=0.0, drop_rate=1.0)
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/thing")
        faults.update(drop_rate=0.0, latency_ms=(100, 100))
        started = time.monotonic()
        assert client.get("/thing").status_code == 200
        assert time.monotonic() - started >= 0.1


def test_server_thread_picks_a_free_port_and_stops() -> None:
    app = FastAPI()

    @app.get("/")
    def root() -> dict:
        return {"ok": True}

    server = ServerThread(app).start()
    try:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(server.url + "/").json() == {"ok": True}
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/", timeout=1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"error_rate": 1.5}, "between 0 and 1"),
        ({"drop_rate": -0.1}, "between 0 and 1"),
        ({"error_statuses": [200]}, "400-599"),
        ({"latency_ms": [50, 10]}, "low <= high"),
        ({"colour": "red"}, "unknown fault fields"),
    ],
)
def test_fault_updates_are_validated(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults().update(**changes)


# -- malformed answers ----------------------------------------------------------------------


def test_the_malformed_profile_and_its_fields() -> None:
    faults = Faults.profile("malformed")
    assert faults.malformed_rate > 0 and set(faults.malformed_kinds) == set(MALFORMED_KINDS)
    assert Faults.profile("hostile").malformed_rate == 0  # chaos runs keep their figures
    faults.update(malformed_rate=0.5, malformed_kinds=["truncated", "html_502", "truncated"])
    assert faults.malformed_kinds == ("truncated", "html_502")
    assert faults.as_dict()["malformed_kinds"] == ("truncated", "html_502")
    with pytest.raises(ValueError, match="unknown: gibberish"):
        faults.update(malformed_kinds=["truncated", "gibberish"])
    with pytest.raises(ValueError, match="malformed_rate must be between 0 and 1"):
        faults.update(malformed_rate=2)
    with pytest.raises(ValueError, match="list of kinds"):
        faults.update(malformed_kinds=3)


def test_malformed_draws_depend_on_the_request_not_on_the_interleaving() -> None:
    def outcomes(order: list[str], seed: int = 5) -> dict[str, list[str | None]]:
        faults = Faults(malformed_rate=0.5, seed=seed)
        seen: dict[str, list[str | None]] = {}
        for path in order:
            drawn = faults.draw_malformed("GET", path)
            seen.setdefault(path, []).append(drawn.kind if drawn else None)
        return seen

    paths = ["/a", "/b", "/c"] * 20
    shuffled = sorted(paths, key=lambda p: {"/c": 0, "/a": 1, "/b": 2}[p])
    assert outcomes(paths) == outcomes(shuffled)
    assert outcomes(paths) != outcomes(paths, seed=6)
    drawn = [k for ks in outcomes(paths).values() for k in ks]
    assert None in drawn and len({k for k in drawn if k}) >= 4


def test_malformed_draws_ignore_the_ids_in_a_path() -> None:
    """SHOPLINE ids hold the time they were made and Stokly ids are random: a rerun with the
    same seed must still break the same requests."""

    def kinds(*paths: str) -> list[str | None]:
        faults = Faults(malformed_rate=0.5, seed=9)
        return [(d.kind if (d := faults.draw_malformed("GET", p)) else None) for p in paths]

    first = [f"/orders/21051796614{n:06d}/transactions.json" for n in range(30)]
    again = [f"/orders/99051796614{n:06d}/transactions.json" for n in range(30)]
    assert kinds(*first) == kinds(*again)
    uuids = [f"/v2/saleorders/{n:08x}-24ed-46a4-ab4c-b2424a23d596/payments" for n in range(30)]
    assert kinds(*uuids) == kinds(*[u.replace("b2424a23d596", "000000000000") for u in uuids])


THINGS = [
    {"id": "t1", "sku": "TENT", "quantity": 3, "lines": [{"sku": "PEG", "quantity": 2}]},
    {"id": "t2", "sku": "STOVE", "quantity": 1, "lines": []},
]


def _malformed_app(faults: Faults, calls: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/things")
    def things() -> dict:
        return {"things": THINGS}

    @app.get("/v0/items")
    def items() -> dict:
        return {"metadata": {"count": 9}, "data": THINGS}

    @app.post("/things")
    def create() -> dict:
        calls.append("create")
        return {"thing": {"id": "t3"}}

    @app.get("/_sandbox/things")
    def control() -> dict:
        return {"things": THINGS}

    def error(status: int, retry_after: float | None) -> JSONResponse:
        return JSONResponse({"mine": status}, status_code=status)

    install_faults(app, lambda: faults, error)
    return app


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_each_malformed_kind_is_what_it_says(kind: str) -> None:
    faults = Faults(malformed_rate=1.0, malformed_kinds=(kind,))
    calls: list[str] = []
    with TestClient(_malformed_app(faults, calls)) as client:
        assert client.get("/_sandbox/things").json() == {"things": THINGS}  # never faulted
        response = client.get("/things")
        original = json.dumps({"things": THINGS}, separators=(",", ":")).encode()
        if kind == "truncated":
            assert response.status_code == 200 and original.startswith(response.content)
            assert 0 < len(response.content) < len(original)
        elif kind.startswith("html_"):
            assert response.status_code == int(kind[5:])
            assert response.headers["content-type"].startswith("text/html")
            assert b"<html" in response.content.lower()
        elif kind == "empty_page":  # SHOPLINE's come from its pagination; a Stokly envelope here
            assert response.json() == {"things": THINGS}
            assert client.get("/v0/items").json() == {"metadata": {"count": 9}, "data": []}
        else:
            body = response.json()
            records = body["things"]
            if kind == "extra_fields":
                assert all(r["x_sandbox_unknown"] for r in records)
                stripped = [{k: r[k] for k in THINGS[0] if k in r} for r in records]
                assert stripped == THINGS and "x_sandbox_envelope" in body
            elif kind == "wrong_types":
                broken = [r for r, t in zip(records, THINGS, strict=True) if r != t]
                assert len(broken) == 1
                (record,) = broken  # a list for the record, its id an object, or "abc" for a count
                assert (
                    record == [THINGS[records.index(record)]]
                    or isinstance(record["id"], dict)
                    or '"quantity":"abc"' in json.dumps(record, separators=(",", ":"))
                )
            else:  # missing_fields
                missing = [r for r in records if "id" not in r or "sku" not in r]
                nested = [r for r in records if r["lines"] and "sku" not in r["lines"][0]]
                assert len(missing) + len(nested) == 1
        client.post("/things")
        assert calls == ([] if kind.startswith("html_") else ["create"])
    # Counted when sent: both answers to /things, or for empty_page only the /v0/items page.
    assert faults.injected == {kind: 1 if kind == "empty_page" else 2}
