"""The client-side limiter on a fake clock: what it lets through, and what it learns from headers."""

import asyncio

from bot.collect.ratelimit import RateLimiter, parse_reset


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_reset_durations_in_openai_format():
    assert parse_reset("20ms") == 0.02 and parse_reset("1.5s") == 1.5 and parse_reset("6m0s") == 360
    assert parse_reset("1h2m3s") == 3723 and parse_reset("soon") is None


async def test_a_full_minute_passes_at_once_then_the_refill_rate_sets_the_pace(monkeypatch):
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, tokens_per_minute=1_000_000, clock=clock)
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    for _ in range(60):
        await limiter.acquire(10)
    assert slept == []
    await limiter.acquire(10)
    assert abs(sum(slept) - 1.0) < 1e-6  # 60 per minute refill one request per second


async def test_a_lower_limit_from_the_headers_keeps_what_was_already_used():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=1000, tokens_per_minute=100_000, clock=clock)
    for _ in range(10):
        await limiter.acquire(100)  # 1,000 tokens in flight, counted against the configured 100,000
    limiter.observe({"x-ratelimit-limit-tokens": "5000", "x-ratelimit-remaining-tokens": "4900"}, 100)
    assert limiter.tokens_per_minute == 5000
    # 9 requests (900 tokens) are still in flight and not yet counted by the provider: keep room for them
    assert limiter._tokens.level <= 4900 - 900


async def test_a_429_pauses_every_caller(monkeypatch):
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=1000, tokens_per_minute=100_000, clock=clock)
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    limiter.pause(2.5)
    await limiter.acquire(10)
    assert abs(sum(slept) - 2.5) < 1e-6 and limiter.stats.pauses == 1
