"""prefect.yaml agrees with the code it deploys: the flow, the mapping's schedule, the receiver."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import prefect.events
import pytest
import yaml
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.flows import Flow, load_flow_from_entrypoint

from stokline.config import load_mapping
from stokline.ops.heartbeats import CRASHED_AFTER, HEARTBEAT_ENV, HEARTBEAT_SECONDS, RUN_TAG
from stokline.webhooks import prefect_signal

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    PrefectYamlModel.model_validate(data)  # the shape `prefect deploy` accepts
    return data


@pytest.fixture(scope="module")
def orders(project: dict[str, Any]) -> dict[str, Any]:
    (deployment,) = [d for d in project["deployments"] if d["name"] == "orders-demo-outdoor"]
    return deployment


def test_the_entrypoint_names_the_orders_flow(orders: dict[str, Any]) -> None:
    path, _, name = orders["entrypoint"].partition(":")
    assert (ROOT / path).is_file()
    flow = load_flow_from_entrypoint(str(ROOT / path) + ":" + name)
    assert isinstance(flow, Flow)
    assert flow.name == "orders"
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(orders["parameters"]) <= accepted
    for schedule in orders["schedules"]:
        assert set(schedule.get("parameters", {})) <= accepted
    for trigger in orders.get("triggers", []):
        assert set(trigger["parameters"]) <= accepted


def test_the_schedule_is_the_mappings_orders_cadence(orders: dict[str, Any]) -> None:
    mapping = load_mapping(ROOT / orders["parameters"]["mapping"])
    every = mapping.syncs.orders.every
    assert every is not None
    assert [s["interval"] for s in orders["schedules"]] == [every.total_seconds()]
    assert orders["schedules"][0]["parameters"] == {"trigger": "schedule"}


def test_no_deployment_is_triggered_by_each_webhook_the_watcher_takes_them(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = load_mapping(ROOT / "mappings" / "demo.yaml")
    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **event: emitted.append(event))
    prefect_signal(mapping.client.name, "orders/paid")
    (event,) = emitted
    # A run per burst of webhooks paid seconds of start-up each time (p95 27 s); the inbox
    # watcher below takes deliveries within seconds instead.
    for deployment in project["deployments"]:
        for trigger in deployment.get("triggers", []):
            assert event["event"] not in trigger.get("expect", []), deployment["name"]


def test_the_orders_inbox_watcher_watches_at_any_time_beside_the_sweep(
    project: dict[str, Any], orders: dict[str, Any]
) -> None:
    spec = _deployment(project, "orders-inbox-demo-outdoor")
    path, _, name = spec["entrypoint"].partition(":")
    flow = load_flow_from_entrypoint(str(ROOT / path) + ":" + name)
    assert flow.name == "orders-inbox"
    assert set(spec["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    assert spec["parameters"]["mapping"] == orders["parameters"]["mapping"]
    mapping = load_mapping(ROOT / spec["parameters"]["mapping"])
    assert mapping.syncs.orders is not None
    # A new run as each one's window ends; the two overlap until the new one takes over.
    assert [s["interval"] for s in spec["schedules"]] == [spec["parameters"]["minutes"] * 60]
    assert spec["parameters"]["poll_seconds"] <= 2  # the 15 s target leaves room for the import
    assert spec["concurrency_limit"] == 2
    assert spec["work_pool"]["name"] == "stokline"
    assert not spec.get("triggers")


def test_one_run_at_a_time_on_the_process_pool(orders: dict[str, Any]) -> None:
    assert orders["concurrency_limit"] == 1
    assert orders["work_pool"]["name"] == "stokline"


@pytest.fixture(scope="module")
def finance(project: dict[str, Any]) -> dict[str, Any]:
    (deployment,) = [d for d in project["deployments"] if d["name"] == "finance-demo-outdoor"]
    return deployment


def test_the_finance_deployment_runs_the_finance_flow_with_its_parameters(
    finance: dict[str, Any],
) -> None:
    path, _, name = finance["entrypoint"].partition(":")
    flow = load_flow_from_entrypoint(str(ROOT / path) + ":" + name)
    assert flow.name == "finance"
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(finance["parameters"]) <= accepted
    assert {"start", "end", "dry_run"} <= set(finance["parameters"])
    for schedule in finance["schedules"]:
        assert set(schedule.get("parameters", {})) <= accepted
    # The UI's Run form offers the period as dates and the dry run as a switch.
    properties = flow.parameters.model_dump()["properties"]
    assert any(option.get("format") == "date" for option in properties["start"]["anyOf"])
    assert any(option.get("format") == "date" for option in properties["end"]["anyOf"])
    assert properties["dry_run"]["type"] == "boolean"
    assert finance["concurrency_limit"] == 1
    assert finance["work_pool"]["name"] == "stokline"


def test_the_finance_schedule_is_the_mappings_time_in_the_clients_timezone(
    finance: dict[str, Any],
) -> None:
    mapping = load_mapping(ROOT / finance["parameters"]["mapping"])
    settings = mapping.syncs.finance
    assert settings is not None
    (schedule,) = finance["schedules"]
    assert schedule["cron"] == settings.schedule.as_cron() == "0 2 * * *"
    assert schedule["timezone"] == mapping.client.timezone
    assert schedule["parameters"] == {"trigger": "schedule"}


@pytest.fixture(scope="module")
def fulfilment(project: dict[str, Any]) -> dict[str, Any]:
    (deployment,) = [d for d in project["deployments"] if d["name"] == "fulfilment-demo-outdoor"]
    return deployment


def test_the_fulfilment_deployment_runs_its_flow_on_the_mappings_cadence(
    fulfilment: dict[str, Any],
) -> None:
    path, _, name = fulfilment["entrypoint"].partition(":")
    flow = load_flow_from_entrypoint(str(ROOT / path) + ":" + name)
    assert flow.name == "fulfilment"
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(fulfilment["parameters"]) <= accepted
    mapping = load_mapping(ROOT / fulfilment["parameters"]["mapping"])
    settings = mapping.syncs.fulfilment
    assert settings is not None and settings.every is not None
    assert [s["interval"] for s in fulfilment["schedules"]] == [settings.every.total_seconds()]
    assert fulfilment["schedules"][0]["parameters"] == {"trigger": "schedule"}
    assert fulfilment["concurrency_limit"] == 1
    assert fulfilment["work_pool"]["name"] == "stokline"


def _deployment(project: dict[str, Any], name: str) -> dict[str, Any]:
    (deployment,) = [d for d in project["deployments"] if d["name"] == name]
    return deployment


@pytest.mark.parametrize(
    ("deployment", "flow_name", "sync"),
    [
        ("stock-demo-outdoor", "stock", "stock"),
        ("catalogue-demo-outdoor", "catalogue", "catalogue"),
    ],
)
def test_stock_and_catalogue_run_their_flows_on_the_mappings_cadence(
    project: dict[str, Any], deployment: str, flow_name: str, sync: str
) -> None:
    spec = _deployment(project, deployment)
    path, _, name = spec["entrypoint"].partition(":")
    flow = load_flow_from_entrypoint(str(ROOT / path) + ":" + name)
    assert flow.name == flow_name
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(spec["parameters"]) <= accepted
    mapping = load_mapping(ROOT / spec["parameters"]["mapping"])
    settings = getattr(mapping.syncs, sync)
    assert settings is not None and settings.every is not None
    assert [s["interval"] for s in spec["schedules"]] == [settings.every.total_seconds()]
    assert spec["schedules"][0]["parameters"] == {"trigger": "schedule"}
    assert spec["concurrency_limit"] == 1
    assert spec["work_pool"]["name"] == "stokline"


def test_one_stock_event_run_follows_the_feed_at_any_time(project: dict[str, Any]) -> None:
    spec = _deployment(project, "stock-events-demo-outdoor")
    path, _, name = spec["entrypoint"].partition(":")
    flow = load_flow_from_entrypoint(str(ROOT / path) + ":" + name)
    assert flow.name == "stock-events"
    assert set(spec["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    mapping = load_mapping(ROOT / spec["parameters"]["mapping"])
    assert mapping.syncs.stock is not None and mapping.syncs.stock.event_driven
    # A new run as each one's window ends; the two overlap until the new one takes over.
    assert [s["interval"] for s in spec["schedules"]] == [spec["parameters"]["minutes"] * 60]
    assert spec["parameters"]["poll_seconds"] <= 5  # the 15 s target leaves room for the push
    assert spec["concurrency_limit"] == 2
    assert spec["work_pool"]["name"] == "stokline"


def test_the_status_deployment_refreshes_the_dashboard_every_one_to_two_minutes(
    project: dict[str, Any],
) -> None:
    (spec,) = [d for d in project["deployments"] if d["name"] == "status-demo-outdoor"]
    path, _, name = spec["entrypoint"].partition(":")
    flow = load_flow_from_entrypoint(str(ROOT / path) + ":" + name)
    assert flow.name == "status"
    assert set(spec["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    load_mapping(ROOT / spec["parameters"]["mapping"])
    assert [60 <= s["interval"] <= 120 for s in spec["schedules"]] == [True]
    assert spec["concurrency_limit"] == 1
    assert spec["work_pool"]["name"] == "stokline"


def test_every_deployment_s_runs_send_the_heartbeats_the_crash_automation_expects(
    project: dict[str, Any],
) -> None:
    # Prefect's own default is a heartbeat every 180 s: a run deployed without this setting
    # would be marked Crashed by the workspace automation while still working.
    assert project["deployments"]
    for deployment in project["deployments"]:
        env = deployment["work_pool"].get("job_variables", {}).get("env", {})
        assert env.get(HEARTBEAT_ENV) == str(HEARTBEAT_SECONDS), deployment["name"]
        assert RUN_TAG in deployment["tags"], deployment["name"]  # what the automation watches
    assert CRASHED_AFTER.total_seconds() >= 3 * HEARTBEAT_SECONDS
