"""The shared sandbox building blocks: LeakyBucket, DocStore, Faults, install_faults, ServerThread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from stokline.sandbox.common import DocStore, Faults, LeakyBucket, ServerThread, install_faults

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
    with pytest.raises(ValueError, match="valid profiles: none, flaky, hostile"):
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
