"""Client-side rate limiting that keeps a provider's requests/min and tokens/min limits busy but untripped.

OpenAI's limits replenish continuously: the `x-ratelimit-reset-*` headers give the time until a limit is back to
full (https://platform.openai.com/docs/guides/rate-limits). So the limiter keeps the same two buckets on the
client side, each holding at most one minute's allowance and refilling at limit/minute: a request waits until
both have room for it (one request; its prompt tokens plus the max_completion_tokens it sends, as OpenAI counts
a request against the limit) and takes it when it is sent, which is before the provider counts it, so the client
is never ahead of the provider. It also learns from every answer's headers: a lower limit than configured
replaces the configured one, and when the provider has less left than the client thinks (another client shares
the key), the client's bucket drops to the provider's figure. A 429 pauses every caller for the Retry-After the
provider asked for. Waiters are served first come, first served, so collections sharing one model share its
limit fairly.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

WINDOW_SECONDS = 60.0

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_reset(value: str) -> float | None:
    """OpenAI's reset durations ('1s', '6m0s', '20ms', '1h2m3.5s') in seconds."""
    parts = _DURATION_PART.findall(value.strip())
    if not parts:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


@dataclass
class LimiterStats:
    granted: int = 0
    waited_seconds: float = 0.0
    pauses: int = 0


class _Bucket:
    """At most `limit` units, refilled at `limit` per window."""

    def __init__(self, limit: int, window_seconds: float, now: float) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.level = float(limit)
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.limit, self.level + (now - self.stamp) * self.limit / self.window_seconds)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` fits (an amount over the limit waits for a full bucket)."""
        return max(0.0, (min(amount, self.limit) - self.level) * self.window_seconds / self.limit)

    def lower_limit(self, limit: int) -> None:
        """Adopt the provider's smaller limit, keeping what was already used (it may leave a debt)."""
        if limit < self.limit:
            self.level -= self.limit - limit
            self.limit = limit

    def at_most(self, remaining: int) -> None:
        self.level = min(self.level, float(remaining))


class RateLimiter:
    """Requests and tokens per minute for one model at one provider."""

    def __init__(self, *, requests_per_minute: int, tokens_per_minute: int, window_seconds: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        now = clock()
        # `window_seconds` is a minute, except in tests and benchmarks that compress time.
        self._requests = _Bucket(requests_per_minute, window_seconds, now)
        self._tokens = _Bucket(tokens_per_minute, window_seconds, now)
        self._paused_until = 0.0
        self._in_flight = [0, 0]  # requests and tokens sent whose answer has not come back yet
        self._lock = asyncio.Lock()
        self.stats = LimiterStats()

    @property
    def requests_per_minute(self) -> int:
        return self._requests.limit

    @property
    def tokens_per_minute(self) -> int:
        return self._tokens.limit

    def _refill(self) -> float:
        now = self._clock()
        self._requests.refill(now)
        self._tokens.refill(now)
        return now

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of `tokens` (prompt + longest answer) may be sent, and take its share."""
        async with self._lock:
            started = self._clock()
            while True:
                now = self._refill()
                wait = max(self._paused_until - now, self._requests.wait_for(1), self._tokens.wait_for(tokens))
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._requests.level -= 1
            self._tokens.level -= min(tokens, self._tokens.limit)
            self._in_flight[0] += 1
            self._in_flight[1] += tokens
            self.stats.granted += 1
            self.stats.waited_seconds += now - started

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self.stats.pauses += 1

    def release(self, tokens: int) -> None:
        """A request sent with `acquire(tokens)` is over (answered or failed)."""
        self._in_flight[0] -= 1
        self._in_flight[1] -= tokens

    def observe(self, headers: Mapping[str, str], tokens: int) -> None:
        """Learn from the x-ratelimit-* headers of the answer to a request of `tokens`, and release it.

        The provider's `remaining` may not yet count the other requests in flight, so the client keeps
        room for them: it never thinks it has more than remaining minus what is still in flight.
        """
        self.release(tokens)
        self._refill()
        for bucket, kind, in_flight in ((self._requests, "requests", self._in_flight[0]),
                                        (self._tokens, "tokens", self._in_flight[1])):
            limit = _int(headers.get(f"x-ratelimit-limit-{kind}"))
            if limit:
                bucket.lower_limit(limit)
            remaining = _int(headers.get(f"x-ratelimit-remaining-{kind}"))
            if remaining is not None:
                bucket.at_most(remaining - in_flight)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class RateLimiters:
    """One limiter per (provider, model), shared by every collection that talks to it."""

    def __init__(self, *, requests_per_minute: int, tokens_per_minute: int,
                 window_seconds: float = WINDOW_SECONDS) -> None:
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.window_seconds = window_seconds
        self._limiters: dict[tuple[str, str], RateLimiter] = {}

    def for_model(self, base_url: str, model: str) -> RateLimiter:
        key = (base_url, model)
        if key not in self._limiters:
            self._limiters[key] = RateLimiter(requests_per_minute=self.requests_per_minute,
                                              tokens_per_minute=self.tokens_per_minute,
                                              window_seconds=self.window_seconds)
        return self._limiters[key]
