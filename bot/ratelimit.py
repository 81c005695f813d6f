"""Client-side rate limiting that keeps a provider's requests/min and tokens/min limits busy but untripped.

OpenAI enforces RPM and TPM per model over a rolling minute and reports its own view in `x-ratelimit-*`
headers (https://platform.openai.com/docs/guides/rate-limits). The limiter keeps a sliding one-minute log of
what it granted, so it never sends more than the limit in any minute, and it learns from the headers:
a lower limit than configured replaces the configured one, and when the provider has less left than the log
says (another client shares the key), the difference is booked as if this client had used it. A 429 pauses
every caller for the Retry-After the provider asked for. Waiters are served first come, first served, so
collections sharing one model share its limit fairly.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

WINDOW_SECONDS = 60.0
# Requests are logged when sent and counted by the provider when received a little later; this margin
# keeps an old request from leaving our window before it leaves the provider's.
SKEW_SECONDS = 0.25

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


class RateLimiter:
    """A sliding-window limiter on requests and tokens per minute for one model at one provider."""

    def __init__(self, *, requests_per_minute: int, tokens_per_minute: int, window_seconds: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.window_seconds = window_seconds  # a minute, except in tests and benchmarks that compress time
        self._clock = clock
        self._log: deque[tuple[float, int]] = deque()
        self._tokens_in_window = 0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.stats = LimiterStats()

    def _evict(self, now: float) -> None:
        while self._log and self._log[0][0] <= now - self.window_seconds - SKEW_SECONDS:
            self._tokens_in_window -= self._log.popleft()[1]

    def _wait_for(self, now: float, tokens: int) -> float:
        """Seconds until a request of `tokens` fits in the window (0 when it fits now)."""
        waits = [self._paused_until - now]
        if len(self._log) + 1 > self.requests_per_minute:
            oldest = self._log[len(self._log) - self.requests_per_minute]
            waits.append(oldest[0] + self.window_seconds + SKEW_SECONDS - now)
        excess = self._tokens_in_window + min(tokens, self.tokens_per_minute) - self.tokens_per_minute
        if excess > 0:
            freed = 0
            for stamp, used in self._log:
                freed += used
                if freed >= excess:
                    waits.append(stamp + self.window_seconds + SKEW_SECONDS - now)
                    break
        return max(waits)

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of `tokens` (prompt + expected completion) may be sent, and book it."""
        async with self._lock:
            started = self._clock()
            while True:
                now = self._clock()
                self._evict(now)
                wait = self._wait_for(now, tokens)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._log.append((now, tokens))
            self._tokens_in_window += tokens
            self.stats.granted += 1
            self.stats.waited_seconds += now - started

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self.stats.pauses += 1

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's x-ratelimit-* headers."""
        limit_requests = _int(headers.get("x-ratelimit-limit-requests"))
        limit_tokens = _int(headers.get("x-ratelimit-limit-tokens"))
        if limit_requests:
            self.requests_per_minute = min(self.requests_per_minute, limit_requests)
        if limit_tokens:
            self.tokens_per_minute = min(self.tokens_per_minute, limit_tokens)
        now = self._clock()
        self._evict(now)
        remaining_tokens = _int(headers.get("x-ratelimit-remaining-tokens"))
        if remaining_tokens is not None:
            unseen = (self.tokens_per_minute - self._tokens_in_window) - remaining_tokens
            if unseen > 0:  # someone else used part of the limit: book it so we do not overshoot
                self._log.append((now, unseen))
                self._tokens_in_window += unseen
        remaining_requests = _int(headers.get("x-ratelimit-remaining-requests"))
        if remaining_requests == 0:
            reset = parse_reset(headers.get("x-ratelimit-reset-requests", ""))
            if reset:
                self.pause(reset)


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
