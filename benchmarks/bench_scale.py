"""Scale: N clients deployed on one Prefect server and served by one worker machine, then two.

Each client is the demo mapping under another name (``bench-001`` …), with its own SHOPLINE store
and Stokly account (`benchmarks.tenants`: one process serves every client's pair of sandboxes,
each under its own path, with its real rate limits), so no client's orders or levels reach
another's. Prefect and the state store run on PostgreSQL (a throwaway server of this run). The
stack is put together as production would be: one webhook receiver serving the mapping folder,
`stokline deploy mappings/` (nine deployments per client, the watchers started at once), and
`stokline worker` as the worker machine (its runs in threads of one process).

At each N:

1. **steady state** (`--window` seconds, nothing happening in the stores): the worker process's
   CPU (user + system, from /proc) and resident memory, whole and per client. The clients' own
   schedules keep running meanwhile (sweeps and dashboards every 2 minutes, stock and
   fulfilment every 5, catalogue every 15) and the watchers poll every 2 s: this is what a
   client costs when nothing happens.
2. **events** (as many again): paid orders, goods receipts and item price changes at random
   clients, one of each every `--every` seconds on average, each timed to its arrival in the
   other system (the Stokly sandbox's list of sale orders; SHOPLINE's ``inventory_levels/update``
   and ``products/update`` webhooks to a listener of this benchmark).
3. from Prefect's API: the schedule lag of every scheduled run that started (its start minus
   its scheduled time), p95; runs that ended Crashed or Failed.

At the largest N a second worker (another `stokline worker` process, standing for another
machine) joins for one more window: the share of runs each took (each run records its worker),
and whether any SHOPLINE order reached a Stokly account twice.

    python -m benchmarks.bench_scale                 # N = 10 and 100 (tens of minutes)
    python -m benchmarks.bench_scale --clients 10,50 --window 120
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.common import (
    ROOT,
    Child,
    Figure,
    Result,
    free_port,
    http_ok,
    parser,
    percentile,
    say,
    sized,
    stokly_token,
    wait_until,
)
from benchmarks.prefect_server import PrefectServer
from benchmarks.tenants import shopline_prefix, stokly_prefix
from stokline.ops.deployments import KINDS

DEMO = ROOT / "mappings" / "demo.yaml"
API_VERSION = "v20251201"
ORDER_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled")
SKUS_PER_CLIENT = 40
LEVEL_LOCATION = "7001"
RECEIPT_LOCATION = "Leeds DC"
GIVE_UP_S = 180.0


def _shortest_interval_s() -> float:
    """The demo mapping's shortest ``every:`` (the orders sweep's), in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    syncs = yaml.safe_load(DEMO.read_text(encoding="utf-8"))["syncs"]
    return min(
        float(s["every"][:-1]) * units[s["every"][-1]] for s in syncs.values() if "every" in s
    )


SHORTEST_INTERVAL_S = _shortest_interval_s()
TICKS = os.sysconf("SC_CLK_TCK")


def client_name(n: int) -> str:
    return f"bench-{n:03d}"


# ---------------------------------------------------------------------------------------------
# The project: N mappings from the demo's
# ---------------------------------------------------------------------------------------------


def write_project(target: Path, clients: list[str], tenants_url: str) -> Path:
    """A project folder: prefect.yaml, flows/, .env.demo and one mapping per client, each the
    demo's under the client's name, on its own sandboxes. The demo's alerts (to a local sink
    this benchmark does not run) are left out: a hundred clients' alert automations are the
    Prefect server's load, not the worker's."""
    (target / "mappings").mkdir(parents=True)
    shutil.copy(ROOT / "prefect.yaml", target / "prefect.yaml")
    shutil.copy(ROOT / ".env.demo", target / ".env.demo")
    (target / "flows").symlink_to(ROOT / "flows", target_is_directory=True)
    text = DEMO.read_text(encoding="utf-8")
    head, marker, _ = text.partition("\n  # Prefect automations")
    if marker:  # the alerts are the last block of operating_model
        text = head + "\n"
    for client in clients:
        mapping = text.replace("name: demo-outdoor", f"name: {client}")
        mapping = mapping.replace("account_key: demo-outdoor", f"account_key: {client}")
        mapping = mapping.replace(
            "base_url: http://127.0.0.1:8802", f"base_url: {tenants_url}{stokly_prefix(client)}"
        )
        mapping = mapping.replace(
            "base_url: http://127.0.0.1:8801", f"base_url: {tenants_url}{shopline_prefix(client)}"
        )
        (target / "mappings" / f"{client}.yaml").write_text(mapping, encoding="utf-8")
    return target


