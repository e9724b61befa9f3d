"""Receiver: acknowledgement latency of signed webhook deliveries at 200 per second, on loopback.

`stokline receiver` runs as its own process (as in production) on a free port with a state
store of its own; no Prefect server, so it signals nothing. The load is open-loop: delivery i
is sent at t0 + i/200 s whatever the earlier ones are doing, so a slow answer cannot slow the
load down and hide itself. Each delivery is an ``orders/paid`` body as the SHOPLINE sandbox
makes it (about 7 KB), signed with the client's webhook secret (lowercase hex HMAC-SHA256), with
a webhook id of its own. Latency is measured from the moment the delivery was due to be sent to
the moment its 200 arrived — so any lateness of the load generator counts against the receiver.

Baseline: a trivial ASGI endpoint (`benchmarks.echo_app`) served the same way under the same load.
Afterwards the receiver's inbox must hold every delivery exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.common import (
    ROOT,
    Child,
    Figure,
    Result,
    demo_env,
    free_port,
    http_ok,
    parser,
    percentile,
    say,
    sized,
    wait_until,
)
from benchmarks.sandboxes import order_documents
from stokline.store import Store
from stokline.webhooks import sign

RATE = 200.0  # deliveries per second
WARM_UP_S = 1.0
MAPPING = ROOT / "mappings" / "demo.yaml"
CLIENT = "demo-outdoor"


@dataclass
class Load:
    """The outcome of one open-loop run."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    max_late_ms: float = 0.0
    sent: int = 0
    seconds: float = 0.0


