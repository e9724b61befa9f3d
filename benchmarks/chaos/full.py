"""The full campaign (``make chaos``): the whole stack, hostile, with its worker and receiver killed.

1. **Up.** `stokline up`'s own `DemoStack` starts, in this process, from a throwaway project
   directory under ``.stokline/chaos/`` (this project's ``prefect.yaml`` and ``flows/``, the demo
   mapping pointed at free ports): a Prefect server, both sandboxes, the receiver subscribed to
   SHOPLINE's order webhooks, the deployments and a worker — nothing of a running demo is touched.
   SHOPLINE then gets products whose variants resolve to Stokly items already sold
   (`benchmarks.chaos.collisions`; the mapping has their override).
2. **Chaos.** Both sandboxes switch to the ``hostile`` profile as it is (10 % 5xx, 5 % 429 in
   bursts, 2 % timeouts, dropped connections, every webhook up to three times and out of order).
   The storefront, the merchant and the warehouse act (`Traffic`). The deployments run on their
   schedules and triggers; an operator starts fulfilment and finance runs more often than their
   schedules would, and approves each finance run's journals when it pauses for approval. Three
   times, while a batch is running, the worker (with every flow run it started) and the receiver
   are killed with SIGKILL, and started again a few seconds later; the flow runs that died are
   then marked Crashed, as Prefect's zombie detection would.
3. **Settle.** Faults off, traffic stops; runs of every sync are started again and again until two
   rounds in a row finish without writing anything and nothing is left in flight. Work a killed
   run held — its inbox claims and order leases — comes free after their expiry (a minute after
   the run's last heartbeat); `RecoveryProbe` measures how long the killed runs' orders waited
   for another run, from each kill (its p95 is held to 2 minutes).
4. **Check.** The invariants (`benchmarks.chaos.invariants`) over the sandboxes' files and the
   stack's state store; the table is printed and written to ``benchmarks/results/chaos.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from benchmarks.chaos.collisions import OVERRIDES, add_collisions
from benchmarks.chaos.invariants import Snapshot, check
from benchmarks.chaos.observe import ReadOnlyDocs, read_through_stokline, take_snapshot
from benchmarks.chaos.recovery import RecoveryProbe
from benchmarks.chaos.report import CampaignResult
from benchmarks.chaos.traffic import Traffic
from benchmarks.chaos.world import point_mapping
from benchmarks.common import free_port
from stokline.config import Mapping, load_mapping
from stokline.envfile import load_env_file
from stokline.stack import START_NOW, DemoStack, StackConfig
from stokline.store import Store
from stokline.store.tables import audit
from stokline.store.tables import inbox as inbox_table
from stokline.sync.clients import open_clients

__all__ = ["FullCampaign"]

ROOT = Path(__file__).resolve().parents[2]
WORKDIR = ROOT / ".stokline" / "chaos"
CLIENT = "demo-outdoor"
SKUS = 300  # the stack's own demo seed
OPERATOR_SYNCS = ("orders", "fulfilment", "stock", "finance")
"""The deployments the settle phase runs, round after round (``<sync>-<client>``)."""
BATCH_SYNCS = ("orders", "fulfilment", "finance", "stock", "catalogue")
"""A kill waits for a run of one of these to be under way: that is a batch in the middle."""
DRIFT_EVERY = "1m"
"""Every SHOPLINE level is read for drift within a minute (the demo's hour is longer than the
campaign): the storefront's own changes to SHOPLINE stock — checkouts not yet paid, restocking
refunds and cancellations, edits — are set right within a settle round."""
ACTIVE = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


class Prefect:
    """The few Prefect API calls an operator makes: start a run, approve one, mark one crashed."""

    def __init__(self, api: str, transport: httpx.BaseTransport | None = None) -> None:
        self.api = api
        self.http = httpx.Client(base_url=api, timeout=30, transport=transport)
        self._ids: dict[str, str] = {}

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """One API call; a busy server (5xx, no answer) is asked again a few times."""
        for attempt in range(6):
            try:
                response = self.http.request(method, path, json=body)
            except httpx.TransportError:
                if attempt == 5:
                    raise
            else:
                if response.status_code < 500 or attempt == 5:
                    return response
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self._send("POST", path, body)
        response.raise_for_status()
        return response.json()

    def _get(self, path: str) -> Any:
        response = self._send("GET", path)
        response.raise_for_status()
        return response.json()

    def deployment(self, sync: str) -> str:
        if sync not in self._ids:
            self._ids[sync] = self._get(f"/deployments/name/{sync}/{sync}-{CLIENT}")["id"]
        return self._ids[sync]

    def runs(self, sync: str | None = None, states: tuple[str, ...] | None = None) -> list[dict]:
        """Flow runs, of one deployment and in some states when asked, page by page."""
        flow_runs: dict[str, Any] = {}
        if sync is not None:
            flow_runs["deployment_id"] = {"any_": [self.deployment(sync)]}
        if states is not None:
            flow_runs["state"] = {"type": {"any_": list(states)}}
        found: list[dict] = []
        while True:
            page = self._post(
                "/flow_runs/filter", {"flow_runs": flow_runs, "limit": 200, "offset": len(found)}
            )
            found.extend(page)
            if len(page) < 200:
                return found

    def start(self, sync: str, **parameters: Any) -> str:
        """A run now, as the UI's Run button starts one."""
        body = {"parameters": parameters} if parameters else {}
        return self._post(f"/deployments/{self.deployment(sync)}/create_flow_run", body)["id"]

    def active(self, sync: str) -> list[dict]:
        """Runs of ``sync`` under way or due now (not the schedule's runs of later hours)."""
        due = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
        flow_runs = {
            "deployment_id": {"any_": [self.deployment(sync)]},
            "state": {"type": {"any_": list(ACTIVE)}},
            "expected_start_time": {"before_": due},
        }
        return self._post("/flow_runs/filter", {"flow_runs": flow_runs, "limit": 200})

    def start_if_idle(self, sync: str, **parameters: Any) -> str | None:
        """A run now unless one is already waiting or under way."""
        if self.active(sync):
            return None
        return self.start(sync, **parameters)

    def state(self, run_id: str) -> str:
        return (self._get(f"/flow_runs/{run_id}").get("state") or {}).get("type", "")

    def approve_paused(self, note: str) -> int:
        """Approve every finance run waiting for approval; returns how many."""
        approved = 0
        for run in self.runs("finance", ("PAUSED",)):
            body = {"run_input": {"approve": True, "note": note}}
            if self._send("POST", f"/flow_runs/{run['id']}/resume", body).status_code < 300:
                approved += 1
        return approved

    def mark_crashed(self, run_id: str, message: str) -> None:
        body = {"state": {"type": "CRASHED", "name": "Crashed", "message": message}, "force": True}
        self._post(f"/flow_runs/{run_id}/set_state", body)

    def worker_online(self, pool: str, since: datetime) -> bool:
        workers = self._post(f"/work_pools/{pool}/workers/filter", {})
        for worker in workers:
            beat = worker.get("last_heartbeat_time")
            if beat and datetime.fromisoformat(beat.replace("Z", "+00:00")) >= since:
                return True
        return False

    def close(self) -> None:
        self.http.close()


