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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.collect.context import StageContext
from bot.collect.embeddings import Embedder
from bot.collect.engine import CollectTask
from bot.collect.requests import requests_for
from bot.core.errors import StateError
from bot.core.events import Note, StageStarted, TableReady, TrainingUpdate
from bot.core.money import format_usd
from bot.costs.budget import Budget
from bot.data.splits import PreparedRow, PreparedRun
from bot.evaluate.charts import render_chart
from bot.evaluate.export import write_predictions
from bot.evaluate.grader_report import report_for_run as grader_report_for_run
from bot.evaluate.grader_report import uses_graders
from bot.evaluate.grading import (
    ROLES,
    cosine_max_micro_usd,
    cosine_pairs,
    embed_cosines,
    eval_answers,
    grade,
    grades_for_export,
    is_judgment,
    judge_calls,
    judge_max_micro_usd,
    judge_tasks,
)
from bot.evaluate.report import baseline_event
from bot.evaluate.scores import DISTILLED, EVAL_SPLIT, report_for_run
from bot.graders import STORED, family
from bot.spec.budgets import budget_for
from bot.spec.settings import RunSpec
from bot.train.dicl import DiclQuote, DiclStage
from bot.train.examples import TrainingData, training_data_for_run
from bot.trainers import BACK_ENDS
from bot.trainers.base import Deployment, JobRequest, JobState, JobStatus, TrainerQuote
from storage.approvals import Approval
from storage.jobs import Job
from storage.runs import Run
from storage.states import RunState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainQuote:
    """The training quote with the most the stage can cost: training at the most epochs, the distilled model's
    eval at its longest answers, and the deployment that serves it where the trainer needs one (priced once, in
    the quote's evaluate stage: `data.quote.hosting_micro_usd`)."""

    data: TrainingData
    eval_max_micro_usd: int  # the distilled model's answers and the model graders' judge, at their most
    trainer: TrainerQuote
    judge_max_micro_usd: int = 0  # of eval_max_micro_usd, the judge
    judge_model: str | None = None

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
            "notes": [*self.trainer.notes, *self.data.notes, *self._judge_note()],
        }


    def _judge_note(self) -> list[str]:
        if not self.judge_max_micro_usd:
            return []
        return [f"The eval's model graders ask the judge ({self.judge_model}) about every model's answers: at most "
                f"{format_usd(self.judge_max_micro_usd)} of this cap, every request at its max_completion_tokens."]


def in_context(trainer: str) -> bool:
    """Whether the trainer fine-tunes nothing (trainer=dicl: its stages are bot/train/dicl.py)."""
    back_end = BACK_ENDS.get(trainer)
    return back_end is not None and back_end.in_context


