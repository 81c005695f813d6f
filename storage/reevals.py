"""Re-evaluations of finished runs on new eval files (`/distill eval NAME`), newest last."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.records import TableRepo


@dataclass(frozen=True)
class Reeval:
    id: int
    run_id: int
    dataset_id: int
    filename: str
    shared_by: str
    state: str  # shared (waiting for /distill eval) | running | done | failed
    created_at: str
    updated_at: str
    approval_id: int | None = None
    report: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def split(self) -> str:
        """The split its answers are stored under, apart from the run's own eval split."""
        return f"reeval{self.id}"


class ReevalsRepo(TableRepo):
    table = "reevals"
    record = Reeval
    updatable = frozenset({"approval_id", "state", "report_json", "error"})

    async def add(self, *, run_id: int, dataset_id: int, filename: str, shared_by: str) -> Reeval:
        now = self.db.now()
        reeval_id = await self.db.execute(
            "INSERT INTO reevals (run_id, dataset_id, filename, shared_by, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)", (run_id, dataset_id, filename, shared_by, now, now))
        return await self.require(reeval_id)

    async def in_state(self, state: str) -> list[Reeval]:
        return await self.where("state = ?", (state,))
