"""`stokline worker`: many clients' flow runs in one process, each in a thread of its own.

Why. Prefect's process worker starts a Python process for every flow run: about 1.3 s of CPU to
import Prefect and the flows, and some 100 MB while it lives. A client runs about one and a half
scheduled runs a minute at the demo's cadences and keeps two watchers (orders inbox, stock events)
alive all the time, so on two cores a process worker tops out at a few dozen clients, mostly
starting processes. This worker polls the same work pool and runs each flow run it takes in a
thread of this process, with the flows loaded once: a watcher costs a thread that wakes every two
seconds, a scheduled run no process start.

What stays as it was. Runs are the deployments' runs (`stokline deploy`), named, tagged and with
their artifacts per client; the Prefect UI shows them like any other. The server still decides
who runs what: a run is taken by proposing Pending, which the server grants to one worker only
and only within the deployment's concurrency limit, so any number of these workers (and Prefect
process workers) can poll one pool. Heartbeats, and so the crash automation, work as before:
every run sends them from its own thread (`HEARTBEAT_ENV`).

Each run has its own event loop in its own thread, so one run's blocking work (a large plan, a
database query) does not stall another's polls; CPU-bound work still shares the interpreter.
What a process gave and this does not: isolation. A run that exhausts memory or crashes the
interpreter takes the others with it (they are then marked Crashed by the heartbeat automation
and rescheduled runs start on the next worker); a run cannot be killed, only cancelled.

Cancelling. A run set Cancelling in the UI is marked Cancelled and its task cancelled. A stop of
the worker (SIGTERM, Ctrl-C) does the same for every run it holds, so none is left Running.

The flows are loaded once, when a run first needs them: a worker runs the flow code it found
then (the mapping files are read by every run), so restart it after updating the project's code.

Only runs of deployments deployed from this worker's project root are taken (their pull step
names the folder their flows and mappings are in; a thread cannot change the process's working
directory): others are left to other workers, and said once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from stokline.ops.heartbeats import HEARTBEAT_ENV, HEARTBEAT_SECONDS

log = logging.getLogger("stokline.worker")

CANCEL_CHECK_SECONDS = 2.0
POOL_WAIT_SECONDS = 2.0
WORKER_HEARTBEAT_SECONDS = 15.0
DEPLOYMENT_TTL_SECONDS = 30.0
"""A deployment's entrypoint and pull step are read again after this long (a redeploy)."""
STOPPED_MESSAGE = "Stopped with its worker (stokline worker)"
CANCELLED_MESSAGE = "Cancelled: its worker stopped the run"
SET_WORKING_DIRECTORY = "prefect.deployments.steps.set_working_directory"


def prepare_environment() -> None:
    """What this process needs before Prefect is imported: every run it hosts beats as the
    crash automation expects, whatever the environment said."""
    os.environ[HEARTBEAT_ENV] = str(HEARTBEAT_SECONDS)


@dataclass
class Hosted:
    """One flow run running in this worker."""

    flow_run: Any
    label: str
    thread: threading.Thread | None = None
    loop: asyncio.AbstractEventLoop | None = None
    task: asyncio.Task | None = None
    engine: Any = None
    cancel_requested: bool = False
    final_state: Any = None  # the state the server was told before the task is cancelled
    started: float = field(default_factory=time.monotonic)
    outcome: str | None = None

    def cancel(self, final_state: Any) -> None:
        """Cancel the run's task (from any thread) once the server holds ``final_state``; a run
        not yet started never starts.

        The engine calls a run interrupted in a state it believes is still Running Crashed, and
        forces that onto the server; so its own copy of the state is made final first, in the
        run's loop, just before the interruption."""
        self.cancel_requested = True
        self.final_state = final_state
        loop = self.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has just closed
                loop.call_soon_threadsafe(self._interrupt)

    def _interrupt(self) -> None:
        if self.engine is not None and self.final_state is not None:
            self.engine.flow_run.state = self.final_state
        if self.task is not None:
            self.task.cancel()


@dataclass
class WorkerStats:
    """What the worker did, for its log and the benchmarks."""

    taken: int = 0
    finished: int = 0
    cancelled: int = 0
    refused: int = 0  # runs of a deployment from another project root, left to others
    unrecorded: int = 0  # runs whose worker the server did not take (it did not answer)
    lag: list[float] = field(default_factory=list)  # seconds from scheduled start to taken


