"""One pair of sandboxes per test module for the properties that drive both systems.

Hypothesis runs many examples inside one test, so a function-scoped fixture would be shared by
all of them anyway; these worlds are module-scoped on purpose, and every example works on
identities and orders of its own (fresh buyers, fresh order ids), so examples never see each
other's data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stokline.config import load_mapping
from tests.sync.conftest import APP_SECRET, CLIENT_ID, CLIENT_SECRET, ROOT, TOKEN, World


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STOKLY_CLIENT_ID", CLIENT_ID)
        patch.setenv("STOKLY_CLIENT_SECRET", CLIENT_SECRET)
        patch.setenv("SHOPLINE_ACCESS_TOKEN", TOKEN)
        patch.setenv("SHOPLINE_APP_SECRET", APP_SECRET)
        world = World(
            tmp_path_factory.mktemp("world"), load_mapping(ROOT / "mappings/demo.yaml"), None
        )
        try:
            yield world
        finally:
            world.close()
