"""`stokline reconcile stock` as a user runs it: both sandboxes on loopback, no Prefect server."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stokline.cli import main
from stokline.sync.stock.reconcile import COLUMNS
from tests.flows.sandboxes import Sandboxes, demo_credentials, running_sandboxes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    with running_sandboxes(tmp_path_factory.mktemp("reconcile-cli")) as sandboxes:
        yield sandboxes


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The demo secrets, a private state store path (never created by a reconcile), tmp as cwd."""
    for name, value in demo_credentials().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STOKLINE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def levels(served: Sandboxes) -> dict[str, int]:
    store = served.shopline.app.state.shopline.store
    return {
        f"{level['inventory_item_id']}:{level['location_id']}": level["available"]
        for _, level in store.scan("inventory_level")
    }


def reconcile(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["reconcile", "stock", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_differences_and_oversell_risk_first_in_the_terminal_and_in_csv(
    served: Sandboxes, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = levels(served)
    status, out, err = reconcile(
        "--mapping", str(served.mapping), "--csv", "stock.csv", "--limit", "3", capsys=capsys
    )
    assert status == 1, err  # the seed's SHOPLINE levels differ from Stokly's sellable stock
    assert levels(served) == before  # read-only
    assert not (env / ".stokline").exists()  # and no state store was created either
    headline, header, *rows = out.splitlines()
    assert headline.startswith("demo-outdoor: ") and "at oversell risk" in headline
    assert header.split() == list(COLUMNS)
    assert len(rows) == 4 and rows[-1].lstrip().startswith("… ")
    assert rows[0].split()[-1] == "yes"  # oversell risk comes first
    assert "reading Stokly and SHOPLINE" in err and "written to stock.csv" in err

    with (env / "stock.csv").open(encoding="utf-8", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert list(table[0]) == list(COLUMNS)
    assert len(table) == int(headline.split(": ")[1].split()[0])  # every compared level
    risky = [r for r in table if r["oversell_risk"] == "yes"]
    assert risky and table[: len(risky)] == risky
    for row in table:
        if row["shopline_available"]:
            expected = int(row["shopline_available"]) - int(row["stokly_sellable"])
            assert int(row["difference"]) == expected
            assert (row["oversell_risk"] == "yes") == (expected > 0)


def test_after_a_stock_pass_everything_agrees_and_csv_on_stdout_is_pure(
    served: Sandboxes, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "stock", "--mapping", str(served.mapping)]) == 0
    capsys.readouterr()
    status, out, err = reconcile("--mapping", str(served.mapping), capsys=capsys)
    assert status == 0, err
    assert " 0 differ; 0 at oversell risk" in out.splitlines()[0]

    status, out, _ = reconcile(
        "--mapping", str(served.mapping), "--csv", "-", "--only-differences", capsys=capsys
    )
    assert status == 0
    assert out == ",".join(COLUMNS) + "\n"  # the header, and no level differs

    # A merchant adds 40 units by hand in SHOPLINE's admin: oversell risk, exit status 1.
    store = served.shopline.app.state.shopline.store
    _, level = next(iter(store.scan("inventory_level")))
    key = f"{level['inventory_item_id']}:{level['location_id']}"
    store.update("inventory_level", key, {**level, "available": level["available"] + 40})
    status, out, _ = reconcile(
        "--mapping", str(served.mapping), "--csv", "-", "--only-differences", capsys=capsys
    )
    assert status == 1
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert (row["difference"], row["oversell_risk"]) == ("40", "yes")


def test_help_explains_columns_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["reconcile", "stock", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for words in ("--only-differences", "--csv", "difference = SHOPLINE available", "Exit status"):
        assert words in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: --mapping"),
        (["--mapping", "m.yaml", "--limit", "-1"], "invalid row count -1"),
        (["--mapping", "m.yaml", "--limit", "many"], "invalid row count 'many'"),
        (["--mapping", "m.yaml", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_are_one_line_and_status_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["reconcile", "stock", *args])
    assert done.value.code == 2
    assert message in capsys.readouterr().err


def test_a_kind_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["reconcile"])
    assert done.value.code == 2
    assert "KIND" in capsys.readouterr().err


def test_an_unwritable_csv_is_refused_before_anything_is_read(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = reconcile(
        "--mapping", "nowhere.yaml", "--csv", "no/such/dir/x.csv", capsys=capsys
    )
    assert status == 2
    assert err.strip() == "stokline reconcile stock: error: cannot write no/such/dir/x.csv"


def test_an_invalid_mapping_and_an_unreachable_api_are_status_1(
    served: Sandboxes, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "broken.yaml").write_text("version: 1\nclient: {nmae: x}\n", encoding="utf-8")
    status, _, err = reconcile("--mapping", "broken.yaml", capsys=capsys)
    assert status == 1 and "broken.yaml:" in err

    dead = served.mapping.read_text(encoding="utf-8").replace(
        served.stokly.url, "http://127.0.0.1:9"
    )
    (env / "dead.yaml").write_text(dead, encoding="utf-8")
    status, _, err = reconcile("--mapping", "dead.yaml", capsys=capsys)
    assert status == 1
    assert "error: cannot reach" in err and "http://127.0.0.1:9" in err
    assert len(err.strip().splitlines()) == 2  # the progress line and the one error line
    assert httpx.get(f"{served.stokly.url}/_sandbox/state", timeout=5).status_code == 200
