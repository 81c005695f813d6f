"""How long the event loop was unable to run a task: a ticker that sleeps briefly and measures how late it wakes.

A listener cannot ack Slack while the loop is stuck in someone's CPU work, so the lateness of a 5 ms sleep is
the delay any request arriving at that moment would also have suffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

TICK_SECONDS = 0.005
RECORDED_SECONDS = 0.02  # shorter stalls are scheduling noise and are only counted in the maximum


@dataclass
class StallMeter:
    tick_seconds: float = TICK_SECONDS
    longest_seconds: float = 0.0
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (wall-clock time it ended, seconds late)
    _task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._tick(), name="stall-meter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def longest_between(self, start: float, end: float) -> float:
        """The longest recorded stall that ended between two wall-clock times (time.time())."""
        return max((late for ended, late in self.stalls if start <= ended <= end), default=0.0)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.tick_seconds)
            late = loop.time() - before - self.tick_seconds
            self.longest_seconds = max(self.longest_seconds, late)
            if late >= RECORDED_SECONDS:
                self.stalls.append((time.time(), late))
