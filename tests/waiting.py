"""The one way a test waits: poll a condition until it holds, never a fixed sleep."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
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


def pause(seconds: float) -> None:
    """time.sleep, except that it also works under libfaketime (the suite runs with the date moved too), where
    time.sleep fails with EINVAL; an Event's timed wait does not."""
    threading.Event().wait(seconds)


@contextlib.contextmanager
def killed_after(process: subprocess.Popen, seconds: float) -> Iterator[None]:
    """Let a child process run at most `seconds` (a timer kills it), instead of Popen's own timeouts, which wait
    with time.sleep."""
    timer = threading.Timer(seconds, process.kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
