"""`stokline validate` and `stokline plan` as a user runs them: exit codes, output, JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stokline.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_validate_defaults_to_every_mapping(in_root, capsys):
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "mappings/demo.yaml: ok (client demo-outdoor)" in out
    assert "mappings/peak-cycles.yaml: ok (client peak-cycles)" in out


def test_validate_says_an_override_collision_is_only_known_at_run_time(in_root, capsys):
    assert main(["validate", "mappings/demo.yaml"]) == 0
    out = capsys.readouterr().out
    note = next(line for line in out.splitlines() if ": note: " in line)
    assert note.startswith("mappings/demo.yaml: note: 2 override(s) point at Stokly SKUs")
    assert "ACME-TENT-2P-GREEN, JETBOIL-MINI-01" in note
    assert "found at run time" in note and "sku_collision" in note


def test_validate_says_whether_a_chosen_variant_exists_is_only_known_at_run_time(tmp_path, capsys):
    chosen = tmp_path / "chosen.yaml"
    entry = "  show_stock_on:\n    - {stokly_sku: ACME-TENT-2P-GREEN, shopline_sku: TENT-2P-GRN}\n"
    chosen.write_text(
        (ROOT / "mappings/demo.yaml")
        .read_text()
        .replace("  never_sync:", entry + "  never_sync:", 1)
    )
    assert main(["validate", str(chosen)]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if ": note: " in line]
    assert len(notes) == 2
    assert (
        "(the one skus.show_stock_on names, else the one whose SKU is the Stokly SKU)" in notes[0]
    )
    assert notes[1].startswith(
        f"{chosen}: note: skus.show_stock_on names 1 SHOPLINE variant(s) to show a Stokly item's"
        " stock (ACME-TENT-2P-GREEN on TENT-2P-GRN)"
    )
    assert "found at run time" in notes[1] and "sku_collision" in notes[1]
    assert main(["validate", "--format", "json", str(chosen)]) == 0
    [file] = json.loads(capsys.readouterr().out)["files"]
    assert file["notes"] == [n.split(": note: ", 1)[1] for n in notes]


def test_validate_reports_problems_and_exits_1(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (ROOT / "mappings/demo.yaml").read_text().replace("  currency: GBP", "  curency: GBP")
    )
    assert main(["validate", str(broken)]) == 1
    captured = capsys.readouterr()
    assert (
        captured.out.strip()
        == f"{broken}:11:3: /client/curency: unknown key 'curency'; did you mean 'currency'?"
    )
    assert "1 problem(s) in 1 of 1 file(s)" in captured.err


def test_validate_json_format(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 2\n")
    assert (
        main(["validate", "--format", "json", str(broken), str(ROOT / "mappings/demo.yaml")]) == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    first, second = report["files"]
    assert first["valid"] is False and second == {
        "path": str(ROOT / "mappings/demo.yaml"),
        "valid": True,
        "client": "demo-outdoor",
        "problems": [],
        "notes": [second["notes"][0]],
    }
    assert "ACME-TENT-2P-GREEN, JETBOIL-MINI-01" in second["notes"][0]
    pointers = {p["pointer"] for p in first["problems"]}
    assert "/version" in pointers and "/" in pointers  # wrong version, missing sections
    assert all(
        {"file", "line", "column", "pointer", "message", "hint"} == set(p)
        for p in first["problems"]
    )


def test_validate_accepts_a_folder(tmp_path, capsys):
    shutil.copy(ROOT / "mappings/demo.yaml", tmp_path / "a.yaml")
    assert main(["validate", str(tmp_path)]) == 0
    assert "a.yaml: ok" in capsys.readouterr().out


def test_usage_errors_exit_2(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--format", "xml"])
    assert exc.value.code == 2
    monkeypatch.chdir(tmp_path)  # no mappings/ here
    assert main(["validate"]) == 2
    assert "no mapping files in mappings/" in capsys.readouterr().err
    assert main(["validate", str(tmp_path)]) == 2


def test_check_env_reports_unset_variables_without_values(in_root, capsys, monkeypatch):
    monkeypatch.setenv("STOKLY_CLIENT_ID", "demo-client")
    monkeypatch.setenv("STOKLY_CLIENT_SECRET", "top-secret-value")
    monkeypatch.delenv("SHOPLINE_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("SHOPLINE_APP_SECRET", "another-secret")
    assert main(["validate", "--check-env", "mappings/demo.yaml"]) == 1
    out = capsys.readouterr().out
    assert out.strip() == (
        "mappings/demo.yaml:23:19: /connections/shopline/access_token: environment variable "
        "SHOPLINE_ACCESS_TOKEN is not set; export it before running a sync (the demo's values are in .env.demo)"
    )
    assert "top-secret-value" not in out and "another-secret" not in out
    monkeypatch.setenv("SHOPLINE_ACCESS_TOKEN", "token")
    assert main(["validate", "--check-env", "mappings/demo.yaml"]) == 0


def test_plan_prints_each_sync_with_its_schedule(in_root, capsys):
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert "demo-outdoor (Demo Outdoor Ltd)" in out
    assert "finance     daily at 02:00 (Europe/London)" in out
    assert "orders      every 2 minutes" in out
    assert "catalogue" not in out.split("peak-cycles (")[1]  # disabled there


def test_plan_with_a_broken_file_exits_1(tmp_path, capsys):
    broken = tmp_path / "b.yaml"
    broken.write_text("version: 1\nclient: {name: x}\n")
    assert main(["plan", str(broken)]) == 1
    assert "missing required key 'timezone'" in capsys.readouterr().out


def test_the_console_script_runs_without_a_traceback(tmp_path):
    broken = tmp_path / "b.yaml"
    broken.write_text("client:\n\tname: x\n")
    exe = Path(sys.executable).with_name("stokline")
    proc = subprocess.run(
        [str(exe), "validate", str(broken)], capture_output=True, text=True, env=os.environ
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "indent with spaces, not tabs" in proc.stdout
    help_text = subprocess.run([str(exe), "--help"], capture_output=True, text=True).stdout
    assert "validate" in help_text and "plan" in help_text
