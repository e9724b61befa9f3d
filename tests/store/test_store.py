"""The state store on SQLite (file-backed, where concurrency matters) and on PostgreSQL.

Every test taking ``store`` runs on both backends: the server is started by the suite itself
(tests/pg.py), so "works on PostgreSQL" is checked on every run, not by hand.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from stokline.config.schema import load_schema
from stokline.store import REASONS, Store
from stokline.store import inbox as inbox_module
from tests.pg import BACKENDS, database_for


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    with database_for(request.param, request, tmp_path) as url, Store(url) as s:
        yield s


def test_default_location_and_url_from_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STOKLINE_DATABASE_URL", raising=False)
    with Store() as s:
        assert s.url == "sqlite:///.stokline/state.db"
    assert (tmp_path / ".stokline" / "state.db").is_file()
    monkeypatch.setenv("STOKLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    with Store() as s:
        s.cursors.set("c", "orders", "x")
    assert (tmp_path / "other.db").is_file()


def test_inbox_keeps_one_row_per_webhook_id_even_when_deliveries_race(store):
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def deliver():
        barrier.wait()
        results.append(store.inbox.add("demo", "wh-1", "orders/paid", b'{"id":"1"}'))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert store.inbox.count("demo") == 1
    assert store.inbox.add("other-client", "wh-1", "orders/paid", b"{}")  # ids are per client


def test_concurrent_claims_never_share_an_event(store):
    for i in range(60):
        store.inbox.add("demo", f"wh-{i}", "orders/paid", b"{}")
    claimed: list[list[int]] = []
    barrier = threading.Barrier(4)

    def worker(n):
        barrier.wait()
        got = []
        while batch := store.inbox.claim("demo", f"worker-{n}", limit=7):
            got += [e.id for e in batch]
        claimed.append(got)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for got in claimed for i in got]
    assert len(every) == 60 and len(set(every)) == 60


def test_claims_of_a_crashed_run_expire(store, monkeypatch):
    store.inbox.add("demo", "wh-1", "orders/paid", b"{}")
    [first] = store.inbox.claim("demo", "crashed")
    assert store.inbox.claim("demo", "next") == []
    monkeypatch.setattr(inbox_module, "CLAIM_EXPIRY", timedelta(seconds=-1))
    [again] = store.inbox.claim("demo", "next")
    assert again.id == first.id and again.attempts == 2


def test_inbox_lifecycle(store):
    for i in range(3):
        store.inbox.add("demo", f"wh-{i}", "orders/paid", f'{{"n":{i}}}'.encode())
    a, b, c = store.inbox.claim("demo", "w")
    assert [a.body, b.body] == [b'{"n":0}', b'{"n":1}']
    store.inbox.done([a.id])
    store.inbox.release(b.id, "Stokly timed out")
    store.inbox.poison(c.id, "not JSON")
    assert store.inbox.count("demo", "done") == 1
    assert store.inbox.count("demo", "poison") == 1
    assert [e.id for e in store.inbox.claim("demo", "w2")] == [b.id]
    assert store.inbox.oldest_pending("demo") is not None
    store.inbox.done([b.id])
    assert store.inbox.oldest_pending("demo") is None


def test_exception_lifecycle(store):
    first = store.exceptions.raise_(
        "demo", "unmapped_sku", "order", "1001", "SKU X unknown", team="ecommerce"
    )
    assert (first.status, first.attempts, first.severity) == ("open", 1, "critical")
    assert "override" in first.action
    again = store.exceptions.raise_(
        "demo", "unmapped_sku", "order", "1001", "SKU X still unknown", team="ecommerce"
    )
    assert (again.id, again.attempts, again.message) == (first.id, 2, "SKU X still unknown")
    assert again.last_seen >= first.last_seen and again.first_seen == first.first_seen
    assert store.exceptions.mark_retrying(first.id)
    assert store.exceptions.resolve_entity("demo", "order", "1001", "imported") == [first.id]
    resolved = store.exceptions.get(first.id)
    assert resolved.status == "resolved" and resolved.resolution == "imported"
    reopened = store.exceptions.raise_(
        "demo", "unmapped_sku", "order", "1001", "back", team="ecommerce"
    )
    assert reopened.status == "open" and reopened.resolved_at is None


def test_an_ignored_exception_stays_ignored(store):
    rec = store.exceptions.raise_(
        "demo", "customer_conflict", "order", "7", "two customers", team="ecommerce"
    )
    store.exceptions.ignore(rec.id, "known duplicate household")
    again = store.exceptions.raise_(
        "demo", "customer_conflict", "order", "7", "two customers", team="ecommerce"
    )
    assert again.status == "ignored" and again.attempts == 2


def test_exception_filters_and_unknown_codes(store):
    store.exceptions.raise_("demo", "unmapped_sku", "order", "1", "m", team="ecommerce")
    store.exceptions.raise_("demo", "tax_mismatch", "order", "2", "m", team="finance")
    store.exceptions.raise_("other", "tax_mismatch", "order", "2", "m", team="finance")
    assert len(store.exceptions.list(client="demo")) == 2
    assert [e.code for e in store.exceptions.list(team="finance", client="demo")] == [
        "tax_mismatch"
    ]
    assert len(store.exceptions.list(code="tax_mismatch", status=("open", "retrying"))) == 2
    with pytest.raises(ValueError, match="unknown exception code 'oops'"):
        store.exceptions.raise_("demo", "oops", "order", "1", "m", team="ecommerce")


def test_reason_codes_are_the_codes_mapping_files_assign_owners_to():
    owners = load_schema()["properties"]["operating_model"]["properties"]["owners"]["properties"]
    assert set(owners) == set(REASONS)


def test_links_cursors_levels_batches_audit(store):
    store.links.put("demo", "order", "s1", "k1", {"name": "#1001"})
    store.links.put("demo", "order", "s1", "k1b")
    assert store.links.get("demo", "order", "s1").stokly_id == "k1b"
    assert set(store.links.get_many("demo", "order", ["s1", "s2"])) == {"s1"}
    assert store.links.by_stokly("demo", "order", "k1b").shopline_id == "s1"
    many = [f"s{i}" for i in range(1200)]
    assert store.links.get_many("demo", "order", many).keys() == {"s1"}  # chunked look-up

    assert store.cursors.get("demo", "orders") is None
    store.cursors.set("demo", "orders", "2026-11-27T00:00:00Z")
    store.cursors.set("demo", "orders", "2026-11-27T01:00:00Z")
    assert store.cursors.get("demo", "orders") == "2026-11-27T01:00:00Z"

    store.levels.record("demo", [("i1", "7001", 5), ("i2", "7001", 0)])
    store.levels.record("demo", [("i1", "7001", 4)])
    assert store.levels.all("demo") == {("i1", "7001"): 4, ("i2", "7001"): 0}
    store.levels.forget("demo", [("i1", "7001")])
    assert store.levels.all("demo") == {("i2", "7001"): 0}

    assert store.batches.claim("demo", "2026-11-26|paypal|GBP", {"debit": "10.00"})
    assert not store.batches.claim("demo", "2026-11-26|paypal|GBP")
    store.batches.mark_posted("demo", "2026-11-26|paypal|GBP", "journal-1")
    batch = store.batches.get("demo", "2026-11-26|paypal|GBP")
    assert (batch.status, batch.journal_id, batch.totals) == (
        "posted",
        "journal-1",
        {"debit": "10.00"},
    )

    store.audit.record(
        "demo", "orders", "stokly", "create_sale_order", "order:s1", "k1", {"lines": 2}
    )
    [entry] = store.audit.list("demo", "order:s1")
    assert (entry.system, entry.action, entry.details) == (
        "stokly",
        "create_sale_order",
        {"lines": 2},
    )
    with pytest.raises(ValueError):
        store.audit.record("demo", "orders", "erp", "x", "k")


def test_state_survives_reopening(store):
    url = store.url
    store.close()
    with Store(url) as s:
        s.inbox.add("demo", "wh-1", "orders/paid", b"{}")
    with Store(url) as s:
        assert s.inbox.count("demo") == 1
        assert not s.inbox.add("demo", "wh-1", "orders/paid", b"{}")
