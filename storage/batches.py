"""Batch API collections (the 50% discount), polled by the scheduler like training jobs."""

from __future__ import annotations

from dataclasses import dataclass

from storage.records import TableRepo

BATCH_TERMINAL = ("stored", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class Batch:
    id: int
    run_id: int
    split: str
    role: str
    model: str
    status: str
    created_at: str
    updated_at: str
    external_id: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    error: str | None = None


class BatchesRepo(TableRepo):
    table = "batches"
    record = Batch
    updatable = frozenset({"external_id", "input_file_id", "output_file_id", "error_file_id", "status", "error"})
    free_text = frozenset({"error"})

    async def create(self, *, run_id: int, split: str, role: str, model: str) -> Batch:
        now = self.db.now()
        batch_id = await self.db.execute(
            "INSERT INTO batches (run_id, split, role, model, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, split, role, model, now, now),
        )
        return await self.require(batch_id)

    async def active(self) -> list[Batch]:
        return await self.where(f"status NOT IN ({', '.join('?' for _ in BATCH_TERMINAL)})", BATCH_TERMINAL)
