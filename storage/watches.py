"""Watches of distilled models (`/distill watch NAME`) and their periods, each claimed once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.records import TableRepo, dumps, to_record


@dataclass(frozen=True)
class Watch:
    id: int
    run_id: int
    every_seconds: int
    sample: int
    state: str  # asked (waiting for its approval) | on | off
    created_by: str
    created_at: str
    updated_at: str
    metadata: dict[str, str] = field(default_factory=dict)  # the stored-completions filter
    alert_below: float | None = None
    cap_micro_usd: int | None = None  # the monthly cap asked for (None: the most its periods can cost)
    dataset_id: int | None = None  # a file of the model's answers shared for the next periods, instead of the list
    approval_id: int | None = None
    next_due_at: str | None = None


@dataclass(frozen=True)
class WatchTick:
    watch_id: int
    number: int
    due_at: str
    window_start: str
    state: str  # running | done | failed
    created_at: str
    updated_at: str
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def split(self) -> str:
        """The split the period's answers are stored under."""
        return f"watch{self.watch_id}.{self.number}"


class WatchesRepo(TableRepo):
    table = "watches"
    record = Watch
    updatable = frozenset({"state", "approval_id", "next_due_at", "dataset_id"})

    async def add(self, *, run_id: int, every_seconds: int, sample: int, metadata: dict[str, str],
                  alert_below: float | None, cap_micro_usd: int | None, created_by: str) -> Watch:
        now = self.db.now()
        watch_id = await self.db.execute(
            "INSERT INTO watches (run_id, every_seconds, sample, metadata_json, alert_below, cap_micro_usd,"
            " created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, every_seconds, sample, dumps(metadata), alert_below, cap_micro_usd, created_by, now, now))
        return await self.require(watch_id)

    async def due(self, now: str) -> list[Watch]:
        """Watches that are on and whose next period is due at `now` (ISO text, the bot's clock)."""
        return await self.where("state = 'on' AND next_due_at <= ?", (now,))

    async def claim_tick(self, watch_id: int, number: int, due_at: str, window_start: str, next_due_at: str) -> bool:
        """Claim period `number` of the watch and move its next period to `next_due_at`, in one transaction: True for
        the first caller only (across restarts too)."""
        now = self.db.now()
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO watch_ticks (watch_id, number, due_at, window_start, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", (watch_id, number, due_at, window_start, now, now))
            if cursor.rowcount != 1:
                return False
            await conn.execute("UPDATE watches SET next_due_at = ?, updated_at = ? WHERE id = ?",
                               (next_due_at, now, watch_id))
            return True

    async def finish_tick(self, watch_id: int, number: int, state: str, result: dict[str, Any]) -> None:
        await self.db.execute(
            "UPDATE watch_ticks SET state = ?, result_json = ?, updated_at = ? WHERE watch_id = ? AND number = ?",
            (state, dumps(result), self.db.now(), watch_id, number))

    async def ticks(self, watch_id: int, state: str | None = None) -> list[WatchTick]:
        rows = await self.db.fetchall(
            "SELECT * FROM watch_ticks WHERE watch_id = ? AND (? IS NULL OR state = ?) ORDER BY number",
            (watch_id, state, state))
        return [to_record(WatchTick, r) for r in rows]

    async def running_ticks(self) -> list[WatchTick]:
        """Periods whose work a stop interrupted (their watch still on)."""
        rows = await self.db.fetchall(
            "SELECT t.* FROM watch_ticks t JOIN watches w ON w.id = t.watch_id WHERE t.state = 'running'"
            " AND w.state = 'on' ORDER BY t.watch_id, t.number")
        return [to_record(WatchTick, r) for r in rows]
