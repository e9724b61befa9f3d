"""`stokline automations apply`: its help and its errors (the server side: tests/ops)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stokline.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "mappings" / "demo.yaml")


def test_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["automations", "apply", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for alert in ("sync run failed", "fulfilments stale", "exception spike", "oversell risk"):
        assert alert in text
    assert "--dry-run" in text


def test_a_server_that_does_not_answer_is_one_line(capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    assert main(["automations", "apply", "--mapping", DEMO, "--prefect-url", url]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"stokline automations: error: the Prefect API at {url} does not answer (ConnectError); "
        "start it (`stokline up`) or give --prefect-url"
    )


def test_usage_and_mapping_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["automations"])
    assert exit_.value.code == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\n")
    assert main(["automations", "apply", "--mapping", str(broken)]) == 1
    assert f"{broken}:1:1: /: missing required key 'client'" in capsys.readouterr().err
