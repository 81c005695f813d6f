"""Requests-per-minute and tokens-per-minute limits per model, answered like OpenAI does.

OpenAI's limits refill continuously over the minute (platform.openai.com/docs/guides/rate-limits), so each
limit is a bucket of `limit` units refilling at limit/60 per second. A request is charged its prompt tokens
plus `max_tokens` (or the answer's length when it gives none), the way OpenAI counts a request against the
TPM limit before it runs. Every answer for a limited model carries the `x-ratelimit-*` headers; a refusal is
HTTP 429 with `retry-after` (whole seconds) and `retry-after-ms`. Snapshots share the limit of their family
("gpt-4o-2024-08-06" counts against "gpt-4o"), and so does a fine-tuned model's base.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from sandbox.openai.errors import APIError

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_ORG = "org-sandbox"


def go_duration(seconds: float) -> str:
    """Seconds in the format of OpenAI's reset headers (Go's time.Duration): '20ms', '1.5s', '6m0s'."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest, 3):g}s"


class _Bucket:
    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self.level = float(limit)
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.limit, self.level + (now - self.stamp) * self.limit / self.window)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        return max(0.0, (amount - self.level) * self.window / self.limit)

    def reset_seconds(self) -> float:
        return (self.limit - self.level) * self.window / self.limit


@dataclass(frozen=True)
class _Kind:
    name: str  # "requests" or "tokens"
    unit: str  # as in OpenAI's message: "requests per min (RPM)"


_REQUESTS = _Kind("requests", "requests per min (RPM)")
_TOKENS = _Kind("tokens", "tokens per min (TPM)")


class RateLimiter:
    def __init__(self, rpm_limits: dict[str, int] | None = None, tpm_limits: dict[str, int] | None = None,
                 window_seconds: float = 60.0) -> None:
        self.window_seconds = window_seconds  # a minute, except where tests and benchmarks compress time
        self._limits = {_REQUESTS: dict(rpm_limits or {}), _TOKENS: dict(tpm_limits or {})}
        self._buckets: dict[tuple[_Kind, str], _Bucket] = {}

    def _bucket(self, kind: _Kind, model: str) -> tuple[str, _Bucket] | None:
        base = model.split(":")[1] if model.startswith("ft:") else model
        for key in (model, base, _SNAPSHOT.sub("", base)):
            if key in self._limits[kind]:
                bucket = self._buckets.setdefault((kind, key), _Bucket(self._limits[kind][key], self.window_seconds))
                bucket.refill()
                return key, bucket
        return None

    def _refusal(self, kind: _Kind, key: str, bucket: _Bucket, amount: int) -> APIError:
        used = round(bucket.limit - bucket.level)
        if amount > bucket.limit:
            # What OpenAI answers when one request alone is over the limit: retrying cannot help.
            return APIError(
                429,
                f"Request too large for {key} in organization {_ORG} on {kind.unit}: Limit {bucket.limit}, "
                f"Requested {amount}. The input or output tokens must be reduced in order to run successfully.",
                type=kind.name, code="rate_limit_exceeded")
        wait = bucket.wait_for(amount)
        return APIError(
            429,
            f"Rate limit reached for {key} in organization {_ORG} on {kind.unit}: Limit {bucket.limit}, "
            f"Used {used}, Requested {amount}. Please try again in {go_duration(wait)}. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            type=kind.name, code="rate_limit_exceeded",
            headers={"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(math.ceil(wait * 1000))},
        )

    def charge(self, model: str, tokens: int) -> dict[str, str]:
        """Take one request and `tokens` from the model's buckets and return the headers; 429 when over."""
        found = {kind: self._bucket(kind, model) for kind in (_REQUESTS, _TOKENS)}
        amounts = {_REQUESTS: 1, _TOKENS: tokens}
        for kind, hit in found.items():
            if hit and hit[1].level < amounts[kind]:
                error = self._refusal(kind, hit[0], hit[1], amounts[kind])
                error.headers.update(self._headers(found))
                raise error
        for kind, hit in found.items():
            if hit:
                hit[1].level -= amounts[kind]
        return self._headers(found)

    @staticmethod
    def _headers(found: dict[_Kind, tuple[str, _Bucket] | None]) -> dict[str, str]:
        headers = {}
        for kind, hit in found.items():
            if hit:
                bucket = hit[1]
                headers[f"x-ratelimit-limit-{kind.name}"] = str(bucket.limit)
                headers[f"x-ratelimit-remaining-{kind.name}"] = str(max(0, math.floor(bucket.level)))
                headers[f"x-ratelimit-reset-{kind.name}"] = go_duration(bucket.reset_seconds())
        return headers

    def reset(self) -> None:
        self._buckets.clear()
