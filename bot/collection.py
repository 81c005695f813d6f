"""The collect stage: the teacher answers every split and the base student the eval split, live or by batch.

Its quote is the most the stage can cost: every request's exact prompt tokens with the longest possible
answer. Live collections run the four tasks (teacher on train, validation and eval; base student on eval)
at once through the collection engine, against one budget; batch collections send one Batch API batch per
task and are finished by the scheduler's poll. Either way the end is the same: the state, the counts, and
the baseline table (teacher vs base student), each posted once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from bot.batch import BatchCollector
from bot.budget import Budget
from bot.collect import Collector, CollectRequest, CollectTask, Progress
from bot.costs import StageQuote, count_chat_tokens, estimate, longest_answer_tokens
from bot.errors import StateError
from bot.events import CollectionFinished, Note
from bot.prompts import build_messages, response_format
from bot.provider import ChatProvider
from bot.reasoning import budget_for, cut_off_fix
from bot.spec import RunSpec
from bot.splits import PreparedRow, PreparedRun
from bot.trainers.base import SHUTDOWN_WARNING_DAYS, Deployment
from storage.approvals import Approval
from storage.batches import BATCH_TERMINAL
from storage.runs import Run, RunRow

if TYPE_CHECKING:
    from bot.runs import RunService

COLLECT_ROLES = ("teacher", "student_base")
IMPORTED_NOTE = ("The teacher's answers come with the data (a JSONL file or stored completions): they are stored as "
                 "its answers for free, and collecting pays only for the base student's answers on the eval split.")


class CollectionStage:
    def __init__(self, service: RunService, collector: Collector) -> None:
        self.service = service
        self.collector = collector
        self.batches = BatchCollector(service.storage, collector.provider.client, service.prices,
                                      store=collector.provider.store)
        self._collectors: dict[str, Collector] = {}
        self._cancels: dict[int, asyncio.Event] = {}

    async def quote(self, run: Run) -> StageQuote:
        spec, prepared = await self.service.prepare_run(run)
        imported = await self.service.imports.answers_imported(run)
        await self.check_models(run, spec, ("student",) if imported else ("teacher", "student"))
        expected = await self.service.pilot.expectations(run)
        quote = await asyncio.to_thread(estimate, prepared, spec, self.service.prices, self.service.billing(spec),
                                        expected, imported)
        tasks = await self.tasks(run, spec, prepared, imported)
        batch = spec.mode == "batch"
        most = 0
        for task in tasks:
            price = self.service.prices.get(task.model)
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

    async def check_models(self, run: Run, spec: RunSpec, settings: tuple[str, ...] = ("teacher", "student")) -> None:
        """Refuse a teacher or base student (those of `settings`) that its provider no longer serves; warn in the
        thread (once) when one shuts down within SHUTDOWN_WARNING_DAYS."""
        today = self.service.clock.today()
        student = self.service.training.trainer(spec.trainer).base_model_endpoint(spec.student)
        for setting, model, endpoint in (("teacher", spec.teacher, None), ("student", spec.student, student)):
            if setting not in settings:
                continue
            shutdown = await self.collector_for(endpoint).provider.shutdown_date(model)
            days = None if shutdown is None else (shutdown - today).days
            if days is None or days > SHUTDOWN_WARNING_DAYS:
                continue
            if days <= 0:
                raise StateError(f"{model} was shut down on {shutdown.isoformat()}: the provider no longer serves "
                                 f"it. Pick another {setting} model (`/distill set {run.name} {setting}=...`).")
            await self.service.post_once(run, f"serving-shutdown-{model}", Note(
                f"{model} shuts down on {shutdown.isoformat()} (in {days} days): its provider stops answering "
                f"then. Collect before that date, or pick another {setting} model ({setting}=...).", "warning"))

    async def run(self, run_id: int, approval: Approval) -> None:
        """Collect every answer the run still lacks, within the approved cap."""
        service = self.service
        run = await service.storage.runs.require(run_id)
        spec, prepared = await service.prepare_run(run)
        await self.store_rows(run, prepared)
        imported = await service.imports.answers_imported(run)
        counts = await service.imports.store_teacher_answers(run, prepared) if imported else {}
        tasks = await self.tasks(run, spec, prepared, imported)
        already = await service.storage.completions.spend_micro_usd(run.id, roles=COLLECT_ROLES,
                                                                    since=approval.decided_at)
        budget = Budget(cap_micro_usd=approval.amount_micro_usd, spent_micro_usd=already)
        if spec.mode == "batch":
            await self._submit_batches(run, tasks, budget)
            return
        cancel = self._cancels.setdefault(run.id, asyncio.Event())
        student = service.training.trainer(spec.trainer).base_model_endpoint(spec.student)

        async def on_progress(progress: Progress) -> None:
            await service.refresh_card(await service.storage.runs.require(run.id))

        try:
            outcomes = await asyncio.gather(*(
                self.collector_for(student if task.role == "student_base" else None).collect(
                    task, budget, cancel=cancel, on_progress=on_progress)
                for task in tasks
            ))
        finally:
            self._cancels.pop(run.id, None)
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
        service = self.service
        run = await service.storage.runs.require(run_id)
        if run.state == "cancelled":
            return
        if stopped == "done" and not any(c["ok"] + c.get("reused", 0) for key, c in counts.items()
                                         if key.startswith("teacher/")):
            cut_off = sum(c.get("cut_off", 0) for key, c in counts.items() if key.startswith("teacher/"))
            reasons = [f"{reason} ×{n}" for reason, n in errors.items()] + ([f"cut off ×{cut_off}"] if cut_off else [])
            why = ", ".join(reasons) or "see the errors above"
            stopped, message = "fatal", f"The teacher answered no row ({why}). Fix the cause and collect again."
        state = {"done": "collected", "budget": "ready", "cancelled": "cancelled", "fatal": "failed"}[stopped]
        run = await service.storage.runs.update(run.id, state=state, error=message if stopped == "fatal" else None)
        await service.storage.audit.add(run_id=run.id, actor="system", action="collection-finished",
                                        detail={"stopped": stopped, "spend_micro_usd": budget.spent_micro_usd})
        await service.post_once(run, f"collection-finished-approval{approval.id}", CollectionFinished(
            stopped, message, budget.spent_micro_usd, budget.cap_micro_usd, counts, errors,
            f"To fix it, {fix} (`/distill set {run.name} ...`), then `/distill collect {run.name}`: with a larger "
            "max_answer_tokens only the rows cut off are asked again."))
        if stopped == "done":
            await service.training.post_baseline(run, key=f"baseline-approval{approval.id}")
        await service.refresh_card(run)

    # ----- Batch API collections ---------------------------------------------------------------------

    async def _submit_batches(self, run: Run, tasks: list[CollectTask], budget: Budget) -> None:
        """Send each task as one batch (the scheduler polls them); a task with a batch under way at the provider
        is skipped."""
        storage = self.service.storage
        under_way = {(b.split, b.role) for b in await storage.batches.for_run(run.id)
                     if b.external_id and b.status not in BATCH_TERMINAL}
        sent = 0
        for task in tasks:
            if (task.split, task.role) not in under_way and await self.batches.submit(task, budget):
                sent += 1
        await self.service.post_once(run, f"batches-submitted-{len(await storage.batches.for_run(run.id))}", Note(
            f"Sent {sent} batch(es) to the Batch API at half price. The provider has up to 24 h; the bot checks "
            f"every {self.service.settings.poll_seconds:g} s and posts here when the answers are in."))

    async def poll_batches(self) -> None:
        """Poll every batch under way; a run whose batches have all ended finishes its collection."""
        storage = self.service.storage
        runs = set()
        for batch in await storage.batches.active():
            if batch.external_id:
                await self.batches.poll(batch)
                runs.add(batch.run_id)
        for run_id in runs:
            batches = await storage.batches.for_run(run_id)
            run = await storage.runs.require(run_id)
            if run.state != "collecting" or any(b.status not in BATCH_TERMINAL for b in batches):
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
            self.service.tasks.spawn(f"run-{run_id}", run_id, self.finished(
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
        return await asyncio.to_thread(lambda: [self.task_for(run, spec, prepared, role, model, split, rows)
                                                for role, model, split, rows in plan if rows])

    def task_for(self, run: Run, spec: RunSpec, prepared: PreparedRun, role: str, model: str, split: str,
                 rows: list[PreparedRow]) -> CollectTask:
        """One model's requests on some rows, with their exact token counts and answer budget (CPU work)."""
        choices = list(prepared.choices)
        budget = budget_for(spec, self.service.prices, role, model, longest_answer_tokens(choices, model))
        return CollectTask(run_id=run.id, split=split, role=role, model=model, requests=requests_for(spec, rows, model),
                           response_format=response_format(choices), choices=choices, budget=budget,
                           run_name=run.name)

    async def store_rows(self, run: Run, prepared: PreparedRun) -> None:
        rows = [RunRow(split, r.row_index, r.input_hash, r.gold_label)
                for split, group in (("train", prepared.train), ("validation", prepared.validation),
                                     ("eval", prepared.eval))
                for r in group]
        await self.service.storage.runs.replace_rows(run.id, rows)

    def collector_for(self, endpoint: Deployment | None) -> Collector:
        """The collector for a model served at `endpoint` (None: OPENAI_BASE_URL). One per base URL, sharing
        the rate limiters; closed with the stage."""
        if endpoint is None or endpoint.base_url.rstrip("/") == self.collector.provider.base_url.rstrip("/"):
            return self.collector
        if endpoint.base_url not in self._collectors:
            provider = ChatProvider(base_url=endpoint.base_url, api_key=endpoint.api_key.reveal(), store=False)
            self._collectors[endpoint.base_url] = Collector(
                self.service.storage, provider, self.service.prices, self.collector.limiters,
                concurrency=self.collector.concurrency)
        return self._collectors[endpoint.base_url]

    async def close(self) -> None:
        for collector in self._collectors.values():
            await collector.provider.close()


def requests_for(spec: RunSpec, rows: list[PreparedRow], model: str) -> list[CollectRequest]:
    """The exact requests for these rows, with their prompt tokens for `model` (CPU work)."""
    requests = []
    for row in rows:
        messages = build_messages(spec, row.user_prompt)
        requests.append(CollectRequest(row.row_index, messages, count_chat_tokens(messages, model)))
    return requests


def response_format_for(prepared: PreparedRun) -> dict[str, Any]:
    return response_format(list(prepared.choices))
