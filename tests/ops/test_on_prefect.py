"""Alerts and status against a real Prefect server (one test harness for the module, ~12 s).

The automations are applied through the API and read back; events and flow-run states are then
produced the way the flows and the engine produce them, and the notifications must arrive in
the alert sink, through Prefect's own trigger and CallWebhook machinery.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import prefect
import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.flows import load_flow_from_entrypoint
from prefect.settings import PREFECT_API_URL
from prefect.states import Completed, Failed, Running, StateType
from prefect.testing.utilities import prefect_test_harness

from stokline.cli import main
from stokline.config import load_mapping
from stokline.config.models import SecretRef, SecretUnavailable
from stokline.ops.alerts import MIN_PROACTIVE
from stokline.ops.automations import (
    CRASHED_RUN_GUARD,
    AlertsUnavailable,
    apply_alerts,
    owned_automations,
    restart_overdue_windows,
    workspace_automations,
)
from stokline.ops.heartbeats import CRASHED_AFTER, HEARTBEAT_EVENT, RUN_TAG
from stokline.ops.signals import signal_new_exceptions
from stokline.ops.sink import AlertSink, running_sink
from stokline.ops.status import PrefectRunHistory, collect_status
from stokline.store import Store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "mappings" / "demo.yaml"
CLIENT = "demo-outdoor"
SINK_URL = "http://127.0.0.1:8804/alerts"


@dataclass
class Served:
    sink: AlertSink
    mapping: Path
    work: Path
    store: Store

    def write_mapping(self, text: str) -> Any:
        self.mapping.write_text(text.replace(SINK_URL, f"{self.sink.url}/alerts"))
        return load_mapping(self.mapping)

    def lines(self) -> list[dict[str, Any]]:
        log = self.sink.log_path
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.lines()) < count and time.monotonic() < deadline:
            time.sleep(0.25)
        return self.lines()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("ops-on-prefect")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        env.setenv("STOKLINE_DATABASE_URL", f"sqlite:///{work / 'state.db'}")
        with (
            running_sink(work / "alerts.log") as sink,
            prefect_test_harness(server_startup_timeout=60),
        ):
            store = Store()
            served = Served(sink, work / "demo.yaml", work, store)
            served.write_mapping(DEMO.read_text(encoding="utf-8"))
            yield served
            store.close()


async def _apply(mapping: Any, **kwargs: Any) -> Any:
    async with get_client() as client:
        return await apply_alerts(mapping, client, **kwargs)


async def _owned() -> dict[str, Any]:
    async with get_client() as client:
        return {a.name: a for a in await owned_automations(client, CLIENT)}


async def _workspace() -> list[Any]:
    async with get_client() as client:
        return await workspace_automations(client)


def test_apply_creates_the_automations_once(served: Served) -> None:
    mapping = load_mapping(served.mapping)
    first = asyncio.run(_apply(mapping))
    assert first.count("create") + first.count("unchanged") == 10  # 9 alerts and the guard
    again = asyncio.run(_apply(mapping))
    assert again.count("unchanged") == 10 and len(again.changes) == 10
    owned = asyncio.run(_owned())
    assert len(owned) == 9  # no duplicates

    # The workspace's crashed-run guard: one, whichever client applied it, tagged as no client's.
    (guard,) = asyncio.run(_workspace())
    assert guard.name == CRASHED_RUN_GUARD and guard.name not in owned
    assert guard.trigger.posture == "Proactive" and guard.trigger.within == CRASHED_AFTER
    assert guard.trigger.after == {HEARTBEAT_EVENT}
    assert "prefect.flow-run.Completed" in guard.trigger.expect
    assert guard.trigger.for_each == {"prefect.resource.id"}
    (crash,) = guard.actions
    assert crash.type == "change-flow-run-state" and crash.state == StateType.CRASHED

    failed = owned["stokline demo-outdoor: sync run failed"]
    assert failed.enabled and set(failed.tags) >= {"stokline", "client:demo-outdoor"}
    trigger = failed.trigger
    assert trigger.posture == "Reactive" and trigger.threshold == 1
    assert trigger.within == timedelta(minutes=30)
    assert trigger.for_each == {"related:deployment:prefect.resource.name"}
    spike = owned["stokline demo-outdoor: exception spike"].trigger
    assert (spike.threshold, spike.within) == (5, timedelta(minutes=15))
    assert spike.for_each == {"stokline.exception.code"}
    overdue = owned["stokline demo-outdoor: orders has not succeeded"].trigger
    assert (overdue.posture, overdue.within) == ("Proactive", timedelta(minutes=6))

    # Every alert calls the one Webhook block, which posts to the sink.
    (action,) = failed.actions
    assert action.type == "call-webhook"
    assert {a.actions[0].block_document_id for a in owned.values()} == {action.block_document_id}

    async def block_url() -> str:
        async with get_client() as client:
            document = await client.read_block_document(action.block_document_id)
        return document.data["url"]

    assert asyncio.run(block_url()) == f"{served.sink.url}/alerts"


def test_an_edit_updates_in_place_keeps_a_pause_and_removes_what_is_stale(
    served: Served,
) -> None:
    text = served.mapping.read_text()
    asyncio.run(_apply(load_mapping(served.mapping)))
    before = asyncio.run(_owned())
    paused = before["stokline demo-outdoor: oversell risk"]

    async def pause() -> None:
        async with get_client() as client:
            await client.pause_automation(paused.id)

    asyncio.run(pause())
    edited = text.replace("cooldown: 30m", "cooldown: 1h").replace(
        "  catalogue:\n    every: 15m\n", "  catalogue:\n    enabled: false\n    every: 15m\n"
    )
    try:
        result = asyncio.run(_apply(served.write_mapping(edited)))
        removed = [c.name for c in result.changes if c.action == "remove"]
        assert removed == ["stokline demo-outdoor: catalogue has not succeeded"]
        assert result.count("update") == 3  # the three with a cooldown
        after = asyncio.run(_owned())
        assert len(after) == 8
        for name, automation in after.items():
            assert automation.id == before[name].id  # updated in place
        assert after["stokline demo-outdoor: fulfilments stale"].trigger.within == timedelta(
            hours=1
        )
        assert not after["stokline demo-outdoor: oversell risk"].enabled  # the pause stays
        # No alerts section: nothing of this client's is left.
        head, _, _ = edited.partition("  # Prefect automations")
        gone = asyncio.run(_apply(served.write_mapping(head)))
        assert gone.count("remove") == 8 and asyncio.run(_owned()) == {}
    finally:
        served.mapping.write_text(text)
        asyncio.run(_apply(load_mapping(served.mapping)))


def _trigger_id(automation_id: Any) -> str:
    """The server's id of an automation's trigger (its windows are kept under it)."""
    import httpx

    api = PREFECT_API_URL.value().rstrip("/")
    return httpx.get(f"{api}/automations/{automation_id}", timeout=10).json()["trigger"]["id"]


def test_starting_the_stack_again_starts_the_overdue_windows_afresh(served: Served) -> None:
    # The server keeps a Proactive trigger's window by trigger id: after a stop longer than the
    # window it would fire at once on the next start, although the last run had completed. A
    # new trigger id is a new window, beginning now; the automation itself, and a pause, stay.
    asyncio.run(_apply(load_mapping(served.mapping)))
    before = asyncio.run(_owned())
    trigger_ids = {n: _trigger_id(a.id) for n, a in before.items()}
    name = "stokline demo-outdoor: stock has not succeeded"

    async def pause_and_restart() -> list[str]:
        async with get_client() as client:
            await client.pause_automation(before[name].id)
            return await restart_overdue_windows(load_mapping(served.mapping), client)

    try:
        restarted = asyncio.run(pause_and_restart())
        assert name in restarted and len(restarted) == 5  # one per scheduled sync
        after = asyncio.run(_owned())
        for overdue in restarted:
            assert after[overdue].id == before[overdue].id
            assert trigger_ids[overdue] != _trigger_id(after[overdue].id)
            assert after[overdue].trigger.within == before[overdue].trigger.within
        assert not after[name].enabled  # the pause stays
        others = set(before) - set(restarted)
        assert {n: _trigger_id(after[n].id) for n in others} == {n: trigger_ids[n] for n in others}
        # Nothing else differs: applying again finds every alert as it wants it.
        again = asyncio.run(_apply(load_mapping(served.mapping)))
        assert again.count("unchanged") == len(again.changes)
    finally:
        asyncio.run(_apply(load_mapping(served.mapping)))

        async def resume() -> None:
            async with get_client() as client:
                await client.resume_automation(before[name].id)

        asyncio.run(resume())


def test_a_named_block_must_exist_and_be_able_to_notify(served: Served) -> None:
    text = served.mapping.read_text().replace(
        f'webhook: {{url: "{served.sink.url}/alerts"}}', "prefect_block: slack-webhook/nope"
    )
    mapping = served.write_mapping(text)
    try:
        with pytest.raises(AlertsUnavailable, match="slack-webhook/nope does not exist"):
            asyncio.run(_apply(mapping, dry_run=True))
        Secret(value="not a notifier").save("ops-secret", overwrite=True)
        mapping = served.write_mapping(text.replace("slack-webhook/nope", "secret/ops-secret"))
        with pytest.raises(AlertsUnavailable, match="cannot send notifications"):
            asyncio.run(_apply(mapping, dry_run=True))
    finally:
        served.write_mapping(DEMO.read_text(encoding="utf-8"))


async def _deployment_runs() -> None:
    """An orders deployment with a completed run, then a failed one, as the engine reports them."""
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("orders")
        deployment = await client.create_deployment(flow_id=flow_id, name=f"orders-{CLIENT}")
        for final in (Completed(), Failed(message="Stokly answered 503 three times")):
            run = await client.create_flow_run_from_deployment(deployment)
            await client.set_flow_run_state(run.id, Running(), force=True)
            await client.set_flow_run_state(run.id, final, force=True)


def test_alerts_reach_the_sink_once_per_cause(served: Served) -> None:
    asyncio.run(_apply(load_mapping(served.mapping)))
    start = len(served.lines())
    resource = {"prefect.resource.id": f"stokline.client.{CLIENT}"}
    for stale in (2, 3):
        emit_event(event="stokline.fulfilment.stale", resource=resource, payload={"stale": stale})
    asyncio.run(_deployment_runs())
    for i in range(6):
        served.store.exceptions.raise_(
            CLIENT, "unmapped_sku", "order", f"o{i}", "x", team="ecommerce"
        )
    served.store.exceptions.raise_(CLIENT, "tax_mismatch", "order", "t1", "x", team="finance")
    sent = signal_new_exceptions(served.store, CLIENT, timedelta(minutes=15), 5, emit_event)
    assert sent == {"unmapped_sku": 5, "tax_mismatch": 1}

    served.wait_for(start + 3)
    time.sleep(2)  # a second alert of the same cause would have arrived by now
    lines = served.lines()[start:]
    by_alert = {line["alert"]: line for line in lines}
    assert sorted(line["alert"] for line in lines) == [
        "exception_spike",
        "fulfilment_stale",
        "sync_failed",
    ], lines
    stale = by_alert["fulfilment_stale"]
    assert stale["client"] == CLIENT and stale["details"]["stale"] in (2, 3)
    failed = by_alert["sync_failed"]
    assert failed["labels"] == {"related:deployment:prefect.resource.name": f"orders-{CLIENT}"}
    assert failed["summary"].endswith("is Failed: Stokly answered 503 three times")
    spike = by_alert["exception_spike"]
    assert spike["labels"] == {"stokline.exception.code": "unmapped_sku"}
    assert spike["summary"].startswith("5 or more new unmapped_sku exceptions within 15 minutes")


def test_status_says_a_client_is_not_deployed_rather_than_never_synced(served: Served) -> None:
    text = served.mapping.read_text().replace("name: demo-outdoor", "name: not-deployed-yet")
    path = served.work / "not-deployed-yet.yaml"
    path.write_text(text)
    mapping = load_mapping(path)

    async def status() -> Any:
        async with get_client() as client:
            return await collect_status(mapping, served.store, PrefectRunHistory(client))

    found = asyncio.run(status())
    assert {row.health for row in found.syncs} == {"not deployed"}
    assert f"`stokline deploy {path}`" in found.note


def test_status_reads_runs_from_prefect_and_the_flow_publishes_the_page(served: Served) -> None:
    emit_event(
        event="stokline.orders.synced",
        resource={"prefect.resource.id": f"stokline.client.{CLIENT}"},
        payload={"trigger": "schedule", "ok": True, "seen": 4, "imported": 3, "api_calls": 9},
    )
    mapping = load_mapping(served.mapping)

    async def status() -> Any:
        async with get_client() as client:
            for _ in range(40):  # the event reaches the API within moments
                found = await collect_status(mapping, served.store, PrefectRunHistory(client))
                orders = next(s for s in found.syncs if s.sync == "orders")
                if orders.moved:
                    return orders
                await asyncio.sleep(0.25)
        return orders

    orders = asyncio.run(status())
    if orders.last_run is None:  # this test alone: make the runs the alerts test made
        asyncio.run(_deployment_runs())
        orders = asyncio.run(status())
    assert orders.source == "prefect" and orders.last_success is not None
    assert orders.last_run is not None and orders.last_run.state == "Failed"
    assert orders.moved == {"seen": 4, "imported": 3}

    flow = load_flow_from_entrypoint(f"{ROOT / 'flows' / 'status.py'}:status_flow")
    state = asyncio.run(flow(mapping=str(served.mapping), return_state=True))
    assert state.is_completed(), state.message

    async def artifact() -> Any:
        async with get_client() as client:
            return await client.read_latest_artifacts()

    pages = {a.key: a for a in asyncio.run(artifact())}
    page = pages[f"status-{CLIENT}"]
    assert page.type == "markdown"
    assert "# Demo Outdoor Ltd (demo-outdoor)" in page.data
    assert "| orders | every 2 minutes |" in page.data and "seen 4, imported 3" in page.data


def test_the_command_against_the_server(served: Served, capsys: pytest.CaptureFixture) -> None:
    url = PREFECT_API_URL.value()
    args = ["automations", "apply", "--mapping", str(served.mapping), "--prefect-url", url]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{CLIENT}: ") and "(dry run: nothing changed)" in out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "10 unchanged" in out and f"  = {CRASHED_RUN_GUARD}\n" in out
    assert main(["status", "--mapping", str(served.mapping), "--prefect-url", url]) == 0
    table = capsys.readouterr().out
    assert "note:" not in table and "orders      every 2 minutes" in table


def test_a_prefect_secret_block_resolves_in_and_out_of_an_event_loop(served: Served) -> None:
    # The syncs resolve their credentials inside a running event loop, where Prefect's
    # `Secret.load` would hand back a coroutine instead of the block.
    Secret(value="s3cr3t-from-a-block").save("stokline-test-token", overwrite=True)
    ref = SecretRef(prefect_secret="stokline-test-token")

    async def in_a_loop() -> str:
        return ref.resolve().get_secret_value()

    assert ref.resolve().get_secret_value() == "s3cr3t-from-a-block"
    assert asyncio.run(in_a_loop()) == "s3cr3t-from-a-block"
    missing = SecretRef(prefect_secret="stokline-no-such-block")

    async def missing_in_a_loop() -> None:
        missing.resolve()

    with pytest.raises(SecretUnavailable, match="Prefect Secret block stokline-no-such-block"):
        missing.resolve()
    with pytest.raises(SecretUnavailable, match="Prefect Secret block stokline-no-such-block"):
        asyncio.run(missing_in_a_loop())


async def _running_runs(count: int, name: str, tags: list[str]) -> list[Any]:
    """``count`` runs of a fulfilment deployment, Running as a worker's would be."""
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("fulfilment")
        deployment = await client.create_deployment(flow_id=flow_id, name=name, tags=tags)
        runs = [await client.create_flow_run_from_deployment(deployment) for _ in range(count)]
        for run in runs:
            await client.set_flow_run_state(run.id, Running(), force=True)
        return runs


