"""SHOPLINE webhook signatures: HMAC-SHA256 of the raw body, keyed with the app secret.

SHOPLINE's SDKs compare a lowercase hex digest; its documentation shows what looks like base64.
Both are accepted, always compared in constant time, and only ever over the exact bytes received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(body: bytes, secret: str, *, encoding: str = "hex") -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """True when ``header`` is the body's signature, as lowercase/uppercase hex or as base64."""
    if not header or not secret:
        return False
    given = header.strip()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    hex_ok = hmac.compare_digest(digest.hex(), given.lower())
    b64_ok = hmac.compare_digest(base64.b64encode(digest).decode(), given)
    return hex_ok or b64_ok
