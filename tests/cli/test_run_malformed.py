"""`stokline run` against sandboxes serving malformed answers: one line, exit status 1.

The sandboxes run in this process on loopback ports with the ``malformed`` fault switched on
through their control API; the command runs as a user runs it, in a process of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.flows.sandboxes import KNOWN_SKU, Sandboxes, demo_credentials, running_sandboxes

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).with_name("stokline"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    with running_sandboxes(tmp_path_factory.mktemp("run-malformed")) as sandboxes:
        sandboxes.place_order(KNOWN_SKU, email="malformed-buyer@example.com")
        yield sandboxes


def malformed(sandboxes: Sandboxes, **fields: object) -> None:
    """Both sandboxes answer malformed as ``fields`` say (the ``none`` profile when empty)."""
    profile = "malformed" if fields else "none"
    shop = httpx.put(
        f"{sandboxes.shopline.url}/_sandbox/faults", json={"profile": profile, **fields}
    )
    stok = httpx.put(
        f"{sandboxes.stokly.url}/_sandbox/faults", json={"profile": profile, "changes": fields}
    )
    assert shop.status_code == stok.status_code == 200, (shop.text, stok.text)


def stokline(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env = {**base, **demo_credentials(), "STOKLINE_DATABASE_URL": f"sqlite:///{cwd / 'state.db'}"}
    return subprocess.run(
        [EXE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("sync", "kinds", "says"),
    [
        # A list whose records are broken where nothing can be set aside: the pass stops.
        ("stock", ["wrong_types", "missing_fields"], "unexpected response: field "),
        # Every Stokly list page empty though its count says otherwise: asked again, then named.
        ("catalogue", ["empty_page"], "came back empty 3 times"),
    ],
)
def test_a_pass_under_malformed_answers_ends_in_one_line_and_status_1(
    served: Sandboxes, tmp_path: Path, sync: str, kinds: list[str], says: str
) -> None:
    malformed(served, malformed_rate=1.0, malformed_kinds=kinds)
    try:
        done = stokline(["run", sync, "--mapping", str(served.mapping)], tmp_path)
    finally:
        malformed(served)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(err) == 1, err
    assert err[0].startswith(f"stokline run {sync}: error: ") and says in err[0], err[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_once_the_fault_is_cleared_the_pass_runs(served: Sandboxes, tmp_path: Path) -> None:
    malformed(served)
    done = stokline(["run", "stock", "--mapping", str(served.mapping)], tmp_path)
    assert done.returncode == 0, done.stderr