def deliveries(count: int, secret: str) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` signed orders/paid deliveries, each with its own webhook id."""
    bodies = [json.dumps(o).encode() for o in order_documents(50)]
    signed = [(body, sign(body, secret)) for body in bodies]
    out = []
    for body, signature in itertools.islice(itertools.cycle(signed), count):
        headers = {
            "Content-Type": "application/json",
            "X-Shopline-Topic": "orders/paid",
            "X-Shopline-Hmac-Sha256": signature,
            "X-Shopline-Webhook-Id": str(uuid.uuid4()),
            "X-Shopline-Shop-Domain": "demo-outdoor.myshopline.com",
            "X-Shopline-API-Version": "v20251201",
        }
        out.append((body, headers))
    return out


async def open_loop(url: str, items: list[tuple[bytes, dict[str, str]]], rate: float) -> Load:
    """Send ``items`` at ``rate`` per second on schedule; latencies from each due time."""
    load = Load()
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as http:

        async def one(body: bytes, headers: dict[str, str], due: float) -> None:
            try:
                response = await http.post(url, content=body, headers=headers)
            except httpx.HTTPError:
                load.failures += 1
                return
            load.latencies_ms.append((time.monotonic() - due) * 1000)
            load.statuses[response.status_code] = load.statuses.get(response.status_code, 0) + 1

        tasks = []
        start = time.monotonic() + 0.05
        for i, (body, headers) in enumerate(items):
            due = start + i / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                load.max_late_ms = max(load.max_late_ms, -wait * 1000)
            tasks.append(asyncio.create_task(one(body, headers, due)))
        await asyncio.gather(*tasks)
        load.seconds = time.monotonic() - start
    load.sent = len(items)
    return load


def run_load(url: str, items: list[tuple[bytes, dict[str, str]]]) -> Load:
    """A warm-up second (not counted), then the measured run."""
    warm = int(RATE * WARM_UP_S)
    asyncio.run(open_loop(url, items[:warm], RATE))
    return asyncio.run(open_loop(url, items[warm:], RATE))


def served(name: str, argv: list[str], health: str, log: Path, env: dict[str, str]) -> Child:
    child = Child(name, argv, log, env=env)
    try:
        wait_until(lambda: http_ok(health), name, 60, child)
    except BaseException:
        child.stop()
        raise
    return child


def main(argv: list[str] | None = None) -> int:
    args = parser("receiver", __doc__ or "").parse_args(argv)
    seconds = sized(args.size, 30, 10, 1)
    result = Result(
        "receiver",
        "Receiver: acknowledgement latency at 200 deliveries/s on loopback",
        args.size,
        parameters={"rate_per_s": RATE, "seconds": seconds, "warm_up_s": WARM_UP_S},
    )
    env = demo_env()
    env.pop("PREFECT_API_URL", None)  # no Prefect: nothing to signal, nothing to wait for
    secret = env["SHOPLINE_APP_SECRET"]
    count = int(RATE * (WARM_UP_S + seconds))
    say(f"preparing {count:,} signed deliveries …")
    items = deliveries(count, secret)
    with tempfile.TemporaryDirectory(prefix="stokline-bench-receiver-") as tmp:
        work = Path(tmp)
        state_db = f"sqlite:///{work / 'state.db'}"
        port = free_port()
        receiver = served(
            "receiver",
            [
                sys.executable,
                "-m",
                "stokline",
                "receiver",
                "--mapping",
                str(MAPPING),
                "--port",
                str(port),
            ],
            f"http://127.0.0.1:{port}/health",
            work / "receiver.log",
            {**env, "STOKLINE_DATABASE_URL": state_db},
        )
        try:
            say(f"receiver: {seconds} s at {RATE:g}/s …")
            ours = run_load(f"http://127.0.0.1:{port}/webhooks/{CLIENT}", items)
        finally:
            receiver.stop()
        stored = Store(state_db).inbox.count(CLIENT)
        port = free_port()
        echo = served(
            "echo",
            [sys.executable, "-m", "benchmarks.echo_app", "--port", str(port)],
            f"http://127.0.0.1:{port}/",
            work / "echo.log",
            env,
        )
        try:
            say(f"baseline (echo endpoint): {seconds} s at {RATE:g}/s …")
            base = run_load(f"http://127.0.0.1:{port}/webhooks/{CLIENT}", items)
        finally:
            echo.stop()
    figures(result, ours, base, stored, count)
    result.finish(args.results_dir)
    return 0


def figures(result: Result, ours: Load, base: Load, stored: int, count: int) -> None:
    for p, target in ((50, None), (95, 50.0), (99, None)):
        result.add(
            Figure(
                f"p{p}_ms",
                f"acknowledgement latency p{p}",
                round(percentile(ours.latencies_ms, p), 2),
                "ms",
                baseline=round(percentile(base.latencies_ms, p), 2),
                target=target,
                goal="below" if target else None,
            )
        )
    result.add(
        Figure(
            "max_ms",
            "slowest acknowledgement",
            round(max(ours.latencies_ms, default=float("nan")), 1),
            "ms",
            baseline=round(max(base.latencies_ms, default=float("nan")), 1),
        )
    )
    result.add(
        Figure(
            "achieved_rate",
            "deliveries per second achieved",
            round(ours.sent / ours.seconds, 1) if ours.seconds else None,
            "deliveries/s",
            baseline=round(base.sent / base.seconds, 1) if base.seconds else None,
        )
    )
    ok = ours.statuses.get(200, 0)
    result.add(
        Figure(
            "non_200",
            "answers other than 200, or none",
            ours.sent - ok,
            "",
            baseline=base.sent - base.statuses.get(200, 0),
            target=0,
            goal="equal",
        )
    )
    result.add(Figure("stored", "deliveries in the inbox", stored, "", target=count, goal="equal"))
    result.add(
        Figure(
            "generator_late_ms",
            "load generator's worst lateness",
            round(ours.max_late_ms, 1),
            "ms",
            baseline=round(base.max_late_ms, 1),
            note="how far behind schedule a send started; counted in the latencies",
        )
    )
    result.notes += [
        "latency runs from each delivery's due time to its 200, so the load generator's own"
        " delays count against the server",
        "the load generator, the server and anything else on the machine share its cores",
        "connections are kept alive between deliveries (a pool of up to 256)",
    ]
    result.details = {
        "receiver": {"statuses": ours.statuses, "failures": ours.failures, "sent": ours.sent},
        "echo": {"statuses": base.statuses, "failures": base.failures, "sent": base.sent},
    }


if __name__ == "__main__":
    raise SystemExit(main())
