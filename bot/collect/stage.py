"""The collect stage: the teacher answers every split and the base student the eval split, live or by batch.

Its quote is the most the stage can cost: every request's exact prompt tokens with the longest possible
answer. Live collections run the four tasks (teacher on train, validation and eval; base student on eval)
at once through the collection engine, against one budget; batch collections send one Batch API batch per
task and are finished by the scheduler's poll. Either way the end is the same: the state, the counts, and
the baseline table (teacher vs base student), each posted once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.collect.batch import BatchCollector
from bot.collect.context import StageContext
from bot.collect.engine import CollectTask, Progress
from bot.collect.imported import answers_imported, store_teacher_answers
from bot.collect.preflight import check_models, expectations, store_rows
from bot.collect.requests import task_for
from bot.core.events import CollectionFinished, Note
from bot.core.money import format_usd
from bot.costs.budget import Budget
from bot.costs.quotes import StageQuote, estimate
from bot.data.splits import PreparedRun
from bot.prices.reasoning import cut_off_fix
from bot.spec.settings import RunSpec
from storage.approvals import Approval
from storage.batches import BATCH_TERMINAL
from storage.runs import Run
from storage.states import RunState

COLLECT_ROLES = ("teacher", "student_base")
IMPORTED_NOTE = ("The teacher's answers come with the data (a JSONL file or stored completions): they are stored as "
                 "its answers for free, and collecting pays only for the base student's answers on the eval split.")


class CollectionStage:
    def __init__(self, context: StageContext, post_baseline: Callable[[Run, str], Awaitable[None]]) -> None:
        self.context = context
        self.post_baseline = post_baseline
        collector = context.collector_for(None)
        self.batches = BatchCollector(context.storage, collector.provider.client, context.prices,
                                      store=collector.provider.store)
        self._cancels: dict[int, asyncio.Event] = {}

    async def quote(self, run: Run) -> StageQuote:
        spec, prepared = await self.context.prepare_run(run)
        imported = await answers_imported(self.context.storage, run)
        await check_models(self.context, run, spec, ("student",) if imported else ("teacher", "student"))
        expected = await expectations(self.context.storage, run)
        quote = await asyncio.to_thread(estimate, prepared, spec, self.context.prices, self.context.billing(spec),
                                        expected, imported)
        tasks = await self.tasks(run, spec, prepared, imported)
        batch = spec.mode == "batch"
        most = 0
        for task in tasks:
            price = self.context.prices.get(task.model)
            most += sum(price.cost_micro_usd(r.prompt_tokens, task.max_completion_tokens, batch=batch)
                        for r in task.requests)
        notes = [entry["text"] for entry in quote.reasoning]
        if imported:
            notes.append(IMPORTED_NOTE)
        return StageQuote(
            stage="collect", quote_hash=quote.quote_hash, estimate_micro_usd=quote.amount_micro_usd("collect"),
            max_micro_usd=most,
            detail={"mode": spec.mode, "teacher": None if imported else spec.teacher, "student": spec.student,
                    "rows": prepared.to_dict(), "collect": quote.stage("collect").to_dict(),
                    "reasoning": list(quote.reasoning), "notes": notes},
        )

    async def run(self, run_id: int, approval: Approval) -> None:
        """Collect every answer the run still lacks, within the approved cap."""
        context = self.context
        run = await context.storage.runs.require(run_id)
        spec, prepared = await context.prepare_run(run)
        await store_rows(context.storage, run, prepared)
        imported = await answers_imported(context.storage, run)
        counts = await store_teacher_answers(context.storage, run, prepared) if imported else {}
        tasks = await self.tasks(run, spec, prepared, imported)
        already = await context.storage.completions.spend_micro_usd(run.id, roles=COLLECT_ROLES,
                                                                    since=approval.decided_at)
        budget = Budget(cap_micro_usd=approval.amount_micro_usd, spent_micro_usd=already)
        if spec.mode == "batch":
            await self._submit_batches(run, tasks, budget)
            return
        cancel = self._cancels.setdefault(run.id, asyncio.Event())
        trainer = context.trainer_for(spec.trainer)
        served = await trainer.deploy_base(spec.student)  # a server the trainer runs for the baseline, if any
        student = served or trainer.base_model_endpoint(spec.student)

        async def on_progress(progress: Progress) -> None:
            await context.refresh_card(await context.storage.runs.require(run.id))

        try:
            outcomes = await asyncio.gather(*(
                context.collector_for(student if task.role == "student_base" else None).collect(
                    task, budget, cancel=cancel, on_progress=on_progress)
                for task in tasks
            ))
        finally:
            self._cancels.pop(run.id, None)
            if served is not None:
                hosting = await trainer.undeploy(served)
                await context.post_once(run, f"base-server-{served.endpoint_id}-approval{approval.id}", Note(
                    f"Stopped the server of the base student {spec.student} ({trainer.name}); it cost "
                    f"{format_usd(hosting)} of GPU time for the baseline."))
        stops = [o.stopped for o in outcomes]
        stopped = next((s for s in ("fatal", "budget", "cancelled") if s in stops), "done")
        message = next((o.message for o in outcomes if o.stopped == stopped and o.message), "")
        counts.update({f"{t.role}/{t.split}": {"ok": o.answered + o.already_answered, "invalid": o.invalid,
                                               "cut_off": o.cut_off, "failed": o.failed, "reused": o.reused}
                       for t, o in zip(tasks, outcomes, strict=True)})
        errors: dict[str, int] = {}
        for outcome in outcomes:
            for reason, n in outcome.errors.items():
                errors[reason] = errors.get(reason, 0) + n
        teacher = next((task.budget for task in tasks if task.role == "teacher"), None)
        fix = cut_off_fix(teacher.max_completion_tokens, teacher.effort) if teacher else "raise max_answer_tokens"
        await self.finished(run.id, approval, stopped, message, counts, errors, budget, fix)

    def cancel(self, run_id: int) -> None:
        """Stop the run's live collection (requests in flight get a moment to land)."""
        if run_id in self._cancels:
            self._cancels[run_id].set()

    async def finished(self, run_id: int, approval: Approval, stopped: str, message: str,
                       counts: dict[str, dict[str, int]], errors: dict[str, int], budget: Budget,
                       fix: str = "raise max_answer_tokens or lower teacher_effort") -> None:
        context = self.context
        run = await context.storage.runs.require(run_id)
        if run.state == RunState.CANCELLED:
            return
        if stopped == "done" and not any(c["ok"] + c.get("reused", 0) for key, c in counts.items()
                                         if key.startswith("teacher/")):
            cut_off = sum(c.get("cut_off", 0) for key, c in counts.items() if key.startswith("teacher/"))
            reasons = [f"{reason} ×{n}" for reason, n in errors.items()] + ([f"cut off ×{cut_off}"] if cut_off else [])
            why = ", ".join(reasons) or "see the errors above"
            stopped, message = "fatal", f"The teacher answered no row ({why}). Fix the cause and collect again."
        state = {"done": RunState.COLLECTED, "budget": RunState.READY, "cancelled": RunState.CANCELLED,
                 "fatal": RunState.FAILED}[stopped]
        run = await context.storage.runs.update(run.id, expect=RunState.COLLECTING, state=state,
                                                error=message if stopped == "fatal" else None)
        await context.storage.audit.add(run_id=run.id, actor="system", action="collection-finished",
                                        detail={"stopped": stopped, "spend_micro_usd": budget.spent_micro_usd})
        await context.post_once(run, f"collection-finished-approval{approval.id}", CollectionFinished(
            stopped, message, budget.spent_micro_usd, budget.cap_micro_usd, counts, errors,
            f"To fix it, {fix} (`/distill set {run.name} ...`), then `/distill collect {run.name}`: with a larger "
            "max_answer_tokens only the rows cut off are asked again."))
        if stopped == "done":
            await self.post_baseline(run, f"baseline-approval{approval.id}")
        await context.refresh_card(run)

    # ----- Batch API collections ---------------------------------------------------------------------

    async def _submit_batches(self, run: Run, tasks: list[CollectTask], budget: Budget) -> None:
        """Send each task as one batch (the scheduler polls them); a task with a batch under way at the provider
        is skipped."""
        storage = self.context.storage
        under_way = {(b.split, b.role) for b in await storage.batches.for_run(run.id)
                     if b.external_id and b.status not in BATCH_TERMINAL}
        sent = 0
        for task in tasks:
            if (task.split, task.role) not in under_way and await self.batches.submit(task, budget):
                sent += 1
        await self.context.post_once(run, f"batches-submitted-{len(await storage.batches.for_run(run.id))}", Note(
            f"Sent {sent} batch(es) to the Batch API at half price. The provider has up to 24 h; the bot checks "
            f"every {self.context.settings.poll_seconds:g} s and posts here when the answers are in."))

    async def poll_batches(self) -> None:
        """Poll every batch under way; a run whose batches have all ended finishes its collection."""
        storage = self.context.storage
        runs = set()
        for batch in await storage.batches.active():
            if batch.external_id:
                await self.batches.poll(batch)
                runs.add(batch.run_id)
        for run_id in runs:
            batches = await storage.batches.for_run(run_id)
            run = await storage.runs.require(run_id)
            if run.state != RunState.COLLECTING or any(b.status not in BATCH_TERMINAL for b in batches):
                continue
            approval = await storage.approvals.latest(run_id, "collect")
            errors = [b.error for b in batches if b.error]
            spent = await storage.completions.spend_micro_usd(run_id, roles=COLLECT_ROLES, since=approval.decided_at)
            counts: dict[str, dict[str, int]] = {}
            for (split, role, status), n in (await storage.completions.counts(run_id)).items():
                if role in COLLECT_ROLES:
                    counts.setdefault(f"{role}/{split}", {"ok": 0, "invalid": 0, "cut_off": 0, "failed": 0,
                                                          "reused": 0})[status] = n
            for (split, role), n in (await storage.completions.cut_off_counts(run_id)).items():
                if f"{role}/{split}" in counts:
                    counts[f"{role}/{split}"]["cut_off"] = n
            stopped = "done" if not errors else "fatal"
            # The wrap-up posts tables and a chart: a tracked task of the run, not the scheduler's tick.
            self.context.tasks.spawn(f"run-{run_id}", run_id, self.finished(
                run_id, approval, stopped, " ".join(errors), counts, {}, Budget(approval.amount_micro_usd, spent)))

    # ----- requests and where they go ----------------------------------------------------------------

    async def tasks(self, run: Run, spec: RunSpec, prepared: PreparedRun,
                    teacher_imported: bool = False) -> list[CollectTask]:
        """Teacher on every split (unless its answers came with the data), the base student on eval: the requests
        with their exact token counts."""
        plan = [] if teacher_imported else [("teacher", spec.teacher, "train", prepared.train),
                                            ("teacher", spec.teacher, "validation", prepared.validation),
                                            ("teacher", spec.teacher, "eval", prepared.eval)]
        plan.append(("student_base", spec.student, "eval", prepared.eval))
        prices = self.context.prices
        return await asyncio.to_thread(lambda: [task_for(prices, run, spec, prepared, role, model, split, rows)
                                                for role, model, split, rows in plan if rows])

