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
    for trigger in orders["triggers"]:
        assert set(trigger["parameters"]) <= accepted


def test_the_schedule_is_the_mappings_orders_cadence(orders: dict[str, Any]) -> None:
    mapping = load_mapping(ROOT / orders["parameters"]["mapping"])
    every = mapping.syncs.orders.every
    assert every is not None
    assert [s["interval"] for s in orders["schedules"]] == [every.total_seconds()]
    assert orders["schedules"][0]["parameters"] == {"trigger": "schedule"}


def test_the_trigger_matches_what_the_receiver_emits(
    orders: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = load_mapping(ROOT / orders["parameters"]["mapping"])
    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **event: emitted.append(event))
    prefect_signal(mapping.client.name, "orders/paid")
    (event,) = emitted
    (trigger,) = orders["triggers"]
    assert trigger["type"] == "event"
    assert trigger["expect"] == [event["event"]]
    assert trigger["match"] == {"prefect.resource.id": event["resource"]["prefect.resource.id"]}
    assert trigger["parameters"] == {"trigger": "webhook"}
    assert trigger["threshold"] == 1
    assert trigger["within"] <= orders["schedules"][0]["interval"]


def test_one_run_at_a_time_on_the_process_pool(orders: dict[str, Any]) -> None:
    assert orders["concurrency_limit"] == 1
    assert orders["work_pool"]["name"] == "stokline"
