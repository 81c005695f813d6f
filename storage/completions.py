"""Model answers, one per (run, split, role, row), with what each one cost."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from storage.db import Database
from storage.records import to_record

_COLUMNS = (
    "run_id", "row_index", "split", "role", "model", "request_hash", "status", "raw_output", "parsed_label",
    "prompt_tokens", "completion_tokens", "cost_micro_usd", "latency_ms", "provider_request_id",
    "provider_completion_id", "attempts", "error", "reused_from", "created_at", "reasoning_tokens",
)
_UPSERT = (
    f"INSERT INTO completions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
    " ON CONFLICT (run_id, split, role, row_index) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c not in {"run_id", "split", "role", "row_index"})
)


@dataclass(frozen=True)
class Completion:
    run_id: int
    row_index: int
    split: str
    role: str
    model: str
    request_hash: str
    status: str
    raw_output: str | None = None
    parsed_label: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0  # answer and hidden reasoning, as billed
    cost_micro_usd: int = 0
    latency_ms: int | None = None
    provider_request_id: str | None = None
    provider_completion_id: str | None = None
    attempts: int = 1
    error: str | None = None
    reused_from: int | None = None
    created_at: str = ""
    id: int | None = None
    reasoning_tokens: int = 0  # of completion_tokens, the hidden reasoning the provider reported


class CompletionsRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save_many(self, completions: Iterable[Completion]) -> None:
        """Insert or replace (a failed row retried later replaces its failure) in one transaction."""
        now = self.db.now()
        values = []
        for c in completions:
            record = asdict(c)
            record["created_at"] = record["created_at"] or now
            for column in ("error", "raw_output"):  # provider text: it may quote the caller's key
                if record[column] is not None:
                    record[column] = self.db.redact(record[column])
            values.append([record[k] for k in _COLUMNS])
        if values:
            await self.db.executemany(_UPSERT, values)

    async def save(self, completion: Completion) -> None:
        await self.save_many([completion])

    async def paid_answers(self, request_hashes: Iterable[str]) -> dict[str, Completion]:
        """For each request hash answered before (in any run), its original paid answer: reusable for free."""
        rows = await self.db.fetchall(
            "SELECT * FROM completions WHERE id IN (SELECT MIN(id) FROM completions"
            " WHERE request_hash IN (SELECT value FROM json_each(?)) AND status IN ('ok', 'invalid')"
            " AND reused_from IS NULL GROUP BY request_hash)",
            (json.dumps(sorted(set(request_hashes))),),
        )
        return {r["request_hash"]: to_record(Completion, r) for r in rows}

    async def answered_rows(self, run_id: int, split: str, role: str) -> set[int]:
        """Rows that already have an answer (ok or invalid); failed rows are not counted."""
        rows = await self.db.fetchall(
            "SELECT row_index FROM completions WHERE run_id = ? AND split = ? AND role = ?"
            " AND status IN ('ok', 'invalid')",
            (run_id, split, role),
        )
        return {r[0] for r in rows}

    async def answered_requests(self, run_id: int, split: str, role: str) -> dict[int, tuple[str, int | None]]:
        """Rows that already have an answer (ok or invalid): the hash of the request that got it (a row whose
        request has changed since, another teacher or effort, is asked again) and, for an answer cut off at its
        max_completion_tokens, the tokens it had (asked again with a larger budget)."""
        rows = await self.db.fetchall(
            "SELECT row_index, request_hash, CASE WHEN status = 'invalid' AND error LIKE 'cut off:%'"
            " THEN completion_tokens END FROM completions WHERE run_id = ? AND split = ? AND role = ?"
            " AND status IN ('ok', 'invalid')",
            (run_id, split, role),
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    async def cut_off_counts(self, run_id: int) -> dict[tuple[str, str], int]:
        """Answers that ran out of max_completion_tokens before they were done, by (split, role)."""
        rows = await self.db.fetchall(
            "SELECT split, role, COUNT(*) FROM completions WHERE run_id = ? AND status = 'invalid'"
            " AND error LIKE 'cut off:%' GROUP BY split, role",
            (run_id,),
        )
        return {(r[0], r[1]): r[2] for r in rows}

    async def for_run(self, run_id: int, split: str | None = None, role: str | None = None) -> list[Completion]:
        rows = await self.db.fetchall(
            "SELECT * FROM completions WHERE run_id = ? AND (? IS NULL OR split = ?) AND (? IS NULL OR role = ?)"
            " ORDER BY split, role, row_index",
            (run_id, split, split, role, role),
        )
        return [to_record(Completion, r) for r in rows]

    async def spend_micro_usd(self, run_id: int, roles: Iterable[str] | None = None, since: str | None = None) -> int:
        """What the run's answers cost (answers reused from earlier requests cost nothing again), optionally
        only for some roles and only for answers stored after `since`."""
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(cost_micro_usd), 0) FROM completions WHERE run_id = ? AND reused_from IS NULL"
            " AND (? IS NULL OR role IN (SELECT value FROM json_each(?))) AND (? IS NULL OR created_at > ?)",
            (run_id, None if roles is None else 1, json.dumps(list(roles or [])), since, since),
        )
        return int(row[0])

    async def counts(self, run_id: int) -> dict[tuple[str, str, str], int]:
        """Number of answers by (split, role, status)."""
        rows = await self.db.fetchall(
            "SELECT split, role, status, COUNT(*) FROM completions WHERE run_id = ? GROUP BY split, role, status",
            (run_id,),
        )
        return {(r[0], r[1], r[2]): r[3] for r in rows}