class InProcessWorker:
    """Polls ``pool`` and runs the flow runs it takes in threads of this process (see the module
    docstring). ``limit`` bounds the runs held at once; ``poll_seconds`` is the pause between two
    looks at the pool."""

    def __init__(
        self,
        *,
        pool: str,
        root: Path,
        name: str | None = None,
        limit: int = 400,
        poll_seconds: float = 1.0,
        say: Callable[[str], None] = print,
    ) -> None:
        self.pool = pool
        self.root = root.resolve()
        self.name = name or f"stokline-{socket.gethostname()}-{os.getpid()}"
        self.limit = limit
        self.poll_seconds = poll_seconds
        self.say = say
        self.hosted: dict[UUID, Hosted] = {}
        self.stats = WorkerStats()
        self._flows: dict[str, Any] = {}
        self._deployments: dict[UUID, tuple[float, Any]] = {}
        self._refused: set[UUID] = set()
        self._beat = self._cancel_check = 0.0

    # -- what a run needs ------------------------------------------------------------------

    async def _deployment(self, client: Any, deployment_id: UUID) -> Any:
        cached = self._deployments.get(deployment_id)
        if cached and time.monotonic() - cached[0] < DEPLOYMENT_TTL_SECONDS:
            return cached[1]
        deployment = await client.read_deployment(deployment_id)
        self._deployments[deployment_id] = (time.monotonic(), deployment)
        return deployment

    def _ours(self, deployment: Any) -> bool:
        """Whether the deployment's flows and mappings are in this worker's project root."""
        for step in deployment.pull_steps or []:
            directory = (step.get(SET_WORKING_DIRECTORY) or {}).get("directory")
            if directory is not None:
                return Path(directory).resolve() == self.root
        return False

    def _flow(self, entrypoint: str) -> Any:
        if entrypoint not in self._flows:
            from prefect.flows import load_flow_from_entrypoint

            path, _, name = entrypoint.partition(":")
            self._flows[entrypoint] = load_flow_from_entrypoint(f"{self.root / path}:{name}")
        return self._flows[entrypoint]

    # -- taking and running runs -----------------------------------------------------------

    async def _take(self, client: Any, flow_run: Any) -> None:
        from prefect.exceptions import Abort
        from prefect.states import Pending
        from prefect.utilities.engine import propose_state

        if flow_run.id in self.hosted or flow_run.deployment_id is None:
            return
        deployment = await self._deployment(client, flow_run.deployment_id)
        if not self._ours(deployment):
            if deployment.id not in self._refused:
                self._refused.add(deployment.id)
                self.stats.refused += 1
                self.say(
                    f"leaving runs of {deployment.name} to other workers: it was deployed from "
                    f"another folder than {self.root}"
                )
            return
        try:
            flow = self._flow(deployment.entrypoint)
        except Exception as exc:  # a broken flow file: say it once, leave the run to others
            if deployment.id not in self._refused:
                self._refused.add(deployment.id)
                self.say(f"cannot load {deployment.entrypoint} for {deployment.name}: {exc}")
            return
        try:
            state = await propose_state(client, Pending(), flow_run_id=flow_run.id)
        except Abort:
            return  # another worker took it, or the deployment is at its limit
        if not state.is_pending():
            return
        scheduled = flow_run.expected_start_time or flow_run.next_scheduled_start_time
        if scheduled is not None:
            self.stats.lag.append(max(0.0, (datetime.now(UTC) - scheduled).total_seconds()))
        hosted = Hosted(flow_run, f"{flow_run.name} ({deployment.name})")
        # The run sees this worker's Prefect settings (its API), as the engine's own heartbeat
        # thread does: a new thread would otherwise start from an empty context.
        context = contextvars.copy_context()
        hosted.thread = threading.Thread(
            target=context.run,
            args=(self._execute, hosted, flow),
            name=f"run-{flow_run.name}",
            daemon=True,
        )
        # Which worker runs it, in the run's details (as a process worker records its pid),
        # before it starts: whoever sees the run started sees who runs it. A busy server may
        # not answer at once; the run is not held back for it beyond a few tries.
        await self._record_worker(client, flow_run.id)
        self.hosted[flow_run.id] = hosted
        self.stats.taken += 1
        hosted.thread.start()

    async def _record_worker(self, client: Any, run_id: UUID) -> None:
        for attempt in range(3):
            try:
                await client.update_flow_run(run_id, infrastructure_pid=self.name)
                return
            except Exception as exc:
                failure = exc
                await asyncio.sleep(0.5 * (attempt + 1))
        self.stats.unrecorded += 1
        log.warning("could not record this worker on run %s: %s", run_id, failure)

    def _execute(self, hosted: Hosted, flow: Any) -> None:
        """The run's thread: its own event loop, the Prefect engine, until the run ends.

        The engine is driven as `prefect.flow_engine.run_flow_async` drives it, so that a
        cancellation can reach it (`Hosted.cancel`); a flow that is not async is run by
        `run_flow` and can then only be marked Cancelled, not interrupted."""
        from prefect.flow_engine import AsyncFlowRunEngine, run_flow

        async def main() -> Any:
            hosted.loop = asyncio.get_running_loop()
            hosted.task = asyncio.current_task()
            if hosted.cancel_requested:
                return None
            if not flow.isasync:
                return await asyncio.to_thread(
                    run_flow, flow, flow_run=hosted.flow_run, return_type="state"
                )
            parameters = _parameters(flow, hosted.flow_run)
            engine = AsyncFlowRunEngine(flow=flow, flow_run=hosted.flow_run, parameters=parameters)
            hosted.engine = engine
            async with engine.start():
                while engine.is_running():
                    async with engine.run_context():
                        await engine.call_flow_fn()
            return engine.state

        try:
            state = asyncio.run(main())
            hosted.outcome = getattr(state, "name", None) or "Cancelled"
        except asyncio.CancelledError:
            hosted.outcome = "Cancelled"
        except BaseException as exc:  # the engine reports the run's own failures as states
            hosted.outcome = f"ended by {type(exc).__name__}"
            log.exception("flow run %s", hosted.label)

    def _reap(self) -> None:
        for run_id, hosted in list(self.hosted.items()):
            if hosted.thread is not None and not hosted.thread.is_alive():
                del self.hosted[run_id]
                self.stats.finished += 1
                seconds = time.monotonic() - hosted.started
                self.say(f"{hosted.label}: {hosted.outcome} after {seconds:.1f} s")

    async def _mark_cancelled(self, client: Any, run_id: UUID, message: str) -> Any:
        """Cancelled on the server (forced); returns that state."""
        from prefect.states import Cancelled

        state = Cancelled(message=message)
        with contextlib.suppress(Exception):  # a server that does not answer: the guard will
            await client.set_flow_run_state(run_id, state, force=True)
        return state

    async def _cancel_requested(self, client: Any) -> None:
        """Runs of ours that someone set Cancelling: Cancelled, then their tasks cancelled (in
        that order, so that the engine's report of the interruption cannot end them Crashed)."""
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterId,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        if not self.hosted:
            return
        found = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=list(self.hosted)),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CANCELLING])),
            )
        )
        for flow_run in found:
            hosted = self.hosted.get(flow_run.id)
            if hosted is not None and not hosted.cancel_requested:
                hosted.cancel(await self._mark_cancelled(client, flow_run.id, CANCELLED_MESSAGE))
                self.stats.cancelled += 1

    async def _stop_all(self, client: Any, timeout: float = 15.0) -> None:
        """Every run still held: Cancelled, its task cancelled, its thread joined (briefly)."""
        for run_id, hosted in list(self.hosted.items()):
            hosted.cancel(await self._mark_cancelled(client, run_id, STOPPED_MESSAGE))
            self.stats.cancelled += 1
        deadline = time.monotonic() + timeout
        for hosted in list(self.hosted.values()):
            if hosted.thread is not None:
                await asyncio.to_thread(hosted.thread.join, max(0.0, deadline - time.monotonic()))
        self._reap()

    # -- the loop --------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event, ready: Callable[[], None] | None = None) -> None:
        """Take and run flow runs until ``stop`` is set; then stop every run still held."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        async with get_client() as client:
            said = False
            while not stop.is_set():  # a worker may start before the first deploy
                try:
                    await client.read_work_pool(self.pool)
                    break
                except ObjectNotFound:
                    if not said:
                        self.say(
                            f"waiting for the work pool {self.pool}: `stokline deploy` creates it"
                        )
                        said = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POOL_WAIT_SECONDS)
            if stop.is_set():
                return
            await client.send_worker_heartbeat(
                self.pool, self.name, heartbeat_interval_seconds=WORKER_HEARTBEAT_SECONDS
            )
            if ready is not None:
                ready()
            self._beat = self._cancel_check = time.monotonic()
            trouble: str | None = None
            try:
                while not stop.is_set():
                    try:
                        await self._once(client)
                    except Exception as exc:  # the server busy or restarting: try again
                        said = f"{type(exc).__name__}: {str(exc)[:200]}"
                        if said != trouble:
                            self.say(f"the Prefect API did not answer as expected ({said})")
                        trouble = said
                    else:
                        if trouble is not None:
                            self.say("the Prefect API answers again")
                        trouble = None
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.poll_seconds)
            finally:
                await self._stop_all(client)

    async def _once(self, client: Any) -> None:
        """One look at the pool: finished runs reaped, due runs taken, cancellations, beats."""
        self._reap()
        room = self.limit - len(self.hosted)
        if room > 0:
            due = await client.get_scheduled_flow_runs_for_work_pool(
                self.pool, scheduled_before=datetime.now(UTC)
            )
            due.sort(key=lambda r: r.flow_run.expected_start_time or datetime.now(UTC))
            for response in due[:room]:
                await self._take(client, response.flow_run)
        now = time.monotonic()
        if now - self._cancel_check >= CANCEL_CHECK_SECONDS:
            self._cancel_check = now
            await self._cancel_requested(client)
        if now - self._beat >= WORKER_HEARTBEAT_SECONDS:
            self._beat = now
            await client.send_worker_heartbeat(
                self.pool, self.name, heartbeat_interval_seconds=WORKER_HEARTBEAT_SECONDS
            )


def _parameters(flow: Any, flow_run: Any) -> dict[str, Any]:
    """The run's parameters with the flow's defaults, as the engine resolves them."""
    from prefect.utilities.callables import get_call_parameters, parameters_to_args_kwargs

    args, kwargs = parameters_to_args_kwargs(flow.fn, flow_run.parameters or {})
    return get_call_parameters(flow.fn, args, kwargs)
