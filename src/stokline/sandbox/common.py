"""Building blocks shared by the sandboxes: rate limiting, persistence, fault injection, serving.

- :class:`LeakyBucket` paces requests the way both real APIs do and says how long to wait.
- :class:`DocStore` keeps JSON documents in SQLite so a sandbox survives a restart.
- :class:`Faults` and :func:`install_faults` make a sandbox misbehave on purpose (5xx, 429,
  latency, timeouts, dropped connections, and malformed answers: cut-off JSON, HTML pages, wrong
  field types, missing fields, unknown fields, empty pages that still lead on) so clients are
  rehearsed against a hostile network and a broken upstream.
- :class:`ServerThread` serves an app with uvicorn in a background thread (tests, the CLI).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import random
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

__all__ = [
    "MALFORMED_KINDS",
    "MALFORMED_STATE_KEY",
    "DocStore",
    "DroppedConnection",
    "ErrorResponder",
    "Faults",
    "LeakyBucket",
    "Malformed",
    "ServerThread",
    "install_faults",
    "malform_body",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Rate limiting
# --------------------------------------------------------------------------------------------


class LeakyBucket:
    """A leaky bucket: each request adds one drop, the bucket drains at ``rate_per_s``.

    A request is admitted while the bucket holds fewer than ``capacity`` drops; otherwise
    :meth:`take` returns the seconds until one drop has drained, which the sandbox sends as
    ``Retry-After``. ``rate_per_s=None`` admits everything (useful for bulk seeding and tests).
    """

    def __init__(self, rate_per_s: float | None, capacity: int) -> None:
        self._lock = threading.Lock()
        self._level = 0.0
        self._stamp = time.monotonic()
        self.rate_per_s: float | None = None
        self.capacity = 1
        self.configure(rate_per_s, capacity)

    def configure(self, rate_per_s: float | None, capacity: int) -> None:
        """Change the rate and capacity at runtime; the current level is kept (capped)."""
        if rate_per_s is not None and rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive or None")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        with self._lock:
            self._leak()
            self.rate_per_s = rate_per_s
            self.capacity = int(capacity)
            self._level = min(self._level, float(self.capacity))

    def _leak(self) -> None:
        now = time.monotonic()
        if self.rate_per_s is not None:
            self._level = max(0.0, self._level - (now - self._stamp) * self.rate_per_s)
        self._stamp = now

    def take(self) -> float:
        """Admit one request (return 0.0) or return the seconds until a slot frees."""
        with self._lock:
            if self.rate_per_s is None:
                return 0.0
            self._leak()
            if self._level + 1.0 <= self.capacity:
                self._level += 1.0
                return 0.0
            return max((self._level + 1.0 - self.capacity) / self.rate_per_s, 0.001)

    def reset(self) -> None:
        """Empty the bucket (the sandbox's reset endpoint uses it)."""
        with self._lock:
            self._level = 0.0
            self._stamp = time.monotonic()


# --------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------


class DocStore:
    """JSON documents by (kind, id) in one SQLite database, in insertion order.

    One connection shared between threads behind a re-entrant lock: the sandboxes are small and
    this keeps every read consistent with the last write. Each document gets a monotonically
    increasing sequence number that orders :meth:`list` and drives cursor pagination.
    ``path=None`` keeps everything in memory.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        target = str(path) if path is not None else ":memory:"
        self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._depth = 0
        with self._lock:
            if path is not None:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(
                """
                CREATE TABLE IF NOT EXISTS docs (
                    kind TEXT NOT NULL,
                    id   TEXT NOT NULL,
                    seq  INTEGER NOT NULL,
                    body TEXT NOT NULL,
                    PRIMARY KEY (kind, id)
                );
                CREATE INDEX IF NOT EXISTS docs_kind_seq ON docs (kind, seq);
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                """
            )

    # -- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[DocStore]:
        """Run several changes atomically; nested use joins the outer transaction."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._depth -= 1
                if outer:
                    self._conn.execute("COMMIT")

    # -- sequence --------------------------------------------------------------------------

    def next_seq(self) -> int:
        """Return a new sequence number, larger than every one handed out before (persisted)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
            value = int(row[0]) + 1 if row else 1
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES ('seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(value),),
            )
            return value

    def _reserve(self, count: int) -> int:
        """Reserve ``count`` sequence numbers at once; return the first."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
            first = int(row[0]) + 1 if row else 1
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES ('seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(first + count - 1),),
            )
            return first

    # -- documents -------------------------------------------------------------------------

    def insert(self, kind: str, doc: dict[str, Any], id: str | None = None) -> str:
        """Store a new document; ``id=None`` uses its sequence number. Duplicate ids fail."""
        with self.transaction():
            seq = self.next_seq()
            doc_id = str(seq) if id is None else str(id)
            self._conn.execute(
                "INSERT INTO docs (kind, id, seq, body) VALUES (?, ?, ?, ?)",
                (kind, doc_id, seq, json.dumps(doc, separators=(",", ":"))),
            )
            return doc_id

    def insert_many(
        self, kind: str, items: Iterable[tuple[str | None, dict[str, Any]]]
    ) -> list[str]:
        """Insert many ``(id, doc)`` pairs in one transaction (seeding 20,000 products)."""
        pairs = list(items)
        with self.transaction():
            first = self._reserve(len(pairs))
            rows = []
            ids = []
            for offset, (doc_id, doc) in enumerate(pairs):
                seq = first + offset
                real_id = str(seq) if doc_id is None else str(doc_id)
                ids.append(real_id)
                rows.append((kind, real_id, seq, json.dumps(doc, separators=(",", ":"))))
            self._conn.executemany(
                "INSERT INTO docs (kind, id, seq, body) VALUES (?, ?, ?, ?)", rows
            )
            return ids

    def get(self, kind: str, id: str) -> dict[str, Any] | None:
        """Return the document or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, str(id))
            ).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, kind: str, ids: Iterable[str]) -> list[tuple[int, dict[str, Any]]]:
        """``(seq, doc)`` of the documents among ``ids`` that exist, in insertion order."""
        wanted = [str(i) for i in ids]
        out: list[tuple[int, dict[str, Any]]] = []
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT seq, body FROM docs WHERE kind = ? AND id IN ({marks})",
                    [kind, *chunk],
                ).fetchall()
                out.extend((int(s), json.loads(b)) for s, b in rows)
        out.sort(key=lambda pair: pair[0])
        return out

    def seq_of(self, kind: str, id: str) -> int | None:
        """Return the sequence number of a document (pagination cursors use it)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT seq FROM docs WHERE kind = ? AND id = ?", (kind, str(id))
            ).fetchone()
        return int(row[0]) if row else None

    def update(self, kind: str, id: str, doc: dict[str, Any]) -> None:
        """Replace a document, keeping its place in the order. Unknown ids raise KeyError."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE docs SET body = ? WHERE kind = ? AND id = ?",
                (json.dumps(doc, separators=(",", ":")), kind, str(id)),
            )
            if cur.rowcount == 0:
                raise KeyError(f"{kind}/{id}")

    def upsert(self, kind: str, id: str, doc: dict[str, Any]) -> None:
        """Insert or replace a document by id."""
        with self.transaction():
            if self.get(kind, id) is None:
                self.insert(kind, doc, id=id)
            else:
                self.update(kind, id, doc)

    def delete(self, kind: str, id: str) -> bool:
        """Delete a document; return whether it existed."""
        with self._lock:
            cur = self._conn.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, str(id)))
            return cur.rowcount > 0

    def list(self, kind: str) -> list[dict[str, Any]]:
        """Every document of a kind, in insertion order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM docs WHERE kind = ? ORDER BY seq", (kind,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def scan(
        self,
        kind: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """``(seq, doc)`` pairs in a sequence window, so a page costs one indexed query."""
        sql = "SELECT seq, body FROM docs WHERE kind = ?"
        args: list[Any] = [kind]
        if after_seq is not None:
            sql += " AND seq > ?"
            args.append(after_seq)
        if before_seq is not None:
            sql += " AND seq < ?"
            args.append(before_seq)
        sql += " ORDER BY seq DESC" if descending else " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [(int(s), json.loads(b)) for s, b in rows]

    def count(self, kind: str) -> int:
        """Number of documents of a kind."""
        with self._lock:
            row = self._conn.execute("SELECT COUNT(*) FROM docs WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """A small persisted setting (counters, seeded flag)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        """Persist a small setting."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def clear(self) -> None:
        """Delete every document and setting; the sequence keeps growing, so ids never repeat."""
        with self.transaction():
            self._conn.execute("DELETE FROM docs")
            self._conn.execute("DELETE FROM meta WHERE key <> 'seq'")

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        with self._lock:
            self._conn.close()


# --------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------


MALFORMED_KINDS = (
    "truncated",
    "html_200",
    "html_502",
    "wrong_types",
    "missing_fields",
    "extra_fields",
    "empty_page",
)
"""The shapes of a malformed answer (``Faults.malformed_kinds``):

- ``truncated``: the real JSON body cut off part-way, with a 200 (the request was applied);
- ``html_200`` / ``html_502``: an HTML error page, as a proxy or a maintenance page sends it,
  with a 200 or a 502 (the request never reached the API);
- ``wrong_types``: one record with a field of the wrong type — an id as an object, a quantity
  as ``"abc"``, a list where an object belongs;
- ``missing_fields``: one record without its id, or an item or line without its ``sku``;
- ``extra_fields``: fields no contract names, on the envelope and every record (harmless: a
  client must ignore them, and a sync must not report them);
- ``empty_page``: a list page with no records that still leads on — SHOPLINE's ``link``
  ``rel="next"`` pointing back at the same place, Stokly's ``metadata.count`` saying more
  records exist (``hasMore`` on the change feed).
"""


@dataclasses.dataclass
class Malformed:
    """One drawn malformed answer: its kind, and the generator that shapes it (same seed)."""

    kind: str
    rng: random.Random


@dataclasses.dataclass
class Faults:
    """How badly a sandbox misbehaves. Rates are probabilities per request (0..1).

    Profiles: ``none`` (well-behaved), ``flaky`` (an ordinary bad day), ``hostile`` (what a
    client must survive before it goes near production) and ``malformed`` (a broken upstream:
    answers the client cannot use as they are, see :data:`MALFORMED_KINDS`). Every network draw
    comes from one seeded :class:`random.Random`, so a failing rehearsal replays identically.
    Malformed answers are drawn per request instead: the *n*-th request to a path gets the same
    answer for the same ``seed`` whatever other requests ran in between, so a test (or a
    rehearsal with concurrent requests) replays them exactly. ``malformed_rate`` can be added to
    any profile (``hostile`` leaves it at 0, so chaos runs keep their figures).
    """

    name: str = "none"
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500,)
    rate_limit_rate: float = 0.0
    rate_limit_burst: int = 1
    retry_after_s: float = 1.0
    latency_ms: tuple[int, int] = (0, 0)
    timeout_rate: float = 0.0
    timeout_s: float = 35.0
    drop_rate: float = 0.0
    webhook_copies: int = 1
    webhook_reorder: bool = False
    webhook_reorder_window_s: float = 0.5
    malformed_rate: float = 0.0
    malformed_kinds: tuple[str, ...] = MALFORMED_KINDS
    seed: int = 1234
    rng: random.Random = dataclasses.field(default_factory=random.Random, repr=False, compare=False)
    _burst_left: int = dataclasses.field(default=0, repr=False, compare=False)
    _lock: threading.Lock = dataclasses.field(
        default_factory=threading.Lock, repr=False, compare=False
    )
    _requests_by_path: dict[str, int] = dataclasses.field(
        default_factory=dict, repr=False, compare=False
    )
    _injected: dict[str, int] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    PROFILES = ("none", "flaky", "hostile", "malformed")

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)

    @classmethod
    def profile(cls, name: str, *, seed: int = 1234) -> Faults:
        """Build a named profile; an unknown name raises ValueError listing the valid ones."""
        if name == "none":
            return cls(name="none", seed=seed)
        if name == "flaky":
            return cls(
                name="flaky",
                error_rate=0.03,
                error_statuses=(500, 503),
                rate_limit_rate=0.02,
                rate_limit_burst=1,
                latency_ms=(5, 60),
                seed=seed,
            )
        if name == "hostile":
            return cls(
                name="hostile",
                error_rate=0.10,
                error_statuses=(500, 502, 503),
                rate_limit_rate=0.05,
                rate_limit_burst=4,
                latency_ms=(20, 400),
                timeout_rate=0.02,
                drop_rate=0.02,
                webhook_copies=3,
                webhook_reorder=True,
                seed=seed,
            )
        if name == "malformed":
            return cls(name="malformed", malformed_rate=0.2, seed=seed)
        valid = ", ".join(cls.PROFILES)
        raise ValueError(f"unknown fault profile {name!r}; valid profiles: {valid}")

    def update(self, **changes: Any) -> Faults:
        """Change fields at runtime (the control API uses it); unknown fields raise ValueError."""
        allowed = {f.name for f in dataclasses.fields(self) if not f.name.startswith("_")}
        allowed.discard("rng")
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(
                f"unknown fault fields {unknown}; valid fields: {', '.join(sorted(allowed))}"
            )
        checked = dict(changes)
        for key in ("error_rate", "rate_limit_rate", "timeout_rate", "drop_rate", "malformed_rate"):
            if key in checked:
                checked[key] = float(checked[key])
                if not 0.0 <= checked[key] <= 1.0:
                    raise ValueError(f"{key} must be between 0 and 1")
        if "error_statuses" in checked:
            checked["error_statuses"] = tuple(int(v) for v in checked["error_statuses"])
            if not checked["error_statuses"] or not all(
                400 <= v <= 599 for v in checked["error_statuses"]
            ):
                raise ValueError("error_statuses must be HTTP error statuses (400-599)")
        if "latency_ms" in checked:
            low, high = (int(v) for v in checked["latency_ms"])
            if not 0 <= low <= high:
                raise ValueError("latency_ms must be [low, high] with 0 <= low <= high")
            checked["latency_ms"] = (low, high)
        if "malformed_kinds" in checked:
            kinds = checked["malformed_kinds"]
            if isinstance(kinds, str):
                kinds = (kinds,)
            elif isinstance(kinds, list | tuple):
                kinds = tuple(str(k) for k in kinds)
            else:
                raise ValueError("malformed_kinds must be a list of kinds")
            unknown_kinds = sorted(set(kinds) - set(MALFORMED_KINDS))
            if not kinds or unknown_kinds:
                raise ValueError(
                    f"malformed_kinds must name some of {', '.join(MALFORMED_KINDS)};"
                    f" unknown: {', '.join(unknown_kinds) or 'none given'}"
                )
            checked["malformed_kinds"] = tuple(dict.fromkeys(kinds))
        with self._lock:
            for key, value in checked.items():
                setattr(self, key, value)
            if "seed" in changes:
                self.rng.seed(self.seed)
                self._requests_by_path.clear()
        return self

    def as_dict(self) -> dict[str, Any]:
        """The public fields, for the control API."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not f.name.startswith("_") and f.name != "rng"
        }

    # -- draws (one lock so concurrent requests do not interleave the generator) -----------

    def draw_request(self) -> tuple[str, Any]:
        """Decide what happens to one API request.

        Returns one of ``("ok", latency_s)``, ``("error", status)``, ``("rate_limit", retry_s)``,
        ``("timeout", sleep_s)``, ``("drop", None)``.
        """
        with self._lock:
            lo, hi = self.latency_ms
            latency = self.rng.uniform(lo, hi) / 1000.0 if hi > 0 else 0.0
            if self._burst_left > 0:
                self._burst_left -= 1
                return ("rate_limit", self.retry_after_s)
            roll = self.rng.random()
            edge = self.error_rate
            if roll < edge:
                return ("error", self.rng.choice(self.error_statuses))
            edge += self.rate_limit_rate
            if roll < edge:
                self._burst_left = max(self.rate_limit_burst - 1, 0)
                return ("rate_limit", self.retry_after_s)
            edge += self.timeout_rate
            if roll < edge:
                return ("timeout", self.timeout_s)
            edge += self.drop_rate
            if roll < edge:
                return ("drop", None)
            return ("ok", latency)

    def draw_malformed(self, method: str, path: str) -> Malformed | None:
        """Whether this request's answer is malformed, and how (None: it is not).

        Drawn from ``(seed, method, path, n)`` where *n* counts the requests to that path so
        far, so the outcome of a request does not depend on the interleaving of the others. The
        query string is left out, as it often carries the time of the request, and so are the
        ids in the path (a SHOPLINE id holds the time it was made, a Stokly id is random): the
        *n*-th read of any order's transactions is drawn alike in every run.
        """
        with self._lock:
            if self.malformed_rate <= 0 or not self.malformed_kinds:
                return None
            key = f"{method.upper()} {_path_key(path)}"
            number = self._requests_by_path.get(key, 0)
            self._requests_by_path[key] = number + 1
            rng = random.Random(f"{self.seed}|{key}|{number}")
            if rng.random() >= self.malformed_rate:
                return None
            return Malformed(rng.choice(self.malformed_kinds), rng)

    def record_injected(self, kind: str) -> None:
        """Count one malformed answer actually sent (a kind that did not fit is not counted)."""
        with self._lock:
            self._injected[kind] = self._injected.get(kind, 0) + 1

    @property
    def injected(self) -> dict[str, int]:
        """Malformed answers sent so far under these settings, by kind."""
        with self._lock:
            return dict(self._injected)

    def draw_copies(self) -> int:
        """How many times a webhook is delivered (1..webhook_copies)."""
        with self._lock:
            if self.webhook_copies <= 1:
                return 1
            return self.rng.randint(1, self.webhook_copies)

    def draw_delivery_delay(self) -> float:
        """Random hold-back of a new webhook so events of one change can overtake each other."""
        with self._lock:
            if not self.webhook_reorder or self.webhook_reorder_window_s <= 0:
                return 0.0
            return self.rng.uniform(0, self.webhook_reorder_window_s)

    def draw_shuffle(self, items: list[Any]) -> list[Any]:
        """Shuffle deliveries when reordering is on; otherwise keep their order."""
        with self._lock:
            if not self.webhook_reorder:
                return items
            shuffled = list(items)
            self.rng.shuffle(shuffled)
            return shuffled


