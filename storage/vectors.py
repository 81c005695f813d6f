"""Embedding vectors of a run's inputs (trainer=dicl), each with the job that paid for it and its share of the cost.

A vector is float32, stored as its little-endian bytes. Train vectors are the index of the teacher's examples and
serve every later job of the run that embeds with the same model (`latest`); eval vectors are a job's queries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from storage.db import Database
from storage.records import to_record

_COLUMNS = ("run_id", "job_id", "split", "row_index", "model", "text_sha256", "vector", "prompt_tokens",
            "cost_micro_usd", "created_at")


@dataclass(frozen=True)
class StoredVector:
    run_id: int
    job_id: int
    split: str  # train | eval
    row_index: int
    model: str  # the embedding model
    text_sha256: str  # of the text embedded: a row whose prompt changed is embedded again
    vector: bytes  # little-endian float32
    prompt_tokens: int
    cost_micro_usd: int  # its share of what its request cost; the shares of one request add up to that cost
    created_at: str = ""
    id: int | None = None


class VectorsRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save_many(self, vectors: Iterable[StoredVector]) -> None:
        """Store one request's vectors in one transaction (a vector the job already has is kept)."""
        now = self.db.now()
        rows = [[{**asdict(v), "created_at": v.created_at or now}[c] for c in _COLUMNS] for v in vectors]
        if rows:
            await self.db.executemany(
                f"INSERT INTO example_vectors ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
                " ON CONFLICT (job_id, split, row_index) DO NOTHING", rows)

    async def latest(self, run_id: int, split: str, model: str, job_id: int | None = None) -> dict[int, StoredVector]:
        """The newest vector of each row of the run's split embedded with `model` (by any job, or by `job_id`)."""
        rows = await self.db.fetchall(
            "SELECT * FROM example_vectors WHERE run_id = ? AND split = ? AND model = ? AND (? IS NULL OR job_id = ?)"
            " ORDER BY id", (run_id, split, model, job_id, job_id))
        return {r["row_index"]: to_record(StoredVector, r) for r in rows}

    async def spend_micro_usd(self, job_id: int, split: str | None = None) -> tuple[int, int]:
        """What the job paid for its vectors (of one split, when given), and their tokens."""
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(cost_micro_usd), 0), COALESCE(SUM(prompt_tokens), 0) FROM example_vectors"
            " WHERE job_id = ? AND (? IS NULL OR split = ?)", (job_id, split, split))
        return int(row[0]), int(row[1])
