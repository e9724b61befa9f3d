"""A faithful local emulator of the Stokly API (``stokline.sandbox.stokly``).

Confirmed [C] resources follow ``reference/stokly-api.md``: ``POST /v1/grant`` (HMAC-signed,
expiring bearer tokens, ``jwt expired``), the list envelope with ``page/size/sortField/
sortDirection/filter`` (parser in :mod:`.filters`), items and variable items, locations and bins,
inventory records, signed-delta adjustments, channels and listings, customers, v2 sale orders with
collect-items and invoices. Errors are ``{"message"}``; every response carries
``x-ratelimit-remaining`` and going over the limit (120 requests a minute by default) is a 429 with
``Retry-After``. The invented [I] resources (allocations, shipments, refunds, payments, journals,
the change feed) live together in :mod:`.invented`, whose docstring lists each as an assumption to
confirm with Stokly. State is kept in ``<data_dir>/stokly.sqlite3``; OpenAPI docs are at ``/docs``.

The control API under ``/_sandbox/`` (no token, never limited or faulted): ``reset``, ``state``,
``faults``, ``rate-limit``, ``expire-tokens``, and the simulated warehouse — ``goods-receipt``,
``adjust``, ``quarantine``, ``dispatch`` (pick and ship an order, fully or partly, with tracking
numbers) and ``shipments/{id}/cancel``.

    app = create_app(data_dir=path, account_key="demo-outdoor", client_id="…",
                     client_secret="…", seed_skus=300)   # seeds an empty account
    with ServerThread(app, port=8802) as server: ...
    app.state.sandbox.close()
"""

from stokline.sandbox.stokly.app import RATE_PER_MINUTE, SandboxContext, create_app
from stokline.sandbox.stokly.filters import FilterError, compile_filter, parse_filter
from stokline.sandbox.stokly.seed import (
    DEMO_ACCOUNT_KEY,
    DEMO_CUSTOMERS,
    DEMO_LOCATIONS,
    DEMO_SEEDED_ORDER_REFERENCES,
    SHOPLINE_CHANNEL_ID,
    seed_demo,
)

__all__ = [
    "DEMO_ACCOUNT_KEY",
    "DEMO_CUSTOMERS",
    "DEMO_LOCATIONS",
    "DEMO_SEEDED_ORDER_REFERENCES",
    "RATE_PER_MINUTE",
    "SHOPLINE_CHANNEL_ID",
    "FilterError",
    "SandboxContext",
    "compile_filter",
    "create_app",
    "parse_filter",
    "seed_demo",
]
