"""The alerts a mapping asks for, as Prefect automation definitions, and what they will say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.utilities.user_templates import render_user_template_sync

from stokline.config import check_text, load_mapping
from stokline.ops.alerts import alert_specs

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "mappings" / "demo.yaml"
PEAK = ROOT / "mappings" / "peak-cycles.yaml"


@pytest.fixture(scope="module")
def demo_specs() -> dict[str, Any]:
    return {s.name: s for s in alert_specs(load_mapping(DEMO))}


def test_the_demo_asks_for_every_kind_of_alert(demo_specs: dict[str, Any]) -> None:
    kinds = sorted(s.kind for s in demo_specs.values())
    assert kinds.count("sync_overdue") == 5  # one per scheduled sync
    assert set(kinds) == {
        "sync_failed",
        "fulfilment_stale",
        "exception_spike",
        "sync_overdue",
        "oversell_risk",
    }
    for spec in demo_specs.values():
        assert spec.name.startswith("stokline demo-outdoor: ")
        assert spec.tags[:2] == ["stokline", "client:demo-outdoor"]


def test_failed_runs_alert_once_per_deployment_per_cooldown(demo_specs: dict[str, Any]) -> None:
    trigger = demo_specs["stokline demo-outdoor: sync run failed"].trigger
    assert trigger.posture == "Reactive"
    assert trigger.expect == {
        "prefect.flow-run.Failed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.TimedOut",
    }
    assert trigger.match.root == {"prefect.resource.id": "prefect.flow-run.*"}
    related = trigger.match_related.root
    assert related["prefect.resource.role"] == "deployment"
    assert "orders-demo-outdoor" in related["prefect.resource.name"]
    assert "stock-events-demo-outdoor" in related["prefect.resource.name"]
    assert trigger.for_each == {"related:deployment:prefect.resource.name"}
    assert (trigger.threshold, trigger.within) == (1, timedelta(minutes=30))


def test_spike_counts_per_code_within_the_window(demo_specs: dict[str, Any]) -> None:
    trigger = demo_specs["stokline demo-outdoor: exception spike"].trigger
    assert trigger.expect == {"stokline.exception.opened"}
    assert trigger.match.root == {"prefect.resource.id": "stokline.client.demo-outdoor"}
    assert trigger.for_each == {"stokline.exception.code"}
    assert (trigger.threshold, trigger.within) == (5, timedelta(minutes=15))


def test_client_events_are_quiet_for_the_cooldown(demo_specs: dict[str, Any]) -> None:
    for name, event in (
        ("fulfilments stale", "stokline.fulfilment.stale"),
        ("oversell risk", "stokline.stock.oversell-risk"),
    ):
        trigger = demo_specs[f"stokline demo-outdoor: {name}"].trigger
        assert trigger.expect == {event}
        assert trigger.match.root == {"prefect.resource.id": "stokline.client.demo-outdoor"}
        assert (trigger.posture, trigger.threshold) == ("Reactive", 1)
        assert trigger.within == timedelta(minutes=30)


def test_overdue_waits_missed_runs_times_the_schedule() -> None:
    specs = {s.name: s for s in alert_specs(load_mapping(PEAK))}
    orders = specs["stokline peak-cycles: orders has not succeeded"].trigger
    assert orders.posture == "Proactive"
    assert orders.expect == {"prefect.flow-run.Completed"}
    assert orders.match_related.root == {
        "prefect.resource.role": "deployment",
        "prefect.resource.name": "orders-peak-cycles",
    }
    assert (orders.threshold, orders.within) == (1, timedelta(minutes=20))  # 4 × 5m
    # Weekdays at 03:30: the weekend is the longest gap, so four of them is twelve days.
    finance = specs["stokline peak-cycles: finance has not succeeded"].trigger
    assert finance.within == timedelta(days=12)
    # The catalogue sync is disabled in this mapping: nothing watches it.
    assert "stokline peak-cycles: catalogue has not succeeded" not in specs


def test_no_alerts_section_no_automations() -> None:
    text = DEMO.read_text(encoding="utf-8")
    head, _, _ = text.partition("  # Prefect automations")
    mapping = check_text(head, "demo.yaml").mapping
    assert mapping is not None and mapping.operating_model.alerts is None
    assert alert_specs(mapping) == []


def _render(template: str, event: dict[str, Any] | None, labels: dict[str, str]) -> str:
    context = {
        "automation": SimpleNamespace(name="the automation"),
        "event": ReceivedEvent.model_validate(event) if event else None,
        "firing": SimpleNamespace(triggering_labels=labels),
    }
    return render_user_template_sync(template, context)


FAILED = {
    "occurred": datetime(2025, 3, 12, 10, 0, tzinfo=UTC).isoformat(),
    "event": "prefect.flow-run.Failed",
    "resource": {
        "prefect.resource.id": "prefect.flow-run.1",
        "prefect.resource.name": "brave-otter",
        "prefect.state-name": "Failed",
        "prefect.state-message": 'Stokly said "no" \\ twice\nand then 503',
    },
    "related": [],
    "payload": {"validated_state": {"type": "FAILED"}},
    "id": "0b5b6ca4-9d9d-4e4e-8c8c-7a7a7a7a7a7a",
}


def test_the_webhook_body_is_json_whatever_the_event_holds(demo_specs: dict[str, Any]) -> None:
    spec = demo_specs["stokline demo-outdoor: sync run failed"]
    labels = {"related:deployment:prefect.resource.name": "orders-demo-outdoor"}
    body = json.loads(_render(spec.webhook_payload(), FAILED, labels))
    assert body["alert"] == "sync_failed"
    assert body["client"] == "demo-outdoor"
    assert body["summary"] == (
        'Flow run brave-otter of deployment orders-demo-outdoor is Failed: Stokly said "no" '
        "\\ twice\nand then 503"
    )
    assert body["occurred"].startswith("2025-03-12T10:00:00")
    assert body["labels"] == labels
    assert body["details"] == {"validated_state": {"type": "FAILED"}}


def test_an_overdue_alert_renders_without_any_event(demo_specs: dict[str, Any]) -> None:
    spec = demo_specs["stokline demo-outdoor: orders has not succeeded"]
    body = json.loads(_render(spec.webhook_payload(), None, {}))
    assert body["event"] is None and body["details"] == {}
    assert body["summary"] == (
        "orders-demo-outdoor has not completed a run for 6 minutes (3 × its schedule)"
    )
    text = _render(spec.notification_body(), None, {})
    assert text.startswith("orders-demo-outdoor has not completed a run for 6 minutes")
    assert (
        spec.notification_subject()
        == "[stokline] demo-outdoor: orders has not succeeded for 3 runs"
    )
