"""The deployments derived from a mapping agree with the code they run and the mapping's syncs.

`stokline deploy` writes exactly these specs (tests/ops/test_deploy_on_prefect.py); here they are
checked without a server: each names a flow that exists and takes its parameters, each schedule
is the mapping's cadence, and what every run needs (heartbeats, the tag the crash automation
watches, the work pool) is on every one of them.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.flows import Flow, load_flow_from_entrypoint

from stokline.config import load_mapping
from stokline.ops.deployments import (
    ANCHOR_EPOCH,
    FLOWS,
    DeploymentSpec,
    ProjectError,
    anchor_of,
    client_deployments,
    load_project,
    mapping_parameter,
)
from stokline.ops.heartbeats import CRASHED_AFTER, HEARTBEAT_ENV, HEARTBEAT_SECONDS, RUN_TAG

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "mappings" / "demo.yaml"
PEAK = ROOT / "mappings" / "peak-cycles.yaml"


@pytest.fixture(scope="module")
def demo() -> dict[str, DeploymentSpec]:
    specs = client_deployments(load_mapping(DEMO), DEMO, load_project(ROOT))
    return {s.name: s for s in specs}


@pytest.fixture(scope="module")
def peak() -> dict[str, DeploymentSpec]:
    specs = client_deployments(load_mapping(PEAK), PEAK, load_project(ROOT))
    return {s.name: s for s in specs}


def flow_of(spec: DeploymentSpec) -> Flow:
    path, _, name = spec.entrypoint.partition(":")
    assert (ROOT / path).is_file(), spec.entrypoint
    return load_flow_from_entrypoint(f"{ROOT / path}:{name}")


def test_prefect_yaml_holds_what_deployments_share_and_no_deployment() -> None:
    data = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    PrefectYamlModel.model_validate(data)  # still the shape `prefect` accepts
    assert not data.get("deployments")  # derived from the mappings, never copied by hand
    project = load_project(ROOT)
    assert project.pool == "stokline"
    assert project.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]


def test_every_flow_has_its_deployment_and_takes_its_parameters(
    demo: dict[str, DeploymentSpec],
) -> None:
    assert list(demo) == [f"{flow}-demo-outdoor" for flow in FLOWS]
    for spec in demo.values():
        flow = flow_of(spec)
        assert flow.name == spec.flow
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(spec.parameters) <= accepted, spec.name
        for schedule in spec.schedules:
            assert set(schedule.parameters) <= accepted, spec.name
        assert spec.parameters["mapping"] == "mappings/demo.yaml"


@pytest.mark.parametrize("sync", ["orders", "stock", "catalogue", "fulfilment"])
def test_each_sync_runs_on_the_mappings_cadence_one_run_at_a_time(
    demo: dict[str, DeploymentSpec], sync: str
) -> None:
    settings = getattr(load_mapping(DEMO).syncs, sync)
    spec = demo[f"{sync}-demo-outdoor"]
    (schedule,) = spec.schedules
    assert schedule.interval == settings.every.total_seconds()
    assert schedule.parameters == {"trigger": "schedule"}
    assert spec.concurrency_limit == 1
    assert spec.wanted


def test_the_finance_schedule_is_the_mappings_time_in_the_clients_timezone(
    demo: dict[str, DeploymentSpec],
) -> None:
    (schedule,) = demo["finance-demo-outdoor"].schedules
    assert schedule.cron == "0 2 * * *"
    assert schedule.timezone == "Europe/London"
    assert schedule.parameters == {"trigger": "schedule"}
    # The Run form's defaults: a period, no null.
    params = demo["finance-demo-outdoor"].parameters
    assert {"start", "end", "dry_run"} <= set(params) and None not in params.values()


def test_cron_schedules_and_syncs_that_are_off(peak: dict[str, DeploymentSpec]) -> None:
    (stock,) = peak["stock-peak-cycles"].schedules
    assert (stock.cron, stock.timezone) == ("*/10 * * * *", "Europe/Dublin")
    (finance,) = peak["finance-peak-cycles"].schedules
    assert finance.cron == "30 3 * * 1-5"
    # catalogue: enabled: false; stock: event_driven: false → not wanted (paused if deployed).
    assert not peak["catalogue-peak-cycles"].wanted
    assert not peak["stock-events-peak-cycles"].wanted
    assert peak["orders-inbox-peak-cycles"].wanted


def test_watchers_hand_over_without_a_prefect_limit_and_look_often_enough_for_seconds(
    demo: dict[str, DeploymentSpec],
) -> None:
    for name in ("orders-inbox-demo-outdoor", "stock-events-demo-outdoor"):
        spec = demo[name]
        (schedule,) = spec.schedules
        # A new run as each one's window ends; the two overlap until the new one takes over.
        assert schedule.interval == spec.parameters["minutes"] * 60
        assert spec.parameters["poll_seconds"] <= 2
        # No lease to renew for ten minutes: one run follows at a time by the Follower.
        assert spec.concurrency_limit is None
        assert spec.start_at_once
    status = demo["status-demo-outdoor"]
    assert [60 <= s.interval <= 120 for s in status.schedules] == [True]


def test_every_run_beats_as_the_crash_automation_expects(demo: dict[str, DeploymentSpec]) -> None:
    # Prefect's own default is a heartbeat every 180 s: a run deployed without this setting
    # would be marked Crashed by the workspace automation while still working.
    for spec in demo.values():
        assert spec.job_variables["env"][HEARTBEAT_ENV] == str(HEARTBEAT_SECONDS), spec.name
        assert RUN_TAG in spec.tags and "demo-outdoor" in spec.tags, spec.name
        assert spec.work_pool == "stokline"
    assert CRASHED_AFTER.total_seconds() >= 3 * HEARTBEAT_SECONDS


def test_anchors_are_fixed_and_spread_clients_over_the_interval() -> None:
    anchors = {anchor_of(f"client-{n}", "orders", 120) for n in range(100)}
    assert all(ANCHOR_EPOCH <= a < ANCHOR_EPOCH + timedelta(seconds=120) for a in anchors)
    assert len({a.second + 60 * a.minute for a in anchors}) > 50  # spread, not all at once
    assert anchor_of("demo-outdoor", "orders", 120) == anchor_of("demo-outdoor", "orders", 120)


def test_a_mapping_outside_the_project_cannot_be_deployed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside the project"):
        mapping_parameter(tmp_path / "x.yaml", ROOT)
    assert mapping_parameter(DEMO, ROOT) == "mappings/demo.yaml"


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "no prefect.yaml"), ("a: [", "not valid YAML"), ("pull: 3\n", "pull must be a list")],
)
def test_a_broken_prefect_yaml_is_said_plainly(
    tmp_path: Path, text: str | None, message: str
) -> None:
    if text is not None:
        (tmp_path / "prefect.yaml").write_text(text)
    with pytest.raises(ProjectError, match=message):
        load_project(tmp_path)
