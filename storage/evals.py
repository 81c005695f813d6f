"""Eval results: one metrics record per model of a run, newest last."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.records import TableRepo, dumps


@dataclass(frozen=True)
class EvalResult:
    id: int
    run_id: int
    role: str
    model: str
    created_at: str
    metrics: dict[str, Any] = field(default_factory=dict)


class EvalsRepo(TableRepo):
    table = "evals"
    record = EvalResult
    updatable = frozenset()

    async def save(self, *, run_id: int, role: str, model: str, metrics: dict[str, Any]) -> EvalResult:
        eval_id = await self.db.execute(
            "INSERT INTO evals (run_id, role, model, metrics_json, created_at) VALUES (?, ?, ?, ?, ?)",
            (run_id, role, model, dumps(metrics), self.db.now()),
        )
        return await self.require(eval_id)

    async def latest(self, run_id: int) -> dict[str, EvalResult]:
        """The newest result of each role of the run."""
        newest: dict[str, EvalResult] = {}
        for result in await self.for_run(run_id):
            newest[result.role] = result
        return newest
