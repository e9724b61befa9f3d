"""`stokline sandbox` and `stokline simulate` as processes, the way a user runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stokline.envfile import load_env_file

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("stokline"))
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never came up")


def as_a_background_job() -> None:
    """What a non-interactive shell does to ``command &`` (a script, a CI job, ``make test`` run
    from one): SIGINT ignored, which the process inherits. Ctrl-C must stop it all the same, so
    the sandbox is always started this way, whatever started the suite."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    data = tmp_path_factory.mktemp("sandbox")
    shop, stok = free_port(), free_port()
    proc = subprocess.Popen(
        [
            EXE,
            "sandbox",
            "--seed",
            "demo",
            "--skus",
            "60",
            "--data-dir",
            str(data),
            "--shopline-port",
            str(shop),
            "--stokly-port",
            str(stok),
            "--no-rate-limit",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_a_background_job,
    )
    try:
        wait_for(f"http://127.0.0.1:{shop}/docs")
        wait_for(f"http://127.0.0.1:{stok}/docs")
        yield proc, f"http://127.0.0.1:{shop}", f"http://127.0.0.1:{stok}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_both_apis_serve_the_demo_seed_with_the_demo_credentials(sandbox):
    _, shop, stok = sandbox
    env: dict[str, str] = {}
    load_env_file(ROOT / ".env.demo", environ=env)
    token = {"Authorization": f"Bearer {env['SHOPLINE_ACCESS_TOKEN']}"}
    products = httpx.get(
        f"{shop}/admin/openapi/v20251201/products/products.json", headers=token
    ).json()
    assert products["products"]
    assert httpx.get(f"{shop}/admin/openapi/v20251201/products/products.json").status_code == 401
    import hashlib
    import hmac

    signature = hmac.new(
        env["STOKLY_CLIENT_SECRET"].encode(), env["STOKLY_CLIENT_ID"].encode(), hashlib.sha256
    ).hexdigest()
    grant = httpx.post(
        f"{stok}/v1/grant",
        json={
            "accountkey": "demo-outdoor",
            "clientId": env["STOKLY_CLIENT_ID"],
            "signature": signature,
        },
    )
    assert grant.status_code == 200
    bearer = {
        "Authorization": f"Bearer {grant.json()['data']['authenticationResult']['accessToken']}"
    }
    locations = httpx.get(f"{stok}/v0/locations", headers=bearer).json()["data"]
    assert {"Leeds DC", "York Store", "Bristol DC"} <= {loc["name"] for loc in locations}


def test_simulate_storefront_warehouse_and_faults(sandbox):
    _, shop, stok = sandbox
    before = httpx.get(f"{shop}/_sandbox/summary").json()["order"]
    run = subprocess.run(
        [EXE, "simulate", "storefront", "--url", shop, "--rate", "600", "--count", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "placed 3 order(s)" in run.stdout
    assert httpx.get(f"{shop}/_sandbox/summary").json()["order"] == before + 3
    run = subprocess.run(
        [EXE, "simulate", "warehouse", "--url", stok, "--rate", "600", "--count", "4"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "4 warehouse action(s)" in run.stdout
    run = subprocess.run(
        [EXE, "simulate", "faults", "flaky", "--shopline-url", shop, "--stokly-url", stok],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert httpx.get(f"{shop}/_sandbox/faults").json()["name"] == "flaky"
    assert httpx.get(f"{stok}/_sandbox/faults").json()["data"]["name"] == "flaky"
    subprocess.run(
        [EXE, "simulate", "faults", "none", "--shopline-url", shop, "--stokly-url", stok],
        check=True,
    )


def test_simulate_says_so_when_no_sandbox_runs():
    run = subprocess.run(
        [EXE, "simulate", "faults", "none", "--shopline-url", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1 and "ConnectError" in run.stderr and "Traceback" not in run.stderr


def test_ctrl_c_stops_a_simulated_storefront_started_in_the_background(sandbox):
    _, shop, _ = sandbox
    before = httpx.get(f"{shop}/_sandbox/summary").json()["order"]
    run = subprocess.Popen(
        [EXE, "simulate", "storefront", "--url", shop, "--rate", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_a_background_job,
    )
    try:
        end = time.monotonic() + 60
        while httpx.get(f"{shop}/_sandbox/summary").json()["order"] == before:
            assert run.poll() is None and time.monotonic() < end, "no order placed"
            time.sleep(0.1)
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0 and "Traceback" not in out, out


def test_ctrl_c_stops_cleanly_and_state_survives(sandbox, tmp_path):
    proc, shop, _ = sandbox
    orders = httpx.get(f"{shop}/_sandbox/summary").json()["order"]
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "SHOPLINE sandbox  http://127.0.0.1:" in out and "Traceback" not in out
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{shop}/docs", timeout=1)
    # restart on the same data directory: the orders placed are still there
    data_dir = proc.args[proc.args.index("--data-dir") + 1]
    port = shop.rsplit(":", 1)[1]
    again = subprocess.Popen(
        [
            EXE,
            "sandbox",
            "--data-dir",
            data_dir,
            "--shopline-port",
            port,
            "--stokly-port",
            str(free_port()),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ,
    )
    try:
        wait_for(f"{shop}/docs")
        assert httpx.get(f"{shop}/_sandbox/summary").json()["order"] == orders
    finally:
        again.terminate()
        assert again.wait(timeout=30) == 0
