"""Waiting between attempts, and creating a resource safely when the API has no idempotency key."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import openai

from bot.core.provider import RETRYABLE_STATUSES, retry_after_seconds

T = TypeVar("T")


def backoff_seconds(attempt: int, retry_after: float | None, *, base: float = 0.5, cap: float = 20.0) -> float:
    """Exponential backoff with full jitter; never shorter than what the provider asked for."""
    jittered = random.uniform(0, min(cap, base * 2 ** (attempt - 1)))
    return max(jittered, retry_after or 0.0)


def openai_transient(exc: BaseException) -> tuple[bool, float | None]:
    """Whether an openai SDK failure may pass on a later attempt, and the wait the provider asked for."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRYABLE_STATUSES, retry_after_seconds(exc.response.headers)
    return isinstance(exc, openai.APIConnectionError), None


async def find_or_create(find: Callable[[], Awaitable[T | None]], create: Callable[[], Awaitable[T]], *,
                         attempts: int, base_seconds: float = 0.5,
                         transient: Callable[[BaseException], tuple[bool, float | None]] = openai_transient) -> T:
    """The resource `find` finds, else the one `create` makes (a call sent without the SDK's own retries).

    A create that timed out or got a 5xx may have made the resource anyway, so every attempt looks first:
    retrying blindly would make a second one, billed too. Failures `transient` calls passing (default: the openai
    SDK's connection errors and retryable statuses) are retried with backoff up to `attempts` times; anything
    else, and the last failure, is raised.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await find() or await create()
        except Exception as exc:
            retryable, wait = transient(exc)
            if not retryable or attempt >= attempts:
                raise
            await asyncio.sleep(backoff_seconds(attempt, wait, base=base_seconds))
