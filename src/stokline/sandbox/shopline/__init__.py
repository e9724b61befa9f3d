"""The SHOPLINE sandbox: a local emulator of the SHOPLINE Admin REST API.

``create_app`` builds the FastAPI app; ``seed_demo`` fills a store with the demo client's data;
``run_storefront`` places orders against a running sandbox. Everything the sandbox infers rather
than knows about SHOPLINE is in :mod:`stokline.sandbox.shopline.quirks`.
"""

from stokline.sandbox.shopline.app import ShoplineSandbox, create_app
from stokline.sandbox.shopline.seed import seed_demo
from stokline.sandbox.shopline.storefront import run_storefront
from stokline.sandbox.shopline.webhooks import sign

__all__ = ["ShoplineSandbox", "create_app", "run_storefront", "seed_demo", "sign"]