def project_dir(target: Path) -> tuple[Path, dict[str, int]]:
    """A project directory for the stack: prefect.yaml, flows/, .env.demo, and the demo mapping
    (under its own name, so its deployments are the demo client's) on free ports, with
    the override of `benchmarks.chaos.collisions`."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy(ROOT / "prefect.yaml", target / "prefect.yaml")
    shutil.copy(ROOT / ".env.demo", target / ".env.demo")
    (target / "flows").symlink_to(ROOT / "flows", target_is_directory=True)
    ports = {name: free_port() for name in ("shopline", "stokly", "prefect", "receiver", "sink")}
    mapping = point_mapping(
        ROOT / "mappings" / "demo.yaml",
        target / "mappings" / "demo.yaml",
        f"http://127.0.0.1:{ports['shopline']}",
        f"http://127.0.0.1:{ports['stokly']}",
        drift_every=DRIFT_EVERY,
        overrides=OVERRIDES,
    )
    text = mapping.read_text(encoding="utf-8")
    mapping.write_text(re.sub(r"127\.0\.0\.1:8804\b", f"127.0.0.1:{ports['sink']}", text))
    return target, ports


class FullCampaign:
    """The campaign against the running stack; see the module docstring for its phases."""

    def __init__(
        self,
        *,
        chaos_minutes: float = 6.0,
        kills: int = 3,
        settle_minutes: float = 16.0,
        steps_per_minute: float = 24.0,
        seed: int = 8,
        say: Callable[[str], None] = print,
    ) -> None:
        self.chaos_minutes = chaos_minutes
        self.kills = kills
        self.settle_minutes = settle_minutes
        self.steps_per_minute = steps_per_minute
        self.seed = seed
        self.say = say
        self.root, self.ports = project_dir(WORKDIR / "project")
        self.state_dir = self.root / ".stokline"
        load_env_file(ROOT / ".env.demo")  # the final reads resolve the mapping's secrets
        self.mapping_path = self.root / "mappings" / "demo.yaml"
        self.mapping: Mapping = load_mapping(self.mapping_path)
        self.stack = DemoStack(
            StackConfig(
                root=self.root,
                mapping=self.mapping_path,
                state_dir=self.state_dir,
                prefect_port=self.ports["prefect"],
                receiver_port=self.ports["receiver"],
                storefront_rate=0.0,
                warehouse_rate=0.0,
                timeout=240.0,
            ),
            say=lambda line: say(f"stack: {line}"),
        )
        self.prefect = Prefect(self.stack.endpoints.prefect_api)
        self.store = Store(f"sqlite:///{self.state_dir / 'state.db'}")
        self.killed: list[str] = []
        self.recovery: RecoveryProbe | None = None
        self.approved = 0
        self.started_runs: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}
        self.settled = False
        self.settle_rounds = 0
        self.traffic: Traffic | None = None
        self.baseline: list[str] = []
        self.first_day = self.today()

    # -- reading the stack ------------------------------------------------------------------------

    def today(self) -> Any:
        return datetime.now(self.mapping.client.tz).date()

    def parameters(self, sync: str) -> dict[str, str]:
        """Run parameters: finance posts today's money (the nightly run would post yesterday's)."""
        return {"start": str(self.today()), "end": str(self.today())} if sync == "finance" else {}

    def docs(self, sandbox: str) -> ReadOnlyDocs:
        return ReadOnlyDocs(self.state_dir / "sandbox" / f"{sandbox}.sqlite3")

    def writes(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit)).scalar_one())

    def in_flight(self) -> dict[str, int]:
        """Deliveries SHOPLINE still has to make, and inbox events not processed yet."""
        deliveries = [
            d
            for d in self.docs("shopline").list("delivery")
            if d["state"] in ("pending", "retrying")
        ]
        query = (
            select(func.count())
            .select_from(inbox_table)
            .where(inbox_table.c.status.in_(("pending", "processing")))
        )
        with self.store.engine.connect() as conn:
            waiting = int(conn.execute(query).scalar_one())
        return {"deliveries": len(deliveries), "inbox": waiting}

    def faults(self, profile: str) -> None:
        ep = self.stack.endpoints
        httpx.put(
            f"{ep.shopline}/_sandbox/faults", json={"profile": profile}, timeout=10
        ).raise_for_status()
        httpx.put(
            f"{ep.stokly}/_sandbox/faults", json={"profile": profile}, timeout=10
        ).raise_for_status()

    # -- phases ----------------------------------------------------------------------------------

    def up(self) -> None:
        started = time.monotonic()
        self.stack.up()
        # SHOPLINE variants that resolve to one Stokly item, before any traffic (faults are off).
        shop = self.mapping.connections.shopline
        add_collisions(
            self.stack.endpoints.shopline,
            shop.access_token.resolve().get_secret_value(),
            shop.api_version,
            SKUS,
        )
        self.baseline = [o["id"] for o in self.docs("shopline").list("order")]
        self.seconds["up"] = time.monotonic() - started

    def _traffic_loop(self, stop: threading.Event) -> None:
        assert self.traffic is not None
        interval = 60.0 / self.steps_per_minute
        while not stop.is_set():
            try:
                self.traffic.step()
            except httpx.HTTPError as exc:  # the control API is never faulted: worth a line
                self.say(f"traffic: {type(exc).__name__}: {exc}")
            stop.wait(interval)

    def _operate(self) -> None:
        """What an operator does each tick: approve journals, keep fulfilment and finance going."""
        self.approved += self.prefect.approve_paused("approved by the chaos campaign")
        for sync in ("fulfilment", "finance"):
            if self.prefect.start_if_idle(sync, **self.parameters(sync)):
                self.started_runs[sync] += 1

    def _batch_under_way(self, timeout: float = 90.0) -> list[dict]:
        """Wait until a run of a batch sync has been running for a moment; returns the runs."""
        for sync in ("orders", "fulfilment"):
            if self.prefect.start_if_idle(sync):
                self.started_runs[sync] += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [
                run
                for sync in BATCH_SYNCS
                for run in self.prefect.runs(sync, ("RUNNING",))
                if (started := run.get("start_time"))
                and (
                    datetime.now(UTC) - datetime.fromisoformat(started.replace("Z", "+00:00"))
                ).total_seconds()
                > 2
            ]
            if running:
                return running
            self.approved += self.prefect.approve_paused("approved by the chaos campaign")
            time.sleep(1)
        return []

    def kill(self, number: int) -> None:
        """SIGKILL the worker (with its flow runs) and the receiver mid-batch; start them again."""
        batch = self._batch_under_way()
        # Pending runs are the worker's too: claimed, their process being started.
        doomed = self.prefect.runs(None, ("PENDING", "RUNNING", "PAUSED"))
        sup = self.stack.supervisor
        worker, receiver = sup.kill("worker"), sup.kill("receiver")
        if self.recovery is None:
            self.recovery = RecoveryProbe(self.store, CLIENT)
        held = self.recovery.killed(number)
        names = sorted({r["name"] for r in doomed})
        what = (
            f"kill {number}: worker and receiver SIGKILLed with {len(doomed)} flow run(s) running"
            f" and {held} order(s) held"
        )
        if not batch:
            what += " (no batch of a sync was under way)"
        self.killed.append(f"{what}: {', '.join(names) or 'none'}")
        self.say(self.killed[-1])
        time.sleep(3)
        since = datetime.now(UTC)
        receiver = sup.start(receiver.name, receiver.argv)
        worker = sup.start(worker.name, worker.argv)
        ep = self.stack.endpoints
        sup.wait_until(
            receiver,
            lambda: httpx.get(f"{ep.receiver}/health", timeout=2).status_code == 200,
            "receiver",
            60,
        )
        sup.wait_until(
            worker,
            lambda: self.prefect.worker_online(self.stack.config.pool, since),
            "worker",
            120,
        )
        for run in doomed:  # nobody is left to report them: as Prefect's zombie detection would
            if self.prefect.state(run["id"]) in ("PENDING", "RUNNING", "PAUSED"):
                self.prefect.mark_crashed(
                    run["id"], f"killed by the chaos campaign (kill {number})"
                )
        # The watchers `stokline up` starts at once (the inbox watcher, the stock event path) died
        # with the worker: start them again now rather than at their next scheduled run.
        for flow in START_NOW:
            with contextlib.suppress(httpx.HTTPStatusError):  # not deployed in this project
                self.prefect.start_if_idle(flow)

    def chaos(self) -> None:
        started = time.monotonic()
        self.faults("hostile")
        self.say(f"hostile faults on; traffic at {self.steps_per_minute:g} steps a minute")
        ep = self.stack.endpoints
        self.traffic = Traffic(ep.shopline, ep.stokly, catalogue_skus=SKUS, seed=self.seed)
        stop = threading.Event()
        thread = threading.Thread(target=self._traffic_loop, args=(stop,), daemon=True)
        thread.start()
        self.prefect.start_if_idle("catalogue")
        span = self.chaos_minutes * 60
        kill_at = [span * (i + 1) / (self.kills + 1) for i in range(self.kills)]
        try:
            while (elapsed := time.monotonic() - started) < span:
                if kill_at and elapsed >= kill_at[0]:
                    kill_at.pop(0)
                    self.kill(self.kills - len(kill_at))
                self._operate()
                time.sleep(10)
        finally:
            stop.set()
            thread.join(30)
        self.seconds["chaos"] = time.monotonic() - started

    def settle(self) -> bool:
        """Faults off; rounds of every sync until two in a row write nothing and nothing is left
        in flight (or the time is up)."""
        started = time.monotonic()
        self.faults("none")
        self.say("faults off, traffic stopped: settling")
        deadline = started + self.settle_minutes * 60
        quiet = 0
        while time.monotonic() < deadline and quiet < 2:
            before = self.writes()
            runs = {}
            for sync in OPERATOR_SYNCS:
                while self.prefect.active(sync):
                    self.approved += self.prefect.approve_paused("approved by the chaos campaign")
                    if time.monotonic() > deadline:
                        break
                    time.sleep(3)
                runs[sync] = self.prefect.start(sync, **self.parameters(sync))
                self.started_runs[sync] += 1
            outcome = self._wait(runs, deadline)
            self.settle_rounds += 1
            flight = self.in_flight()
            written = self.writes() - before
            clean = all(state == "COMPLETED" for state in outcome.values())
            quiet = quiet + 1 if clean and not written and not any(flight.values()) else 0
            self.say(
                f"settle round {self.settle_rounds}: {written} write(s), in flight {flight}, "
                + ", ".join(f"{s} {state.lower()}" for s, state in outcome.items())
            )
            if not quiet:
                time.sleep(20)
        self.settled = quiet >= 2
        self.seconds["settle"] = time.monotonic() - started
        return self.settled

    def _wait(self, runs: dict[str, str], deadline: float) -> dict[str, str]:
        states = {sync: "" for sync in runs}
        while time.monotonic() < deadline:
            self.approved += self.prefect.approve_paused("approved by the chaos campaign")
            for sync, run_id in runs.items():
                if states[sync] not in FINAL:
                    states[sync] = self.prefect.state(run_id)
            if all(state in FINAL for state in states.values()):
                break
            time.sleep(3)
        return states

    def observe(self) -> Snapshot:
        async def read() -> Any:
            async with open_clients(self.mapping) as (shopline, stokly):
                return await read_through_stokline(
                    self.mapping, self.store, shopline, stokly, (self.first_day, self.today())
                )

        stock, unposted = asyncio.run(read())
        return take_snapshot(
            self.mapping,
            shopline_docs=self.docs("shopline"),
            stokly_docs=self.docs("stokly"),
            store=self.store,
            baseline_orders=self.baseline,
            stock=stock,
            unposted=unposted,
        )

    def run_states(self) -> dict[str, dict[str, int]]:
        """Flow runs of the campaign by deployment and state (not the schedule's future ones)."""
        out: dict[str, Counter[str]] = {}
        for sync in (*OPERATOR_SYNCS, "catalogue", "stock-events"):
            states = ((r.get("state") or {}).get("type", "?") for r in self.prefect.runs(sync))
            out[sync] = Counter(state.lower() for state in states if state != "SCHEDULED")
        return {sync: dict(c) for sync, c in out.items() if c}

    def down(self) -> None:
        if self.traffic is not None:
            self.traffic.close()
        if self.recovery is not None:
            self.recovery.close()
        self.prefect.close()
        self.stack.down()
        self.store.close()

    def result(self, snapshot: Snapshot) -> CampaignResult:
        assert self.traffic is not None
        return CampaignResult(
            name="chaos",
            title="Reliability campaign (full stack)",
            invariants=check(snapshot),
            activity={
                **self.traffic.summary(),
                "kills": self.killed,
                "flow_runs": self.run_states(),
                "runs_started_by_the_operator": dict(self.started_runs),
                "finance_runs_approved": self.approved,
                "settle_rounds": self.settle_rounds,
                "settled": self.settled,
                "crash_recovery": self.recovery.summary() if self.recovery else {},
            },
            parameters={
                "chaos_minutes": self.chaos_minutes,
                "kills": self.kills,
                "steps_per_minute": self.steps_per_minute,
                "skus": SKUS,
                "seed": self.seed,
                "faults": "hostile",
            },
            seconds=dict(self.seconds),
            notes=[
                "faults: the sandboxes' hostile profile as it is: 10 % 5xx, 5 % 429 in bursts of "
                "four, 2 % timeouts (35 s; the clients give up at 30 s), 2 % dropped connections, "
                "20–400 ms latency; webhooks up to 3 copies, out of order",
                "a kill is SIGKILL to the worker's process group and every descendant (its flow "
                "runs) and to the receiver, while a batch runs; both restart 3 s later; the flow "
                "runs that died are then marked Crashed",
                f"state, logs and the stack's project directory: {self.root.relative_to(ROOT)}/",
            ],
        )


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_full(say: Callable[[str], None] = print, **options: Any) -> CampaignResult:
    """The whole full campaign; the stack is stopped whatever happens (SIGTERM included)."""
    campaign = FullCampaign(say=say, **options)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        campaign.up()
        say(f"stack up in {campaign.seconds['up']:.0f} s: {campaign.stack.endpoints.prefect}")
        campaign.chaos()
        campaign.settle()
        started = time.monotonic()
        snapshot = campaign.observe()
        campaign.seconds["check"] = time.monotonic() - started
        return campaign.result(snapshot)
    finally:
        # A second Ctrl-C or SIGTERM while stopping must not leave the stack behind.
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            campaign.down()
        finally:
            signal.signal(signal.SIGINT, interrupt)
            signal.signal(signal.SIGTERM, previous)
