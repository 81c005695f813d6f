"""The pilot: the teacher answers a run's first train rows, so that its reasoning is measured before the
collection is quoted, instead of only bounded.

A reasoning model's hidden reasoning tokens are billed as output, and nothing but the provider's usage
(`usage.completion_tokens_details.reasoning_tokens`) says how many a task takes. So `/distill pilot NAME
[rows=20]` is a small spending stage of its own, approved like any other (auto-approved under
DISTILL_AUTO_APPROVE_USD) and capped by what it may cost at most: the teacher answers the run's first train
rows at the run's effort and token budget. Those are rows the run uses anyway and the requests are the
collection's own, so their answers are stored as the run's teacher answers and the collection neither asks nor
pays for them again. What the pilot measured (mean, p90 and max reasoning tokens per answer, and how many
answers ran out of max_completion_tokens) is stored (storage/pilots.py); quotes then say "expected from a pilot
of 20 rows: N reasoning tokens per answer (mean; p90 M)". `distill-bot estimate --pilot N` runs the same
measurement from a terminal (`run_pilot`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.collect.context import StageContext
from bot.collect.engine import Collector, CollectOutcome, CollectTask, is_cut_off
from bot.collect.preflight import check_models, expectation, store_rows
from bot.collect.ratelimit import RateLimiters
from bot.collect.requests import task_for
from bot.core.errors import StateError
from bot.core.events import PilotFinished
from bot.costs.budget import Budget
from bot.costs.quotes import StageQuote
from bot.data.splits import PreparedRun
from bot.prices.table import PriceTable
from bot.spec.settings import RunSpec
from storage import Storage
from storage.approvals import Approval
from storage.completions import Completion
from storage.pilots import Pilot
from storage.runs import Run
from storage.states import RunState

if TYPE_CHECKING:
    from bot.core.provider import ChatProvider

PILOT_ROWS = 20
MAX_PILOT_ROWS = 200
STAGE = "pilot"


def pilot_rows(value: str) -> int:
    """The `rows=N` of `/distill pilot`, checked."""
    try:
        rows = int(value)
    except ValueError:
        rows = 0
    if not 1 <= rows <= MAX_PILOT_ROWS:
        raise StateError(f"rows={value} is not a number of rows from 1 to {MAX_PILOT_ROWS}; a pilot of "
                         f"{PILOT_ROWS} is usually enough (`/distill pilot NAME rows={PILOT_ROWS}`).")
    return rows


def measure(task: CollectTask, completions: Sequence[Completion], rows: int, run_id: int) -> Pilot:
    """What the answers to the task's requests measured (answers of other requests are left out)."""
    hashes = {task.request_hash(r.messages) for r in task.requests}
    answers = [c for c in completions if c.status in ("ok", "invalid") and c.request_hash in hashes]
    reasoning = sorted(c.reasoning_tokens for c in answers)
    count = len(answers)
    return Pilot(
        run_id=run_id, model=task.model, effort=task.budget.effort,
        max_completion_tokens=task.max_completion_tokens, rows=rows, answered=count,
        cut_off=sum(is_cut_off(c) for c in answers),
        mean_reasoning_tokens=sum(reasoning) / count if count else 0.0,
        p90_reasoning_tokens=reasoning[math.ceil(0.9 * count) - 1] if count else 0,  # nearest rank
        max_reasoning_tokens=reasoning[-1] if count else 0,
        mean_completion_tokens=sum(c.completion_tokens for c in answers) / count if count else 0.0,
        cost_micro_usd=sum(c.cost_micro_usd for c in answers if c.reused_from is None),
    )


def _require_reasoning(task: CollectTask) -> None:
    if task.budget.effort in (None, "none"):
        why = "does not reason" if task.budget.effort is None else "is asked at effort none (no reasoning)"
        raise StateError(f"The teacher {task.model} {why}, so there is no reasoning to measure: the estimate's "
                         "expected cost is already its answers' exact cost.")


