"""Deleting a run's data: `/distill delete NAME` (asked by a person, after a confirmation) and the retention period
(DISTILL_RETENTION_DAYS: the scheduler deletes the data of runs finished longer ago, by the bot's clock).

What goes: the rows of the CSV the run uploaded (unless another run of the workspace uses the same file), the
run's split, every answer, pilot and eval, the team's text in its settings (label, template, system prompt,
choices), the files in its data folder (training file, chart, export), and the files it uploaded to providers
(training and validation files at its trainer, batch input, output and error files at OPENAI_BASE_URL). What stays:
the run's record (name, channel, models, state `deleted`), its approvals and jobs (the amounts and models: what was
spent on what) and the audit trail, with an entry saying who deleted what, when and why. A provider file that could
not be deleted is named in that entry and in the thread, to be deleted at the provider by hand.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass
from datetime import timedelta

from bot.core.errors import StateError
from bot.runs.cards import spend_micro_usd
from bot.runs.ops import RunOps
from bot.trainers.base import TrainerError
from storage.approvals import Approval
from storage.runs import Run
from storage.states import RunState

log = logging.getLogger(__name__)

FINISHED_STATES = (RunState.DONE, RunState.CANCELLED, RunState.FAILED)
TEAM_TEXT = ("label", "template", "system", "choices")  # settings that hold the team's words, not the bot's


@dataclass(frozen=True)
class Deletion:
    """What a deletion removed, and the provider files it could not."""

    uploaded_rows: int
    answers: int
    dataset_kept: bool  # another run uses the same file
    provider_files: int
    kept_files: tuple[str, ...]  # provider file ids still there
    voided: tuple[Approval, ...]  # requests that were waiting for approval

    def describe(self, who: str) -> str:
        """The thread's note (`who`: a mention, or what deleted it)."""
        kept = (f" Could not delete {len(self.kept_files)} file(s) at the provider ({', '.join(self.kept_files)}): "
                "delete them there by hand." if self.kept_files else "")
        rows = ("no uploaded rows (another run uses the same file)" if self.dataset_kept else
                f"{self.uploaded_rows:,} uploaded rows")
        return (f"{who} deleted this run's data: {rows}, {self.answers:,} answers, "
                f"{self.provider_files:,} file(s) at the provider and the run's folder.{kept} The audit trail is kept "
                "(`/distill audit NAME`). Messages already in this thread stay in Slack: delete them there if they "
                "must go.")


class Eraser:
    def __init__(self, service: RunOps) -> None:
        self.service = service

    async def erase(self, run: Run, *, actor: str, why: str) -> Deletion:
        """Delete the run's data (see the module docstring); the run must not be working."""
        if run.state == RunState.DELETED:
            raise StateError(f"Run '{run.name}' was deleted already; `/distill audit {run.name}` shows when and by "
                             "whom.")
        self.service.require_idle(run, "delete its data")
        storage = self.service.storage
        voided = await storage.approvals.void_pending(run.id)
        spent = await spend_micro_usd(storage, run.id)
        deleted, kept = await self._provider_files(run)
        spec = {key: value for key, value in run.spec.items() if key not in TEAM_TEXT}
        erased = await storage.runs.erase_data(run.id, spec=spec, actor=actor, detail={
            "why": why, "provider_files_deleted": deleted, "provider_files_kept": list(kept),
            "spent_micro_usd": spent, "voided_approvals": len(voided)})
        await asyncio.to_thread(shutil.rmtree, self.service.run_folder(run), ignore_errors=True)
        log.info("run %s (%s): data deleted (%s)", run.id, run.name, why)
        return Deletion(erased.uploaded_rows, erased.answers, erased.dataset_kept, deleted, tuple(kept),
                        tuple(voided))

    async def _provider_files(self, run: Run) -> tuple[int, list[str]]:
        """Delete the files the run uploaded: at its jobs' trainers and, for batches, at OPENAI_BASE_URL."""
        storage = self.service.storage
        deleted, kept = 0, []
        for job in await storage.jobs.for_run(run.id):
            for file_id in (job.training_file_id, job.validation_file_id):
                if file_id is None:
                    continue
                try:
                    await self.service.trainer(job.trainer).delete_file(file_id)
                    deleted += 1
                except TrainerError as exc:
                    log.warning("run %s: %s", run.id, exc)
                    kept.append(file_id)
        for batch in await storage.batches.for_run(run.id):
            files = [f for f in (batch.input_file_id, batch.output_file_id, batch.error_file_id) if f]
            failed = await self.service.collection.batches.delete_files(batch)
            deleted += len(files) - len(failed)
            kept += failed
        return deleted, kept

    async def expired(self) -> list[Run]:
        """Runs finished more than DISTILL_RETENTION_DAYS ago (none when it is 0)."""
        days = self.service.settings.retention_days
        if not days:
            return []
        cutoff = self.service.clock.now() - timedelta(days=days)
        return await self.service.storage.runs.finished_before(FINISHED_STATES,
                                                                cutoff.isoformat(timespec="microseconds"))
