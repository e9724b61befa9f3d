"""Leases on business keys: one holder at a time, on SQLite and PostgreSQL, even under races."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from stokline.store import Store
from tests.pg import BACKENDS, database_for


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    with database_for(request.param, request, tmp_path) as url, Store(url) as s:
        yield s


def test_a_key_has_one_holder_until_released(store):
    assert store.leases.acquire("demo", "order", ["1", "2"], "run-a") == {"1", "2"}
    assert store.leases.acquire("demo", "order", ["2", "3"], "run-b") == {"3"}
    assert store.leases.acquire("demo", "order", ["1", "2"], "run-a") == {"1", "2"}  # still ours
    assert store.leases.holders("demo", "order", ["1", "2", "3", "4"]) == {
        "1": "run-a",
        "2": "run-a",
        "3": "run-b",
    }
    # Keys are per client and kind.
    assert store.leases.acquire("other", "order", ["1"], "run-b") == {"1"}
    assert store.leases.acquire("demo", "customer", ["1"], "run-b") == {"1"}
    store.leases.release("run-a", ["1"])
    assert store.leases.acquire("demo", "order", ["1", "2"], "run-b") == {"1"}
    store.leases.release("run-a")
    assert store.leases.acquire("demo", "order", ["2"], "run-b") == {"2"}


def test_a_lease_of_a_dead_run_expires_and_a_live_one_is_renewed(store):
    assert store.leases.acquire("demo", "order", ["1"], "dead", ttl=timedelta(seconds=-1))
    assert store.leases.acquire("demo", "order", ["1"], "next") == {"1"}
    assert store.leases.acquire("demo", "order", ["2"], "slow", ttl=timedelta(seconds=-1))
    assert store.leases.renew("slow") == 1
    assert store.leases.acquire("demo", "order", ["2"], "next") == set()


def test_many_keys_are_taken_in_chunks(store):
    keys = [str(i) for i in range(1234)]
    assert store.leases.acquire("demo", "order", keys, "run-a") == set(keys)
    assert store.leases.acquire("demo", "order", [*keys, "new"], "run-b") == {"new"}


def test_racing_runs_never_share_a_key(store):
    keys = [str(i) for i in range(200)]
    taken: dict[str, set[str]] = {}
    barrier = threading.Barrier(4)

    def run(name: str) -> None:
        barrier.wait()
        got: set[str] = set()
        # Overlapping slices in different orders: every pair of runs contends for some keys.
        for start in range(0, 200, 25):
            chunk = keys[start : start + 50]
            got |= store.leases.acquire("demo", "order", chunk[:: 1 if name < "c" else -1], name)
        taken[name] = got

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b", "c", "d")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [k for got in taken.values() for k in got]
    assert sorted(every, key=int) == keys  # each key held by exactly one run


def test_orphaned_keys_are_the_expired_leases_nobody_took(store):
    store.leases.acquire("demo", "order", ["dead-1", "dead-2"], "dead", ttl=timedelta(seconds=-1))
    store.leases.acquire("demo", "order", ["live"], "live")
    store.leases.acquire("demo", "order", ["gone"], "done", ttl=timedelta(seconds=-1))
    store.leases.release("done")  # a run that ended released its leases: nothing orphaned
    store.leases.acquire("other", "order", ["dead-3"], "dead", ttl=timedelta(seconds=-1))
    assert sorted(store.leases.orphaned("demo", "order")) == ["dead-1", "dead-2"]
    assert store.leases.orphaned("demo", "order", limit=1) in (["dead-1"], ["dead-2"])
    assert store.leases.acquire("demo", "order", ["dead-1"], "next") == {"dead-1"}
    assert store.leases.orphaned("demo", "order") == ["dead-2"]
