"""Slack's request signing, as Slack applies it to every request it sends to an app.

https://docs.slack.dev/authentication/verifying-requests-from-slack/: the signature is
"v0=" + hex(HMAC-SHA256(signing_secret, "v0:{timestamp}:{raw body}")), sent with the timestamp in headers.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def signature(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The two headers that authenticate a request; pass an old timestamp to forge a stale (replayed) one."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {"X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature(signing_secret, timestamp, body)}
