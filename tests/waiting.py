"""The one way a test waits: poll a condition until it holds, never a fixed sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

POLL_SECONDS = 0.01


async def until(condition: Callable[[], Any | Awaitable[Any]], *, within: float = 60.0,
                what: str = "the condition") -> Any:
    """Poll `condition` (a function or a coroutine function) until it returns something truthy, and return that.
    TimeoutError names `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {within:g} s for {what}")
        await asyncio.sleep(POLL_SECONDS)