_ID_SEGMENT = re.compile(
    r"^(?:\d{6,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


def _path_key(path: str) -> str:
    """``path`` with its ids as ``{id}``: ``/orders/2105…446/transactions.json`` → ``/orders/{id}/…``."""
    parts = []
    for segment in path.split("/"):
        stem, dot, rest = segment.partition(".")
        parts.append(f"{{id}}{dot}{rest}" if _ID_SEGMENT.match(stem) else segment)
    return "/".join(parts)


class DroppedConnection(Exception):
    """Raised by the fault middleware after sending only the status line and headers.

    uvicorn answers an exception raised *after* ``http.response.start`` by closing the transport,
    so the client sees the connection drop mid-response (httpx: ``RemoteProtocolError``). A log
    filter keeps uvicorn from printing a traceback for these deliberate drops.
    """


class _DropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_drop_filter_installed = False


def _install_drop_filter() -> None:
    global _drop_filter_installed
    if not _drop_filter_installed:
        logging.getLogger("uvicorn.error").addFilter(_DropFilter())
        _drop_filter_installed = True


#: Builds the sandbox's own error response: ``(status, retry_after_seconds_or_None) -> Response``.
ErrorResponder = Callable[[int, "float | None"], Any]

_UNFAULTED_PREFIXES = ("/_sandbox/", "/docs", "/openapi.json", "/redoc")


def install_faults(
    app: Any,
    faults_getter: Callable[[], Faults],
    error_response: ErrorResponder,
) -> None:
    """Wrap ``app`` in a pure ASGI middleware that injects the current :class:`Faults`.

    ``error_response(status, retry_after)`` returns a Starlette response in the sandbox's own
    error shape (429 must carry ``Retry-After``). Paths under ``/_sandbox/`` and the docs are
    never faulted, so the control API stays reachable even in the ``hostile`` profile.
    """
    _install_drop_filter()

    def middleware_factory(inner: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["path"].startswith(_UNFAULTED_PREFIXES):
                await inner(scope, receive, send)
                return
            faults = faults_getter()
            outcome, value = faults.draw_request()
            if outcome == "ok":
                if value:
                    await asyncio.sleep(value)
                malformed = faults.draw_malformed(scope.get("method", "GET"), scope["path"])
                if malformed is None:
                    await inner(scope, receive, send)
                else:
                    await _send_malformed(faults, malformed, inner, scope, receive, send)
            elif outcome == "error":
                await error_response(int(value), None)(scope, receive, send)
            elif outcome == "rate_limit":
                await error_response(429, float(value))(scope, receive, send)
            elif outcome == "timeout":
                # Sleep past the client's timeout; if the client is still there, answer 504.
                await asyncio.sleep(float(value))
                await error_response(504, None)(scope, receive, send)
            else:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", b"1024"),
                        ],
                    }
                )
                raise DroppedConnection("sandbox fault: connection dropped")

        return middleware

    app.add_middleware(_RawMiddleware, factory=middleware_factory)


