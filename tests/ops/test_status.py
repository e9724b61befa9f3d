"""Health at a glance from a state store with known exceptions, inbox rows and activity."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from stokline.config import load_mapping
from stokline.ops.status import ClientStatus, collect_status, health_of
from stokline.ops.status_view import age, as_json, render_markdown, render_table
from stokline.store import Store
from stokline.store.tables import cursors, inbox

ROOT = Path(__file__).resolve().parents[2]
CLIENT = "demo-outdoor"


@pytest.mark.parametrize(
    ("lag", "every", "health"),
    [
        (None, timedelta(minutes=2), "never"),
        (timedelta(minutes=1), None, "on demand"),
        (timedelta(minutes=2, seconds=50), timedelta(minutes=2), "ok"),  # a minute's grace
        (timedelta(minutes=3, seconds=30), timedelta(minutes=2), "late"),
        (timedelta(minutes=6), timedelta(minutes=2), "overdue"),  # 3 × the period
        (timedelta(hours=26), timedelta(days=1), "ok"),  # a daily sync: 10 % grace
        (timedelta(hours=27), timedelta(days=1), "late"),
    ],
)
def test_health(lag: timedelta | None, every: timedelta | None, health: str) -> None:
    assert health_of(lag, every) == health


def test_age_reads_like_a_person_would_say_it() -> None:
    assert [age(timedelta(seconds=s)) for s in (5, 180, 7500, 3600, 93600, 86400)] == [
        "5 s",
        "3 min",
        "2 h 5 min",
        "1 h",
        "1 d 2 h",
        "1 d",
    ]
    assert age(None) == "—"


@pytest.fixture
def status(tmp_path: Path) -> ClientStatus:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    raise_ = store.exceptions.raise_
    for i in range(3):
        raise_(CLIENT, "unmapped_sku", "order", f"u{i}", "SKU X", team="ecommerce")
    raise_(CLIENT, "customer_conflict", "order", "c1", "two customers", team="ecommerce")
    raise_(CLIENT, "tax_mismatch", "order", "t1", "VAT 21%", team="finance")
    resolved = raise_(CLIENT, "tax_mismatch", "order", "t2", "VAT 22%", team="finance")
    store.exceptions.resolve(resolved.id)
    raise_("peak-cycles", "unmapped_sku", "order", "p1", "other client", team="operations")
    for webhook in ("w1", "w2", "w3"):
        store.inbox.add(CLIENT, webhook, "orders/paid", b"{}")
    store.inbox.add(CLIENT, "bad", "orders/paid", b"x", status="poison")
    store.inbox.add("peak-cycles", "w9", "orders/paid", b"{}")
    store.inbox.claim(CLIENT, "worker", limit=1)
    # The stock pass wrote 20 minutes before the status is taken; the orders sweep moved its
    # cursor 90 s before; the oldest delivery waits for 7 minutes.
    store.audit.record(CLIENT, "stokline.sync.stock", "shopline", "set_level", "item:1")
    at = store.audit.list(CLIENT)[0].at + timedelta(minutes=20)
    store.cursors.set(CLIENT, "orders", "2025-01-01T00:00:00+00:00")
    with store.engine.begin() as conn:
        conn.execute(update(cursors).values(updated_at=at - timedelta(seconds=90)))
        conn.execute(update(inbox).values(received_at=at - timedelta(minutes=2)))
        conn.execute(
            update(inbox)
            .where(inbox.c.webhook_id == "w1")
            .values(received_at=at - timedelta(minutes=7))
        )
    mapping = load_mapping(ROOT / "mappings" / "demo.yaml")
    note = "the Prefect API does not answer: last activity from the state store instead"
    return asyncio.run(collect_status(mapping, store, None, note=note, at=at))


def test_without_prefect_the_store_stands_in_and_says_so(status: ClientStatus) -> None:
    assert status.runs_from == "store" and "does not answer" in status.note
    rows = {r.sync: r for r in status.syncs}
    assert list(rows) == ["stock", "catalogue", "orders", "fulfilment", "finance"]
    assert (rows["stock"].source, rows["stock"].lag) == ("store", timedelta(minutes=20))
    assert rows["stock"].health == "overdue"  # every 5 minutes, missed_runs 3
    assert rows["orders"].source == "store" and rows["orders"].health == "ok"
    assert (rows["catalogue"].health, rows["catalogue"].last_success) == ("never", None)
    assert rows["orders"].moved is None and rows["orders"].last_run is None


def test_open_exceptions_by_team_and_severity(status: ClientStatus) -> None:
    ex = status.exceptions
    assert ex.total == 5
    assert ex.by_severity == {"critical": 3, "high": 1, "medium": 1}
    assert list(ex.by_team) == ["finance", "ecommerce"]  # operations, finance, ecommerce order
    assert ex.by_team == {"finance": {"high": 1}, "ecommerce": {"critical": 3, "medium": 1}}


def test_inbox_depth_and_age(status: ClientStatus) -> None:
    box = status.inbox
    assert (box.pending, box.processing, box.poison, box.depth) == (2, 1, 1, 3)
    assert box.oldest_age == timedelta(minutes=7)


def test_table(status: ClientStatus) -> None:
    text = render_table(status)
    lines = text.splitlines()
    assert lines[0].startswith("demo-outdoor (Demo Outdoor Ltd) — ")
    assert "note: the Prefect API does not answer" in lines[1]
    assert lines[2].split()[:4] == ["sync", "schedule", "last", "success"]
    stock = next(line for line in lines if line.strip().startswith("stock "))
    assert "(store)" in stock and "20 min" in stock and "overdue" in stock
    assert "open exceptions: 5 (critical 3, high 1, medium 1)" in text
    assert "ecommerce     4  critical 3, medium 1" in text
    assert "webhook inbox: 3 waiting (2 pending, 1 being processed), oldest 7 min" in text
    assert text.rstrip().endswith("; 1 poison")


def test_json(status: ClientStatus) -> None:
    data = as_json(status)
    stock = data["syncs"][0]
    assert stock["sync"] == "stock" and stock["deployment"] == "stock-demo-outdoor"
    assert (stock["lag_seconds"], stock["period_seconds"], stock["health"]) == (
        1200,
        300,
        "overdue",
    )
    assert stock["last_success_source"] == "state store: last activity"
    assert data["exceptions"]["by_team"]["finance"] == {"high": 1}
    assert data["inbox"]["depth"] == 3 and data["inbox"]["oldest_age_seconds"] == 7 * 60


def test_markdown_is_the_same_page(status: ClientStatus) -> None:
    page = render_markdown(status)
    assert page.startswith("# Demo Outdoor Ltd (demo-outdoor)\n")
    assert "| sync | schedule | last success | lag | health | last run | moved |" in page
    assert "| **overdue** |" in page and "| **never** |" in page
    assert "| ecommerce | 4 | 3 | 0 | 1 |" in page
    assert "`stokline exceptions list --client demo-outdoor`" in page
