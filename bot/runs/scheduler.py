"""The poller: every DISTILL_POLL_SECONDS it looks at each training job and Batch API collection that the
database lists as active, starts the watch periods that are due by the bot's clock (bot/runs/watch.py), expires the
spending requests past their time, forgets the ids of Slack events handled more than a day ago, and deletes the
data of runs finished longer ago than DISTILL_RETENTION_DAYS (bot/runs/erasure.py). Everything is read from the
database each time, never kept in the scheduler's memory, so a restarted bot picks up exactly where the last one
stopped.

A poll can take longer than the interval (a deployment coming up, a slow provider). APScheduler would then log a
warning for every tick it skips ("maximum number of running instances reached"), into the shell's output too; so
its job only starts a poll, as a task of its own, and a tick that finds the last poll still running lets it be.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

if TYPE_CHECKING:
    from bot.runs.service import RunService

log = logging.getLogger(__name__)

EVENT_MEMORY = timedelta(days=1)  # how long a handled Slack event id is kept (Slack's retries end within minutes)


class Scheduler:
    def __init__(self, service: RunService, poll_seconds: float) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self._scheduler: AsyncIOScheduler | None = None
        self._poll: asyncio.Task | None = None

    async def start(self) -> None:
        self._scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        # One poll at a time (max_instances), and a late poll is not repeated to catch up (coalesce). The first
        # poll runs at once: "now" in APScheduler's own time, which its trigger compares with the system clock.
        self._scheduler.add_job(self._tick, "interval", seconds=self.poll_seconds,
                                next_run_time=datetime.now(self._scheduler.timezone),
                                max_instances=1, coalesce=True, id="poll-external-work")
        self._scheduler.start()

    async def _tick(self) -> None:
        if self._poll is not None and not self._poll.done():
            log.debug("the last poll is still running; this tick lets it finish")
            return
        self._poll = asyncio.create_task(self._poll_once(), name="scheduler-poll")

    async def _poll_once(self) -> None:
        try:
            for step in (self.service.poll_external_work, self.service.watch.tick_due, self.service.expire_approvals,
                         self._forget_old_events, self.service.purge_expired):
                try:
                    await step()
                except Exception:
                    log.exception("%s failed; trying again in %s s", step.__name__, self.poll_seconds)
        except asyncio.CancelledError:
            log.debug("a poll was cut short by close(); the next start picks its work up from the database")

    async def _forget_old_events(self) -> None:
        await self.service.storage.slack_events.forget_before(self.service.clock.now() - EVENT_MEMORY)

    async def close(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._poll is not None:
            self._poll.cancel()
            await asyncio.gather(self._poll, return_exceptions=True)