class TrainingStage:
    def __init__(self, context: StageContext) -> None:
        self.context = context
        self.dicl = DiclStage(context, self.check_model, self.post_report)

    # ----- before approval ---------------------------------------------------------------------------

    async def quote(self, run: Run, spec: RunSpec, prepared: PreparedRun) -> TrainQuote | DiclQuote:
        """The exact training file and what it costs (trainer=dicl: the examples' index and the longer prompts);
        refuses a base model the provider no longer trains."""
        if in_context(spec.trainer):
            return await self.dicl.quote(run, spec, prepared)
        trainer = self.context.trainer_for(spec.trainer)
        billing = await trainer.billing(spec.student)
        data = await training_data_for_run(self.context.storage, run.id, spec, prepared, self.context.prices, trainer,
                                           billing)
        fine_tuned = self.context.prices.get(f"ft:{spec.student}")
        longest = spec.answer_format(prepared.choices).longest_tokens(spec.student, spec.max_answer_tokens)
        budget = budget_for(spec, self.context.prices, DISTILLED, spec.student, longest,
                            price_model=f"ft:{spec.student}")
        requests = await asyncio.to_thread(requests_for, spec, prepared.eval, spec.student)
        eval_max = sum(fine_tuned.cost_micro_usd(r.prompt_tokens, budget.max_completion_tokens,
                                                 batch=spec.mode == "batch") for r in requests)
        judge_max = await self._judge_max(run, spec, prepared, budget.max_completion_tokens)
        billing = await trainer.quote(spec.student, data.training_file_tokens, data.quote.epochs, len(requests))
        return TrainQuote(data, eval_max + judge_max, billing, judge_max, spec.judge_model)

    async def _judge_max(self, run: Run, spec: RunSpec, prepared: PreparedRun, distilled_tokens: int) -> int:
        """The most the model graders' judge can cost in the eval: on the teacher's and base student's stored answers,
        and on distilled answers as long as they may be."""
        if not uses_graders(spec) or not any(family(name) in STORED for name in spec.grader_names):
            return 0
        completions = await self.context.storage.completions.for_run(run.id, split=EVAL_SPLIT)
        answers = eval_answers(prepared.eval, [c for c in completions if c.role != DISTILLED])
        prices, unanswered = self.context.prices, {DISTILLED: distilled_tokens}
        return await asyncio.to_thread(lambda: judge_max_micro_usd(run.id, spec, answers, prices, unanswered)
                                       + cosine_max_micro_usd(spec, answers, prices, unanswered))

    async def check_model(self, run: Run, spec: RunSpec) -> None:
        """Refuse a base model past its shutdown date (or not trainable); warn in the thread when it is close."""
        check = await self.context.trainer_for(spec.trainer).check_base_model(spec.student)
        if not check.trainable:
            raise StateError(check.message)
        if check.warning:
            await self.context.post_once(run, f"shutdown-warning-{spec.student}", Note(check.message, "warning"))

    # ----- the job ----------------------------------------------------------------------------------

    async def start(self, run_id: int, approval: Approval) -> None:
        """Upload the files and start the job (each step stored, so a retry after a crash resumes it)."""
        context = self.context
        run = await context.storage.runs.require(run_id)
        if in_context(run.spec.get("trainer", "")):
            await self.dicl.start(run_id, approval)
            return
        spec, prepared = await context.prepare_run(run)
        await self.check_model(run, spec)
        trainer = self.context.trainer_for(spec.trainer)
        data = await training_data_for_run(context.storage, run.id, spec, prepared, context.prices, trainer,
                                           await trainer.billing(spec.student))
        job = await context.storage.jobs.create(
            run_id=run.id, trainer=trainer.name, idempotency_key=f"distill-run{run.id}-approval{approval.id}",
            base_model=spec.student, quote_micro_usd=data.quote.training_cost_micro_usd,
        )
        folder = context.run_folder(run)
        if job.training_file_id is None:
            await asyncio.to_thread(_write, folder / "training.jsonl", data.training_file)
            file_id = await trainer.upload(data.training_file, f"distill-{run.name}-train.jsonl")
            job = await context.storage.jobs.update(job.id, training_file_id=file_id)
        if data.validation_file and job.validation_file_id is None:
            file_id = await trainer.upload(data.validation_file, f"distill-{run.name}-validation.jsonl")
            job = await context.storage.jobs.update(job.id, validation_file_id=file_id)
        if job.external_id is None:
            external_id = await trainer.start(JobRequest(
                base_model=spec.student, training_file_id=job.training_file_id,
                validation_file_id=job.validation_file_id, idempotency_key=job.idempotency_key,
                # A trainer without "auto" gets the epochs the approved quote assumed.
                epochs=spec.epochs if trainer.auto_epochs else data.quote.epochs,
                learning_rate_multiplier=spec.learning_rate_multiplier,
                batch_size=spec.batch_size, suffix=run.name[:18], seed=spec.seed,
                # A trainer that bills by time compares the job with the GPU time these tokens were quoted.
                metadata={"distill_run": str(run.id), "quoted_trained_tokens": str(data.quote.trained_tokens)},
            ))
            job = await context.storage.jobs.update(job.id, external_id=external_id, status=JobStatus.QUEUED.value)
            await context.storage.audit.add(run_id=run.id, actor="system", action="training-started",
                                            detail={"job": job.id, "external_id": external_id,
                                                    "examples": data.examples, "trainer": trainer.name})
        await context.post_once(run, f"job{job.id}-started", StageStarted(
            "train", f"Fine-tuning {spec.student} at {trainer.name} on {data.examples:,} teacher answers "
                     f"({data.training_file_tokens:,} tokens per epoch); job {job.external_id}.",
            approval.amount_micro_usd))
        await context.refresh_card(run)

    async def poll(self, job: Job) -> None:
        """One look at a job: post its new events and status once, and act on its end."""
        context = self.context
        run = await context.storage.runs.require(job.run_id)
        if run.state != RunState.TRAINING:
            return
        trainer = self.context.trainer_for(job.trainer)
        state = await trainer.poll(job.external_id)
        page = await trainer.events(job.external_id, job.event_cursor)
        if page.events:
            # Keyed by where the page starts: a bot stopped after posting it but before storing the new cursor reads
            # a longer page from the same place after its restart, and must not post its start again.
            key = f"job{job.id}-events-after-{job.event_cursor}"
            lines = [event.message for event in page.events]
            summary = f"{len(lines)} new event{'s' if len(lines) != 1 else ''} from {trainer.name}:"
            await context.post_once(run, key, TrainingUpdate(state.status.value, state.raw_status, summary, lines))
            job = await context.storage.jobs.update(job.id, event_cursor=page.cursor)
        if state.status.value != job.status or state.raw_status != job.raw_status:
            job = await context.storage.jobs.update(job.id, status=state.status.value, raw_status=state.raw_status)
            if not state.status.terminal:
                await context.post_once(run, f"job{job.id}-status-{state.raw_status}", TrainingUpdate(
                    state.status.value, state.raw_status, _status_line(state)))
            await context.refresh_card(run)
        if state.status is JobStatus.SUCCEEDED:
            await self._succeeded(run, job, state)
        elif state.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            await self._ended(run, job, state)

    async def _succeeded(self, run: Run, job: Job, state: JobState) -> None:
        context = self.context
        trained = state.trained_tokens or 0
        cost = (state.cost_micro_usd if state.cost_micro_usd is not None
                else context.prices.get(job.base_model).training_cost_micro_usd(trained))
        job = await context.storage.jobs.update(
            job.id, fine_tuned_model=state.fine_tuned_model, trained_tokens=trained, cost_micro_usd=cost,
            finished_at=context.clock.iso(),
        )
        run = await context.storage.runs.update(run.id, expect=RunState.TRAINING, state=RunState.EVALUATING)
        await context.storage.audit.add(run_id=run.id, actor="system", action="training-succeeded",
                                        detail={"job": job.id, "model": state.fine_tuned_model,
                                                "trained_tokens": trained, "cost_micro_usd": cost})
        await context.post_once(run, f"job{job.id}-succeeded", TrainingUpdate(
            state.status.value, state.raw_status,
            f"Training finished: {state.fine_tuned_model}. Trained tokens {trained:,}; cost {format_usd(cost)} "
            f"(quoted {format_usd(job.quote_micro_usd or 0)}). {state.cost_note + ' ' if state.cost_note else ''}"
            "Evaluating it on the eval split now."))
        await context.refresh_card(run)
        context.tasks.spawn(f"run-{run.id}", run.id, self.evaluate(run.id))

    async def _ended(self, run: Run, job: Job, state: JobState) -> None:
        context = self.context
        reason = state.error or f"the job ended as {state.raw_status}"
        await context.storage.jobs.update(job.id, error=reason, finished_at=context.clock.iso())
        if state.status is JobStatus.CANCELLED:
            run = await context.storage.runs.update(run.id, state=RunState.CANCELLED)
            message = f"The fine-tuning job was cancelled at the trainer: {reason}"
        else:
            run = await context.storage.runs.update(run.id, state=RunState.FAILED,
                                                    error=f"Training failed: {reason}")
            message = f"Training failed: {reason}"
        await context.storage.audit.add(run_id=run.id, actor="system", action="training-ended",
                                        detail={"job": job.id, "status": state.status.value, "reason": reason})
        await context.post_once(run, f"job{job.id}-ended", TrainingUpdate(state.status.value, state.raw_status,
                                                                          message))
        await context.refresh_card(run)

    async def cancel(self, run: Run) -> None:
        """Ask the trainer to stop the run's unfinished jobs."""
        for job in await self.context.storage.jobs.for_run(run.id):
            if job.external_id and job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
                state = await self.context.trainer_for(job.trainer).cancel(job.external_id)
                await self.context.storage.jobs.update(job.id, status=state.status.value, raw_status=state.raw_status)

    # ----- evaluation and reports --------------------------------------------------------------------

    async def evaluate(self, run_id: int) -> None:
        """The distilled model answers the eval split; then the report is stored and posted once."""
        context = self.context
        run = await context.storage.runs.require(run_id)
        job = next(j for j in reversed(await context.storage.jobs.for_run(run.id)) if j.fine_tuned_model)
        if in_context(job.trainer):
            await self.dicl.evaluate(run_id)
            return
        spec, prepared = await context.prepare_run(run)
        trainer = self.context.trainer_for(job.trainer)
        deployment = await trainer.deploy(job.fine_tuned_model)
        if deployment.endpoint_id:
            await context.storage.jobs.update(job.id, endpoint_id=deployment.endpoint_id)
        try:
            outcome = await self._collect_distilled(run, spec, prepared, job, deployment)
        finally:
            hosting = await trainer.undeploy(deployment)
            if deployment.endpoint_id:
                job = await context.storage.jobs.update(job.id, endpoint_id=None,
                                                        hosting_micro_usd=job.hosting_micro_usd + hosting)
                if hosting:
                    await context.post_once(run, f"endpoint-{deployment.endpoint_id}-deleted", Note(
                        f"Deleted the eval's dedicated deployment; hosting it cost {format_usd(hosting)} for the "
                        "minutes it was ready, as the bot measured them."))
        if outcome.stopped != "done":
            raise StateError(f"The distilled model's evaluation stopped: {outcome.message}")
        if uses_graders(spec):
            await self._judge(run, spec, prepared)
        await self.post_report(run, once=True)
        run = await context.storage.runs.update(run.id, expect=RunState.EVALUATING, state=RunState.DONE)
        await context.storage.audit.add(run_id=run.id, actor="system", action="run-done", detail={})
        await context.refresh_card(run)

    async def _collect_distilled(self, run: Run, spec: RunSpec, prepared: PreparedRun, job: Job,
                                 deployment: Deployment) -> Any:
        context = self.context
        approval = await context.storage.approvals.latest(run.id, "train")
        cap = None if approval is None else max(0, approval.amount_micro_usd - (job.cost_micro_usd or 0))
        spent = await context.storage.completions.spend_micro_usd(run.id, roles=[DISTILLED])
        task = await self.distilled_task(run, spec, prepared, prepared.eval, EVAL_SPLIT, job, deployment.model)
        collector = context.collector_for(deployment)
        return await collector.collect(task, Budget(cap_micro_usd=cap, spent_micro_usd=spent))

    async def distilled_task(self, run: Run, spec: RunSpec, prepared: PreparedRun, rows: list[PreparedRow],
                             split: str, job: Job, model: str) -> CollectTask:
        """The distilled model's requests on `rows` (`model`: the name it answers to; priced as ft:<base>)."""
        requests = await asyncio.to_thread(requests_for, spec, rows, model)
        price_model = f"ft:{job.base_model}"
        answer = spec.answer_format(prepared.choices)
        return CollectTask(
            run_id=run.id, split=split, role=DISTILLED, model=model, requests=requests, answer=answer,
            budget=budget_for(spec, self.context.prices, DISTILLED, model,
                              answer.longest_tokens(model, spec.max_answer_tokens), price_model=price_model),
            price_model=price_model, run_name=run.name,
        )

    async def _judge(self, run: Run, spec: RunSpec, prepared: PreparedRun) -> None:
        """The model graders' judgments and the cosine grader's embeddings of every model's eval answers, within what
        is left of the train stage's approved cap (what is stored already is not asked again)."""
        context = self.context
        completions = await context.storage.completions.for_run(run.id, split=EVAL_SPLIT)
        answers = eval_answers(prepared.eval, completions)
        tasks = await asyncio.to_thread(
            lambda: judge_tasks(run.id, spec, judge_calls(spec, answers, ROLES), context.prices))
        pairs = cosine_pairs(spec, answers)
        if not tasks and not pairs:
            return
        approval = await context.storage.approvals.latest(run.id, "train")
        job = next(j for j in reversed(await context.storage.jobs.for_run(run.id)) if j.fine_tuned_model)
        cap = None if approval is None else max(0, approval.amount_micro_usd - (job.cost_micro_usd or 0)
                                                 - job.hosting_micro_usd)
        judged = {c.role for c in completions if is_judgment(c.role)} | {t.role for t in tasks}
        spent = await context.storage.completions.spend_micro_usd(run.id, roles=[DISTILLED, *judged])
        budget = Budget(cap_micro_usd=cap, spent_micro_usd=spent)
        outcomes = await asyncio.gather(*(context.collector_for(None).collect(task, budget) for task in tasks))
        why = next((o.message or o.stopped for o in outcomes if o.stopped != "done"), None)
        if pairs:
            collector = context.collector_for(None)
            provider = collector.provider
            embedder = Embedder(provider.client, context.prices, collector.limiters, provider.base_url)
            why = await embed_cosines(embedder, context.storage, run.id, pairs, budget) or why
        if why is not None:
            await context.post_once(run, "judging-stopped", Note(
                f"The graders stopped before every answer was judged: {why}. The report leaves the rows they did not "
                "grade out of those graders' figures.", "warning"))

    async def post_baseline(self, run: Run, key: str) -> None:
        """The teacher vs base student table, once per collection (`key`)."""
        spec, prepared = await self.context.prepare_run(run)
        await self.context.post_once(run, key, await baseline_event(self.context.storage, run.id, spec, prepared.eval,
                                                                    self.context.run_folder(run)))

    async def post_report(self, run: Run, *, once: bool = False) -> None:
        """The eval report (all three models) when the distilled model has answered, else the baseline table."""
        storage = self.context.storage
        has_distilled = any(c.role == DISTILLED for c in await storage.completions.for_run(run.id, split=EVAL_SPLIT))
        if not has_distilled:
            if once:
                raise StateError("The distilled model has no answers on the eval split.")
            await self.post_baseline(run, key="")
            return
        spec, prepared = await self.context.prepare_run(run)
        jobs = [j for j in await storage.jobs.for_run(run.id) if j.fine_tuned_model]
        job = jobs[-1] if jobs else None
        if uses_graders(spec):
            report = await grader_report_for_run(storage, run.id, spec, prepared.eval, "eval",
                                                 job.hosting_micro_usd if job else 0)
        else:
            # trainer=dicl asks the student itself: the report names what it was asked with (the job's model name).
            named = job.fine_tuned_model if job and in_context(job.trainer) else None
            report = await report_for_run(storage, run.id, distilled_model=named)
        if once:
            for role, scores in report.scores.items():
                await storage.evals.save(run_id=run.id, role=role, model=scores.model,
                                         metrics=report.role_metrics(role))
        chart = await render_chart(report, self.context.run_folder(run))
        event = TableReady("Eval: teacher vs base student vs distilled student", report.body_text(), report.verdict,
                           chart)
        if once:
            # once per distilled model: a run trained again gets the new model's report too
            await self.context.post_once(run, f"eval-report-job{job.id}" if job else "eval-report", event)
        else:
            await self.context.post(run, event)

    async def export(self, run: Run) -> Path:
        spec, prepared = await self.context.prepare_run(run)
        completions = await self.context.storage.completions.for_run(run.id, split=EVAL_SPLIT)
        if not completions:
            raise StateError(f"Run '{run.name}' has no answers on the eval split to export yet.")
        grades = None
        if uses_graders(spec):
            graded = await asyncio.to_thread(grade, spec, eval_answers(prepared.eval, completions), completions)
            grades = grades_for_export(graded)
        path = await write_predictions(self.context.run_folder(run), prepared.eval, completions, grades)
        await self.context.upload(run, path, f"Predictions of run {run.name} on the eval split")
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
