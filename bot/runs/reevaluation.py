"""`/distill eval NAME`: a finished run's models on a new eval file, with its own approval and report.

The file was shared in the thread with the comment `eval` after the run was done (bot/runs/eval_files.py). Its rows
are rendered with the run's template and choices; the teacher (or, for a chat eval file, the answers it carries),
the base student and the distilled student answer them, under the split `reeval<id>` so the run's own eval and
its first report stay as they were. The quote is the most every request can cost plus, for a trainer that serves
the distilled model from a dedicated deployment, that deployment's minutes. The report is posted once, with the
distilled model's figures next to the first report's (bot/evaluate/scoring.py). A stop resumes it at the next start.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from bot.collect.engine import CollectOutcome, CollectTask
from bot.collect.imported import store_answers
from bot.collect.requests import task_for
from bot.core.errors import StateError
from bot.core.events import Note, StageStarted, TableReady
from bot.core.money import format_usd
from bot.core.tasks import describe
from bot.costs.budget import Budget
from bot.costs.quotes import StageQuote
from bot.data.imports import KIND
from bot.data.splits import PreparedRun
from bot.evaluate.charts import render_chart
from bot.evaluate.scores import BASE, DISTILLED, ROLE_NAMES, TEACHER, eval_report
from bot.evaluate.scoring import Score, as_eval_split, score
from bot.runs.ops import RunOps
from bot.runs.worker import prepare_dataset
from bot.spec.settings import RunSpec
from storage.approvals import Approval
from storage.jobs import Job
from storage.reevals import Reeval
from storage.runs import Run, RunRow
from storage.states import RunState

STAGE = "eval"


class ReevalStage:
    def __init__(self, service: RunOps) -> None:
        self.service = service

    async def waiting(self, run: Run) -> Reeval:
        """The newest eval file shared since the run was done and not evaluated yet."""
        if run.state != RunState.DONE:
            raise StateError(f"Run '{run.name}' is {run.state}: `/distill eval` evaluates a finished run's distilled "
                             "model on a new file. Before training, a file shared with the comment `eval` becomes the "
                             "eval split itself.")
        shared = [r for r in await self.service.storage.reevals.for_run(run.id) if r.state in ("shared", "failed")]
        if not shared:
            raise StateError(f"No new eval file for run '{run.name}': share one in its thread with the comment `eval` "
                             f"(a CSV with the run's columns), then `/distill eval {run.name}`.")
        return shared[-1]

    async def _plan(self, run: Run, reeval: Reeval) -> tuple[RunSpec, PreparedRun, Job, bool]:
        """The run's spec, the file's rows prepared like the run's (as prepared.eval), the job that made the
        distilled model, and whether the file carries the teacher's answers."""
        service = self.service
        job = next((j for j in reversed(await service.storage.jobs.for_run(run.id)) if j.fine_tuned_model), None)
        if job is None:
            raise StateError(f"Run '{run.name}' has no distilled model to evaluate.")
        spec = RunSpec.from_dict(run.spec)
        dataset = await service.storage.datasets.require(reeval.dataset_id)
        prepared = await service.datasets.run(dataset.size_bytes, prepare_dataset, run.dataset_id, spec, dataset.id)
        return spec, prepared, job, dataset.kind == KIND

    async def _tasks(self, run: Run, spec: RunSpec, prepared: PreparedRun, job: Job, imported: bool, split: str,
                     distilled_model: str) -> list[CollectTask]:
        prices, rows = self.service.prices, prepared.eval
        tasks = [] if imported else [task_for(prices, run, spec, prepared, TEACHER, spec.teacher, split, rows)]
        tasks.append(task_for(prices, run, spec, prepared, BASE, spec.student, split, rows))
        tasks.append(await self.service.training.distilled_task(run, spec, prepared, rows, split, job,
                                                                distilled_model))
        return tasks

    def _hosting_micro_usd(self, spec: RunSpec, requests: int) -> int:
        hosting = self.service.billing(spec).hosting
        return hosting.cost_micro_usd(hosting.minutes(requests)) if hosting else 0

    async def quote(self, run: Run) -> StageQuote:
        reeval = await self.waiting(run)
        spec, prepared, job, imported = await self._plan(run, reeval)
        tasks = await self._tasks(run, spec, prepared, job, imported, reeval.split, job.fine_tuned_model)
        prices = self.service.prices
        most = estimate = 0
        for task in tasks:
            price = prices.get(task.price_model or task.model)
            most += sum(price.cost_micro_usd(r.prompt_tokens, task.max_completion_tokens) for r in task.requests)
            estimate += sum(price.cost_micro_usd(r.prompt_tokens, task.budget.answer_tokens) for r in task.requests)
        hosting = self._hosting_micro_usd(spec, len(prepared.eval))
        digest = hashlib.sha256(json.dumps({
            "stage": STAGE, "reeval": reeval.id, "spec": spec.to_dict(), "model": job.fine_tuned_model,
            "requests": [[t.role, t.request_hash(r.messages), r.prompt_tokens] for t in tasks for r in t.requests],
            "prices": {t.model: prices.get(t.price_model or t.model).to_dict() for t in tasks}, "hosting": hosting,
        }, sort_keys=True).encode()).hexdigest()
        asked = "the base and distilled students" if imported else "the teacher, the base and the distilled students"
        notes = [f"{reeval.filename}: {len(prepared.eval):,} eval rows; {asked} answer them. The run's first report "
                 "stays as it is."]
        if imported:
            notes.append("The file's replies are the teacher's answers: the teacher is not asked.")
        if hosting:
            notes.append("The distilled model answers from a dedicated deployment again: "
                         f"{format_usd(hosting)} at most.")
        notes.append("The expected cost counts the prompts and the longest answers, without reasoning.")
        return StageQuote(stage=STAGE, quote_hash=digest, estimate_micro_usd=estimate + hosting,
                          max_micro_usd=most + hosting,
                          detail={"reeval_id": reeval.id, "teacher": None if imported else spec.teacher,
                                  "student": spec.student, "rows": {"eval": len(prepared.eval)},
                                  "hosting_micro_usd": hosting, "notes": notes})

    async def start(self, run: Run, approval: Approval) -> None:
        reeval = await self.service.storage.reevals.update(int(approval.quote["reeval_id"]), state="running",
                                                           approval_id=approval.id, error=None)
        await self.service.post_once(run, f"reeval{reeval.id}-started-approval{approval.id}", StageStarted(
            STAGE, f"Evaluating {run.name}'s distilled model on {reeval.filename} (eval #{reeval.id}).",
            approval.amount_micro_usd))
        self.service.tasks.spawn(f"reeval-{reeval.id}", run.id, self.run(run.id, reeval.id))

    async def resume(self) -> None:
        """After a restart: finish the evaluations a stop interrupted (answers stored are not asked again)."""
        for reeval in await self.service.storage.reevals.in_state("running"):
            self.service.tasks.spawn(f"reeval-{reeval.id}", reeval.run_id, self.run(reeval.run_id, reeval.id))

    async def run(self, run_id: int, reeval_id: int) -> None:
        """Answer the file's rows within the approved cap, then post the report once."""
        service = self.service
        run = await service.storage.runs.require(run_id)
        reeval = await service.storage.reevals.require(reeval_id)
        approval = await service.storage.approvals.require(reeval.approval_id)
        try:
            outcome, hosting = await self._answer(run, reeval, approval)
            if outcome.stopped == "done":
                await self._report(run, reeval, hosting)
                return
            problem = f"stopped: {outcome.message}"
        except Exception as exc:  # the run stays done: only this eval failed
            problem = f"failed: {describe(exc)[0]}"
        await service.storage.reevals.update(reeval.id, state="failed", error=problem)
        await service.post_once(run, f"reeval{reeval.id}-ended-approval{approval.id}", Note(
            f"Eval #{reeval.id} on {reeval.filename} {problem} `/distill eval {run.name}` asks again; answers "
            "already stored are not paid again.", "warning"))

    async def _answer(self, run: Run, reeval: Reeval, approval: Approval) -> tuple[CollectOutcome, int]:
        service = self.service
        spec, prepared, job, imported = await self._plan(run, reeval)
        split = reeval.split
        if imported:
            await store_answers(service.storage, run, [(split, prepared.eval)], prepared.choices, reeval.dataset_id)
        hosting_quote = int(approval.quote.get("hosting_micro_usd", 0))
        spent = sum(c.cost_micro_usd for c in await service.storage.completions.for_run(run.id, split=split)
                    if c.reused_from is None)
        budget = Budget(cap_micro_usd=approval.amount_micro_usd - hosting_quote, spent_micro_usd=spent)
        trainer = service.trainer(job.trainer)
        student = trainer.base_model_endpoint(spec.student)
        tasks = await self._tasks(run, spec, prepared, job, imported, split, job.fine_tuned_model)
        before = [t for t in tasks if t.role != DISTILLED]
        outcomes = await asyncio.gather(*(service.collectors.collector_for(student if t.role == BASE else None)
                                          .collect(t, budget) for t in before))
        stopped = next((o for o in outcomes if o.stopped != "done"), None)
        if stopped is not None:
            return stopped, 0
        deployment = await trainer.deploy(job.fine_tuned_model)
        try:
            [task] = [t for t in await self._tasks(run, spec, prepared, job, True, split, deployment.model)
                      if t.role == DISTILLED]
            outcome = await service.collectors.collector_for(deployment).collect(task, budget)
        finally:
            hosting = await trainer.undeploy(deployment)
        return outcome, hosting

    async def _report(self, run: Run, reeval: Reeval, hosting_micro_usd: int) -> None:
        service = self.service
        _, prepared, _, _ = await self._plan(run, reeval)
        rows = [RunRow(reeval.split, r.row_index, r.input_hash, r.gold_label) for r in prepared.eval]
        completions = await service.storage.completions.for_run(run.id, split=reeval.split)
        report = await asyncio.to_thread(eval_report, rows, as_eval_split(completions), hosting_micro_usd)
        scores = {role: score(rows, completions, role, hosting_micro_usd if role == DISTILLED else 0)
                  for role in (TEACHER, BASE, DISTILLED)}
        first = {role: result.metrics for role, result in (await service.storage.evals.latest(run.id)).items()}
        await service.storage.reevals.update(reeval.id, state="done", report={
            "verdict": report.verdict, "hosting_micro_usd": hosting_micro_usd,
            "scores": {role: s.to_dict() for role, s in scores.items()}})
        chart = await render_chart(report, service.run_folder(run) / reeval.split)
        await service.post_once(run, f"reeval{reeval.id}-report", TableReady(
            f"Eval #{reeval.id} on {reeval.filename}: teacher vs base student vs distilled student",
            report.body_text(), report.verdict, chart))
        await service.post_once(run, f"reeval{reeval.id}-compared", Note(compared(scores, first)))


def compared(scores: dict[str, Score], first: dict[str, dict[str, Any]]) -> str:
    """Each model's figure on the new file next to the one the run's first report gave."""
    lines = ["Next to the run's first report (its own eval split):"]
    for role, now in scores.items():
        then = first.get(role, {}).get(now.metric)
        if now.value is None or (role == TEACHER and now.metric == "agreement"):
            continue  # the teacher agrees with itself
        interval = f" (95% CI {100 * now.interval.low:.1f}–{100 * now.interval.high:.1f})" if now.interval else ""
        change = "" if then is None else f" vs {100 * then:.1f}% there ({100 * (now.value - then):+.1f} points)"
        lines.append(f"{ROLE_NAMES[role]}: {now.metric} {100 * now.value:.1f}%{interval} on {now.rows:,} rows here"
                     f"{change}.")
    return "\n".join(lines)

