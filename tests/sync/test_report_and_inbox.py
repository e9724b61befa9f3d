"""The report's rows (masked, one per figure) and the inbox helpers the orders sync relies on."""

from __future__ import annotations

from pathlib import Path

from stokline.store import Store
from stokline.sync.orders.report import OrdersReport
from stokline.sync.report import mask


def test_mask_hides_emails_and_phones_but_not_order_ids() -> None:
    text = "buyer jo.bloggs@example.com (+447700900123) on order 21050224312121887324667162"
    masked = mask(text)
    assert "jo.bloggs@" not in masked and "7700900" not in masked
    assert "j***@example.com" in masked and "+***23" in masked
    assert "21050224312121887324667162" in masked


def test_summary_rows_are_one_metric_per_row_and_rows_are_masked() -> None:
    report = OrdersReport(client="demo-outdoor", trigger="webhook", dry_run=False, imported=3)
    report.add_exception("api_rejected", "operations", "order #1001 (1)", "email a@b.com refused")
    rows = report.summary_rows()
    assert all(set(row) == {"metric", "value"} for row in rows)
    assert {"metric": "imported", "value": 3} in rows
    assert report.exceptions[0]["message"] == "email a***@b.com refused"
    assert report.ok
    report.deferred = 1
    assert not report.ok


def test_claims_by_topic_and_pending_reads_without_claiming(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.inbox.add("c", "w1", "orders/paid", b"{}")
    store.inbox.add("c", "w2", "products/update", b"{}")
    store.inbox.add("c", "w3", "orders/create", b"{}")
    pending = store.inbox.pending("c", topics=("orders/paid", "orders/create"))
    assert [e.webhook_id for e in pending] == ["w1", "w3"]
    assert store.inbox.count("c", "pending") == 3  # reading claimed nothing
    claimed = store.inbox.claim("c", "worker", topics=("orders/paid", "orders/create"))
    assert [e.webhook_id for e in claimed] == ["w1", "w3"]
    assert [e.webhook_id for e in store.inbox.claim("c", "worker")] == ["w2"]
    store.close()
