"""Local emulators of the Stokly and SHOPLINE APIs, for the demo, rehearsals and tests.

Each sandbox is a FastAPI app that follows the public API documentation (auth, pagination, rate
limits, error bodies, webhook signatures), keeps its state in SQLite and can inject faults.
The building blocks both share live in :mod:`stokline.sandbox.common`; the SKU list both seed
from lives in :mod:`stokline.sandbox.catalogue`.
"""