def _heartbeat(run: Any) -> None:
    """One heartbeat of ``run``, shaped as Prefect's flow engine emits it."""
    emit_event(
        event=HEARTBEAT_EVENT,
        resource={
            "prefect.resource.id": f"prefect.flow-run.{run.id}",
            "prefect.resource.name": run.name,
            "prefect.version": prefect.__version__,
        },
        related=[
            {
                "prefect.resource.id": f"prefect.flow.{run.flow_id}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "fulfilment",
            },
            {
                "prefect.resource.id": f"prefect.deployment.{run.deployment_id}",
                "prefect.resource.role": "deployment",
            },
            *(
                {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
                for tag in run.tags
            ),
        ],
    )


async def _states(*runs: Any) -> list[Any]:
    async with get_client() as client:
        return [(await client.read_flow_run(run.id)).state for run in runs]


async def _complete(run: Any) -> None:
    async with get_client() as client:
        await client.set_flow_run_state(run.id, Completed(), force=True)


def test_a_run_whose_heartbeats_stop_is_marked_crashed_and_alerts(served: Served) -> None:
    # Prefect's shortest window for the guard; the real one is CRASHED_AFTER.
    mapping = load_mapping(served.mapping)
    asyncio.run(_apply(mapping, crashed_after=MIN_PROACTIVE))
    start = len(served.lines())
    ours = asyncio.run(_running_runs(3, f"fulfilment-{CLIENT}", [RUN_TAG, "fulfilment"]))
    zombie, beating, finished = ours
    # Another project's deployment in the same workspace: silent too, but not ours to crash.
    (theirs,) = asyncio.run(_running_runs(1, "someone-elses", ["reports"]))
    try:
        for run in (zombie, beating, finished, theirs):
            _heartbeat(run)
        asyncio.run(_complete(finished))
        # The zombie beats no more; the control keeps beating well inside the window.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = asyncio.run(_states(zombie, beating, finished, theirs))
            if states[0].type != StateType.RUNNING:
                break
            _heartbeat(beating)
            time.sleep(2)
        dead, alive, done, other = states
        assert dead.type == StateType.CRASHED, dead
        assert dead.message.startswith("No heartbeat for 10 seconds: the flow-run process")
        assert alive.type == StateType.RUNNING  # beating: not touched
        assert done.type == StateType.COMPLETED  # ended after its heartbeat: not touched
        assert other.type == StateType.RUNNING  # not tagged stokline: not touched

        # Crashed, the run is reported by the client's "sync run failed" alert, as any crash.
        served.wait_for(start + 1)
        (alert,) = [line for line in served.lines()[start:] if line["alert"] == "sync_failed"]
        assert alert["labels"] == {
            "related:deployment:prefect.resource.name": f"fulfilment-{CLIENT}"
        }
        crashed = f"{zombie.name} of deployment fulfilment-{CLIENT} is Crashed: No heartbeat"
        assert crashed in alert["summary"]
    finally:
        asyncio.run(_complete(beating))
        asyncio.run(_complete(theirs))
        asyncio.run(_apply(mapping))  # the guard's real window again
