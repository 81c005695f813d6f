"""Work a listener starts after acking Slack: tracked (tests and shutdown wait for it) and never failing silently.

Slack wants an ack within 3 seconds (https://docs.slack.dev/interactivity/handling-user-interaction), so a
listener acks first and hands the rest here. A failure is described by bot.tasks.describe (an expected
DistillError keeps its message, anything else gets an error id that is also logged) and passed to the
`report` callback the listener gave: an ephemeral reply, or a post in the run's thread.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.core.tasks import BackgroundTasks

Report = Callable[[str, str | None], Awaitable[None]]  # (message, error id or None)


class Followups:
    def __init__(self) -> None:
        self._tickets = itertools.count(1)
        self._reports: dict[int, Report] = {}
        # BackgroundTasks reports failures by run id; here each piece of work has its own ticket instead.
        self.tasks = BackgroundTasks(self._failed)

    def spawn(self, work: Coroutine[Any, Any, Any], report: Report) -> None:
        ticket = next(self._tickets)
        self._reports[ticket] = report
        self.tasks.spawn(f"followup-{ticket}", ticket, self._settled(ticket, work))

    async def _settled(self, ticket: int, work: Coroutine[Any, Any, Any]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            self._reports.pop(ticket, None)
            raise
        self._reports.pop(ticket, None)

    async def _failed(self, ticket: int, message: str, error_id: str | None) -> None:
        await self._reports.pop(ticket)(message, error_id)

    async def wait_idle(self) -> None:
        await self.tasks.wait_idle()

    async def close(self) -> None:
        await self.tasks.shutdown()
