"""Every benchmark still runs: `make bench`'s runner at its smoke size, results in a temp dir.

The figures of a smoke run mean nothing about speed, so none is compared with its target here
(speed targets belong to the benchmarks). What is asserted holds at any size and would break if
a benchmark or what it drives rotted: each writes its JSON with the machine it ran on, the stock
pass writes exactly the levels that changed and nothing on a quiet pass, the orders flow
completes without a duplicate, the receiver stores every signed delivery, the mapping refuses no
order. The orders benchmark starts a Prefect server, so this takes tens of seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The scale benchmark's reduced run is its own test (tests/benchmarks/test_scale_reduced.py), in
# parallel with this one.
BENCHMARKS = ("mapping", "receiver", "stock", "orders", "latency", "flash_sale", "audit")

pytestmark = pytest.mark.slow


def _figures(results: Path, name: str) -> dict[str, dict[str, Any]]:
    data = json.loads((results / f"{name}.json").read_text())
    assert data["benchmark"] == name
    assert data["size"] == "smoke"
    for key in ("cores", "cpu", "python", "os"):
        assert data["machine"][key], f"{name}: machine.{key} is missing"
    return {f["key"]: f for f in data["figures"]}


def test_every_benchmark_runs_at_its_smoke_size(tmp_path: Path) -> None:
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    for name in ("PREFECT_API_URL", "STOKLINE_DATABASE_URL"):
        env.pop(name, None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run_all",
            "--smoke",
            "--only",
            ",".join(BENCHMARKS),
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "=== summary (smoke size) ===" in run.stdout

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["benchmarks"] == {
        name: {"ok": True, "seconds": summary["benchmarks"][name]["seconds"]} for name in BENCHMARKS
    }

    stock = _figures(tmp_path, "stock")
    assert stock["writes_real"]["met"] and stock["writes_lifted"]["met"]
    assert stock["writes_lifted"]["value"] > 0
    assert stock["quiet_writes"]["value"] == 0
    assert stock["writes_lifted"]["baseline"] > stock["writes_lifted"]["value"]

    orders = _figures(tmp_path, "orders")
    assert orders["imported"]["value"] >= 20
    assert orders["imported"]["baseline"] >= 20
    assert orders["duplicates"]["value"] == 0
    assert orders["calls_per_order"]["value"] < orders["calls_per_order"]["baseline"]

    receiver = _figures(tmp_path, "receiver")
    assert receiver["non_200"]["value"] == 0
    assert receiver["stored"]["met"]

    mapping = _figures(tmp_path, "mapping")
    assert mapping["refused"]["value"] == 0
    assert mapping["orders_per_second"]["value"] > 0

    flash = _figures(tmp_path, "flash_sale")
    assert flash["stepped_oversold_by_sync"]["value"] == 0
    assert flash["stepped_oversold_by_sync"]["baseline"] > 0
    assert flash["units_sold"]["value"] > 0

    latency = json.loads((tmp_path / "latency.json").read_text())
    assert "orders-demo-outdoor" in latency["details"]["deployments"]