class PilotStage:
    """The pilot of a run in the bot: quote, run after approval, and the measurements for its quotes."""

    def __init__(self, context: StageContext) -> None:
        self.context = context
        self._cancels: dict[int, asyncio.Event] = {}

    async def _task(self, run: Run, spec: RunSpec, prepared: PreparedRun, rows: int) -> CollectTask:
        return await asyncio.to_thread(task_for, self.context.prices, run, spec, prepared, "teacher", spec.teacher,
                                       "train", prepared.train[:rows])

    async def quote(self, run: Run, rows: int) -> StageQuote:
        """What the pilot may cost: the teacher's first `rows` train requests at their whole budget."""
        spec, prepared = await self.context.prepare_run(run)
        task = await self._task(run, spec, prepared, rows)
        _require_reasoning(task)
        await check_models(self.context, run, spec, ("teacher",))
        price = self.context.prices.get(task.model)
        prompt_tokens = sum(r.prompt_tokens for r in task.requests)
        most = sum(price.cost_micro_usd(r.prompt_tokens, task.max_completion_tokens) for r in task.requests)
        asked = len(task.requests)
        answers = asked * task.budget.answer_tokens
        digest = hashlib.sha256(json.dumps({
            "stage": STAGE, "spec": spec.to_dict(), "price": price.to_dict(),
            "requests": [task.request_hash(r.messages) for r in task.requests],
        }, sort_keys=True).encode()).hexdigest()
        return StageQuote(
            stage=STAGE, quote_hash=digest, estimate_micro_usd=price.cost_micro_usd(prompt_tokens, answers),
            max_micro_usd=most,
            detail={"teacher": spec.teacher, "effort": task.budget.effort, "pilot_rows": asked,
                    "rows": {"pilot": asked}, "pilot": {"prompt_tokens": prompt_tokens, "completion_tokens": answers},
                    "notes": [
                        f"The teacher answers the first {asked} train rows at effort {task.budget.effort}, with at "
                        f"most {task.max_completion_tokens:,} completion tokens each. They are rows the run uses "
                        "anyway: their answers are kept, and the collection does not ask or pay for them again.",
                        "The expected cost counts the prompts and the longest answers only: how long the teacher "
                        "reasons is what the pilot measures. Live prices: a pilot does not go through the Batch API.",
                    ]},
        )

    async def run(self, run_id: int, approval: Approval) -> None:
        """Answer the pilot rows within the approved cap, store the measurement and give the run back."""
        context = self.context
        run = await context.storage.runs.require(run_id)
        spec, prepared = await context.prepare_run(run)
        await store_rows(context.storage, run, prepared)
        task = await self._task(run, spec, prepared, int(approval.quote["pilot_rows"]))
        already = await context.storage.completions.spend_micro_usd(run.id, roles=["teacher"],
                                                                    since=approval.decided_at)
        budget = Budget(cap_micro_usd=approval.amount_micro_usd, spent_micro_usd=already)
        cancel = self._cancels.setdefault(run.id, asyncio.Event())
        try:
            outcome = await context.collector_for(None).collect(task, budget, cancel=cancel)
        finally:
            self._cancels.pop(run.id, None)
        completions = await context.storage.completions.for_run(run.id, split="train", role="teacher")
        pilot = measure(task, completions, len(task.requests), run.id)
        if pilot.answered:
            pilot = await context.storage.pilots.add(pilot)
        await self.finished(run.id, approval, outcome, pilot, budget)

    async def finished(self, run_id: int, approval: Approval, outcome: CollectOutcome, pilot: Pilot,
                       budget: Budget) -> None:
        context = self.context
        run = await context.storage.runs.require(run_id)
        if run.state == RunState.CANCELLED:
            return
        state = RunState.COLLECTED if run.state_before == RunState.COLLECTED else RunState.READY
        run = await context.storage.runs.update(run.id, expect=RunState.PILOTING, state=state, error=None)
        await context.storage.audit.add(run_id=run.id, actor="system", action="pilot-finished",
                                        detail={"stopped": outcome.stopped, "answered": pilot.answered,
                                                "spend_micro_usd": budget.spent_micro_usd})
        measured = expectation(pilot).describe() if pilot.answered else ""
        await context.post_once(run, f"pilot-finished-approval{approval.id}", PilotFinished(
            outcome.stopped, outcome.message, pilot.model, pilot.effort, pilot.rows, pilot.answered, pilot.cut_off,
            measured, pilot.max_completion_tokens, budget.spent_micro_usd, budget.cap_micro_usd))
        await context.refresh_card(run)

    def cancel(self, run_id: int) -> None:
        if run_id in self._cancels:
            self._cancels[run_id].set()

async def run_pilot(provider: ChatProvider, task: CollectTask, prices: PriceTable, *, requests_per_minute: int,
                    tokens_per_minute: int, concurrency: int) -> tuple[Pilot, int]:
    """The pilot from a terminal (`distill-bot estimate --pilot N`): the task's requests sent through the same
    collection engine, capped at what they may cost at most, measured; returns the measurement and that cap.
    The engine stores answers, so it gets a scratch database that is deleted afterwards."""
    price = prices.get(task.model)
    most = sum(price.cost_micro_usd(r.prompt_tokens, task.max_completion_tokens) for r in task.requests)
    with tempfile.TemporaryDirectory(prefix="distill-pilot-") as folder:
        storage = await Storage.open(Path(folder) / "pilot.db")
        try:
            run = await storage.runs.create(name="pilot", channel_id="cli", requester="cli", spec={})
            limiters = RateLimiters(requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute)
            collector = Collector(storage, provider, prices, limiters, concurrency=concurrency)
            scoped = CollectTask(run.id, task.split, task.role, task.model, task.requests, task.answer, task.budget)
            outcome = await collector.collect(scoped, Budget(cap_micro_usd=most))
            if outcome.stopped == "fatal":
                raise StateError(outcome.message)
            completions = await storage.completions.for_run(run.id)
            return measure(scoped, completions, len(task.requests), run.id), most
        finally:
            await storage.close()
