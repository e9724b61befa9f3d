"""The parts of the full campaign that need no running stack: its project directory, and the
Prefect calls it makes as an operator (checked against a fake Prefect API at the transport)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx

from benchmarks.chaos.full import Prefect, project_dir
from benchmarks.chaos.recovery import RecoveryProbe
from stokline.config import load_mapping
from stokline.store import Store


def test_the_project_directory_runs_the_demo_on_free_ports(tmp_path: Path) -> None:
    root, ports = project_dir(tmp_path / "project")
    assert (root / "prefect.yaml").is_file() and (root / "flows" / "orders.py").is_file()
    mapping = load_mapping(root / "mappings" / "demo.yaml")
    assert mapping.connections.shopline.base_url == f"http://127.0.0.1:{ports['shopline']}"
    assert mapping.connections.stokly.base_url == f"http://127.0.0.1:{ports['stokly']}"
    text = (root / "mappings" / "demo.yaml").read_text()
    assert f"127.0.0.1:{ports['sink']}/alerts" in text and ":8804" not in text
    assert len(set(ports.values())) == len(ports)
    # The override of benchmarks.chaos.collisions, onto a SKU with a SHOPLINE variant of its own.
    overrides = {(o.shopline_sku, o.stokly_sku) for o in mapping.skus.overrides}
    assert ("TENT-2P-ORG", "ACME-TENT-2P-ORANGE") in overrides and len(overrides) == 3


class FakePrefect:
    """Deployments by name, flow runs by filter, and a record of every write."""

    def __init__(self, runs: list[dict]) -> None:
        self.runs = runs
        self.writes: list[tuple[str, dict]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api")
        body = json.loads(request.content or b"{}")
        if path.startswith("/deployments/name/"):
            return httpx.Response(200, json={"id": f"dep-{path.split('/')[3]}"})
        if path == "/flow_runs/filter":
            wanted = body["flow_runs"].get("state", {}).get("type", {}).get("any_")
            found = [r for r in self.runs if wanted is None or r["state"]["type"] in wanted]
            return httpx.Response(200, json=found[body.get("offset", 0) :][: body["limit"]])
        self.writes.append((path, body))
        return httpx.Response(201, json={"id": "new-run"})


def test_the_operator_starts_approves_and_marks_crashed() -> None:
    fake = FakePrefect([{"id": "paused-1", "name": "finance-x", "state": {"type": "PAUSED"}}])
    prefect = Prefect("http://prefect/api", transport=httpx.MockTransport(fake))
    assert prefect.start_if_idle("fulfilment") is None  # the paused run counts as under way
    fake.runs.clear()
    assert prefect.start_if_idle("finance", start="2026-01-02", end="2026-01-02") == "new-run"
    assert fake.writes[-1] == (
        "/deployments/dep-finance/create_flow_run",
        {"parameters": {"start": "2026-01-02", "end": "2026-01-02"}},
    )
    fake.runs.append({"id": "paused-2", "state": {"type": "PAUSED"}})
    assert prefect.approve_paused("ok") == 1
    assert fake.writes[-1] == (
        "/flow_runs/paused-2/resume",
        {"run_input": {"approve": True, "note": "ok"}},
    )
    prefect.mark_crashed("run-9", "killed")
    path, body = fake.writes[-1]
    assert path == "/flow_runs/run-9/set_state" and body["force"] is True
    assert body["state"]["type"] == "CRASHED"


def test_runs_are_read_page_by_page() -> None:
    fake = FakePrefect([{"id": str(i), "state": {"type": "COMPLETED"}} for i in range(450)])
    prefect = Prefect("http://prefect/api", transport=httpx.MockTransport(fake))
    assert len(prefect.runs()) == 450


def test_the_recovery_probe_times_a_killed_runs_orders_until_another_run_handles_them(
    tmp_path: Path,
) -> None:
    with Store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.links.put("demo", "order", "already", "SO-0")  # in Stokly before the kill
        store.leases.acquire("demo", "order", ["already", "leased"], "dead-run")
        store.leases.acquire("demo", "order", ["held"], "dead-run", ttl=timedelta(seconds=-1))
        store.inbox.add("demo", "wh-1", "orders/paid", json.dumps({"id": 42}).encode())
        store.inbox.add("demo", "wh-2", "orders/paid", b"not json")
        assert len(store.inbox.claim("demo", "dead-worker", 10)) == 2
        probe = RecoveryProbe(store, "demo")
        try:
            assert probe.killed(1) == 3  # "leased", "held", and order 42 of a claimed delivery
            store.links.put("demo", "order", "leased", "SO-1")
            store.exceptions.raise_(
                "demo", "unmapped_sku", "order", "42", "SKU X unknown", team="ecommerce"
            )
            probe.look()
            summary = probe.summary()
            assert summary["recovered"] == 2 and summary["not_recovered"] == 1
            assert summary["p95_seconds"] is not None and summary["p95_seconds"] >= 0
            assert summary["orders_held_at_kills"] == [3] and summary["imported"] == 1
            # Its lease expired and another run takes the order over: recovered, not imported.
            assert store.leases.acquire("demo", "order", ["held"], "next-run") == {"held"}
            probe.look()
            assert probe.summary()["recovered"] == 3 and probe.summary()["not_recovered"] == 0
        finally:
            probe.close()
