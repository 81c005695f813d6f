"""Runs (one Slack thread each) and the dataset rows each run uses, by split."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from storage.records import TableRepo, dumps, redacted
from storage.states import TRANSITIONS, RunState


class StateConflict(Exception):
    """A state change the run's current state does not allow (another task moved the run first)."""


@dataclass(frozen=True)
class Run:
    id: int
    name: str
    channel_id: str
    requester: str
    state: RunState
    created_at: str
    updated_at: str
    thread_ts: str | None = None
    card_ts: str | None = None
    dataset_id: int | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    state_before: RunState | None = None
    error: str | None = None
    eval_dataset_id: int | None = None  # a separate eval file (bot/runs/eval_files.py), else the eval split is carved

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", RunState(self.state))
        if self.state_before is not None:
            object.__setattr__(self, "state_before", RunState(self.state_before))


@dataclass(frozen=True)
class Erased:
    """What erase_data removed."""

    uploaded_rows: int  # rows of the run's CSV (0 when another run still uses the same file)
    answers: int
    dataset_kept: bool  # another run uses the same file


@dataclass(frozen=True)
class RunRow:
    split: str
    row_index: int
    input_hash: str
    gold_label: str | None


class RunsRepo(TableRepo):
    table = "runs"
    record = Run
    updatable = frozenset({"thread_ts", "card_ts", "dataset_id", "spec_json", "state", "state_before", "error",
                           "eval_dataset_id"})
    free_text = frozenset({"error"})

    async def update(self, row_id: int, *, expect: RunState | None = None, **changes: Any) -> Run:
        """Change the run's columns. A new state is a compare-and-set: it must be reachable from the stored one
        (TRANSITIONS) and, with `expect`, the stored one must be that; otherwise StateConflict and nothing changes."""
        if "state" not in changes:
            return await super().update(row_id, **changes)
        target = RunState(changes["state"])
        async with self.db.transaction() as conn:
            row = await (await conn.execute("SELECT state FROM runs WHERE id = ?", (row_id,))).fetchone()
            current = RunState(row[0]) if row else None
            if current is not None and (target not in TRANSITIONS[current] or expect not in (None, current)):
                raise StateConflict(f"run {row_id} is {current}, so it cannot become {target}"
                                    + (f" (expected {expect})" if expect else ""))
            await self.write(conn, row_id, changes)
        return await self.require(row_id)

    async def create(self, *, name: str, channel_id: str, requester: str, spec: dict[str, Any]) -> Run:
        now = self.db.now()
        run_id = await self.db.execute(
            "INSERT INTO runs (name, channel_id, requester, spec_json, state, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'created', ?, ?)",
            (name, channel_id, requester, dumps(spec), now, now),
        )
        return await self.require(run_id)

    async def by_name(self, channel_id: str, name: str) -> Run | None:
        found = await self.where("channel_id = ? AND name = ?", (channel_id, name))
        return found[0] if found else None

    async def by_thread(self, channel_id: str, thread_ts: str) -> Run | None:
        found = await self.where("channel_id = ? AND thread_ts = ?", (channel_id, thread_ts))
        return found[0] if found else None

    async def in_channel(self, channel_id: str) -> list[Run]:
        return await self.where("channel_id = ?", (channel_id,))

    async def in_states(self, states: Iterable[str]) -> list[Run]:
        states = list(states)
        return await self.where(f"state IN ({', '.join('?' for _ in states)})", states)

    async def finished_before(self, states: Iterable[str], moment: str) -> list[Run]:
        """Runs in one of `states` whose last change is older than `moment` (ISO text, as the rows are stamped)."""
        states = list(states)
        return await self.where(f"state IN ({', '.join('?' for _ in states)}) AND updated_at < ?", [*states, moment])

    async def erase_data(self, run_id: int, *, spec: dict[str, Any], actor: str, detail: dict[str, Any]) -> Erased:
        """Remove the run's data in one transaction: its answers, split, evals, pilots, notices and batches, and its
        dataset unless another run uses it; the run keeps `spec` (without the team's text) and the state `deleted`.
        Its approvals, jobs (their file ids cleared) and audit entries stay: the trail of what was spent on what.
        An answer another run reused becomes that run's own, at no cost (it was paid here). The audit entry
        `run-deleted` (`detail` and the counts) is written in the same transaction."""
        async with self.db.transaction() as conn:
            run = await (await conn.execute("SELECT dataset_id FROM runs WHERE id = ?", (run_id,))).fetchone()
            await conn.execute(
                "UPDATE completions SET reused_from = NULL, cost_micro_usd = 0 WHERE run_id != ? AND reused_from IN"
                " (SELECT id FROM completions WHERE run_id = ?)", (run_id, run_id))
            answers = (await conn.execute("DELETE FROM completions WHERE run_id = ?", (run_id,))).rowcount
            for table in ("run_rows", "evals", "pilots", "notices", "batches"):
                await conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            await conn.execute("UPDATE jobs SET training_file_id = NULL, validation_file_id = NULL WHERE run_id = ?",
                               (run_id,))
            await conn.execute(
                "UPDATE runs SET dataset_id = NULL, spec_json = ?, state = 'deleted', state_before = NULL,"
                " error = NULL, updated_at = ? WHERE id = ?", (dumps(spec), self.db.now(), run_id))
            uploaded = 0
            dataset_id = run["dataset_id"] if run else None
            shared = dataset_id is not None and await (await conn.execute(
                "SELECT 1 FROM runs WHERE dataset_id = ? LIMIT 1", (dataset_id,))).fetchone()
            if dataset_id is not None and not shared:
                uploaded = (await (await conn.execute("SELECT COUNT(*) FROM dataset_rows WHERE dataset_id = ?",
                                                      (dataset_id,))).fetchone())[0]
                await conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))  # its rows cascade
            counted = {**detail, "uploaded_rows": uploaded, "answers": answers, "dataset_kept": bool(shared)}
            await conn.execute(
                "INSERT INTO audit_log (run_id, actor, action, detail_json, created_at) VALUES (?, ?, ?, ?, ?)",
                (run_id, actor, "run-deleted", dumps(redacted(counted, self.db.redact)), self.db.now()))
        return Erased(uploaded, answers, bool(shared))

    async def replace_rows(self, run_id: int, rows: Iterable[RunRow]) -> None:
        """Set the run's split rows (all of them, replacing any earlier split)."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM run_rows WHERE run_id = ?", (run_id,))
            await conn.executemany(
                "INSERT INTO run_rows (run_id, split, row_index, input_hash, gold_label) VALUES (?, ?, ?, ?, ?)",
                [(run_id, r.split, r.row_index, r.input_hash, r.gold_label) for r in rows],
            )

    async def rows(self, run_id: int, split: str | None = None) -> list[RunRow]:
        if split is None:
            found = await self.db.fetchall(
                "SELECT split, row_index, input_hash, gold_label FROM run_rows WHERE run_id = ? ORDER BY row_index",
                (run_id,),
            )
        else:
            found = await self.db.fetchall(
                "SELECT split, row_index, input_hash, gold_label FROM run_rows"
                " WHERE run_id = ? AND split = ? ORDER BY row_index",
                (run_id, split),
            )
        return [RunRow(**dict(r)) for r in found]
