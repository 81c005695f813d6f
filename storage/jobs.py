"""Training jobs at a trainer (OpenAI fine-tuning, Together, ...), polled by the scheduler."""

from __future__ import annotations

from dataclasses import dataclass

from storage.records import TableRepo, to_record

JOB_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class Job:
    id: int
    run_id: int
    trainer: str
    idempotency_key: str
    base_model: str
    status: str
    created_at: str
    updated_at: str
    external_id: str | None = None
    training_file_id: str | None = None
    validation_file_id: str | None = None
    raw_status: str | None = None
    fine_tuned_model: str | None = None
    endpoint_id: str | None = None
    trained_tokens: int | None = None
    quote_micro_usd: int | None = None
    cost_micro_usd: int | None = None
    # What serving the distilled model for its eval cost beyond its tokens: a dedicated endpoint's minutes where the
    # back end bills them; trainer=dicl's query embeddings.
    hosting_micro_usd: int = 0
    event_cursor: str | None = None
    error: str | None = None
    finished_at: str | None = None


class JobsRepo(TableRepo):
    table = "jobs"
    record = Job
    updatable = frozenset({
        "external_id", "training_file_id", "validation_file_id", "status", "raw_status", "fine_tuned_model",
        "endpoint_id", "trained_tokens", "quote_micro_usd", "cost_micro_usd", "hosting_micro_usd", "event_cursor",
        "error", "finished_at",
    })
    free_text = frozenset({"error"})

    async def create(self, *, run_id: int, trainer: str, idempotency_key: str, base_model: str,
                     quote_micro_usd: int | None = None) -> Job:
        """Create the job record, or return the one already made with this idempotency key."""
        now = self.db.now()
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO jobs (run_id, trainer, idempotency_key, base_model, quote_micro_usd,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, trainer, idempotency_key, base_model, quote_micro_usd, now, now),
            )
        row = await self.db.fetchone("SELECT * FROM jobs WHERE idempotency_key = ?", (idempotency_key,))
        return to_record(Job, row)

    async def active(self) -> list[Job]:
        return await self.where(f"status NOT IN ({', '.join('?' for _ in JOB_TERMINAL)})", JOB_TERMINAL)
