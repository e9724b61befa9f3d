"""The webhook receiver fuzzed over real HTTP with Hypothesis, against a model of its inbox.

A real `stokline receiver` process (two clients, ``--max-body 8192``, its state store on SQLite)
gets, per example, one to three requests drawn from:

* the surface its own OpenAPI description (``/openapi.json``) gives: every path, its path
  parameters filled with a known client or any text, under every method; and paths it does not
  describe; with arbitrary headers, query strings and bodies, unsigned;
* signed deliveries to a known client: JSON objects (some around the body limit), JSON that is
  not an object, object-shaped text the receiver must not take (NaN, nesting deeper than 64, a
  lone surrogate, an integer of thousands of digits, trailing text), arbitrary bytes; signed as
  hex, upper-case hex or base64, or wrongly; the webhook id fresh, empty, absent or around the
  inbox's limit, likewise the topic and shop domain; sent with a length or chunked;
* re-deliveries of earlier ones, with their own body or another.

Schemathesis alone would not reach the receiver's behaviour: its one operation reads the raw
request, so its description has no body or header schema to generate from, and every body is
refused (401) unless signed with the client's secret over the exact bytes. So the surface is
drawn from the description here, and the signed deliveries by Hypothesis strategies.

A model says what each request must get, exactly: never a 5xx; a validly signed JSON object with
a fresh webhook id is 200 ``stored`` and in the inbox once, with its bytes, topic and shop; a
re-delivery adds nothing; anything refused leaves nothing; an answer the description does not
document is a failure. After the run the inbox must equal the model row for row, with one poison
exception per poison row, and the receiver process must hold no more than before it: no open
connection, no extra thread, its memory within a bound, nothing in its log (no error, no secret).

The number of examples is the Hypothesis profile's (tests/conftest.py): 200, the same every run,
under `make test`; ``HYPOTHESIS_PROFILE=thorough`` for 2,000, freshly random.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from stokline.store import Store
from stokline.store.tables import inbox
from stokline.webhooks import create_app
from tests.webhooks.process import ReceiverProcess, receiver_process

pytestmark = pytest.mark.slow

SECRETS = {"demo-outdoor": "fuzz-secret-demo", "peak-cycles": "fuzz-secret-peak"}
MAX_BODY = 8 * 1024
# What the inbox keeps of each header, from its columns: a longer value must be refused (400).
LIMITS = {
    "x-shopline-webhook-id": inbox.c.webhook_id.type.length,
    "x-shopline-topic": inbox.c.topic.type.length,
    "x-shopline-shop-domain": inbox.c.shop_domain.type.length,
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MEGABYTE = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# What is sent
# ---------------------------------------------------------------------------------------------

# Bytes a header value may hold (visible ASCII and obs-text; spaces only inside), as latin-1 text.
HEADER_CHAR = st.sampled_from([chr(c) for c in (*range(0x21, 0x7F), *range(0x80, 0x100))])
HEADER_TEXT = st.text(alphabet=HEADER_CHAR, max_size=12)


def header_values(max_size: int) -> st.SearchStrategy[str]:
    words = st.lists(HEADER_TEXT.filter(bool), max_size=max(1, max_size // 8))
    return words.map(" ".join).map(lambda value: value[:max_size].strip())


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


@st.composite
def encoded(draw: st.DrawFn, value: Any) -> bytes:
    """``value`` as JSON text the way some sender might write it."""
    compact = draw(st.booleans())
    text = json.dumps(
        value,
        ensure_ascii=draw(st.booleans()),
        separators=(",", ":") if compact else None,
        indent=draw(st.sampled_from([None, 2])),
    )
    return text.encode("utf-8")


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """(what it is, the body): ``object`` must be stored, ``poison`` kept as poison, ``bytes``
    either — arbitrary bytes may happen to be a JSON object."""
    kinds = ["object", "object", "object", "padded", "not an object", "tricky", "bytes"]
    kind = draw(st.sampled_from(kinds))
    if kind == "object":
        return "object", draw(
            encoded(draw(st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6)))
        )
    if kind == "padded":  # around the body limit: stored below it, 413 above
        size = draw(st.integers(MAX_BODY - 40, MAX_BODY + 40))
        return "object", json.dumps({"pad": "x" * max(0, size - 11)}).encode()
    if kind == "not an object":
        value = draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
        return "poison", draw(encoded(value))
    if kind == "tricky":
        depth = draw(st.integers(65, 90))
        digits = draw(st.integers(4301, 6000))
        return "poison", draw(
            st.sampled_from(
                [
                    b'{"total": NaN}',
                    b'{"total": Infinity}',
                    b'{"total": -Infinity}',
                    b'{"note": "\\ud800"}',
                    b'{"a": ' * depth + b"1" + b"}" * depth,
                    b'{"amount": ' + b"9" * digits + b"}",
                    b'{"id": 1} trailing',
                    b'{"id": 1',
                    b"",
                ]
            )
        )
    return "bytes", draw(st.binary(max_size=300))


@dataclass
class Request:
    """One request, as drawn; ``mode`` says which part of the surface it is from."""

    mode: str  # surface | signed | redelivery
    method: str = "POST"
    path: str = ""
    client: str | None = None  # a known client, for signed and re-deliveries
    kind: str = "bytes"
    body: bytes = b""
    signing: str = "hex"
    webhook_id: str | None = None  # None: absent; "" empty; else a suffix made unique when sent
    topic: str | None = None
    shop: str | None = None
    streamed: bool = False
    extra: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    pick: int = 0  # which earlier delivery a re-delivery repeats
    same_body: bool = True


QUERIES = st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=2).map(tuple)


def surface(spec: dict[str, Any]) -> st.SearchStrategy[Request]:
    """Every path the OpenAPI describes, its parameters filled, under every method; and others."""
    templates = sorted(spec["paths"])

    @st.composite
    def draw_one(draw: st.DrawFn) -> Request:
        if draw(st.booleans()):
            path = draw(st.sampled_from(templates))
            for name in [
                p["name"]
                for op in spec["paths"][path].values()
                for p in op.get("parameters", [])
                if p["in"] == "path"
            ]:
                value = draw(st.sampled_from(sorted(SECRETS)) | st.text(max_size=20))
                path = path.replace("{" + name + "}", quote(value, safe=""))
        else:
            path = "/" + "/".join(
                quote(part, safe="") for part in draw(st.lists(st.text(max_size=10), max_size=3))
            )
        body = draw(st.binary(max_size=MAX_BODY + 100) | bodies().map(lambda kb: kb[1]))
        return Request(
            "surface",
            method=draw(st.sampled_from(METHODS)),
            path=path,
            body=body,
            signing=draw(st.sampled_from(["absent", "garbage", "wrong secret"])),
            webhook_id=draw(st.none() | HEADER_TEXT),
            topic=draw(st.none() | header_values(20)),
            streamed=draw(st.booleans()),
            query=draw(QUERIES),
            extra=tuple(
                draw(
                    st.lists(
                        st.tuples(
                            st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True).filter(
                                lambda n: not n.lower().startswith("x-shopline")
                            ),
                            header_values(40),
                        ),
                        max_size=2,
                    )
                )
            ),
        )

    return draw_one()


def sized(limit: int, usual: int) -> st.SearchStrategy[str | None]:
    """A header value: absent, empty, usual, or around ``limit`` (a longer one must be refused)."""
    lengths = st.sampled_from([limit - 1, limit, limit + 1]) | st.integers(limit - 8, limit + 8)
    around = st.tuples(lengths, HEADER_TEXT)
    return st.one_of(
        st.none(),
        st.just(""),
        header_values(usual),
        around.map(lambda nt: (nt[1] + "x" * nt[0])[: nt[0]]),
    )


@st.composite
def signed(draw: st.DrawFn) -> Request:
    kind, body = draw(bodies())
    signing = [
        "hex",
        "hex",
        "hex",
        "HEX",
        "base64",
        "wrong secret",
        "other body",
        "garbage",
        "absent",
    ]
    return Request(
        "signed",
        client=draw(st.sampled_from(sorted(SECRETS))),
        kind=kind,
        body=body,
        signing=draw(st.sampled_from(signing)),
        webhook_id=draw(
            st.text(alphabet=HEADER_CHAR, min_size=1, max_size=24)
            | sized(LIMITS["x-shopline-webhook-id"], 24)
        ),
        topic=draw(sized(LIMITS["x-shopline-topic"], 24)),
        shop=draw(sized(LIMITS["x-shopline-shop-domain"], 40)),
        streamed=draw(st.booleans()),
        query=draw(st.just(()) | QUERIES),
    )


@st.composite
def redelivery(draw: st.DrawFn) -> Request:
    kind, body = draw(bodies())
    return Request(
        "redelivery",
        kind=kind,
        body=body,
        pick=draw(st.integers(0, 10**6)),
        same_body=draw(st.booleans()),
    )


# ---------------------------------------------------------------------------------------------
# The model, and one request checked against it
# ---------------------------------------------------------------------------------------------


@dataclass
class Stored:
    body: bytes
    topic: str
    shop: str | None
    poison: bool | None  # None: arbitrary bytes, either is right
    headers: list[tuple[bytes, bytes]]


def signature(body: bytes, secret: str, how: str) -> str | None:
    mac = hmac.new(secret.encode(), body, hashlib.sha256)
    return {
        "hex": mac.hexdigest(),
        "HEX": mac.hexdigest().upper(),
        "base64": base64.b64encode(mac.digest()).decode(),
        "wrong secret": hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest(),
        "other body": hmac.new(secret.encode(), body + b" ", hashlib.sha256).hexdigest(),
        "garbage": "0" * 64,
        "absent": None,
    }[how]


def hex_signature(body: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()


class Fuzz:
    """Sends requests, checks each answer and the inbox against the model, keeps the model."""

    def __init__(self, receiver: ReceiverProcess, store: Store, spec: dict[str, Any]) -> None:
        self.store = store
        self.spec = spec
        self.http = httpx.Client(base_url=receiver.url, timeout=30)
        self.model: dict[tuple[str, str], Stored] = {}
        self.fresh = itertools.count()
        self.seen: Counter[str] = Counter()
        self.requests = 0
        # Served but not described (the docs, the description itself): any answer but a 5xx.
        app = create_app({}, store)
        self.undescribed = {r.path for r in app.routes if not getattr(r, "include_in_schema", True)}

    def send(self, request: Request) -> None:
        if request.mode == "redelivery":
            self._redeliver(request)
            return
        secret = SECRETS.get(request.client or "", "no-client")
        headers: list[tuple[bytes, bytes]] = [(b"Content-Type", b"application/json")]
        value = signature(request.body, secret, request.signing)
        if value is not None:
            headers.append((b"X-Shopline-Hmac-Sha256", value.encode()))
        webhook_id = request.webhook_id
        if webhook_id:  # made unique here, so that a fresh id is fresh however examples repeat
            unique = f"fz{next(self.fresh)}-"  # over the start of a long one: its length stays
            webhook_id = (
                unique + webhook_id[len(unique) :] if len(webhook_id) > 20 else unique + webhook_id
            )
        for name, text in (
            ("X-Shopline-Webhook-Id", webhook_id),
            ("X-Shopline-Topic", request.topic),
            ("X-Shopline-Shop-Domain", request.shop),
        ):
            if text is not None:
                headers.append((name.encode(), text.encode("latin-1")))
        headers += [(name.encode(), text.encode("latin-1")) for name, text in request.extra]
        path = request.path or f"/webhooks/{request.client}"
        self._send(request, request.method, path, headers, request.body)

    def _redeliver(self, request: Request) -> None:
        if not self.model:
            return
        (client, _), earlier = sorted(self.model.items())[request.pick % len(self.model)]
        # One keyed on its body's digest (no id) is only the same delivery with the same body.
        by_digest = not any(k == b"X-Shopline-Webhook-Id" and v for k, v in earlier.headers)
        body = earlier.body if request.same_body or by_digest else request.body
        headers = [(k, v) for k, v in earlier.headers if k != b"X-Shopline-Hmac-Sha256"]
        headers.append((b"X-Shopline-Hmac-Sha256", hex_signature(body, SECRETS[client])))
        again = Request("redelivery", client=client, body=body, streamed=request.streamed)
        self._send(again, "POST", f"/webhooks/{client}", headers, body)

    def _send(
        self,
        request: Request,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        rows_before = self._row_count()
        content: Any = body
        if request.streamed:
            content = iter([body[i : i + 1000] for i in range(0, len(body), 1000)])
        if method in ("GET", "HEAD", "OPTIONS", "DELETE") and not body:
            content = None
        response = self.http.request(
            method, path, content=content, headers=headers, params=request.query
        )
        self.requests += 1
        status = response.status_code
        assert status < 500, (method, path, status, response.text)
        for secret in SECRETS.values():
            assert secret not in response.text
        expected = self._expect(method, path, headers, body)
        self.seen[f"{status}"] += 1
        if isinstance(expected, set):  # the surface: a documented answer, nothing stored
            assert status in expected, (method, path, status, response.text)
            assert self._row_count() == rows_before
            return
        assert status == expected[0], (method, path, status, response.text)
        if status != 200:
            assert self._row_count() == rows_before
            return
        key, new = expected[1], expected[2]
        answer = response.json()
        if not new:
            assert answer["status"] in {"duplicate", "poison"} and not answer.get("stored", False)
            assert self._row_count() == rows_before
            self.seen["duplicate"] += 1
            return
        poison = {"object": False, "poison": True}.get(request.kind)
        if poison is None:
            poison = answer["status"] == "poison"
        assert answer == ({"status": "poison", "stored": True} if poison else {"status": "stored"})
        assert self._row_count() == rows_before + 1
        value = {k.decode().lower(): v.decode("latin-1") for k, v in reversed(headers)}
        self.model[key] = Stored(
            body,
            value.get("x-shopline-topic") or "unknown",
            value.get("x-shopline-shop-domain"),
            poison,
            headers,
        )
        self.seen["poison" if poison else "stored"] += 1

    def _expect(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> Any:
        """The status a request must get: exactly, with the inbox key for a 200 to a known client;
        else the set of answers the OpenAPI documents for it."""
        client = path.removeprefix("/webhooks/")
        if not (method == "POST" and path.startswith("/webhooks/") and client in SECRETS):
            documented = self.spec["paths"].get(path, {}).get(method.lower())
            if documented is not None:
                return {int(code) for code in documented["responses"]}
            if path in self.undescribed:
                return set(range(200, 500))
            return {307, 404, 405}  # 307: Starlette's redirect of a path with a trailing slash
        value = {}
        for k, v in headers:  # the first of a repeated header is the one read
            value.setdefault(k.decode().lower(), v.decode("latin-1"))
        if len(body) > MAX_BODY:
            return (413,)
        given_signature = value.get("x-shopline-hmac-sha256")
        if given_signature not in {
            signature(body, SECRETS[client], how) for how in ("hex", "HEX", "base64")
        }:
            return (401,)
        if any(len(value.get(name, "")) > limit for name, limit in LIMITS.items()):
            return (400,)
        key = value.get("x-shopline-webhook-id") or "sha256:" + hashlib.sha256(body).hexdigest()
        return (200, (client, key), (client, key) not in self.model)

    def _row_count(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _settled(check: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[ReceiverProcess]:
    with receiver_process(tmp_path, SECRETS, "--max-body", str(MAX_BODY)) as process:
        yield process


def test_fuzzed_requests_never_5xx_never_lose_a_delivery_and_leave_nothing_behind(
    receiver: ReceiverProcess,
) -> None:
    spec = httpx.get(f"{receiver.url}/openapi.json").json()  # the receiver's own description
    store = receiver.store()
    fuzz = Fuzz(receiver, store, spec)
    examples = 0
    drawn = signed() | signed() | signed() | surface(spec) | redelivery()

    @settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(drawn, min_size=1, max_size=3))
    def example(requests: list[Request]) -> None:
        nonlocal examples
        examples += 1
        for request in requests:
            fuzz.send(request)

    # Warm up what starts once: /health's worker thread, the inbox's statements.
    assert fuzz.http.get("/health").status_code == 200
    assert fuzz.http.post("/webhooks/demo-outdoor", content=b"{}").status_code == 401
    threads, files, memory = receiver.threads(), receiver.open_files(), receiver.resident()
    started = time.monotonic()
    try:
        example()
    finally:
        elapsed = time.monotonic() - started
        fuzz.http.close()

    # It was exercised: every kind of answer came up.
    for seen in ("stored", "poison", "duplicate", "400", "401", "404", "405", "413"):
        assert fuzz.seen[seen] > 0, (seen, fuzz.seen)

    # The inbox is the model, row for row; one exception per poison row.
    with store.engine.connect() as conn:
        rows = {(r.client, r.webhook_id): r for r in conn.execute(select(inbox))}
    assert set(rows) == set(fuzz.model)
    for key, expected in fuzz.model.items():
        row = rows[key]
        assert bytes(row.body) == expected.body
        assert (row.topic, row.shop_domain) == (expected.topic, expected.shop)
        assert row.status == ("poison" if expected.poison else "pending")
    poison = [e for c in SECRETS for e in store.exceptions.list(client=c, code="poison_message")]
    assert len(poison) == sum(1 for s in fuzz.model.values() if s.poison)
    store.close()

    # And the receiver holds no more than before: connections, threads, memory; nothing logged.
    assert _settled(lambda: receiver.open_files() <= files), receiver.open_files() - files
    assert receiver.threads() <= threads
    grown = receiver.resident() - memory
    assert grown < 16 * MEGABYTE, f"{grown / MEGABYTE:.1f} MiB more resident"
    log = receiver.log.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log
    assert not any(secret in log for secret in SECRETS.values())
    print(
        f"{examples} examples, {fuzz.requests} requests in {elapsed:.1f} s, "
        f"receiver +{grown / MEGABYTE:.1f} MiB; {dict(sorted(fuzz.seen.items()))}"
    )
