"""A new store opened by many runs at once: every one of them opens it (no "already exists")."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from stokline.store import Store, share_engines


@pytest.mark.parametrize("round_", range(3))
def test_a_new_store_opened_by_eight_threads_at_once_opens_for_all(
    tmp_path: Path, round_: int
) -> None:
    url = f"sqlite:///{tmp_path / f'state-{round_}.db'}"
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            Store(url).close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    with Store(url) as store:
        assert store.inbox.claimable("any") == 0


def test_a_worker_s_stores_share_one_engine_per_url(tmp_path: Path) -> None:
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    share_engines()
    try:
        one, two, other = Store(first), Store(first), Store(second)
        assert one.engine is two.engine and one.engine is not other.engine
        one.close()  # the others go on with the shared engine
        two.inbox.add("demo", "w1", "orders/paid", b"{}")
        assert two.inbox.claimable("demo") == 1
    finally:
        share_engines(False)
    alone = Store(first)
    try:
        assert alone.engine is not two.engine  # one engine per store again
        assert alone.inbox.claimable("demo") == 1
    finally:
        alone.close()
