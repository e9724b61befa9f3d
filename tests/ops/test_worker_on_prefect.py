"""`stokline worker` against a real Prefect server and the sandboxes: the deployments' runs taken
and run in threads of one process, each run once, cancelled cleanly, none left Running."""

from __future__ import annotations

import asyncio
import contextvars
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Cancelling

from stokline.cli import main
from stokline.ops.worker import STOPPED_MESSAGE, InProcessWorker
from tests.flows.sandboxes import ROOT, Sandboxes, sandboxes_under_prefect

pytestmark = pytest.mark.slow


@dataclass
class Project:
    root: Path
    sandboxes: Sandboxes


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("worker-project")
    shutil.copytree(ROOT / "flows", root / "flows")
    shutil.copy(ROOT / "prefect.yaml", root)
    cwd = os.getcwd()
    # A worker runs from the project root: the runs' mapping paths are relative to it.
    os.chdir(root)
    try:
        with sandboxes_under_prefect(root) as sandboxes:
            assert main(["deploy", "demo.yaml", "--no-start"]) == 0
            yield Project(root, sandboxes)
    finally:
        os.chdir(cwd)


class Running:
    """A worker serving the pool in a thread of this process, stopped by `stop`."""

    def __init__(self, root: Path, name: str) -> None:
        self.worker = InProcessWorker(
            pool="stokline", root=root, name=name, poll_seconds=0.5, say=self.lines.append
        )
        self.ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        context = contextvars.copy_context()  # the test server's settings
        self.thread = threading.Thread(target=context.run, args=(asyncio.run, self._serve()))
        self.thread.start()
        assert self.ready.wait(30), self.lines

    lines: list[str]

    def __new__(cls, *args: Any, **kwargs: Any) -> Running:
        instance = super().__new__(cls)
        instance.lines = []
        return instance

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.worker.serve(self._stop, ready=self.ready.set)

    def stop(self) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(60)
        assert not self.thread.is_alive()


def start_run(name: str, **parameters: Any) -> Any:
    async def create() -> Any:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(name)
            return await client.create_flow_run_from_deployment(
                deployment.id, parameters=parameters
            )

    return asyncio.run(create())


def state_of(run_id: Any) -> Any:
    async def read() -> Any:
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).state

    return asyncio.run(read())


def wait_for(run_id: Any, names: set[str], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        state = state_of(run_id)
        if state is not None and state.name in names:
            return state
        assert time.monotonic() < deadline, f"{run_id} is {state and state.name}, not {names}"
        time.sleep(0.5)


def test_runs_of_many_deployments_run_side_by_side_in_one_process(project: Project) -> None:
    worker = Running(project.root, "one")
    try:
        watcher = start_run("orders-inbox/orders-inbox-demo-outdoor", minutes=5)
        wait_for(watcher.id, {"Running"})
        # While the watcher keeps watching, a sweep and the dashboard run to the end beside it.
        sweep = start_run("orders/orders-demo-outdoor")
        status = start_run("status/status-demo-outdoor")
        assert wait_for(sweep.id, {"Completed", "Failed", "Crashed"}).name == "Completed"
        assert wait_for(status.id, {"Completed", "Failed", "Crashed"}).name == "Completed"
        assert state_of(watcher.id).name == "Running"
        assert worker.worker.stats.taken == 3

        # Cancelled from the UI: Cancelled, not Crashed, and its thread ends.
        async def cancel() -> None:
            async with get_client() as client:
                await client.set_flow_run_state(watcher.id, Cancelling(), force=True)

        asyncio.run(cancel())
        assert wait_for(watcher.id, {"Cancelled", "Crashed", "Failed"}).name == "Cancelled"
        deadline = time.monotonic() + 30
        while worker.worker.hosted and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not worker.worker.hosted
    finally:
        worker.stop()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("run-")]  # all ended


def test_a_stopped_worker_leaves_no_run_running(project: Project) -> None:
    worker = Running(project.root, "stopping")
    try:
        watcher = start_run("orders-inbox/orders-inbox-demo-outdoor", minutes=5)
        wait_for(watcher.id, {"Running"})
    finally:
        worker.stop()
    state = state_of(watcher.id)
    assert state.name == "Cancelled" and state.message == STOPPED_MESSAGE
    time.sleep(2)  # the interrupted engine's own report must not have ended it Crashed
    assert state_of(watcher.id).name == "Cancelled"


def test_two_workers_run_each_run_once(project: Project) -> None:
    # A deployment without a concurrency limit (the demo's allow one run at a time, and the
    # server holds back a run beyond it for half a minute): six runs may all go at once.
    async def unlimited() -> None:
        async with get_client() as client:
            mine = await client.read_deployment_by_name("status/status-demo-outdoor")
            await client.create_deployment(
                flow_id=mine.flow_id,
                name="status-unlimited",
                entrypoint=mine.entrypoint,
                parameters=mine.parameters,
                work_pool_name="stokline",
                pull_steps=mine.pull_steps,
            )

    asyncio.run(unlimited())
    first, second = Running(project.root, "first"), Running(project.root, "second")
    try:
        runs = [start_run("status/status-unlimited") for _ in range(6)]
        for run in runs:
            assert wait_for(run.id, {"Completed", "Failed", "Crashed"}).name == "Completed"
    finally:
        first.stop()
        second.stop()
    taken = first.worker.stats.taken + second.worker.stats.taken
    assert taken == 6  # each run taken by one worker only (the server grants Pending once)


def test_runs_deployed_from_another_folder_are_left_to_other_workers(
    project: Project, tmp_path: Path
) -> None:
    async def deploy_elsewhere() -> Any:
        async with get_client() as client:
            mine = await client.read_deployment_by_name("status/status-demo-outdoor")
            step = {"prefect.deployments.steps.set_working_directory": {"directory": str(tmp_path)}}
            deployment_id = await client.create_deployment(
                flow_id=mine.flow_id,
                name="status-elsewhere",
                entrypoint=mine.entrypoint,
                parameters=mine.parameters,
                work_pool_name="stokline",
                pull_steps=[step],
            )
            return await client.create_flow_run_from_deployment(deployment_id)

    run = asyncio.run(deploy_elsewhere())
    worker = Running(project.root, "elsewhere")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not worker.worker.stats.refused:
            time.sleep(0.2)
        assert worker.worker.stats.taken == 0 and worker.worker.stats.refused == 1
        assert state_of(run.id).name == "Scheduled"
        assert any("status-elsewhere" in line and "another folder" in line for line in worker.lines)
    finally:
        worker.stop()

    async def delete() -> None:
        async with get_client() as client:
            await client.delete_flow_run(run.id)

    asyncio.run(delete())
