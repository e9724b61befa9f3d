"""How long a flow run may stay silent before Prefect marks it Crashed: one place for both ends.

When a worker's machine dies, or its flow-run processes are killed, nothing is left to tell the
Prefect server: the runs would stay ``Running`` for ever, the "sync run failed" alert would never
fire and the UI would show work that is not happening. Prefect's answer ("detect zombie flows")
has two halves, and both read the constants below:

- every flow-run process emits a ``prefect.flow-run.heartbeat`` event each `HEARTBEAT_SECONDS`,
  when its environment sets `HEARTBEAT_ENV`: `stokline deploy` sets it in every deployment's job
  variables, and `worker_env` gives it to the worker `stokline up` starts as well;
- one Proactive automation of the workspace (`stokline.ops.automations.crashed_run_guard`,
  applied by ``stokline automations apply``) expects, after each heartbeat of a run of a stokline
  deployment (tagged `RUN_TAG`), another heartbeat or an end state within `CRASHED_AFTER`, and
  otherwise sets the run Crashed.

`CRASHED_AFTER` is three heartbeats: one or two lost on the way do not crash a live run. Prefect
3.9 emits a heartbeat every 180 s when the variable is unset, so a run without it would be marked
Crashed while still working: that is why each deployment sets it (stokline.ops.deployments) rather than
leaving it to the workers, and why the automation watches only runs tagged `RUN_TAG`.

No Prefect import here: `stokline.stack` reads these without paying for one.
"""

from __future__ import annotations

from datetime import timedelta

HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
HEARTBEAT_SECONDS = 30
"""Seconds between two heartbeats of a flow run; Prefect's minimum."""
CRASHED_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)
"""Silence after a heartbeat, with no end state either, that marks the run Crashed."""
HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
RUN_TAG = "stokline"
"""The tag of every stokline deployment (stokline.ops.deployments), and so of their runs: the automation
watches these runs only, whose heartbeat period their deployment sets, and leaves alone the runs of
other projects sharing the Prefect workspace."""
END_STATES = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut", "Suspended")
"""States after which a run sends no more heartbeats, and rightly so (a suspended run's process
exits until it is resumed; a run paused in its process keeps beating)."""
CRASHED_MESSAGE = (
    "No heartbeat for {silence}: the flow-run process or its machine stopped "
    "(marked by stokline's heartbeat automation)"
)


def worker_env() -> dict[str, str]:
    """The environment a worker (and so each flow-run process it starts) needs for heartbeats."""
    return {HEARTBEAT_ENV: str(HEARTBEAT_SECONDS)}