# ---------------------------------------------------------------------------------------------
# Watching the worker and the stores
# ---------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Listener:
    """Receives SHOPLINE webhooks (levels, products) of every client: (arrival, client, body)."""

    def __init__(self) -> None:
        from stokline.sandbox.common import ServerThread

        self.seen: list[tuple[float, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            arrived = time.monotonic()
            client = scope["path"].rstrip("/").rsplit("/", 1)[-1]
            with suppress(ValueError):
                payload = json.loads(body)
                if isinstance(payload, dict):
                    with self._lock:
                        self.seen.append((arrived, client, payload))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

        self.server = ServerThread(app).start()
        self.url = self.server.url

    def level_after(self, since: float, client: str, item: str, above: int) -> float | None:
        with self._lock:
            for arrived, who, p in self.seen:
                if (
                    arrived >= since
                    and who == client
                    and str(p.get("inventory_item_id")) == item
                    and str(p.get("location_id")) == LEVEL_LOCATION
                    and int(p.get("available") or 0) > above
                ):
                    return arrived
        return None

    def price_after(self, since: float, client: str, sku: str, price: str) -> float | None:
        with self._lock:
            for arrived, who, p in self.seen:
                if arrived < since or who != client or not isinstance(p.get("variants"), list):
                    continue
                for v in p["variants"]:
                    if isinstance(v, dict) and str(v.get("sku")).casefold() == sku.casefold():
                        with suppress(TypeError, ValueError):
                            if abs(float(v.get("price")) - float(price)) < 0.005:
                                return arrived
        return None

    def stop(self) -> None:
        self.server.stop()


@dataclass
class Tenant:
    """One client's two sandboxes, through their prefixed URLs."""

    client: str
    base: str
    env: dict[str, str]
    stokly_token: str = ""
    items: dict[str, str] = field(default_factory=dict)  # SKU → Stokly item id
    levels: dict[str, tuple[str, int]] = field(default_factory=dict)  # SKU → (item, available)

    @property
    def shopline(self) -> str:
        return f"{self.base}{shopline_prefix(self.client)}"

    @property
    def stokly(self) -> str:
        return f"{self.base}{stokly_prefix(self.client)}"

    def _admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.env['SHOPLINE_ACCESS_TOKEN']}"}
        for attempt in range(8):
            response = httpx.request(
                method,
                f"{self.shopline}/admin/openapi/{API_VERSION}/{path}",
                headers=headers,
                timeout=30,
                **kwargs,
            )
            if response.status_code != 429:
                response.raise_for_status()
                return response
            time.sleep(0.5 * (attempt + 1))  # the store's own 4 requests/s, shared with the sync
        response.raise_for_status()
        return response

    def subscribe(self, receiver: str, listener: str) -> None:
        for topic in ORDER_TOPICS:
            address = f"{receiver}/webhooks/{self.client}"
            self._admin(
                "POST", "webhooks.json", json={"webhook": {"address": address, "topic": topic}}
            )
        for topic in ("inventory_levels/update", "products/update"):
            address = f"{listener}/{self.client}"
            self._admin(
                "POST", "webhooks.json", json={"webhook": {"address": address, "topic": topic}}
            )

    def grant(self) -> None:
        self.stokly_token = stokly_token(self.stokly, self.client)
        items = httpx.get(
            f"{self.stokly}/v0/items",
            params={"size": 1000},
            headers={"Authorization": f"Bearer {self.stokly_token}"},
            timeout=30,
        )
        items.raise_for_status()
        self.items = {i["sku"]: i["itemId"] for i in items.json()["data"] if i.get("status") == 0}

    def read_levels(self) -> None:
        products = self._admin("GET", "products/products.json", params={"limit": 250}).json()
        variants = {
            v["sku"]: str(v["inventory_item_id"])
            for p in products["products"]
            for v in p["variants"]
            if v.get("sku") in self.items and v.get("inventory_item_id")
        }
        ids = ",".join(list(variants.values())[:50])
        levels = self._admin(
            "GET",
            "inventory_levels.json",
            params={"inventory_item_ids": ids, "location_ids": LEVEL_LOCATION},
        ).json()["inventory_levels"]
        shown = {str(lv["inventory_item_id"]): int(lv["available"] or 0) for lv in levels}
        self.levels = {
            sku: (item, shown[item]) for sku, item in variants.items() if shown.get(item)
        }

    def skus(self) -> list[str]:
        return sorted(self.levels)

    def place_order(self, sku: str, n: int) -> str:
        body = {
            "lines": [{"sku": sku, "quantity": 1}],
            "customer": {"email": f"scale.{n}@example.com", "first_name": "S", "last_name": "C"},
            "paid": True,
        }
        response = httpx.post(f"{self.shopline}/_sandbox/orders", json=body, timeout=30)
        response.raise_for_status()
        return str(response.json()["order"]["id"])

    def imported(self) -> Counter[str]:
        response = httpx.get(
            f"{self.stokly}/_sandbox/awaiting-dispatch", params={"limit": 100_000}, timeout=30
        )
        response.raise_for_status()
        return Counter(
            o["sourceReferenceId"] for o in response.json()["data"] if o["sourceReferenceId"]
        )

    def receive(self, sku: str) -> None:
        body = {"location": RECEIPT_LOCATION, "items": [{"sku": sku, "quantity": 5}]}
        httpx.post(
            f"{self.stokly}/_sandbox/goods-receipt", json=body, timeout=30
        ).raise_for_status()

    def change_price(self, sku: str, price: str) -> None:
        httpx.patch(
            f"{self.stokly}/v0/items/{self.items[sku]}",
            json={"salePrice": {"amount": float(price), "currency": "GBP"}},
            headers={"Authorization": f"Bearer {self.stokly_token}"},
            timeout=30,
        ).raise_for_status()


@dataclass
class Sample:
    kind: str
    client: str
    key: str
    started: float
    above: int = 0
    price: str = ""
    done: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.done is None else self.done - self.started


def sample_events(
    tenants: list[Tenant],
    listener: Listener,
    *,
    count: int,
    every: float,
    seed: int,
    prices: dict[tuple[str, str], str],
) -> list[Sample]:
    """``count`` orders, receipts and price changes at random clients, each kind every
    ``every`` s on average (random gaps), each waited for until it arrives (or `GIVE_UP_S`)."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    due = {kind: time.monotonic() + rng.uniform(0, every) for kind in ("order", "receipt", "item")}
    made = Counter[str]()
    last_poll: dict[str, float] = {}
    while True:
        now = time.monotonic()
        for kind, at in due.items():
            if made[kind] >= count or now < at:
                continue
            tenant = rng.choice(tenants)
            skus = tenant.skus()
            if not skus:
                continue
            half = len(skus) // 2
            n = made[kind]
            if kind == "order":
                sku = skus[:half][n % max(1, half)]
                samples.append(Sample("order", tenant.client, tenant.place_order(sku, n), now))
            elif kind == "receipt":
                sku = skus[half:][n % max(1, len(skus) - half)]
                item, shown = tenant.levels[sku]
                tenant.receive(sku)
                tenant.levels[sku] = (item, shown + 5)
                samples.append(Sample("receipt", tenant.client, item, now, above=shown))
            else:
                sku = skus[n % len(skus)]
                price = f"{30 + rng.randint(0, 6000) / 100:.2f}"
                while prices.get((tenant.client, sku)) == price:  # it must be a change
                    price = f"{30 + rng.randint(0, 6000) / 100:.2f}"
                prices[(tenant.client, sku)] = price
                tenant.change_price(sku, price)
                samples.append(Sample("item", tenant.client, sku, now, price=price))
            made[kind] += 1
            due[kind] = now + every * rng.uniform(0.5, 1.5)
        by_client = {t.client: t for t in tenants}
        for s in samples:
            if s.done is not None or now - s.started > GIVE_UP_S:
                continue
            if s.kind == "order" and now - last_poll.get(s.client, 0) >= 0.5:
                last_poll[s.client] = now
                if s.key in by_client[s.client].imported():
                    s.done = time.monotonic()
            elif s.kind == "receipt":
                s.done = listener.level_after(s.started, s.client, s.key, s.above)
            elif s.kind == "item":
                s.done = listener.price_after(s.started, s.client, s.key, s.price)
        finished = all(made[k] >= count for k in due)
        waiting = [s for s in samples if s.done is None and now - s.started <= GIVE_UP_S]
        if finished and not waiting:
            return samples
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Prefect's view
# ---------------------------------------------------------------------------------------------


def _post(api: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{api}/{path}", json=body, timeout=60)
    response.raise_for_status()
    return response.json()


def runs_between(api: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Every flow run that started in [since, until), a page of 200 at a time."""
    found: list[dict[str, Any]] = []
    while True:
        page = _post(
            api,
            "flow_runs/filter",
            {
                "flow_runs": {
                    "start_time": {"after_": since.isoformat(), "before_": until.isoformat()}
                },
                "sort": "START_TIME_ASC",
                "limit": 200,
                "offset": len(found),
            },
        )
        found += page
        if len(page) < 200:
            return found


def ended_badly(api: str) -> Counter[str]:
    page = _post(
        api,
        "flow_runs/filter",
        {"flow_runs": {"state": {"type": {"any_": ["CRASHED", "FAILED"]}}}, "limit": 200},
    )
    return Counter(f"{r['state_type']} {r['name']}" for r in page)


def running(api: str) -> int:
    return len(
        _post(
            api,
            "flow_runs/filter",
            {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}, "limit": 200},
        )
    )


