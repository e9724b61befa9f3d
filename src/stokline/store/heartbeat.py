"""A run's heartbeat: its leases and inbox claims renewed while it is alive, and only then.

Claims and leases expire so that the work of a run that died (SIGKILL, a lost machine) is taken
by the next run. The shorter the expiry, the sooner that happens; but a live run must never lose
what it holds because one batch took longer than the expiry (a slow API, retries under 429s).
So a live run renews them on a clock of their own: a daemon thread beats every `HEARTBEAT` and
renews everything the run holds, whatever its event loop is busy with. When the process dies,
the beats stop with it, and what it held expires `LEASE_TIME` later.

A beat that fails (the database briefly unreachable) is logged and tried at the next beat; the
expiry leaves room for three missed beats. Should a run still lose a lease, it finds out before
writing: it confirms its leases first (`stokline.store.leases`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType

from stokline.store import leases

__all__ = ["Heartbeat"]

log = logging.getLogger("stokline.store.heartbeat")


class Heartbeat:
    """Calls ``beat`` every ``every`` on a daemon thread, from ``with`` entry until exit.

    The first beat comes one interval after entry (what the run took was taken just now).
    ``beats`` counts the beats that succeeded, ``failures`` those that raised.
    """

    def __init__(
        self, beat: Callable[[], object], every: timedelta | None = None, name: str = ""
    ) -> None:
        self._beat = beat
        self._every = (leases.HEARTBEAT if every is None else every).total_seconds()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat {name}".strip(), daemon=True
        )
        self.beats = 0
        self.failures = 0

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._beat()
            except Exception as exc:  # the next beat tries again; the run itself goes on
                self.failures += 1
                log.warning("heartbeat: renewing what the run holds failed: %s", type(exc).__name__)
            else:
                self.beats += 1

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=max(self._every, 5.0))
