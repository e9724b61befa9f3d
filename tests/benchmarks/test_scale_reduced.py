"""The scale benchmark, reduced: two clients, each on its own store and account, deployed on a
Prefect server on PostgreSQL, served by one `stokline worker` and then two.

What holds at any size is asserted (speed targets belong to the benchmark): every order, goods
receipt and price change reaches the other system, no run crashes, each run names the worker
that took it, and no SHOPLINE order reaches Stokly twice. A few minutes: it starts
PostgreSQL, a Prefect server, the clients' sandboxes, the receiver and the workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_two_clients_on_one_worker_then_two(tmp_path: Path) -> None:
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    for name in ("PREFECT_API_URL", "STOKLINE_DATABASE_URL", "PREFECT_HOME"):
        env.pop(name, None)
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_scale", "--smoke", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    data = json.loads((tmp_path / "scale.json").read_text())
    figures = {f["key"]: f for f in data["figures"]}
    for workers in (1, 2):
        key = f"n2_w{workers}"
        for kind in ("order", "receipt", "item"):
            assert figures[f"{key}_{kind}"]["value"] is not None, (key, kind, data["notes"])
        assert figures[f"{key}_crashed"]["value"] == 0, data["notes"]
        assert figures[f"{key}_lag"]["value"] is not None
        assert figures[f"{key}_rss"]["value"] > 0
    assert figures["n2_w2_doubles"]["value"] == 0
    # Every run started in the window names the worker that took it (few runs start in the
    # reduced window: the share itself is the full benchmark's figure).
    (shares,) = [n for n in data["notes"] if "runs started per worker" in n]
    assert "'?'" not in shares and "worker-" in shares, shares
