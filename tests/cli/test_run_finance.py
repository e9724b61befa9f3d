"""`stokline run finance` as finance runs it: against both sandboxes on loopback, with the period
as options and the approval the demo mapping requires (a terminal answer, --yes, or a refusal)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from stokline.cli import main
from stokline.config import load_mapping
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.orders.sync import sync_orders
from tests.flows.sandboxes import Sandboxes, demo_credentials, running_sandboxes

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).with_name("stokline"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    with running_sandboxes(tmp_path_factory.mktemp("ledger-cli")) as sandboxes:
        yield sandboxes


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Demo credentials, a private state store, and a working directory of its own."""
    for name, value in demo_credentials().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STOKLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Terminal(io.StringIO):
    """What a person types at a terminal."""

    def isatty(self) -> bool:
        return True


def sell(
    served: Sandboxes,
    day: date,
    price: str = "24.00",
    gateway: str = "paypal",
    *,
    imported: bool = True,
    store: str | None = None,
) -> str:
    """A paid order of ``day`` (noon UTC), one tent at ``price`` with Royal Mail 3.95, imported
    into Stokly (into ``store``, else the test's) unless ``imported`` is False: the money of an
    order not in Stokly is held out of the journals. Returns the order's SHOPLINE name."""
    body = {
        "lines": [{"sku": "TENT-2P-GRN", "quantity": 1, "price": price}],
        "customer": {"email": "finance-cli@example.com"},
        "gateway": gateway,
        "created_at": f"{day.isoformat()}T12:00:00+00:00",
    }
    response = httpx.post(f"{served.shopline.url}/_sandbox/orders", json=body, timeout=10)
    response.raise_for_status()
    order = response.json()["order"]
    if imported:
        import_order(served, order, store)
    return str(order["name"])


def import_order(served: Sandboxes, order: dict[str, Any], url: str | None = None) -> None:
    """The order into Stokly through the orders sync, delivered as a webhook (the sweep does not
    look back to a day this old)."""
    mapping = load_mapping(served.mapping)
    with Store(url) as store:
        body = json.dumps(order).encode()
        store.inbox.add("demo-outdoor", f"wh-{order['id']}", "orders/paid", body)

        async def run() -> None:
            async with open_clients(mapping) as (shopline, stokly):
                await sync_orders(mapping, shopline=shopline, stokly=stokly, store=store)

        asyncio.run(run())
        assert store.links.get("demo-outdoor", "order", str(order["id"])) is not None


def journals(served: Sandboxes) -> int:
    return served.stokly_counts()["journal"]


def finance(served: Sandboxes, *options: str) -> int:
    return main(["run", "finance", "--mapping", str(served.mapping), *options])


def test_a_dry_run_prints_the_journals_and_writes_nothing(
    served: Sandboxes, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sell(served, date(2025, 3, 3))
    before = journals(served)
    with Store() as store:
        audited = store.audit.list("demo-outdoor")  # the order's import
    assert finance(served, "--from", "2025-03-03", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "demo-outdoor:2025-03-03:paypal:GBP  27.95 GBP" in out
    assert "receipts paypal" in out and "27.95" in out
    assert "would post (1):" in out
    assert "dry run (nothing written)" in out
    assert journals(served) == before
    # The store was read, not written: it holds no batch and no new audit row.
    with Store() as store:
        assert not store.batches.list("demo-outdoor")
        assert store.audit.list("demo-outdoor") == audited


def test_without_a_terminal_approval_is_refused_before_anything_is_read(
    served: Sandboxes,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sell(served, date(2025, 3, 4))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    before = journals(served)
    assert finance(served, "--from", "2025-03-04") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "stokline run finance: error: approval is required (syncs.finance.approval); review the "
        "journals with --dry-run, then rerun with --yes to post them, or approve the run of the "
        "finance deployment in the Prefect UI"
    ]
    assert journals(served) == before


def test_a_terminal_answer_decides(
    served: Sandboxes,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sell(served, date(2025, 3, 5))
    before = journals(served)
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    assert finance(served, "--from", "2025-03-05") == 1
    captured = capsys.readouterr()
    assert "post these 1 journal(s)? [y/N]" in captured.out
    # A refusal says what it left: no journal, but the payment recorded before the question.
    assert captured.err.strip().splitlines()[-1] == (
        "stokline run finance: error: journals not approved: nothing posted (the 1 payment(s) "
        "and 0 refund(s) above are recorded on their Stokly sale orders)"
    )
    assert journals(served) == before

    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    assert finance(served, "--from", "2025-03-05") == 0
    out = capsys.readouterr().out
    assert journals(served) == before + 1
    assert "demo-outdoor:2025-03-05:paypal:GBP" in out and "posted" in out


def test_the_money_of_orders_not_in_stokly_is_named_before_the_question(
    served: Sandboxes,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    day = date(2025, 3, 9)
    sell(served, day)
    held = [sell(served, day, price="1000.00", imported=False) for _ in range(2)]
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    assert finance(served, "--from", str(day)) == 1
    out = capsys.readouterr().out
    line = (
        "2,007.90 GBP of payments on 2 orders are not in Stokly yet: held for a later run, "
        "when their order is in Stokly (policy: hold). Orders: " + ", ".join(held) + "."
    )
    assert line in out
    assert out.index(line) < out.index("post these 1 journal(s)? [y/N]")


def test_yes_posts_once_and_a_rerun_says_it_is_posted(
    served: Sandboxes, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sell(served, date(2025, 3, 6))
    sell(served, date(2025, 3, 7), gateway="klarna")
    before = journals(served)
    assert finance(served, "--from", "2025-03-06", "--to", "2025-03-07", "--yes") == 0
    out = capsys.readouterr().out
    assert journals(served) == before + 2
    assert "journals posted" in out
    assert finance(served, "--from", "2025-03-06", "--to", "2025-03-07", "--yes") == 0
    out = capsys.readouterr().out
    assert journals(served) == before + 2
    assert "already posted" in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--from", "2025-02-30"], "argument --from: '2025-02-30' is not a date (YYYY-MM-DD)"),
        (
            ["--from", "2025-03-02", "--to", "2025-03-01"],
            "--from 2025-03-02 is after --to 2025-03-01",
        ),
        (["--from", "2999-01-01", "--dry-run"], "the period ends on 2999-01-01, after today"),
    ],
)
def test_a_period_that_cannot_be_posted_is_a_usage_error(
    served: Sandboxes,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    try:
        code = finance(served, *options)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_command_runs_as_a_process(
    served: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in demo_credentials().items():  # for the order's import, in this process
        monkeypatch.setenv(name, value)
    # The process's store is the default one of its working directory.
    (tmp_path / ".stokline").mkdir()
    url = f"sqlite:///{tmp_path / '.stokline' / 'state.db'}"
    sell(served, date(2025, 3, 8), gateway="shopline_payments", store=url)
    done = subprocess.run(
        [
            EXE,
            "run",
            "finance",
            "--mapping",
            str(served.mapping),
            "--from",
            "2025-03-08",
            "--dry-run",
        ],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **demo_credentials()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "demo-outdoor:2025-03-08:shopline_payments:GBP" in done.stdout
    assert "payments:" in done.stdout and "dry run (nothing written)" in done.stdout
    assert "journals: 1/1" in done.stderr  # progress, on stderr