def finished(api: str, flow: str) -> int:
    """How many runs of ``flow``'s deployments have completed."""
    found = _post(
        api,
        "flow_runs/filter",
        {
            "flows": {"name": {"any_": [flow]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
            "limit": 200,
        },
    )
    return len(found)


def lag_seconds(run: dict[str, Any]) -> float | None:
    expected, started = run.get("expected_start_time"), run.get("start_time")
    if not run.get("auto_scheduled") or not expected or not started:
        return None
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return max(0.0, (parse(started) - parse(expected)).total_seconds())


# ---------------------------------------------------------------------------------------------
# One N
# ---------------------------------------------------------------------------------------------


@dataclass
class Measured:
    clients: int
    workers: int
    cpu_per_client_pct: float
    cpu_total_pct: float
    rss_total_mb: float
    rss_per_client_mb: float
    rss_empty_mb: float
    lag_p95_s: float | None
    lag_runs: int
    order_p95_s: float | None
    receipt_p95_s: float | None
    item_p95_s: float | None
    lost: int
    bad_runs: Counter[str]
    runs_per_worker: dict[str, int] = field(default_factory=dict)
    doubles: int = 0
    deploy_s: float = 0.0


def p95(samples: list[Sample], kind: str) -> tuple[float | None, int]:
    mine = [s for s in samples if s.kind == kind]
    seen = [s.seconds for s in mine if s.seconds is not None]
    lost = len(mine) - len(seen)
    return (round(percentile(seen, 95), 2) if seen and not lost else None), lost


@contextmanager
def postgres() -> Iterator[Any]:
    from tests.pg import PostgresServer

    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql+asyncpg://", 1)


def measure_n(
    n: int,
    *,
    window: float,
    every: float,
    count: int,
    second_worker: bool,
    work: Path,
    pg: Any,
) -> list[Measured]:
    """Everything for ``n`` clients, from nothing; one `Measured` per worker count."""
    clients = [client_name(i + 1) for i in range(n)]
    tenants_port, receiver_port = free_port(), free_port()
    base = f"http://127.0.0.1:{tenants_port}"
    root = write_project(work / "project", clients, base)
    logs = work / "logs"
    measured: list[Measured] = []
    prices: dict[tuple[str, str], str] = {}  # the last price set, per client and SKU
    with pg.database() as prefect_db, pg.database() as state_db:
        server = PrefectServer(
            work / "prefect-home",
            logs / "prefect-server.log",
            extra_env={"PREFECT_SERVER_DATABASE_CONNECTION_URL": asyncpg_url(prefect_db)},
        )
        env = server.env(STOKLINE_DATABASE_URL=state_db, PWD=str(root))
        children: list[Child] = []
        listener = Listener()
        try:
            say(f"N={n}: starting {n} clients' sandboxes, the receiver …")
            tenants_child = Child(
                "tenants",
                [sys.executable, "-m", "benchmarks.tenants", "--clients", ",".join(clients),
                 "--port", str(tenants_port), "--skus", str(SKUS_PER_CLIENT)],
                logs / "tenants.log",
                env=env,
            )  # fmt: skip
            children.append(tenants_child)
            receiver = Child(
                "receiver",
                [sys.executable, "-m", "stokline", "receiver", "--mapping", "mappings",
                 "--port", str(receiver_port)],
                logs / "receiver.log",
                env=env,
                cwd=root,
            )  # fmt: skip
            children.append(receiver)
            wait_until(lambda: http_ok(f"{base}/health"), "tenant sandboxes", 300, tenants_child)
            receiver_url = f"http://127.0.0.1:{receiver_port}"
            wait_until(lambda: http_ok(f"{receiver_url}/health"), "receiver", 120, receiver)
            tenants = [Tenant(c, base, env) for c in clients]
            for tenant in tenants:
                tenant.subscribe(receiver_url, listener.url)
                tenant.grant()

            worker = Child(
                "worker-1",
                [sys.executable, "-m", "stokline", "worker", "--name", "worker-1"],
                logs / "worker-1.log",
                env=env,
                cwd=root,
            )
            children.append(worker)
            time.sleep(3)
            empty_rss = rss_mb(worker.proc.pid)
            say(f"N={n}: deploying {n} clients ({len(KINDS) * n} deployments) …")
            began = time.monotonic()
            deployed = Child(
                "deploy",
                [sys.executable, "-m", "stokline", "deploy", "mappings"],
                logs / "deploy.log",
                env=env,
                cwd=root,
            )
            if deployed.proc.wait(1800) != 0:
                raise RuntimeError(f"stokline deploy failed:\n{deployed.tail(20)}")
            deploy_s = time.monotonic() - began
            say(f"N={n}: deployed in {deploy_s:.0f} s; waiting for {2 * n} watchers …")
            deadline = time.monotonic() + 300
            while running(server.url) < 2 * n and time.monotonic() < deadline:
                time.sleep(2)
            # The first stock and catalogue passes (started by the deploy) settle the levels and
            # link the variants the event path updates.
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and finished(server.url, "catalogue") < n:
                time.sleep(3)
            for tenant in tenants:
                tenant.read_levels()

            def window_of(workers: list[Child], label: str) -> Measured:
                say(f"N={n}: steady state for {window:.0f} s ({label}) …")
                since = datetime.now(UTC)
                cpu0 = {w.name: cpu_seconds(w.proc.pid) for w in workers}
                t0 = time.monotonic()
                time.sleep(window)
                cpu1 = {w.name: cpu_seconds(w.proc.pid) for w in workers}
                seconds = time.monotonic() - t0
                cpu = sum(cpu1[k] - cpu0[k] for k in cpu0) / seconds * 100
                rss = sum(rss_mb(w.proc.pid) for w in workers)
                say(f"N={n}: events ({label}) …")
                samples = sample_events(
                    tenants,
                    listener,
                    count=count,
                    every=every,
                    seed=n * 10 + len(workers),
                    prices=prices,
                )
                # A short window (the reduced run's) can fall between two schedules; the
                # shortest interval (the orders sweep's) bounds how long until one starts.
                settle = time.monotonic() + SHORTEST_INTERVAL_S + 30
                while True:
                    until = datetime.now(UTC)
                    runs = runs_between(server.url, since, until)
                    lags = [x for x in map(lag_seconds, runs) if x is not None]
                    if lags or time.monotonic() > settle:
                        break
                    time.sleep(2)
                order, lost_o = p95(samples, "order")
                receipt, lost_r = p95(samples, "receipt")
                item, lost_i = p95(samples, "item")
                per_worker = Counter(str(r.get("infrastructure_pid") or "?") for r in runs)
                return Measured(
                    clients=n,
                    workers=len(workers),
                    cpu_per_client_pct=round(cpu / n, 3),
                    cpu_total_pct=round(cpu, 1),
                    rss_total_mb=round(rss),
                    rss_per_client_mb=round((rss - empty_rss * len(workers)) / n, 2),
                    rss_empty_mb=round(empty_rss),
                    lag_p95_s=round(percentile(lags, 95), 1) if lags else None,
                    lag_runs=len(lags),
                    order_p95_s=order,
                    receipt_p95_s=receipt,
                    item_p95_s=item,
                    lost=lost_o + lost_r + lost_i,
                    bad_runs=ended_badly(server.url),
                    runs_per_worker=dict(per_worker),
                    deploy_s=round(deploy_s),
                )

            measured.append(window_of([worker], "one worker"))
            if second_worker:
                other = Child(
                    "worker-2",
                    [sys.executable, "-m", "stokline", "worker", "--name", "worker-2"],
                    logs / "worker-2.log",
                    env=env,
                    cwd=root,
                )
                children.append(other)
                time.sleep(5)
                two = window_of([worker, other], "two workers")
                two.doubles = sum(sum(1 for c in t.imported().values() if c > 1) for t in tenants)
                measured.append(two)
        finally:
            for child in reversed(children):
                child.stop(timeout=60)
            listener.stop()
            server.stop()
    return measured


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def add_figures(result: Result, m: Measured) -> None:
    tag = f"N={m.clients}, {m.workers} worker{'s' if m.workers > 1 else ''}"
    key = f"n{m.clients}_w{m.workers}"
    result.add(
        Figure(f"{key}_cpu_client", f"{tag}: worker CPU per client", m.cpu_per_client_pct, "%")
    )
    result.add(
        Figure(
            f"{key}_cpu",
            f"{tag}: worker CPU, all clients",
            m.cpu_total_pct,
            "%",
            target=200,
            goal="below",
        )
    )
    result.add(
        Figure(
            f"{key}_rss",
            f"{tag}: worker resident memory",
            m.rss_total_mb,
            "MB",
            note=f"{m.rss_empty_mb} MB with no client",
        )
    )
    result.add(
        Figure(f"{key}_rss_client", f"{tag}: resident memory per client", m.rss_per_client_mb, "MB")
    )
    result.add(
        Figure(
            f"{key}_lag",
            f"{tag}: schedule lag p95",
            m.lag_p95_s,
            "s",
            target=30,
            goal="max",
            note=f"{m.lag_runs} scheduled runs",
        )
    )
    result.add(
        Figure(
            f"{key}_order",
            f"{tag}: paid order → Stokly p95",
            m.order_p95_s,
            "s",
            target=15,
            goal="max",
        )
    )
    result.add(
        Figure(
            f"{key}_receipt",
            f"{tag}: goods receipt → SHOPLINE p95",
            m.receipt_p95_s,
            "s",
            target=15,
            goal="max",
        )
    )
    result.add(
        Figure(
            f"{key}_item",
            f"{tag}: item change → SHOPLINE p95",
            m.item_p95_s,
            "s",
            target=15,
            goal="max",
        )
    )
    crashed = sum(v for k, v in m.bad_runs.items() if k.startswith("CRASHED"))
    result.add(
        Figure(f"{key}_crashed", f"{tag}: runs Crashed", crashed, "", target=0, goal="equal")
    )
    failed = sum(v for k, v in m.bad_runs.items() if k.startswith("FAILED"))
    result.add(Figure(f"{key}_failed", f"{tag}: runs Failed", failed, ""))
    if m.workers > 1:
        shares = sorted(m.runs_per_worker.items())
        result.add(
            Figure(
                f"{key}_doubles",
                f"{tag}: SHOPLINE orders imported twice",
                m.doubles,
                "",
                target=0,
                goal="equal",
            )
        )
        result.notes.append(f"{tag}: runs started per worker: {dict(shares)}")
    if m.lost:
        result.notes.append(f"{tag}: {m.lost} event(s) not seen within {GIVE_UP_S:.0f} s")
    if m.bad_runs:
        result.notes.append(f"{tag}: runs ended badly: {dict(m.bad_runs.most_common(8))}")
    result.notes.append(f"N={m.clients}: stokline deploy of {len(KINDS) * m.clients} deployments took {m.deploy_s} s")  # fmt: skip


def _stop(_signum: int, _frame: object) -> None:
    raise SystemExit(143)  # so that every server this run started is stopped on the way out


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop)
    p = parser("scale", __doc__ or "")
    p.add_argument("--clients", help="client counts, comma-separated (default by size)")
    p.add_argument("--window", type=float, help="seconds of steady state per count")
    args = p.parse_args(argv)
    counts = (
        [int(c) for c in args.clients.split(",")]
        if args.clients
        else sized(args.size, [10, 100], [10, 30], [2])
    )
    window = args.window or sized(args.size, 240.0, 90.0, 15.0)
    every = sized(args.size, 4.0, 4.0, 2.0)
    count = sized(args.size, 20, 12, 4)  # of each kind of event, per window
    result = Result(
        "scale",
        "Scale: N clients on one worker machine (stokline worker), then two",
        args.size,
        parameters={"clients": ",".join(map(str, counts)), "window_s": window},
    )
    with postgres() as pg, tempfile.TemporaryDirectory(prefix="stokline-bench-scale-") as tmp:
        for n in counts:
            work = Path(tmp) / f"n{n}"
            for m in measure_n(
                n,
                window=window,
                every=every,
                count=count,
                second_worker=n == max(counts),
                work=work,
                pg=pg,
            ):
                add_figures(result, m)
                say(result.render())
    result.notes.append(
        "one machine holds everything: Prefect server and both databases (PostgreSQL), every"
        " client's sandboxes, the receiver and the worker(s); the worker's figures are its own"
        " process's"
    )
    print(result.render())
    result.finish(args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
