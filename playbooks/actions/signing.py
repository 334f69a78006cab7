"""HMAC-SHA256 request signing for webhooks.

The signed payload is ``<timestamp>.<body>``: the receiver recomputes the HMAC
over the exact bytes it received, and by checking the timestamp is recent it
rejects a captured request replayed later (the scheme Stripe and Slack use).
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Fireline-Timestamp"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``<timestamp>.<body>``.

    >>> signature("s3cret", 1795255200, b'{"id":"inc-1"}')
    'sha256=...'
    >>> len(signature("s3cret", 1795255200, b"{}"))
    71
    """
    payload = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def signature_headers(secret: str, timestamp: int, body: bytes, header: str) -> dict[str, str]:
    """The timestamp header and the signature header ``header``."""
    return {TIMESTAMP_HEADER: str(timestamp), header: signature(secret, timestamp, body)}


def verify(secret: str, timestamp: str, body: bytes, signed: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    expected = signature(secret, int(timestamp), body)
    return hmac.compare_digest(expected, signed)
