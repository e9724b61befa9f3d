"""Webhook delivery, the way SHOPLINE does it: signed, at-least-once, retried, sometimes twice.

:meth:`WebhookDispatcher.emit` records one delivery per matching subscription (persisted, so a
restart resumes pending retries) and returns at once; a scheduler thread posts due deliveries
through a small thread pool, so a slow receiver never blocks the API or the other receivers.

A delivery is a POST of the bare JSON payload with the ``X-Shopline-*`` headers. The signature is
HMAC-SHA256 of the exact bytes sent, keyed with the app secret, lowercase hex (base64 selectable).
``X-Shopline-Webhook-Id`` is fixed per message and repeated on every retry and duplicate. Failed
attempts (non-200 or no answer within 5 s) are retried on SHOPLINE's schedule
(:data:`quirks.WEBHOOK_RETRY_DELAYS_S`) multiplied by ``retry_scale`` (tests use ~0.01).
Fault profiles may deliver a message several times concurrently and shuffle due deliveries.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import heapq
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from stokline.sandbox.common import DocStore, Faults
from stokline.sandbox.shopline import quirks
from stokline.sandbox.shopline.state import now_iso

log = logging.getLogger(__name__)

SIGNATURE_ENCODINGS = ("hex", "base64")


def sign(body: bytes, secret: str, encoding: str = "hex") -> str:
    """HMAC-SHA256 of ``body`` keyed with ``secret``, lowercase hex or base64."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


