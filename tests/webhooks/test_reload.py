"""The receiver serves clients as their mappings are added, changed, broken or removed.

Real mapping files in a temporary folder (the demo mapping under other names), the real app over
real HTTP, real signatures; the SIGHUP reload is sent to a real `stokline receiver` process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from stokline.sandbox.common import ServerThread
from stokline.store import Store
from stokline.webhooks import Clients, create_app
from tests.webhooks.process import receiver_process

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "mappings/demo.yaml").read_text(encoding="utf-8")
SECRETS = {
    "RELOAD_TEST_SECRET_DEMO": "demo-secret-b7c1e0",
    "RELOAD_TEST_SECRET_ACME": "acme-secret-4f9a2d",
}
UNSET = "RELOAD_TEST_SECRET_NEVER_SET"
ORDER = json.dumps({"id": "2105", "name": "#1001", "financial_status": "paid"}).encode()


def write_mapping(folder: Path, client: str, variable: str, *, broken: bool = False) -> Path:
    text = DEMO.replace("name: demo-outdoor", f"name: {client}").replace(
        "webhook_secret: {env: SHOPLINE_APP_SECRET}", f"webhook_secret: {{env: {variable}}}"
    )
    assert f"name: {client}" in text and variable in text
    if broken:
        text += "\nunknown_top_level_key: 1\n"
    path = folder / f"{client}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def deliver(
    http: httpx.Client, client: str, secret: str, webhook_id: str = "wh-1", body: bytes = ORDER
) -> httpx.Response:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()  # independent of stokline
    return http.post(
        f"/webhooks/{client}",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopline-Topic": "orders/paid",
            "X-Shopline-Hmac-Sha256": base64.b64encode(mac).decode(),
            "X-Shopline-Webhook-Id": webhook_id,
        },
    )


@pytest.fixture
def secrets(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(UNSET, raising=False)
    return SECRETS


@pytest.fixture
def folder(tmp_path, secrets) -> Path:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    write_mapping(mappings, "demo-outdoor", "RELOAD_TEST_SECRET_DEMO")
    return mappings


@pytest.fixture
def served(tmp_path, folder):
    """The receiver for the folder's mappings, checking files on every unserved request."""
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    clients = Clients([str(folder)], recheck=0)
    clients.reload()
    with (
        ServerThread(create_app(clients, store)) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        yield http, store, clients
    store.close()


def test_a_mapping_added_is_served_and_a_removed_one_is_404_without_a_restart(served, folder):
    http, store, clients = served
    assert deliver(http, "acme-outdoor", SECRETS["RELOAD_TEST_SECRET_ACME"]).status_code == 404

    added = write_mapping(folder, "acme-outdoor", "RELOAD_TEST_SECRET_ACME")
    response = deliver(http, "acme-outdoor", SECRETS["RELOAD_TEST_SECRET_ACME"])
    assert response.status_code == 200 and response.json() == {"status": "stored"}
    assert store.inbox.count("acme-outdoor") == 1
    assert http.get("/health").json()["clients"] == ["acme-outdoor", "demo-outdoor"]

    added.unlink()
    clients.reload()  # what SIGHUP does: a served client's delivery itself reads no file
    response = deliver(http, "acme-outdoor", SECRETS["RELOAD_TEST_SECRET_ACME"], "wh-2")
    assert response.status_code == 404 and store.inbox.count("acme-outdoor") == 1
    assert http.get("/health").json()["clients"] == ["demo-outdoor"]
    assert deliver(http, "demo-outdoor", SECRETS["RELOAD_TEST_SECRET_DEMO"]).status_code == 200


def test_a_changed_secret_reference_is_picked_up_on_the_next_delivery(served, folder):
    http, store, _ = served
    assert deliver(http, "demo-outdoor", SECRETS["RELOAD_TEST_SECRET_DEMO"]).status_code == 200
    write_mapping(folder, "demo-outdoor", "RELOAD_TEST_SECRET_ACME")  # the secret was rotated
    response = deliver(http, "demo-outdoor", SECRETS["RELOAD_TEST_SECRET_ACME"], "wh-2")
    assert response.status_code == 200 and store.inbox.count("demo-outdoor") == 2
    old = deliver(http, "demo-outdoor", SECRETS["RELOAD_TEST_SECRET_DEMO"], "wh-3")
    assert old.status_code == 401 and store.inbox.count("demo-outdoor") == 2


def test_a_broken_mapping_is_503_with_its_reason_and_the_good_one_is_served(served, folder):
    http, store, clients = served
    write_mapping(folder, "broken-co", "RELOAD_TEST_SECRET_ACME", broken=True)
    clients.reload()

    response = deliver(http, "broken-co", SECRETS["RELOAD_TEST_SECRET_ACME"])
    assert response.status_code == 503
    error = response.json()["error"]
    assert error.startswith("client broken-co is not served: its mapping ")
    assert "broken-co.yaml does not validate (1 problem(s)" in error
    assert "/unknown_top_level_key" in error and "\n" not in error
    assert store.inbox.count("broken-co") == 0

    good = deliver(http, "demo-outdoor", SECRETS["RELOAD_TEST_SECRET_DEMO"])
    assert good.status_code == 200 and store.inbox.count("demo-outdoor") == 1
    health = http.get("/health").json()
    assert health["clients"] == ["demo-outdoor"]
    assert (
        list(health["not_served"]) == ["broken-co"] and health["not_served"]["broken-co"] in error
    )

    write_mapping(folder, "broken-co", "RELOAD_TEST_SECRET_ACME")  # fixed: served from now on
    fixed = deliver(http, "broken-co", SECRETS["RELOAD_TEST_SECRET_ACME"], "wh-2")
    assert fixed.status_code == 200 and store.inbox.count("broken-co") == 1


def test_a_missing_secret_is_503_naming_the_variable_and_leaking_nothing(served, folder):
    http, store, clients = served
    write_mapping(folder, "acme-outdoor", UNSET)
    clients.reload()

    response = deliver(http, "acme-outdoor", SECRETS["RELOAD_TEST_SECRET_DEMO"])
    assert response.status_code == 503
    assert response.json() == {
        "error": f"client acme-outdoor is not served: environment variable {UNSET} is not set"
    }
    assert store.inbox.count("acme-outdoor") == 0
    assert deliver(http, "demo-outdoor", SECRETS["RELOAD_TEST_SECRET_DEMO"]).status_code == 200
    health = http.get("/health")
    assert health.json()["not_served"] == {
        "acme-outdoor": f"environment variable {UNSET} is not set"
    }
    for text in (response.text, health.text, repr(clients.snapshot)):
        assert not any(secret in text for secret in SECRETS.values())


def test_deliveries_during_reloads_are_all_stored(served, folder):
    http, store, clients = served
    stop = threading.Event()

    def reload_again_and_again() -> int:
        rounds = 0
        while not stop.is_set():  # other clients come and go, and every file is read again
            extra = write_mapping(folder, f"extra-{rounds % 3}", "RELOAD_TEST_SECRET_ACME")
            clients.reload()
            extra.unlink()
            clients.reload()
            rounds += 1
        return rounds

    with ThreadPoolExecutor(9) as pool:
        reloading = pool.submit(reload_again_and_again)
        try:
            statuses = list(
                pool.map(
                    lambda n: (
                        deliver(
                            http, "demo-outdoor", SECRETS["RELOAD_TEST_SECRET_DEMO"], f"wh-{n}"
                        ).status_code
                    ),
                    range(300),
                )
            )
        finally:
            stop.set()
        rounds = reloading.result()
    assert rounds >= 2, "the deliveries did not overlap any reload"
    assert statuses == [200] * 300
    assert store.inbox.count("demo-outdoor") == 300


def test_sighup_reloads_the_mappings_of_a_running_receiver(tmp_path, folder):
    help_text = subprocess.run(
        [sys.executable, "-m", "stokline", "receiver", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "SIGHUP" in help_text

    with receiver_process(tmp_path, {}, "--mapping", str(folder)) as receiver:
        assert httpx.get(f"{receiver.url}/health").json()["clients"] == ["demo-outdoor"]
        write_mapping(folder, "acme-outdoor", "RELOAD_TEST_SECRET_ACME")
        time.sleep(0.2)
        # /health checks no file by itself: only the signal can make it see the new mapping
        assert httpx.get(f"{receiver.url}/health").json()["clients"] == ["demo-outdoor"]

        os.kill(receiver.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        clients: list[str] = []
        while time.monotonic() < deadline:
            clients = httpx.get(f"{receiver.url}/health").json()["clients"]
            if clients == ["acme-outdoor", "demo-outdoor"]:
                break
            time.sleep(0.05)
        assert clients == ["acme-outdoor", "demo-outdoor"], receiver.log.read_text()
        with httpx.Client(base_url=receiver.url, timeout=10) as http:
            response = deliver(http, "acme-outdoor", SECRETS["RELOAD_TEST_SECRET_ACME"])
        assert response.status_code == 200
        assert receiver.store().inbox.count("acme-outdoor") == 1
