"""The train and evaluate stages: from collected teacher answers to a fine-tuned student and its eval report.

Training runs at a trainer (bot/trainers) and is followed by the scheduler, which calls `poll` for every job
the database says is active; nothing about a job lives only in memory. Each step is stored before it is
announced and each message that must appear once is claimed in the notices table first, so a bot restarted
at any point neither starts a second job (the idempotency key) nor posts an event twice (the event cursor).
When the job succeeds, the distilled model answers the eval split through the same collection engine, and
the eval report (table and chart) is posted once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.budget import Budget
from bot.cards import usd
from bot.charts import render_chart
from bot.collect import CollectTask
from bot.collection import requests_for, response_format_for
from bot.costs import longest_answer_tokens
from bot.dicl_stage import DiclQuote, DiclStage
from bot.errors import StateError
from bot.evals import DISTILLED, EVAL_SPLIT, baseline_for_run, report_for_run
from bot.events import Note, StageStarted, TableReady, TrainingUpdate
from bot.export import write_predictions
from bot.reasoning import budget_for
from bot.spec import RunSpec
from bot.splits import PreparedRun
from bot.trainers import BACK_ENDS
from bot.trainers.base import BackEnd, Deployment, JobRequest, JobState, JobStatus, Trainer, TrainerQuote
from bot.training_data import TrainingData, training_data_for_run
from storage.approvals import Approval
from storage.jobs import Job
from storage.runs import Run

if TYPE_CHECKING:
    from bot.runs import RunService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainQuote:
    """The training quote with the most the stage can cost: training at the most epochs, the distilled model's
    eval at its longest answers, and the deployment that serves it where the trainer needs one (priced once, in
    the quote's evaluate stage: `data.quote.hosting_micro_usd`)."""

    data: TrainingData
    eval_max_micro_usd: int
    trainer: TrainerQuote

    @property
    def quote_hash(self) -> str:
        """The training data's hash (files, counts, prices, hosting) with the eval's worst case."""
        bound = f"{self.data.quote.quote_hash}:{self.eval_max_micro_usd}"
        return hashlib.sha256(bound.encode()).hexdigest()

    @property
    def estimate_micro_usd(self) -> int:
        return self.data.quote.total_micro_usd

    @property
    def max_micro_usd(self) -> int:
        quote = self.data.quote
        return quote.max_training_cost_micro_usd + self.eval_max_micro_usd + quote.hosting_micro_usd

    def to_dict(self, spec: RunSpec, eval_rows: int) -> dict[str, Any]:
        """The approval request's view: tokens, rows, models, and how the trainer bills."""
        quote = self.data.quote
        return {
            "stage": "train", "trainer": spec.trainer, "student": spec.student,
            "train": {"trained_tokens": quote.trained_tokens, "prompt_tokens": quote.eval_prompt_tokens,
                      "completion_tokens": quote.eval_completion_tokens},
            "rows": {"train": self.data.examples, "eval": eval_rows},
            "training": self.data.to_dict(), "hosting_micro_usd": self.data.quote.hosting_micro_usd,
            "eval_max_micro_usd": self.eval_max_micro_usd,
            "notes": [*self.trainer.notes, *self.data.notes],
        }


def in_context(trainer: str) -> bool:
    """Whether the trainer fine-tunes nothing (trainer=dicl: its stages are bot/dicl_stage.py)."""
    back_end = BACK_ENDS.get(trainer)
    return back_end is not None and back_end.in_context


class TrainingStage:
    def __init__(self, service: RunService, trainers: Callable[[str], BackEnd]) -> None:
        self.service = service
        self.trainers = trainers
        self._trainers: dict[str, Any] = {}
        self.dicl = DiclStage(service)

    def trainer(self, name: str) -> Trainer:
        """The back end called `name`, made once: a fine-tuning `Trainer`, or for `in_context(name)` a `BackEnd`
        whose stages are bot/dicl_stage.py (only its BackEnd part is called)."""
        if name not in self._trainers:
            self._trainers[name] = self.trainers(name)
        return self._trainers[name]

    async def close(self) -> None:
        for trainer in self._trainers.values():
            await trainer.close()

    # ----- before approval ---------------------------------------------------------------------------

    async def quote(self, run: Run, spec: RunSpec, prepared: PreparedRun) -> TrainQuote | DiclQuote:
        """The exact training file and what it costs (trainer=dicl: the examples' index and the longer prompts)."""
        if in_context(spec.trainer):
            return await self.dicl.quote(run, spec, prepared)
        trainer = self.trainer(spec.trainer)
        billing = await trainer.billing(spec.student)
        data = await training_data_for_run(self.service.storage, run.id, spec, prepared, self.service.prices, trainer,
                                           billing)
        fine_tuned = self.service.prices.get(f"ft:{spec.student}")
        budget = budget_for(spec, self.service.prices, DISTILLED, spec.student,
                            longest_answer_tokens(prepared.choices, spec.student), price_model=f"ft:{spec.student}")
        requests = await asyncio.to_thread(requests_for, spec, prepared.eval, spec.student)
        eval_max = sum(fine_tuned.cost_micro_usd(r.prompt_tokens, budget.max_completion_tokens,
                                                 batch=spec.mode == "batch") for r in requests)
        billing = await trainer.quote(spec.student, data.training_file_tokens, data.quote.epochs, len(requests))
        return TrainQuote(data, eval_max, billing)

    async def check_model(self, run: Run, spec: RunSpec) -> None:
        """Refuse a base model past its shutdown date (or not trainable); warn in the thread when it is close."""
        check = await self.trainer(spec.trainer).check_base_model(spec.student)
        if not check.trainable:
            raise StateError(check.message)
        if check.warning:
            await self.service.post_once(run, f"shutdown-warning-{spec.student}", Note(check.message, "warning"))

    # ----- the job ----------------------------------------------------------------------------------

    async def start(self, run_id: int, approval: Approval) -> None:
        """Upload the files and start the job (each step stored, so a retry after a crash resumes it)."""
        service = self.service
        run = await service.storage.runs.require(run_id)
        if in_context(run.spec.get("trainer", "")):
            await self.dicl.start(run_id, approval)
            return
        spec, prepared = await service.prepare_run(run)
        await self.check_model(run, spec)
        trainer = self.trainer(spec.trainer)
        data = await training_data_for_run(service.storage, run.id, spec, prepared, service.prices, trainer,
                                           await trainer.billing(spec.student))
        job = await service.storage.jobs.create(
            run_id=run.id, trainer=trainer.name, idempotency_key=f"distill-run{run.id}-approval{approval.id}",
            base_model=spec.student, quote_micro_usd=data.quote.training_cost_micro_usd,
        )
        folder = service.run_folder(run)
        if job.training_file_id is None:
            await asyncio.to_thread(_write, folder / "training.jsonl", data.training_file)
            file_id = await trainer.upload(data.training_file, f"distill-{run.name}-train.jsonl")
            job = await service.storage.jobs.update(job.id, training_file_id=file_id)
        if data.validation_file and job.validation_file_id is None:
            file_id = await trainer.upload(data.validation_file, f"distill-{run.name}-validation.jsonl")
            job = await service.storage.jobs.update(job.id, validation_file_id=file_id)
        if job.external_id is None:
            external_id = await trainer.start(JobRequest(
                base_model=spec.student, training_file_id=job.training_file_id,
                validation_file_id=job.validation_file_id, idempotency_key=job.idempotency_key,
                # A trainer without "auto" gets the epochs the approved quote assumed.
                epochs=spec.epochs if trainer.auto_epochs else data.quote.epochs,
                learning_rate_multiplier=spec.learning_rate_multiplier,
                batch_size=spec.batch_size, suffix=run.name[:18], seed=spec.seed,
                metadata={"distill_run": str(run.id)},
            ))
            job = await service.storage.jobs.update(job.id, external_id=external_id, status=JobStatus.QUEUED.value)
            await service.storage.audit.add(run_id=run.id, actor="system", action="training-started",
                                            detail={"job": job.id, "external_id": external_id,
                                                    "examples": data.examples, "trainer": trainer.name})
        await service.post_once(run, f"job{job.id}-started", StageStarted(
            "train", f"Fine-tuning {spec.student} at {trainer.name} on {data.examples:,} teacher answers "
                     f"({data.training_file_tokens:,} tokens per epoch); job {job.external_id}.",
            approval.amount_micro_usd))
        await service.refresh_card(run)

    async def poll(self, job: Job) -> None:
        """One look at a job: post its new events and status once, and act on its end."""
        service = self.service
        run = await service.storage.runs.require(job.run_id)
        if run.state != "training":
            return
        trainer = self.trainer(job.trainer)
        state = await trainer.poll(job.external_id)
        page = await trainer.events(job.external_id, job.event_cursor)
        if page.events:
            # Keyed by where the page starts: a bot stopped after posting it but before storing the new cursor reads
            # a longer page from the same place after its restart, and must not post its start again.
            key = f"job{job.id}-events-after-{job.event_cursor}"
            lines = [event.message for event in page.events]
            summary = f"{len(lines)} new event{'s' if len(lines) != 1 else ''} from {trainer.name}:"
            await service.post_once(run, key, TrainingUpdate(state.status.value, state.raw_status, summary, lines))
            job = await service.storage.jobs.update(job.id, event_cursor=page.cursor)
        if state.status.value != job.status or state.raw_status != job.raw_status:
            job = await service.storage.jobs.update(job.id, status=state.status.value, raw_status=state.raw_status)
            if not state.status.terminal:
                await service.post_once(run, f"job{job.id}-status-{state.raw_status}", TrainingUpdate(
                    state.status.value, state.raw_status, _status_line(state)))
            await service.refresh_card(run)
        if state.status is JobStatus.SUCCEEDED:
            await self._succeeded(run, job, state)
        elif state.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            await self._ended(run, job, state)

    async def _succeeded(self, run: Run, job: Job, state: JobState) -> None:
        service = self.service
        price = service.prices.get(job.base_model)
        trained = state.trained_tokens or 0
        cost = price.training_cost_micro_usd(trained)
        job = await service.storage.jobs.update(
            job.id, fine_tuned_model=state.fine_tuned_model, trained_tokens=trained, cost_micro_usd=cost,
            finished_at=service.clock.iso(),
        )
        run = await service.storage.runs.update(run.id, state="evaluating")
        await service.storage.audit.add(run_id=run.id, actor="system", action="training-succeeded",
                                        detail={"job": job.id, "model": state.fine_tuned_model,
                                                "trained_tokens": trained, "cost_micro_usd": cost})
        await service.post_once(run, f"job{job.id}-succeeded", TrainingUpdate(
            state.status.value, state.raw_status,
            f"Training finished: {state.fine_tuned_model}. Trained tokens {trained:,}; cost {usd(cost)} "
            f"(quoted {usd(job.quote_micro_usd or 0)}). Evaluating it on the eval split now."))
        await service.refresh_card(run)
        service.tasks.spawn(f"run-{run.id}", run.id, self.evaluate(run.id))

    async def _ended(self, run: Run, job: Job, state: JobState) -> None:
        service = self.service
        reason = state.error or f"the job ended as {state.raw_status}"
        await service.storage.jobs.update(job.id, error=reason, finished_at=service.clock.iso())
        if state.status is JobStatus.CANCELLED:
            run = await service.storage.runs.update(run.id, state="cancelled")
            message = f"The fine-tuning job was cancelled at the trainer: {reason}"
        else:
            run = await service.storage.runs.update(run.id, state="failed", error=f"Training failed: {reason}")
            message = f"Training failed: {reason}"
        await service.storage.audit.add(run_id=run.id, actor="system", action="training-ended",
                                        detail={"job": job.id, "status": state.status.value, "reason": reason})
        await service.post_once(run, f"job{job.id}-ended", TrainingUpdate(state.status.value, state.raw_status,
                                                                          message))
        await service.refresh_card(run)

    async def cancel(self, run: Run) -> None:
        """Ask the trainer to stop the run's unfinished jobs."""
        for job in await self.service.storage.jobs.for_run(run.id):
            if job.external_id and job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
                state = await self.trainer(job.trainer).cancel(job.external_id)
                await self.service.storage.jobs.update(job.id, status=state.status.value, raw_status=state.raw_status)

    # ----- evaluation and reports --------------------------------------------------------------------

    async def evaluate(self, run_id: int) -> None:
        """The distilled model answers the eval split; then the report is stored and posted once."""
        service = self.service
        run = await service.storage.runs.require(run_id)
        job = next(j for j in reversed(await service.storage.jobs.for_run(run.id)) if j.fine_tuned_model)
        if in_context(job.trainer):
            await self.dicl.evaluate(run_id)
            return
        spec, prepared = await service.prepare_run(run)
        trainer = self.trainer(job.trainer)
        deployment = await trainer.deploy(job.fine_tuned_model)
        if deployment.endpoint_id:
            await service.storage.jobs.update(job.id, endpoint_id=deployment.endpoint_id)
        try:
            outcome = await self._collect_distilled(run, spec, prepared, job, deployment)
        finally:
            hosting = await trainer.undeploy(deployment)
            if deployment.endpoint_id:
                job = await service.storage.jobs.update(job.id, endpoint_id=None,
                                                        hosting_micro_usd=job.hosting_micro_usd + hosting)
                if hosting:
                    await service.post_once(run, f"endpoint-{deployment.endpoint_id}-deleted", Note(
                        f"Deleted the eval's dedicated deployment; hosting it cost {usd(hosting)} for the minutes "
                        "it was ready, as the bot measured them."))
        if outcome.stopped != "done":
            raise StateError(f"The distilled model's evaluation stopped: {outcome.message}")
        await self.post_report(run, once=True)
        run = await service.storage.runs.update(run.id, state="done")
        await service.storage.audit.add(run_id=run.id, actor="system", action="run-done", detail={})
        await service.refresh_card(run)

    async def _collect_distilled(self, run: Run, spec: RunSpec, prepared: PreparedRun, job: Job,
                                 deployment: Deployment) -> Any:
        service = self.service
        approval = await service.storage.approvals.latest(run.id, "train")
        cap = None if approval is None else max(0, approval.amount_micro_usd - (job.cost_micro_usd or 0))
        spent = await service.storage.completions.spend_micro_usd(run.id, roles=[DISTILLED])
        requests = await asyncio.to_thread(requests_for, spec, prepared.eval, deployment.model)
        price_model = f"ft:{job.base_model}"
        task = CollectTask(
            run_id=run.id, split=EVAL_SPLIT, role=DISTILLED, model=deployment.model, requests=requests,
            response_format=response_format_for(prepared), choices=list(prepared.choices),
            budget=budget_for(spec, service.prices, DISTILLED, deployment.model,
                              longest_answer_tokens(prepared.choices, deployment.model), price_model=price_model),
            price_model=price_model,
        )
        collector = service.collection.collector_for(deployment)
        return await collector.collect(task, Budget(cap_micro_usd=cap, spent_micro_usd=spent))

    async def post_baseline(self, run: Run, key: str) -> None:
        """The teacher vs base student table, once per collection (`key`)."""
        table = await baseline_for_run(self.service.storage, run.id)
        chart = await render_chart(table, self.service.run_folder(run))
        await self.service.post_once(run, key, TableReady("Baseline: teacher vs base student", table.body_text(),
                                                          table.verdict, chart))

    async def post_report(self, run: Run, *, once: bool = False) -> None:
        """The eval report (all three models) when the distilled model has answered, else the baseline table."""
        storage = self.service.storage
        has_distilled = any(c.role == DISTILLED for c in await storage.completions.for_run(run.id, split=EVAL_SPLIT))
        if not has_distilled:
            if once:
                raise StateError("The distilled model has no answers on the eval split.")
            await self.post_baseline(run, key="")
            return
        jobs = [j for j in await storage.jobs.for_run(run.id) if j.fine_tuned_model]
        # trainer=dicl asks the student itself: the report names what it was asked with (the job's model name).
        named = jobs[-1].fine_tuned_model if jobs and in_context(jobs[-1].trainer) else None
        report = await report_for_run(storage, run.id, distilled_model=named)
        if once:
            for role, scores in report.scores.items():
                await storage.evals.save(run_id=run.id, role=role, model=scores.model, metrics=scores.to_dict())
        chart = await render_chart(report, self.service.run_folder(run))
        event = TableReady("Eval: teacher vs base student vs distilled student", report.body_text(), report.verdict,
                           chart)
        if once:  # once per distilled model: a run trained again gets the new model's report too
            await self.service.post_once(run, f"eval-report-job{jobs[-1].id}" if jobs else "eval-report", event)
        else:
            await self.service.notifier.post(run, event)

    async def export(self, run: Run) -> Path:
        _, prepared = await self.service.prepare_run(run)
        completions = await self.service.storage.completions.for_run(run.id, split=EVAL_SPLIT)
        if not completions:
            raise StateError(f"Run '{run.name}' has no answers on the eval split to export yet.")
        path = await write_predictions(self.service.run_folder(run), prepared.eval, completions)
        await self.service.notifier.upload(run, path, f"Predictions of run {run.name} on the eval split")
        return path


def _status_line(state: JobState) -> str:
    parts = [f"Training is {state.raw_status.replace('_', ' ')}"]
    if state.progress is not None:
        parts.append(f"{state.progress:.0%} done")
    loss = state.metrics.get("train_loss")
    if loss is not None:
        parts.append(f"train loss {loss:.3f}")
    return ", ".join(parts) + "."


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
