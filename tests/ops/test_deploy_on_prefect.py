"""`stokline deploy` against a real Prefect server: deployments derived from mappings, created
and updated field by field, other clients untouched (one test harness for the module)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter
from prefect.client.schemas.filters import FlowRunFilterDeploymentId as ByDeployment
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from stokline.cli import main
from stokline.config import load_mapping
from stokline.ops.deployments import DISABLED_TAG, FLOWS, client_tag

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "mappings" / "demo.yaml"


@dataclass
class Project:
    root: Path
    api: str

    def mapping(self, name: str) -> Path:
        return self.root / "mappings" / f"{name}.yaml"

    def copy_demo_as(self, client: str, edit: Any = None) -> Path:
        text = DEMO.read_text().replace("name: demo-outdoor", f"name: {client}")
        text = text.replace(
            "3f0b6a52-6c1e-4d7a-9a51-5b0f1f2c7e01", "3f0b6a52-0000-4d7a-9a51-5b0f1f2c7e02"
        )
        if edit:
            text = edit(text)
        path = self.mapping(client)
        path.write_text(text)
        return path

    def deploy(self, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            status = main(["deploy", "--prefect-url", self.api, *argv])
        finally:
            os.chdir(cwd)
        out, err = capsys.readouterr()
        return status, out, err


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("deploy-project")
    (root / "mappings").mkdir()
    shutil.copytree(ROOT / "flows", root / "flows")
    shutil.copy(ROOT / "prefect.yaml", root)
    shutil.copy(DEMO, root / "mappings" / "demo.yaml")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        with prefect_test_harness(server_startup_timeout=60):
            yield Project(root, PREFECT_API_URL.value().rstrip("/"))


def deployments(prefix: str = "") -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async with get_client() as client:
            found = await client.read_deployments(limit=200)
            return {d.name: d for d in found if d.name.endswith(prefix)}

    return asyncio.run(read())


def scheduled_runs(deployment_id: Any) -> list[tuple[str, Any]]:
    async def read() -> list[tuple[str, Any]]:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(deployment_id=ByDeployment(any_=[deployment_id]))
            )
            return sorted((str(r.id), r.expected_start_time) for r in runs)

    return asyncio.run(read())


def test_deploy_creates_every_deployment_the_mapping_asks_for(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = project.deploy("mappings/demo.yaml", capsys=capsys)
    assert status == 0, err
    assert "work pool stokline (type process) created" in out
    assert "demo-outdoor: 9 created" in out
    found = deployments("-demo-outdoor")
    assert set(found) == {f"{flow}-demo-outdoor" for flow in FLOWS}
    mapping = load_mapping(DEMO)
    orders = found["orders-demo-outdoor"]
    (schedule,) = orders.schedules
    assert mapping.syncs.orders.every is not None
    assert schedule.schedule.interval == mapping.syncs.orders.every
    assert schedule.parameters == {"trigger": "schedule"}
    assert orders.parameters == {"mapping": "mappings/demo.yaml"}
    assert orders.work_pool_name == "stokline"
    assert {"stokline", "orders", "demo-outdoor", client_tag("demo-outdoor")} <= set(orders.tags)
    assert orders.job_variables["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
    assert orders.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(project.root)}}
    ]
    (finance,) = found["finance-demo-outdoor"].schedules
    assert finance.schedule.cron == "0 2 * * *"
    assert finance.schedule.timezone == "Europe/London"
    # The finance run form: dates and a dry-run switch, with the flow's defaults.
    form = found["finance-demo-outdoor"].parameter_openapi_schema["properties"]
    assert form["dry_run"]["type"] == "boolean"
    # Watchers and the stock pass start at once, not one interval later.
    assert "first run started" in out
    assert scheduled_runs(found["orders-inbox-demo-outdoor"].id)


def test_deploying_again_touches_nothing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = deployments("-demo-outdoor")
    status, out, err = project.deploy("mappings/demo.yaml", capsys=capsys)
    assert status == 0, err
    assert "demo-outdoor: 9 unchanged" in out
    after = deployments("-demo-outdoor")
    assert {n: d.updated for n, d in after.items()} == {n: d.updated for n, d in before.items()}


def test_a_new_client_is_one_file_and_leaves_the_other_clients_schedules_alone(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = deployments("-demo-outdoor")
    runs = {n: scheduled_runs(d.id) for n, d in demo.items()}
    project.copy_demo_as("acme-outdoor")
    status, out, err = project.deploy("mappings/acme-outdoor.yaml", capsys=capsys)
    assert status == 0, err
    assert "acme-outdoor: 9 created" in out
    assert "demo-outdoor" not in out
    acme = deployments("-acme-outdoor")
    assert len(acme) == 9
    assert scheduled_runs(acme["orders-inbox-acme-outdoor"].id)  # its runs are there at once
    # Not one field of the demo client's deployments, nor one of its runs, moved.
    after = deployments("-demo-outdoor")
    assert {n: d.updated for n, d in after.items()} == {n: d.updated for n, d in demo.items()}
    # (The scheduler may add runs meanwhile; none of those there before may go or move.)
    for name, deployment in after.items():
        assert set(runs[name]) <= set(scheduled_runs(deployment.id)), name
    # Two clients' two-minute sweeps do not start in the same second.
    anchors = {
        acme["orders-acme-outdoor"].schedules[0].schedule.anchor_date,
        after["orders-demo-outdoor"].schedules[0].schedule.anchor_date,
    }
    assert len(anchors) == 2


def test_an_edited_schedule_updates_only_that_deployment(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.copy_demo_as(
        "acme-outdoor",
        lambda t: t.replace("catalogue:\n    every: 15m", "catalogue:\n    every: 30m"),
    )
    status, out, err = project.deploy("mappings/acme-outdoor.yaml", "--dry-run", capsys=capsys)
    assert status == 0, err
    assert "acme-outdoor: 1 to update, 8 unchanged (dry run: nothing changed)" in out
    assert "~ catalogue-acme-outdoor  (description; schedule (every 15 min → every 30 min))" in out
    (schedule,) = deployments("-acme-outdoor")["catalogue-acme-outdoor"].schedules
    assert schedule.schedule.interval.total_seconds() == 900  # the dry run changed nothing

    status, out, err = project.deploy("mappings/acme-outdoor.yaml", capsys=capsys)
    assert status == 0, err
    assert "acme-outdoor: 1 updated, 8 unchanged" in out
    (schedule,) = deployments("-acme-outdoor")["catalogue-acme-outdoor"].schedules
    assert schedule.schedule.interval.total_seconds() == 1800


def test_a_sync_turned_off_is_paused_and_resumed_when_on_again(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.copy_demo_as(
        "acme-outdoor",
        lambda t: t.replace(
            "fulfilment:\n    every: 5m", "fulfilment:\n    enabled: false\n    every: 5m"
        ),
    )
    status, out, err = project.deploy("mappings/acme-outdoor.yaml", capsys=capsys)
    assert status == 0, err
    assert re.search(r"1 paused", out), out
    fulfilment = deployments("-acme-outdoor")["fulfilment-acme-outdoor"]
    assert fulfilment.paused and DISABLED_TAG in fulfilment.tags

    project.copy_demo_as("acme-outdoor")
    status, out, err = project.deploy("mappings/acme-outdoor.yaml", capsys=capsys)
    assert status == 0, err
    assert "1 resumed" in out
    fulfilment = deployments("-acme-outdoor")["fulfilment-acme-outdoor"]
    assert not fulfilment.paused and DISABLED_TAG not in fulfilment.tags


def test_a_deployment_paused_by_a_person_stays_paused(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    status = deployments("-acme-outdoor")["status-acme-outdoor"]

    async def pause() -> None:
        async with get_client() as client:
            await client.pause_deployment(status.id)

    asyncio.run(pause())
    code, out, err = project.deploy("mappings/acme-outdoor.yaml", capsys=capsys)
    assert code == 0, err
    assert "‖ status-acme-outdoor  (paused in Prefect)" in out
    assert deployments("-acme-outdoor")["status-acme-outdoor"].paused


def test_remove_deletes_only_that_clients_deployments(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = {n: d.updated for n, d in deployments("-demo-outdoor").items()}
    status, out, err = project.deploy("--remove", "acme-outdoor", "--dry-run", capsys=capsys)
    assert status == 0, err
    assert "acme-outdoor: 9 to remove" in out
    assert len(deployments("-acme-outdoor")) == 9
    status, out, err = project.deploy("--remove", "acme-outdoor", capsys=capsys)
    assert status == 0, err
    assert not deployments("-acme-outdoor")
    assert {n: d.updated for n, d in deployments("-demo-outdoor").items()} == demo


def test_two_files_naming_one_client_are_refused_before_anything_is_deployed(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(project.mapping("demo"), project.mapping("demo-copy"))
    try:
        status, _, err = project.deploy("mappings/", capsys=capsys)
    finally:
        project.mapping("demo-copy").unlink()
    assert status == 2
    assert "both name client demo-outdoor" in err


def test_an_invalid_mapping_deploys_nothing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project.copy_demo_as("broken", lambda t: t.replace("every: 2m", "every: soon"))
    try:
        status, _, err = project.deploy(str(path.relative_to(project.root)), capsys=capsys)
    finally:
        path.unlink()
    assert status == 1
    assert "broken.yaml:" in err and "syncs" in err
    assert not deployments("-broken")


def test_many_clients_at_once_each_get_their_own_and_the_report_keeps_their_order(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """Clients are deployed several at a time: the workspace guard is still created once, each
    client's alerts are its own, and the report lists the clients in the order given."""
    from stokline.ops.automations import OWNER_TAG, WORKSPACE_TAG

    names = [f"many-{i:02d}" for i in range(1, 11)]
    paths = [project.copy_demo_as(name) for name in names]
    try:
        status, out, err = project.deploy(
            *(str(p.relative_to(project.root)) for p in reversed(paths)), capsys=capsys
        )
    finally:
        for path in paths:
            path.unlink()
    assert status == 0, err
    reported = re.findall(r"^(many-\d\d): 9 created", out, flags=re.MULTILINE)
    assert reported == list(reversed(names))
    for name in names:
        assert len(deployments(f"-{name}")) == 9

    async def automations() -> list[Any]:
        async with get_client() as client:
            return await client.read_automations()

    found = asyncio.run(automations())
    guards = [a for a in found if OWNER_TAG in a.tags and WORKSPACE_TAG in a.tags]
    assert len(guards) == 1
    demo_alerts = sum(1 for a in found if client_tag("demo-outdoor") in a.tags)
    for name in names:
        own = [a for a in found if client_tag(name) in a.tags]
        assert len(own) == demo_alerts > 0
        assert all(name in a.name for a in own)
