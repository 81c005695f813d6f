"""Spending requests bound to a quote hash, and each approver's decision on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.records import TableRepo, dumps, to_record


@dataclass(frozen=True)
class Decision:
    user_id: str
    decision: str
    created_at: str


@dataclass(frozen=True)
class Approval:
    id: int
    run_id: int
    stage: str
    quote_hash: str
    amount_micro_usd: int
    requester: str
    status: str
    auto_approved: int
    created_at: str
    expires_at: str
    quote: dict[str, Any] = field(default_factory=dict)
    message_ts: str | None = None
    decided_at: str | None = None
    decisions: tuple[Decision, ...] = ()

    def approvers(self) -> set[str]:
        return {d.user_id for d in self.decisions if d.decision == "approve"}


class ApprovalsRepo(TableRepo):
    table = "approvals"
    record = Approval
    updatable = frozenset()

    async def create(
        self,
        *,
        run_id: int,
        stage: str,
        quote_hash: str,
        amount_micro_usd: int,
        quote: dict[str, Any],
        requester: str,
        expires_at: str,
        status: str = "pending",
        auto_approved: bool = False,
    ) -> Approval:
        now = self.db.now()
        approval_id = await self.db.execute(
            "INSERT INTO approvals (run_id, stage, quote_hash, amount_micro_usd, quote_json, requester, status,"
            " auto_approved, created_at, expires_at, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, stage, quote_hash, amount_micro_usd, dumps(quote), requester, status, int(auto_approved),
             now, expires_at, now if status != "pending" else None),
        )
        return await self.require(approval_id)

    async def get(self, approval_id: int) -> Approval | None:
        """The approval with its decisions."""
        row = await self.db.fetchone("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        if row is None:
            return None
        decisions = await self.db.fetchall(
            "SELECT user_id, decision, created_at FROM approval_decisions WHERE approval_id = ? ORDER BY created_at",
            (approval_id,),
        )
        base = to_record(Approval, row)
        return Approval(**{**base.__dict__, "decisions": tuple(Decision(**dict(d)) for d in decisions)})

    async def latest(self, run_id: int, stage: str) -> Approval | None:
        row = await self.db.fetchone(
            "SELECT id FROM approvals WHERE run_id = ? AND stage = ? ORDER BY id DESC LIMIT 1", (run_id, stage)
        )
        return await self.get(row[0]) if row else None

    async def for_run(self, run_id: int, statuses: tuple[str, ...] | None = None) -> list[Approval]:
        rows = await self.db.fetchall("SELECT id, status FROM approvals WHERE run_id = ? ORDER BY id", (run_id,))
        return [await self.require(r[0]) for r in rows if statuses is None or r[1] in statuses]

    async def pending_expired_by(self, now: str) -> list[Approval]:
        """Requests still pending whose expires_at (ISO 8601, UTC) is at or before `now`."""
        rows = await self.db.fetchall(
            "SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ? ORDER BY id", (now,)
        )
        return [await self.require(r[0]) for r in rows]

    async def record_decision(self, approval_id: int, user_id: str, decision: str) -> bool:
        """Store one user's decision; False when that user had already decided (a second click)."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO approval_decisions (approval_id, user_id, decision, created_at)"
                " VALUES (?, ?, ?, ?)",
                (approval_id, user_id, decision, self.db.now()),
            )
            return cursor.rowcount == 1

    async def set_status(self, approval_id: int, status: str, *, only_if: str | None = "pending") -> bool:
        """Move to a final status; with `only_if`, only from that status (False when it was not)."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE approvals SET status = ?, decided_at = ? WHERE id = ? AND (? IS NULL OR status = ?)",
                (status, self.db.now(), approval_id, only_if, only_if),
            )
            return cursor.rowcount == 1

    async def set_message_ts(self, approval_id: int, message_ts: str) -> None:
        await self.db.execute("UPDATE approvals SET message_ts = ? WHERE id = ?", (message_ts, approval_id))

    async def void_pending(self, run_id: int) -> list[Approval]:
        """Void every request of the run still waiting for a decision (its spec or data changed)."""
        pending = await self.for_run(run_id, statuses=("pending",))
        await self.db.execute(
            "UPDATE approvals SET status = 'voided', decided_at = ? WHERE run_id = ? AND status = 'pending'",
            (self.db.now(), run_id),
        )
        return pending
