"""`stokline status`: a table or JSON from the state store, and what it says when Prefect is away."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from stokline.cli import main
from stokline.store import Store

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "mappings" / "demo.yaml")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("STOKLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    with Store() as s:
        s.exceptions.raise_("demo-outdoor", "unmapped_sku", "order", "1", "SKU X", team="ecommerce")
        s.exceptions.raise_("demo-outdoor", "tax_mismatch", "order", "2", "VAT", team="finance")
        s.inbox.add("demo-outdoor", "w1", "orders/paid", b"{}")
        yield s


def test_table_when_prefect_does_not_answer(store: Store, capsys: pytest.CaptureFixture) -> None:
    url = closed_port_url()
    assert main(["status", "--mapping", DEMO, "--prefect-url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("demo-outdoor (Demo Outdoor Ltd) — ")
    assert f"note: the Prefect API at {url} does not answer (ConnectError)" in out
    assert "last activity from the state store instead" in out
    assert "open exceptions: 2 (critical 1, high 1)" in out
    assert "webhook inbox: 1 waiting (1 pending, 0 being processed)" in out


def test_json_for_every_mapping(
    store: Store, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["status", "--no-prefect", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["client"] for c in data] == ["demo-outdoor", "peak-cycles"]
    demo = data[0]
    assert demo["runs_from"] == "store" and "--no-prefect" in demo["note"]
    assert demo["exceptions"]["by_team"] == {"finance": {"high": 1}, "ecommerce": {"critical": 1}}
    assert demo["inbox"]["pending"] == 1
    assert {s["health"] for s in demo["syncs"]} == {"never"}
    assert data[1]["exceptions"]["open"] == 0


def test_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\n")
    assert main(["status", "--no-prefect", "--mapping", str(broken)]) == 1
    assert "missing required key 'client'" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["status"]) == 2
    assert "no mapping files in mappings/" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--format", "yaml"])
    assert exit_.value.code == 2


def test_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "open exceptions by owning team and severity" in text
    assert "status-<client>" in text