# -- malformed answers ----------------------------------------------------------------------

MALFORMED_STATE_KEY = "stokline_sandbox_malformed"
"""Where the fault middleware tells a route's pagination that this page is to come back empty
(``scope["state"]``, i.e. ``request.state``); the pagination sets ``…_done`` when it did."""

_HTML_200 = (
    b"<!DOCTYPE html>\n<html><head><title>We'll be right back</title></head>"
    b"<body><h1>We'll be right back</h1><p>The service is down for maintenance."
    b" Please try again in a few minutes.</p></body></html>\n"
)
_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)

#: Keys holding a record's id (SHOPLINE's ``id``; Stokly's names, first field of each record).
_ID_KEYS = (
    "id",
    "itemId",
    "saleOrderId",
    "shipmentId",
    "paymentId",
    "refundId",
    "journalId",
    "listingId",
    "locationId",
    "customerId",
    "channelId",
    "binId",
    "lineId",
    "saleInvoiceId",
    "inventory_item_id",
    "cursor",
)
#: Keys holding a count or quantity a client computes with.
_QUANTITY_KEYS = frozenset(
    {"quantity", "available", "onHand", "allocated", "inventory_quantity", "count"}
)
_UNKNOWN_FIELDS = {
    "x_sandbox_unknown": {"note": "a field no contract names", "nested": [1, "two", None]},
    "sandboxRevision": 7,
}


