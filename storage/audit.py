"""The audit log: who did what to a run, and when. Rows are only ever added."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.records import TableRepo, dumps, redacted


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor: str
    action: str
    created_at: str
    run_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class AuditRepo(TableRepo):
    table = "audit_log"
    record = AuditEntry
    updatable = frozenset()

    async def add(self, *, run_id: int | None, actor: str, action: str, detail: dict[str, Any] | None = None) -> None:
        await self.db.execute(
            "INSERT INTO audit_log (run_id, actor, action, detail_json, created_at) VALUES (?, ?, ?, ?, ?)",
            (run_id, actor, action, dumps(redacted(detail or {}, self.db.redact)), self.db.now()),
        )
