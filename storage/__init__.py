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
from storage.reevals import ReevalsRepo
from storage.runs import RunsRepo
from storage.slack_events import SlackEventsRepo
from storage.vectors import VectorsRepo
from storage.watches import WatchesRepo


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
    reevals: ReevalsRepo
    watches: WatchesRepo
    vectors: VectorsRepo

    @classmethod
    async def open(cls, path: str | Path, now: Callable[[], str] = utcnow, redact: Redact = unchanged) -> Storage:
        """Open the database at `path`, migrating it to the latest schema; `now` stamps its rows (the bot's
        clock: bot/core/clock.py) and `redact` masks credentials in the free text stored (bot/core/logs.py)."""
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
            reevals=ReevalsRepo(db),
            watches=WatchesRepo(db),
            vectors=VectorsRepo(db),
        )

    async def close(self) -> None:
        await self.db.close()
