"""Tracked background work: slow stages run after the Slack ack, and none of them fails silently.

A failure the product expects (a DistillError) is reported with its own message; anything else gets a
short error id that appears both in the thread and, with the traceback, in the log.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.core.errors import USER_ERRORS

log = logging.getLogger(__name__)

OnError = Callable[[int, str, str | None], Awaitable[None]]  # (run_id, message, error_id)


def error_id() -> str:
    return secrets.token_hex(4)


def describe(exc: BaseException) -> tuple[str, str | None]:
    """The message to show for an exception, and an error id when it was not an expected failure."""
    if isinstance(exc, USER_ERRORS):
        return str(exc), None
    eid = error_id()
    log.error("error %s: %s", eid, exc, exc_info=exc)
    return f"Something went wrong (error id {eid}). The details are in the bot's log under that id.", eid


class BackgroundTasks:
    def __init__(self, on_error: OnError) -> None:
        self._on_error = on_error
        self._tasks: dict[str, asyncio.Task] = {}

    def running(self, key: str) -> bool:
        task = self._tasks.get(key)
        return task is not None and not task.done()

    def spawn(self, key: str, run_id: int, work: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Run `work` in the background under `key` (one task per key at a time)."""
        if self.running(key):
            work.close()
            return self._tasks[key]
        task = asyncio.create_task(self._guard(run_id, work), name=key)
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._tasks.pop(key, None) if self._tasks.get(key) is done else None)
        return task

    async def _guard(self, run_id: int, work: Coroutine[Any, Any, Any]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message, eid = describe(exc)
            try:
                await self._on_error(run_id, message, eid)
            except Exception:
                log.exception("could not report the failure of run %s", run_id)

    async def wait_idle(self) -> None:
        """Wait until no background task is left (tests, and shutdown after the current stage)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
