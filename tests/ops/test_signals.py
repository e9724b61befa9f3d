"""stokline.exception.opened: one event per new exception, found in the state store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from stokline.ops.signals import signal_new_exceptions
from stokline.store import Store
from stokline.store.db import now
from stokline.store.tables import exceptions as table

CLIENT = "demo-outdoor"
WINDOW = timedelta(minutes=15)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'state.db'}")


def _raise(store: Store, code: str, entity: str, team: str = "ecommerce") -> int:
    return store.exceptions.raise_(CLIENT, code, "order", entity, "why", team=team).id


def _pass(store: Store, per_code: int = 5) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    signal_new_exceptions(store, CLIENT, WINDOW, per_code, lambda **event: sent.append(event))
    return sent


def test_each_new_exception_is_signalled_once_with_its_code_as_a_label(store: Store) -> None:
    first = _raise(store, "unmapped_sku", "1001")
    _raise(store, "tax_mismatch", "1002", team="finance")
    store.exceptions.raise_("another-client", "unmapped_sku", "order", "9", "x", team="ecommerce")
    events = _pass(store)
    assert [e["resource"]["stokline.exception.code"] for e in events] == [
        "unmapped_sku",
        "tax_mismatch",
    ]
    event = events[0]
    assert event["event"] == "stokline.exception.opened"
    assert event["resource"]["prefect.resource.id"] == "stokline.client.demo-outdoor"
    assert event["resource"]["stokline.exception.severity"] == "critical"
    assert event["resource"]["stokline.exception.team"] == "ecommerce"
    assert event["payload"]["exception_id"] == first
    assert event["payload"]["entity_id"] == "1001"
    assert "message" not in event["payload"]  # messages may quote a buyer; codes and ids only

    # Nothing new: nothing sent. Raised again (an attempt) or reopened: not new either.
    assert _pass(store) == []
    _raise(store, "unmapped_sku", "1001")
    store.exceptions.resolve(first)
    _raise(store, "unmapped_sku", "1001")
    assert _pass(store) == []
    _raise(store, "unmapped_sku", "1003")
    assert [e["payload"]["entity_id"] for e in _pass(store)] == ["1003"]


def test_event_ids_are_stable_so_a_retried_pass_counts_nothing_twice(tmp_path: Path) -> None:
    ids = []
    for name in ("a", "b"):
        store = Store(f"sqlite:///{tmp_path / name}.db")
        _raise(store, "unmapped_sku", "1001")
        ids.append(_pass(store)[0]["id"])
    assert ids[0] == ids[1]


def test_at_most_per_code_events_a_pass(store: Store) -> None:
    for i in range(8):
        _raise(store, "unmapped_sku", f"u{i}")
    _raise(store, "tax_mismatch", "t1", team="finance")
    events = _pass(store, per_code=5)
    codes = [e["resource"]["stokline.exception.code"] for e in events]
    assert codes.count("unmapped_sku") == 5 and codes.count("tax_mismatch") == 1
    assert _pass(store) == []  # the rest were counted as seen, not queued


def test_the_first_pass_ignores_history_older_than_the_window(store: Store) -> None:
    old = _raise(store, "unmapped_sku", "old")
    with store.engine.begin() as conn:
        conn.execute(
            update(table).where(table.c.id == old).values(first_seen=now() - timedelta(hours=2))
        )
    _raise(store, "unmapped_sku", "recent")
    assert [e["payload"]["entity_id"] for e in _pass(store)] == ["recent"]


def test_ignored_exceptions_are_not_signalled(store: Store) -> None:
    ignored = _raise(store, "unmapped_sku", "1")
    store.exceptions.ignore(ignored, "test order")
    assert _pass(store) == []