class WebhookDispatcher:
    """Persisted, retried, signed webhook deliveries for one sandbox store."""

    def __init__(
        self,
        store: DocStore,
        *,
        app_secret: str,
        shop_domain: str,
        shop_id: str,
        merchant_id: str,
        faults_getter: Callable[[], Faults],
        retry_scale: float = 1.0,
        timeout_s: float = quirks.WEBHOOK_TIMEOUT_S,
        signature_encoding: str = "hex",
        workers: int = 8,
    ) -> None:
        self.store = store
        self._secret = app_secret
        self.shop_domain = shop_domain
        self.shop_id = shop_id
        self.merchant_id = merchant_id
        self.faults_getter = faults_getter
        self.retry_scale = retry_scale
        self.timeout_s = timeout_s
        self.signature_encoding = signature_encoding
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []
        self._counter = 0
        self._stopping = False
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, "shopline-webhook")
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._thread = threading.Thread(target=self._run, name="shopline-webhooks", daemon=True)
        self._inflight = 0
        for doc in self.store.list("delivery"):
            if doc["state"] in ("pending", "retrying"):
                self._push(doc["next_at"], doc["id"])

    # -- configuration -----------------------------------------------------------------

    def configure(
        self,
        *,
        signature_encoding: str | None = None,
        retry_scale: float | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Change delivery settings at runtime (the control API)."""
        if signature_encoding is not None:
            if signature_encoding not in SIGNATURE_ENCODINGS:
                raise ValueError(
                    f"unknown signature encoding {signature_encoding!r}; "
                    f"valid: {', '.join(SIGNATURE_ENCODINGS)}"
                )
            self.signature_encoding = signature_encoding
        if retry_scale is not None:
            self.retry_scale = max(0.0, float(retry_scale))
        if timeout_s is not None:
            self.timeout_s = float(timeout_s)
            self._client.timeout = httpx.Timeout(self.timeout_s)

    def settings(self) -> dict[str, Any]:
        """Current delivery settings (never the secret)."""
        return {
            "signature_encoding": self.signature_encoding,
            "retry_scale": self.retry_scale,
            "timeout_s": self.timeout_s,
        }

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the scheduler thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling; attempts in flight finish in the background."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def clear(self) -> None:
        """Forget every scheduled delivery (the sandbox reset)."""
        with self._cond:
            self._heap.clear()

    def idle(self) -> bool:
        """True when nothing is scheduled now and no attempt is running."""
        with self._cond:
            due = any(at <= time.time() for at, _, _ in self._heap)
            return not due and self._inflight == 0

    # -- emitting ----------------------------------------------------------------------

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        """Record a delivery for each subscription to ``topic``; returns without any I/O."""
        subscriptions = [w for w in self.store.list("webhook") if w["topic"] == topic]
        if not subscriptions:
            return
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        now = time.time()
        faults = self.faults_getter()
        for sub in subscriptions:
            due = now + faults.draw_delivery_delay()
            delivery = {
                "id": str(uuid.uuid4()),
                "webhook_id": sub["id"],
                "topic": topic,
                "address": sub["address"],
                "api_version": sub["api_version"],
                "body": body,
                "state": "pending",
                "attempts": [],
                "retries": 0,
                "next_at": due,
                "created_at": now_iso(),
            }
            self.store.insert("delivery", delivery, id=delivery["id"])
            self._push(due, delivery["id"])

    def _push(self, at: float, delivery_id: str) -> None:
        with self._cond:
            self._counter += 1
            heapq.heappush(self._heap, (at, self._counter, delivery_id))
            self._cond.notify_all()

    # -- delivering --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap and self._heap[0][0] <= time.time():
                        break
                    wait = self._heap[0][0] - time.time() if self._heap else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                due = []
                while self._heap and self._heap[0][0] <= time.time():
                    due.append(heapq.heappop(self._heap)[2])
                self._inflight += len(due)
            faults = self.faults_getter()
            for delivery_id in faults.draw_shuffle(due):
                copies = faults.draw_copies()
                try:
                    self._pool.submit(self._deliver, delivery_id, True)
                    for _ in range(copies - 1):
                        with self._cond:
                            self._inflight += 1
                        self._pool.submit(self._deliver, delivery_id, False)
                except RuntimeError:
                    return

    def headers(self, delivery: dict[str, Any], body: bytes) -> dict[str, str]:
        """The ``X-Shopline-*`` headers of one delivery."""
        return {
            "Content-Type": "application/json",
            "X-Shopline-Topic": delivery["topic"],
            "X-Shopline-Hmac-Sha256": sign(body, self._secret, self.signature_encoding),
            "X-Shopline-Shop-Domain": self.shop_domain,
            "X-Shopline-Shop-Id": self.shop_id,
            "X-Shopline-Merchant-Id": self.merchant_id,
            "X-Shopline-API-Version": delivery["api_version"],
            "X-Shopline-Webhook-Id": delivery["id"],
        }

    def _deliver(self, delivery_id: str, primary: bool) -> None:
        try:
            self._attempt(delivery_id, primary)
        except Exception:  # a worker must never die silently
            log.exception("webhook delivery %s failed unexpectedly", delivery_id)
        finally:
            with self._cond:
                self._inflight -= 1

    def _attempt(self, delivery_id: str, primary: bool) -> None:
        delivery = self.store.get("delivery", delivery_id)
        # A duplicate is a deliberate re-send of the same message: it goes out even when the
        # primary attempt has already been acknowledged.
        if delivery is None or (primary and delivery["state"] in ("delivered", "failed")):
            return
        body = delivery["body"].encode()
        started = time.time()
        status: int | None = None
        error: str | None = None
        try:
            response = self._client.post(
                delivery["address"], content=body, headers=self.headers(delivery, body)
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        ok = status == 200
        with self._lock:
            delivery = self.store.get("delivery", delivery_id)
            if delivery is None:
                return
            delivery["attempts"].append(
                {
                    "at": started,
                    "status": status,
                    "error": error,
                    "duplicate": not primary,
                    "elapsed_ms": int((time.time() - started) * 1000),
                }
            )
            if not primary:
                self.store.update("delivery", delivery_id, delivery)
                return
            if ok:
                delivery["state"] = "delivered"
            elif delivery["retries"] >= len(quirks.WEBHOOK_RETRY_DELAYS_S):
                delivery["state"] = "failed"
                if quirks.DELETE_SUBSCRIPTION_AFTER_FINAL_FAILURE:
                    self.store.delete("webhook", str(delivery["webhook_id"]))
            else:
                delay = quirks.WEBHOOK_RETRY_DELAYS_S[delivery["retries"]] * self.retry_scale
                delivery["retries"] += 1
                delivery["state"] = "retrying"
                delivery["next_at"] = time.time() + delay
            self.store.update("delivery", delivery_id, delivery)
        if delivery["state"] == "retrying":
            self._push(delivery["next_at"], delivery_id)

    def deliveries(self, topic: str | None = None, state: str | None = None) -> list[dict]:
        """Deliveries for the control API, newest last, bodies decoded."""
        out = []
        for doc in self.store.list("delivery"):
            if topic and doc["topic"] != topic:
                continue
            if state and doc["state"] != state:
                continue
            view = dict(doc)
            view["payload"] = json.loads(view.pop("body"))
            out.append(view)
        return out

    def close(self) -> None:
        """Stop and release the HTTP client."""
        self.stop()
        self._client.close()
