"""The sandbox's clock: the wall time of the bot's `Clock` (so a test pins "today" for both at once), with the
simulated durations of fine-tuning jobs, batches and endpoints sped up.

Timestamps are Unix seconds of the wall clock (so `created_at` is never in the future); only the length of each
stage is divided by `speed`: a 60-simulated-second job takes one real second at speed 60.
"""

from __future__ import annotations

import datetime as dt

from bot.core.clock import Clock


class JobClock:
    def __init__(self, speed: float = 1.0, wall: Clock | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"clock_speed must be > 0, got {speed}")
        self.speed = speed
        self.wall = wall or Clock()

    def now(self) -> float:
        return self.wall.timestamp()

    def today(self) -> dt.date:
        return self.wall.today()

    def later(self, start: float, simulated_seconds: float) -> float:
        """The wall time `simulated_seconds` of simulated time after `start`."""
        return start + simulated_seconds / self.speed
