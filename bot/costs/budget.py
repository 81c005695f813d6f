"""The approved spending cap of a stage, checked before every request.

Each request reserves the most it can cost (its exact prompt tokens, and the max_completion_tokens it sends:
the answer and any hidden reasoning together, bot/prices/reasoning.py) before it is sent; the answer's real cost
replaces the reservation. So actual spend can never pass the cap, even with many requests in flight.

A run's `budget` setting caps the approvals themselves: a stage whose most can pass what is left of it (all the
run has spent counts) is refused before anyone is asked, so the run's total spend stays within it too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.core.money import format_usd


@dataclass
class Budget:
    cap_micro_usd: int | None
    spent_micro_usd: int = 0
    reserved_micro_usd: int = 0
    _settled: asyncio.Condition = field(default_factory=asyncio.Condition, repr=False)

    def reserve(self, amount_micro_usd: int) -> bool:
        """Book `amount` for a request about to be sent; False when that could pass the cap."""
        if self.cap_micro_usd is not None and (
            self.spent_micro_usd + self.reserved_micro_usd + amount_micro_usd > self.cap_micro_usd
        ):
            return False
        self.reserved_micro_usd += amount_micro_usd
        return True

    async def reserve_when_possible(self, amount_micro_usd: int) -> bool:
        """Reserve, waiting for requests in flight to settle first if they hold the room; False when even
        with nothing in flight the request could pass the cap."""
        async with self._settled:
            while not self.reserve(amount_micro_usd):
                if self.reserved_micro_usd == 0:
                    return False
                await self._settled.wait()
            return True

    async def settle(self, reserved_micro_usd: int, actual_micro_usd: int) -> None:
        """Replace a reservation with what the request really cost (0 when it failed)."""
        async with self._settled:
            self.reserved_micro_usd -= reserved_micro_usd
            self.spent_micro_usd += actual_micro_usd
            self._settled.notify_all()

    @property
    def left_micro_usd(self) -> int | None:
        if self.cap_micro_usd is None:
            return None
        return self.cap_micro_usd - self.spent_micro_usd


def over_run_budget(*, run_name: str, stage: str, most_micro_usd: int, budget_micro_usd: int | None,
                    spent_micro_usd: int) -> str | None:
    """Why a stage that can cost `most_micro_usd` does not fit in what is left of the run's `budget` setting
    (everything the run has spent counts against it), or None when it fits or there is no budget."""
    if budget_micro_usd is None or spent_micro_usd + most_micro_usd <= budget_micro_usd:
        return None
    left = max(0, budget_micro_usd - spent_micro_usd)
    return (f"The {stage} stage can cost up to {format_usd(most_micro_usd)}, more than run '{run_name}' has left of "
            f"its budget of {format_usd(budget_micro_usd)} ({format_usd(left)} left, {format_usd(spent_micro_usd)} "
            f"spent). Raise the budget (`/distill set {run_name} budget=...`) or make the stage cheaper (fewer rows "
            "with train= and eval=, a cheaper teacher, a lower teacher_effort or max_answer_tokens).")
