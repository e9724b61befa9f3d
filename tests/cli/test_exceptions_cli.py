"""`stokline exceptions` against a real state store."""

from __future__ import annotations

import json

import pytest

from stokline.cli import main
from stokline.store import Store


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("STOKLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'state.db'}")
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
