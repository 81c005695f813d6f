"""The simulated clock of fine-tuning jobs and batches: wall time, with simulated durations sped up.

Timestamps stay real Unix seconds (so `created_at` is never in the future); only the length of each stage is
divided by `speed`: a 60-simulated-second job takes one real second at speed 60.
"""

from __future__ import annotations

import time


class Clock:
    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"clock_speed must be > 0, got {speed}")
        self.speed = speed

    def now(self) -> float:
        return time.time()

    def later(self, start: float, simulated_seconds: float) -> float:
        """The wall time `simulated_seconds` of simulated time after `start`."""
        return start + simulated_seconds / self.speed
