"""Webhook signatures: what we send, and how a receiver checks it."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-OpenCS-Signature"
TIMESTAMP_HEADER = "X-OpenCS-Timestamp"
DELIVERY_HEADER = "X-OpenCS-Delivery"  # the message key: receivers can drop repeats


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 keyed by the secret over ``"<timestamp>." + body``.

    The timestamp is inside the signed text, so a captured call cannot be replayed later
    with a new timestamp; receivers should also refuse old timestamps."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: int | str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, timestamp, body), header or "")
