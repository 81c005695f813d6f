"""Persistence: SQLite through aiosqlite, one repository per aggregate. SQL lives here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storage.approvals import ApprovalsRepo
from storage.audit import AuditRepo
from storage.batches import BatchesRepo
from storage.completions import CompletionsRepo
from storage.datasets import DatasetsRepo
from storage.db import Database, Redact, unchanged, utcnow
from storage.evals import EvalsRepo
from storage.jobs import JobsRepo
from storage.notices import NoticesRepo
from storage.pilots import PilotsRepo
from storage.runs import RunsRepo
from storage.slack_events import SlackEventsRepo


@dataclass(frozen=True)
class Storage:
    db: Database
    datasets: DatasetsRepo
    runs: RunsRepo
    completions: CompletionsRepo
    approvals: ApprovalsRepo
    jobs: JobsRepo
    batches: BatchesRepo
    evals: EvalsRepo
    audit: AuditRepo
    notices: NoticesRepo
    slack_events: SlackEventsRepo
    pilots: PilotsRepo

    @classmethod
    async def open(cls, path: str | Path, now: Callable[[], str] = utcnow, redact: Redact = unchanged) -> Storage:
        """Open the database at `path`, migrating it to the latest schema; `now` stamps its rows (the bot's
        clock: bot/clock.py) and `redact` masks credentials in the free text stored (bot/logs.py)."""
        db = await Database.open(path, now=now, redact=redact)
        return cls(
            db=db,
            datasets=DatasetsRepo(db),
            runs=RunsRepo(db),
            completions=CompletionsRepo(db),
            approvals=ApprovalsRepo(db),
            jobs=JobsRepo(db),
            batches=BatchesRepo(db),
            evals=EvalsRepo(db),
            audit=AuditRepo(db),
            notices=NoticesRepo(db),
            slack_events=SlackEventsRepo(db),
            pilots=PilotsRepo(db),
        )

    async def close(self) -> None:
        await self.db.close()
