"""Both sandboxes served in this process on free loopback ports, and a mapping that points at them.

Shared by the flow tests and the `stokline run` tests: the demo mapping, copied with its base URLs
rewritten, runs unchanged against them. `KNOWN_SKU` is imported (through the mapping's override);
`UNKNOWN_SKU` is listed on SHOPLINE only, so its order becomes an `unmapped_sku` exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from stokline.envfile import load_env_file
from stokline.sandbox.common import ServerThread
from stokline.sandbox.shopline import create_app as create_shopline
from stokline.sandbox.stokly import create_app as create_stokly

ROOT = Path(__file__).resolve().parents[2]
DEMO_MAPPING = ROOT / "mappings" / "demo.yaml"
KNOWN_SKU = "TENT-2P-GRN"
UNKNOWN_SKU = "ACME-HAMMOCK-XL-RED"


def demo_credentials() -> dict[str, str]:
    """The demo client's fixed sandbox credentials (.env.demo)."""
    env: dict[str, str] = {}
    load_env_file(ROOT / ".env.demo", environ=env)
    return env


@dataclass
class Sandboxes:
    """The two running sandboxes and the mapping file that points at them."""

    shopline: ServerThread
    stokly: ServerThread
    mapping: Path

    def stokly_counts(self) -> dict[str, int]:
        response = httpx.get(f"{self.stokly.url}/_sandbox/state", timeout=10)
        response.raise_for_status()
        return response.json()["data"]["counts"]

    def shopline_counts(self) -> dict[str, int]:
        response = httpx.get(f"{self.shopline.url}/_sandbox/summary", timeout=10)
        response.raise_for_status()
        return response.json()

    def sale_orders(self) -> int:
        return self.stokly_counts()["saleorder"]

    def stokly_writes(self) -> dict[str, int]:
        """Counts of everything but the access tokens a read-only client is granted too."""
        return {k: v for k, v in self.stokly_counts().items() if k != "token"}

    def place_order(self, sku: str, email: str = "flow-test@example.com") -> dict[str, Any]:
        """A paid storefront order of one unit of ``sku``."""
        body = {
            "lines": [{"sku": sku, "quantity": 1}],
            "customer": {"email": email, "first_name": "Flo", "last_name": "Tester"},
        }
        response = httpx.post(f"{self.shopline.url}/_sandbox/orders", json=body, timeout=10)
        response.raise_for_status()
        return response.json()["order"]


def point_mapping_at(source: Path, target: Path, shopline_url: str, stokly_url: str) -> Path:
    """Copy a mapping with its two base URLs replaced."""
    text = source.read_text(encoding="utf-8")
    text = re.sub(
        r"(?m)^(\s+base_url:\s*)http://127\.0\.0\.1:8801\s*$", rf"\g<1>{shopline_url}", text
    )
    text = re.sub(
        r"(?m)^(\s+base_url:\s*)http://127\.0\.0\.1:8802\s*$", rf"\g<1>{stokly_url}", text
    )
    assert shopline_url in text and stokly_url in text, "the demo mapping's base URLs changed"
    target.write_text(text, encoding="utf-8")
    return target


def demo_apps(skus: int = 40) -> tuple[Any, Any]:
    """Both sandbox apps, seeded with ``skus`` SKUs, unthrottled, with the demo credentials."""
    creds = demo_credentials()
    shopline_app: Any = create_shopline(
        access_token=creds["SHOPLINE_ACCESS_TOKEN"],
        app_secret=creds["SHOPLINE_APP_SECRET"],
        rate_per_s=None,
        skus=skus,
    )
    stokly_app: Any = create_stokly(
        account_key="demo-outdoor",
        client_id=creds["STOKLY_CLIENT_ID"],
        client_secret=creds["STOKLY_CLIENT_SECRET"],
        rate_per_minute=None,
        seed_skus=skus,
    )
    return shopline_app, stokly_app


@contextmanager
def running_sandboxes(workdir: Path, skus: int = 40) -> Iterator[Sandboxes]:
    """Seeded, unthrottled sandboxes (state in memory) and a mapping in ``workdir``."""
    shopline_app, stokly_app = demo_apps(skus)
    try:
        with ServerThread(shopline_app) as shop, ServerThread(stokly_app) as stok:
            mapping = point_mapping_at(DEMO_MAPPING, workdir / "demo.yaml", shop.url, stok.url)
            yield Sandboxes(shop, stok, mapping)
    finally:
        shopline_app.state.shopline.close()
        stokly_app.state.sandbox.close()


@contextmanager
def sandboxes_under_prefect(workdir: Path) -> Iterator[Sandboxes]:
    """`running_sandboxes` with the demo secrets and a private state store in ``workdir``, under a
    Prefect test server (starting one costs ~11 s: a module shares it)."""
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as env:
        env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        env.setenv("STOKLINE_DATABASE_URL", f"sqlite:///{workdir / 'state.db'}")
        for name, value in demo_credentials().items():
            env.setenv(name, value)
        with (
            running_sandboxes(workdir) as sandboxes,
            prefect_test_harness(server_startup_timeout=60),
        ):
            yield sandboxes