def _html(status: int, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return status, [(b"content-type", b"text/html; charset=utf-8")], body


async def _send_malformed(
    faults: Faults,
    malformed: Malformed,
    inner: Callable[..., Awaitable[None]],
    scope: dict[str, Any],
    receive: Any,
    send: Any,
) -> None:
    """Answer one request with ``malformed``; a kind that does not fit it leaves it alone."""
    kind = malformed.kind
    if kind in ("html_200", "html_502"):
        # A proxy or a maintenance page answered: the request never reached the API.
        faults.record_injected(kind)
        await _replay(send, *_html(*((200, _HTML_200) if kind == "html_200" else (502, _HTML_502))))
        return
    state = scope.setdefault("state", {})
    state[MALFORMED_STATE_KEY] = malformed
    status, headers, body = await _buffered(inner, scope, receive)
    if state.pop(f"{MALFORMED_STATE_KEY}_done", False):
        faults.record_injected(kind)  # the route's pagination made this page empty itself
    elif 200 <= status < 300 and _is_json(headers):
        changed = malform_body(malformed, body, scope)
        if changed is not None:
            faults.record_injected(kind)
            body = changed
    await _replay(send, status, headers, body)


async def _buffered(
    inner: Callable[..., Awaitable[None]], scope: dict[str, Any], receive: Any
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run the app and keep its whole answer instead of sending it."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def capture(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await inner(scope, receive, capture)
    return int(start.get("status", 500)), list(start.get("headers", [])), b"".join(chunks)


async def _replay(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    kept = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    kept.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": body})


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key.lower() == b"content-type":
            return b"json" in value.lower()
    return False


def malform_body(malformed: Malformed, body: bytes, scope: dict[str, Any]) -> bytes | None:
    """``body`` (a JSON answer) made malformed as ``malformed.kind`` says, or None if it cannot be.

    A kind that does not fit the answer (no record to break, not a list page) leaves it as it
    is, so every malformed answer counted really is one.
    """
    rng = malformed.rng
    if malformed.kind == "truncated":
        end = len(body.rstrip())
        if end < 2:
            return None
        # Any proper prefix of a JSON object or array is unreadable JSON.
        return body[: rng.randint(1, end - 1)]
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    changed = {
        "wrong_types": _wrong_types,
        "missing_fields": _missing_fields,
        "extra_fields": _extra_fields,
        "empty_page": _empty_page,
    }[malformed.kind](data, rng, scope)
    if not changed:
        return None
    return json.dumps(data, separators=(",", ":")).encode()


def _records(data: dict[str, Any]) -> list[tuple[Any, Any]]:
    """Where the answer's records sit, as ``(container, key or index)`` pairs."""
    found: list[tuple[Any, Any]] = []
    for key, value in data.items():
        if key == "metadata":
            continue
        if isinstance(value, list):
            found.extend((value, i) for i, item in enumerate(value) if isinstance(item, dict))
        elif isinstance(value, dict):
            found.append((data, key))
    return found


def _id_key(record: dict[str, Any]) -> str | None:
    return next((key for key in _ID_KEYS if key in record), None)


def _nested_dicts(value: Any) -> Iterator[dict[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _wrong_types(data: dict[str, Any], rng: random.Random, scope: dict[str, Any]) -> bool:
    """One field of the wrong type: an id as an object, a quantity as text, a list for an object."""
    choices: list[Callable[[], None]] = []
    for container, where in _records(data):
        record = container[where]
        if (key := _id_key(record)) is not None and not isinstance(record[key], dict):
            choices.append(functools.partial(_set, record, key, {"id": record[key]}))
        choices.append(functools.partial(_set, container, where, [record]))
    for item in _nested_dicts(data):
        for key in sorted(_QUANTITY_KEYS & set(item)):
            if isinstance(item[key], int | float) and not isinstance(item[key], bool):
                choices.append(functools.partial(_set, item, key, "abc"))
    if not choices:
        return False
    rng.choice(choices)()
    return True


def _missing_fields(data: dict[str, Any], rng: random.Random, scope: dict[str, Any]) -> bool:
    """A record without its id, or an item or line without its ``sku``."""
    choices: list[Callable[[], None]] = []
    for container, where in _records(data):
        record = container[where]
        if (key := _id_key(record)) is not None:
            choices.append(functools.partial(record.pop, key))
        for item in _nested_dicts(record):
            if "sku" in item:
                choices.append(functools.partial(item.pop, "sku"))
    if not choices:
        return False
    rng.choice(choices)()
    return True


def _extra_fields(data: dict[str, Any], rng: random.Random, scope: dict[str, Any]) -> bool:
    """Unknown fields on the envelope and on every record (a client must ignore them)."""
    for container, where in _records(data):
        container[where].update(_UNKNOWN_FIELDS)
    data.update({"x_sandbox_envelope": {"served_by": "sandbox"}})
    if isinstance(data.get("metadata"), dict):
        data["metadata"]["x_sandbox_unknown"] = True
    return True


def _empty_page(data: dict[str, Any], rng: random.Random, scope: dict[str, Any]) -> bool:
    """A Stokly list page without its records that still says more are there.

    (SHOPLINE's pages lead on through a cursor only the route can write: its pagination makes
    them empty itself, see :data:`MALFORMED_STATE_KEY`.)
    """
    metadata, rows = data.get("metadata"), data.get("data")
    if scope.get("method") != "GET" or not isinstance(metadata, dict) or not rows:
        return False
    if not isinstance(rows, list):
        return False
    data["data"] = []
    if "hasMore" in metadata:  # the change feed: the next page starts where this one did
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        metadata["hasMore"] = True
        metadata["cursor"] = query.get("after", ["0"])[0]
        if "count" in metadata:
            metadata["count"] = 0
    return True


def _set(container: Any, key: Any, value: Any) -> None:
    container[key] = value


class _RawMiddleware:
    """Adapter so a plain ASGI wrapper can be registered with ``app.add_middleware``."""

    def __init__(self, app: Any, factory: Callable[[Any], Any]) -> None:
        self._handler = factory(app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._handler(scope, receive, send)


# --------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------


class ServerThread:
    """Serve an ASGI app with uvicorn in a daemon thread, bound to loopback.

    ``port=0`` picks a free port (the socket is bound before uvicorn starts, so there is no
    race). :meth:`start` returns once the server accepts connections.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.app = app
        self.host = host
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it every small response waits ~40 ms for delayed ACKs.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._requested_port = port
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="auto",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Start serving; raise RuntimeError when the server does not come up in time."""
        self._sock.bind((self.host, self._requested_port))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
