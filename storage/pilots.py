"""Pilots: what a teacher's reasoning measured on a few of a run's rows, newest last."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from storage.records import TableRepo


@dataclass(frozen=True)
class Pilot:
    run_id: int
    model: str
    effort: str | None
    max_completion_tokens: int
    rows: int  # rows asked
    answered: int  # answers measured (valid, or invalid but billed)
    cut_off: int  # answers that ran out of max_completion_tokens before they were done
    mean_reasoning_tokens: float
    p90_reasoning_tokens: int
    max_reasoning_tokens: int
    mean_completion_tokens: float
    cost_micro_usd: int
    created_at: str = ""
    id: int | None = None


_COLUMNS = tuple(name for name in Pilot.__dataclass_fields__ if name != "id")


class PilotsRepo(TableRepo):
    table = "pilots"
    record = Pilot
    updatable = frozenset()

    async def add(self, pilot: Pilot) -> Pilot:
        values = {**asdict(pilot), "created_at": pilot.created_at or self.db.now()}
        pilot_id = await self.db.execute(
            f"INSERT INTO pilots ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
            [values[c] for c in _COLUMNS],
        )
        return await self.require(pilot_id)

    async def latest(self, run_id: int, model: str | None = None, effort: str | None = None) -> Pilot | None:
        """The run's newest pilot (of `model` at `effort` when given)."""
        found = [p for p in await self.for_run(run_id)
                 if model is None or (p.model == model and p.effort == effort)]
        return found[-1] if found else None
