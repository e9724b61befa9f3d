"""`stokline reconcile payouts` as a user runs it: both sandboxes on loopback, no Prefect server."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from stokline.cli import main
from stokline.config import load_mapping
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.finance.ledger.sync import post_ledger
from stokline.sync.finance.payments.sync import sync_payments
from stokline.sync.finance.payouts.reconcile import COLUMNS
from stokline.sync.orders.sync import sync_orders
from tests.flows.sandboxes import KNOWN_SKU, Sandboxes, demo_credentials, running_sandboxes

pytestmark = pytest.mark.slow

QUIET_DAY = date(2021, 3, 3)  # no seeded order moved money on this day


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    with running_sandboxes(tmp_path_factory.mktemp("payouts-cli")) as sandboxes:
        yield sandboxes


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The demo secrets, no state store (a reconcile never creates one), tmp as the cwd."""
    for name, value in demo_credentials().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STOKLINE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def reconcile(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr, whether the command returned or argparse exited."""
    try:
        status = main(["reconcile", "payouts", *args])
    except SystemExit as done:
        status = int(done.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def stokly_counts(served: Sandboxes) -> dict[str, int]:
    return {k: v for k, v in served.stokly_counts().items() if k != "token"}


def test_help_explains_the_columns_and_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["reconcile", "payouts", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for words in ("--from DATE", "--to DATE", "--csv FILE", "Stokly ledger", "Exit status"):
        assert words in out
    with pytest.raises(SystemExit):
        main(["reconcile", "--help"])
    assert "payouts" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2024-02-30"], "argument --from: invalid date '2024-02-30': use YYYY-MM-DD"),
        (
            ["--from", "2024-05-03", "--to", "2024-05-01"],
            "--from 2024-05-03 is after --to 2024-05-01",
        ),
        (["--to", "2099-01-01"], "--to 2099-01-01 is in the future"),
        (["--csv", "no/such/dir/out.csv"], "cannot write no/such/dir/out.csv"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    served: Sandboxes,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    status, _, err = reconcile("--mapping", str(served.mapping), *args, capsys=capsys)
    assert status == 2
    assert message in err and "Traceback" not in err
    assert [line for line in err.splitlines() if "error" in line] == [err.splitlines()[-1]]


def test_a_missing_mapping_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["reconcile", "payouts", "--from", "2024-05-01"])
    assert done.value.code == 2
    assert "--mapping" in capsys.readouterr().err


def test_variances_exit_1_with_their_orders_in_the_terminal_and_the_csv(
    served: Sandboxes, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seeded shop took money today and yesterday; nothing of it is in Stokly's ledger."""
    today = datetime.now(ZoneInfo("Europe/London")).date()
    before = stokly_counts(served)
    args = [
        "--mapping",
        str(served.mapping),
        "--from",
        str(today.replace(day=1)),
        "--to",
        str(today),
    ]
    status, out, err = reconcile(*args, "--csv", "payouts.csv", capsys=capsys)
    assert status == 1, err
    assert stokly_counts(served) == before  # read-only
    assert not (env / ".stokline").exists()  # no state store was created
    assert "do not reconcile" in out.splitlines()[0]
    assert "not posted: shopline_payments" in out and "order not imported into Stokly" in out
    assert "payouts: " in err  # progress, a line per tenth on a pipe
    assert "CSV written to payouts.csv" in err

    with (env / "payouts.csv").open(encoding="utf-8", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert list(table[0]) == list(COLUMNS)
    assert {row["status"] for row in table} == {"not posted"}
    assert all(row["orders"].startswith("#") for row in table)

    status, out, _ = reconcile(*args, "--csv", "-", capsys=capsys)
    assert status == 1
    assert list(csv.DictReader(io.StringIO(out))) == table  # stdout holds the CSV alone


def test_a_quiet_period_exits_0(
    served: Sandboxes, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = reconcile(
        "--mapping",
        str(served.mapping),
        "--from",
        "2020-01-06",
        "--to",
        "2020-01-07",
        capsys=capsys,
    )
    assert status == 0, err
    assert "no money moved" in out


def test_money_recorded_and_posted_exits_0(
    served: Sandboxes,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An order paid on a quiet day, imported, its payment recorded and the day posted."""
    url = f"sqlite:///{env / 'state.db'}"
    monkeypatch.setenv("STOKLINE_DATABASE_URL", url)
    body = {
        "lines": [{"sku": KNOWN_SKU, "quantity": 1}],
        "customer": {"email": "quiet-day@example.com"},
        "created_at": f"{QUIET_DAY}T11:00:00+00:00",
    }
    placed = httpx.post(f"{served.shopline.url}/_sandbox/orders", json=body, timeout=10)
    placed.raise_for_status()
    order = placed.json()["order"]
    mapping = load_mapping(served.mapping)
    with Store(url) as store:
        # The order reaches the orders sync as a webhook would deliver it (its day is long past).
        store.inbox.add("demo-outdoor", "wh-quiet-1", "orders/paid", json.dumps(order).encode())

        async def finance() -> None:
            async with open_clients(mapping) as (shopline, stokly):
                clients = {"shopline": shopline, "stokly": stokly, "store": store}
                await sync_orders(mapping, **clients)
                assert store.links.get("demo-outdoor", "order", order["id"]) is not None
                paid = await sync_payments(mapping, **clients, start=QUIET_DAY, end=QUIET_DAY)
                assert paid.payments_recorded == 1, paid.errors
                posted = await post_ledger(mapping, **clients, start=QUIET_DAY, end=QUIET_DAY)
                assert posted.posted == 1, (posted.errors, posted.refused)

        asyncio.run(finance())

    status, out, err = reconcile(
        "--mapping", str(served.mapping), "--from", str(QUIET_DAY), capsys=capsys
    )
    assert status == 0, out + err
    assert "all balanced" in out.splitlines()[0]
    assert "balanced" in out and order["total_price"] in out
