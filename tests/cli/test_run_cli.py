"""`stokline run orders` as a user runs it: a process against both sandboxes, no Prefect server."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stokline.cli import main
from stokline.cli import run as run_cli
from tests.flows.sandboxes import (
    DEMO_MAPPING,
    KNOWN_SKU,
    UNKNOWN_SKU,
    Sandboxes,
    demo_credentials,
    running_sandboxes,
)

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).with_name("stokline"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    with running_sandboxes(tmp_path_factory.mktemp("run-cli")) as sandboxes:
        sandboxes.place_order(KNOWN_SKU, email="cli-buyer@example.com")
        sandboxes.place_order(UNKNOWN_SKU, email="cli-buyer@example.com")
        yield sandboxes


def stokline(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the command with only the environment given (plus PATH and HOME)."""
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return subprocess.run(
        [EXE, *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_dry_run_writes_nothing_and_lists_what_it_would_create(
    served: Sandboxes, tmp_path: Path
) -> None:
    stokly_before, shopline_before = served.stokly_writes(), served.shopline_counts()
    done = stokline(
        ["run", "orders", "--mapping", str(served.mapping), "--dry-run"],
        tmp_path,
        **demo_credentials(),
    )
    assert done.returncode == 0, done.stderr
    assert "dry run (nothing written)" in done.stdout
    assert "would create (" in done.stdout
    assert "unmapped_sku" in done.stdout
    assert "orders: " in done.stderr  # progress, one line per tenth when not on a terminal
    assert served.stokly_writes() == stokly_before
    assert served.shopline_counts() == shopline_before
    assert not (tmp_path / ".stokline").exists()  # not even an empty state store


def test_a_run_imports_and_a_second_one_finds_nothing_new(
    served: Sandboxes, tmp_path: Path
) -> None:
    env = {**demo_credentials(), "STOKLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}"}
    before = served.sale_orders()
    args = ["run", "orders", "--mapping", str(served.mapping)]
    first = stokline(args, tmp_path, **env)
    assert first.returncode == 0, first.stderr
    assert served.sale_orders() > before
    assert "imported" in first.stdout
    assert "exceptions (" in first.stdout
    imported = served.sale_orders()
    second = stokline(args, tmp_path, **env)
    assert second.returncode == 0, second.stderr
    assert served.sale_orders() == imported
    assert "already in Stokly (duplicates)" in second.stdout


def test_an_unset_secret_names_its_variable(served: Sandboxes, tmp_path: Path) -> None:
    env = demo_credentials()
    del env["SHOPLINE_ACCESS_TOKEN"]
    done = stokline(["run", "orders", "--mapping", str(served.mapping)], tmp_path, **env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "stokline run orders: error: environment variable SHOPLINE_ACCESS_TOKEN is not set"
    ]


def test_an_invalid_mapping_shows_the_lines_at_fault(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO_MAPPING.read_text().replace("  name: demo-outdoor", "  nmae: demo-outdoor"))
    done = stokline(["run", "orders", "--mapping", str(bad)], tmp_path)
    assert done.returncode == 1
    assert f"{bad}:8:3: /client/nmae: unknown key 'nmae'" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_api_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mapping = tmp_path / "nowhere.yaml"
    mapping.write_text(
        DEMO_MAPPING.read_text().replace(":8801", f":{port}").replace(":8802", f":{port}")
    )
    for name, value in demo_credentials().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "orders", "--mapping", str(mapping), "--dry-run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("stokline run orders: error: the pass did not finish (")
    assert "ConnectError" in err[0] and "Traceback" not in err[0]


def test_progress_on_a_pipe_is_a_line_per_tenth() -> None:
    out = io.StringIO()
    progress = run_cli.Progress("orders", out)
    for done in range(1, 101):
        progress(done, 100)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "orders: 1/100"
    assert lines[-1] == "orders: 100/100"
    assert len(lines) == 11


def test_tables_align_their_columns() -> None:
    table = run_cli.render_table([{"metric": "orders seen", "value": 12}, {"metric": "x"}])
    assert table.splitlines() == ["  metric       value", "  orders seen  12", "  x"]


@pytest.mark.parametrize(
    ("sync", "plan"), [("stock", "would push ("), ("catalogue", "would write (")]
)
def test_stock_and_catalogue_passes_from_the_terminal(
    served: Sandboxes, tmp_path: Path, sync: str, plan: str
) -> None:
    env = demo_credentials()
    args = ["run", sync, "--mapping", str(served.mapping)]
    stokly_before = served.stokly_writes()
    dry = stokline([*args, "--dry-run"], tmp_path, **env)
    assert dry.returncode == 0, dry.stderr
    assert plan in dry.stdout
    assert not (tmp_path / ".stokline").exists()  # a dry run creates no store either
    first = stokline(args, tmp_path, **env)
    assert first.returncode == 0, first.stderr
    second = stokline([*args, "--dry-run"], tmp_path, **env)
    assert second.returncode == 0, second.stderr
    assert f"{plan.rstrip('(')}(0)" in second.stdout  # the real pass left nothing to write
    assert served.stokly_writes() == stokly_before  # neither sync ever writes to Stokly


@pytest.mark.parametrize("sync", ["catalogue", "fulfilment"])
def test_a_sync_the_mapping_does_not_configure_is_one_line(
    sync: str, capsys: pytest.CaptureFixture[str]
) -> None:
    minimal = Path(__file__).parents[1] / "config" / "minimal.yaml"
    assert main(["run", sync, "--mapping", str(minimal), "--dry-run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"stokline run {sync}: error: {minimal} has no syncs.{sync} section, so this client does"
        f" not run the {sync} sync; add one (mappings/demo.yaml shows each key)"
    ]
