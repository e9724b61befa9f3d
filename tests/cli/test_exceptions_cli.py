"""`stokline exceptions` against a real state store."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from stokline.cli import main
from stokline.config import load_mapping
from stokline.store import Store
from tests.sync.conftest import APP_SECRET, CLIENT_ID, CLIENT_SECRET, TOKEN, World

ROOT = Path(__file__).resolve().parents[2]
UNKNOWN = "ACME-HAMMOCK-XL-RED"  # sold in SHOPLINE, unknown to Stokly
TENT = "ACME-TENT-2P-ORANGE"
GAS = "PIKE-GAS-230-25"  # VAT 5%
EVERY_FIELD = {
    "id",
    "client",
    "code",
    "severity",
    "team",
    "status",
    "entity_kind",
    "entity_id",
    "entity",
    "order",
    "key_fact",
    "message",
    "action",
    "attempts",
    "first_seen",
    "last_seen",
    "resolved_at",
    "resolution",
}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("STOKLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("COLUMNS", "200")  # the table's width, whatever terminal runs the tests
    with Store() as s:
        s.exceptions.raise_(
            "demo-outdoor",
            "unmapped_sku",
            "order",
            "1001",
            "SKU NOPE-1 matches no Stokly item",
            team="ecommerce",
        )
        s.exceptions.raise_(
            "demo-outdoor",
            "tax_mismatch",
            "order",
            "1002",
            "VAT 21% matches no rule",
            team="finance",
        )
        s.exceptions.raise_("peak-cycles", "unmapped_sku", "order", "9", "SKU X", team="operations")
        yield s


def test_list_and_filters(store, capsys):
    assert main(["exceptions", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["id", "client", "code", "severity"] and len(out) == 4
    assert main(["exceptions", "list", "--team", "finance", "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["code"], row["entity"], row["team"]) == ("tax_mismatch", "order 1002", "finance")
    assert (
        main(
            [
                "exceptions",
                "list",
                "--client",
                "peak-cycles",
                "--code",
                "unmapped_sku",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert [r["client"] for r in json.loads(capsys.readouterr().out)] == ["peak-cycles"]


def test_show_retry_resolve_ignore(store, capsys):
    [first] = store.exceptions.list(code="unmapped_sku", client="demo-outdoor")
    assert main(["exceptions", "show", str(first.id)]) == 0
    shown = capsys.readouterr().out
    assert "SKU NOPE-1 matches no Stokly item" in shown and "what to do" in shown
    assert main(["exceptions", "retry", str(first.id)]) == 0
    assert store.exceptions.get(first.id).status == "retrying"
    assert main(["exceptions", "resolve", str(first.id), "--note", "override added"]) == 0
    assert store.exceptions.get(first.id).resolution == "override added"
    [tax] = store.exceptions.list(code="tax_mismatch")
    assert main(["exceptions", "ignore", str(tax.id), "--note", "test order"]) == 0
    assert store.exceptions.get(tax.id).status == "ignored"
    capsys.readouterr()
    assert main(["exceptions", "list", "--client", "demo-outdoor"]) == 0
    assert capsys.readouterr().out.strip() == "no exceptions match"
    assert (
        main(
            [
                "exceptions",
                "list",
                "--status",
                "all",
                "--format",
                "json",
                "--client",
                "demo-outdoor",
            ]
        )
        == 0
    )
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_errors(store, capsys):
    assert main(["exceptions", "show", "999"]) == 1
    assert "no exception 999" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["exceptions", "ignore", "1"])  # a note is required to ignore
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["exceptions", "list", "--code", "nope"])


# -- rows an operator can act on ------------------------------------------------------------------


def columns_of(line: str) -> int:
    """Terminal columns a printed line takes (wide characters count two)."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in line
    )


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Both sandboxes in-process and the orders sync, as the sync tests drive them."""
    monkeypatch.setenv("STOKLY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("STOKLY_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SHOPLINE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("SHOPLINE_APP_SECRET", APP_SECRET)
    world = World(tmp_path, load_mapping(ROOT / "mappings/demo.yaml"))
    yield world
    world.close()


def test_each_row_shows_the_order_the_key_fact_and_the_reason(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Five orders the orders sync cannot import, each for another reason, as the queue lists them."""
    mapping = world.mapping_with(
        lambda text: (
            text.replace("on_unmapped: default", "on_unmapped: exception")
            .replace("    - {shopline_title: VAT 5%, rate: 0.05, stokly_tax_class: reduced}\n", "")
            .replace('shopline_location: "7002"', 'shopline_location: "7009"')
        )
    )
    placed = {
        "unmapped_sku": world.place((UNKNOWN, 1)),
        "unmapped_shipping": world.place((TENT, 1), shipping_title="Carrier Pigeon"),
        "unmapped_gateway": world.place((TENT, 1), gateway="cash_on_delivery"),
        "tax_mismatch": world.place((GAS, 1)),
        "unknown_location": world.place((TENT, 1), location_id="7002"),
    }
    world.run(mapping)
    monkeypatch.setenv("STOKLINE_DATABASE_URL", world.store.url)
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["exceptions", "list", "--client", "demo-outdoor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["id", "code", "severity", "status", "team", "order"]
    rows = {line.split()[1]: line for line in lines[1:]}
    assert set(rows) == set(placed)
    facts = {
        "unmapped_sku": (UNKNOWN, f"SKU {UNKNOWN} matches no Stokly item"),
        "unmapped_shipping": ("Carrier Pigeon", "shipping line Carrier Pigeon matches no"),
        "unmapped_gateway": ("cash_on_delivery", "payment gateway cash_on_delivery is not"),
        "tax_mismatch": ("VAT 5% @ 0.05", "tax line VAT 5% at rate 0.05 matches no tax rule"),
        "unknown_location": ("7002", "SHOPLINE location 7002 is not in the mapping"),
    }
    for code, (fact, reason) in facts.items():
        row = rows[code]
        order = placed[code]
        assert f"  {order['name']}  order {order['id'][:8]}" in row, row
        assert f"  {fact}  " in row and reason in row, row

    assert main(["exceptions", "list", "--format", "json"]) == 0
    listed = {r["code"]: r for r in json.loads(capsys.readouterr().out)}
    for code, (fact, _) in facts.items():
        assert listed[code]["key_fact"] == fact
        assert listed[code]["order"] == placed[code]["name"]
        assert (listed[code]["entity_kind"], listed[code]["entity_id"]) == (
            "order",
            placed[code]["id"],
        )


LONG = (
    "Stokly refused the new customer: a customer with email ada.lovelace@example.com and phone"
    " +44 7700 900123 already exists under account 7 of 12, and this sentence goes on well past"
    " any terminal's width so that it must be cut"
)


@pytest.fixture
def long_ones(store: Store) -> Store:
    store.exceptions.raise_(
        "demo-outdoor",
        "api_rejected",
        "order",
        "21050224312121887324667162",
        LONG,
        team="operations",
        payload={"order": "#1042"},
    )
    store.exceptions.raise_(
        "demo-outdoor",
        "unknown_shopline_sku",
        "variant",
        "16057590153890829521112788",
        "SHOPLINE variant SKU 露營燈-大型-紅色 (product 露營燈) matches no Stokly item",
        team="ecommerce",
        payload={"sku": "露營燈-大型-紅色", "inventory_item_id": "1"},
    )
    return store


@pytest.mark.parametrize("width", [40, 80, 100, 140])
def test_rows_are_cut_to_the_terminal_width_never_wrapped(
    long_ones: Store,
    width: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["exceptions", "list", "--client", "demo-outdoor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5  # the header and four rows: one line each
    assert all(columns_of(line) <= width for line in lines), [columns_of(x) for x in lines]
    [long] = [line for line in lines if "#1042" in line]
    assert long.endswith("…") and "ada.lovelace" not in long
    if width >= 80:  # the key facts survive where the reason is cut
        assert "  Stokly: new customer  " in long
        [wide] = [line for line in lines if "variant" in line]
        assert "  露營燈-大型-紅色  " in wide


def test_a_wide_terminal_shows_the_whole_reason(
    long_ones: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["exceptions", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["id", "client", "code", "severity", "status"]
    [long] = [line for line in lines if "#1042" in line]
    assert long.endswith("so that it must be cut") and "#1042  order 2105022431212…" in long
    assert "a***@example.com" in long and "+***23" in long and "ada.lovelace" not in long


def test_output_to_a_pipe_is_cut_to_the_fallback_width(long_ones: Store) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    done = subprocess.run(
        [sys.executable, "-m", "stokline", "exceptions", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 6 and max(columns_of(line) for line in lines) == 120
    assert any(line.endswith("…") for line in lines)


def test_json_and_csv_carry_every_field_uncut(
    long_ones: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "40")  # no effect on tools' formats
    assert main(["exceptions", "list", "--status", "all", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert main(["exceptions", "list", "--status", "all", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(table) == 5
    for row, line in zip(rows, table, strict=True):
        assert set(row) == set(line) == EVERY_FIELD
        assert {k: "" if v is None else str(v) for k, v in row.items()} == line
    by_code = {r["code"]: r for r in rows}
    api = by_code["api_rejected"]
    record = long_ones.exceptions.get(api["id"])
    assert api["message"] == LONG.replace("ada.lovelace@example.com", "a***@example.com").replace(
        "+44 7700 900123", "+***23"
    )
    assert api["key_fact"] == "Stokly: new customer"
    assert (api["entity_kind"], api["entity_id"], api["order"]) == (
        "order",
        "21050224312121887324667162",
        "#1042",
    )
    assert (api["severity"], api["team"], api["status"], api["attempts"]) == (
        "high",
        "operations",
        "open",
        1,
    )
    assert api["first_seen"] == record.first_seen.isoformat(timespec="seconds")
    assert api["last_seen"] == record.last_seen.isoformat(timespec="seconds")
    assert api["action"] == record.action and api["resolved_at"] is None
    assert by_code["unknown_shopline_sku"]["key_fact"] == "露營燈-大型-紅色"


def test_tools_formats_print_nothing_else_even_when_empty(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["exceptions", "list", "--client", "nobody", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["exceptions", "list", "--client", "nobody", "--format", "csv"]) == 0
    [header] = capsys.readouterr().out.splitlines()
    assert set(header.split(",")) == EVERY_FIELD


def test_a_bad_format_is_refused_by_name(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["exceptions", "list", "--format", "xml"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'xml'" in err and "table" in err and "csv" in err
