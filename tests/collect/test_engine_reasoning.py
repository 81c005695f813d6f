"""Collecting from a reasoning teacher: the cap holds whatever the model thinks, cut-off answers are invalid and
named, and a larger budget asks only the rows that were cut off."""

from __future__ import annotations

import json

from bot.collect.batch import RUNNING_STATUSES, BatchCollector
from bot.costs.budget import Budget
from bot.prices.table import PriceTable
from tests.collect.helpers import make_collector, make_task, unlimited
from tests.sandbox.openai_sandbox_support import wait_until

TEACHER = "gpt-6.2-sol"


def billed_micro_usd(sandbox, model: str = TEACHER, *, batch: bool = False) -> int:
    """What the sandbox billed, priced from its own usage records (not from what the bot stored)."""
    price = PriceTable.load().get(model)
    return sum(price.cost_micro_usd(r.usage["prompt_tokens"], r.usage["completion_tokens"], batch=batch)
               for r in sandbox.requests.paid() if r.model == model)


async def test_a_teacher_that_reasons_long_never_spends_past_the_cap(collector_for, storage, make_openai_sandbox):
    sandbox = await make_openai_sandbox(reasoning_scale={TEACHER: 1000})
    run = await storage.runs.create(name="long", channel_id="C1", requester="U1", spec={})
    task = make_task(run.id, 60, model=TEACHER, effort="low")
    price = PriceTable.load().get(TEACHER)
    # Left alone, the stand-in would think far past what one answer may cost.
    wanted = sandbox.engine.reasoning_tokens(sandbox.catalog.get(TEACHER), task.requests[0].messages[-1]["content"],
                                             task.requests[0].prompt_tokens, "low")
    assert wanted > 10 * task.max_completion_tokens
    most = sum(price.cost_micro_usd(r.prompt_tokens, task.max_completion_tokens) for r in task.requests)
    budget = Budget(cap_micro_usd=most // 2)

    outcome = await collector_for(storage, sandbox).collect(task, budget)

    assert outcome.stopped == "budget"
    assert billed_micro_usd(sandbox) == outcome.spend_micro_usd == budget.spent_micro_usd <= budget.cap_micro_usd
    assert outcome.invalid == outcome.cut_off == len(sandbox.requests.paid()) > 0
    stored = await storage.completions.for_run(run.id)
    answered = [c for c in stored if c.status == "invalid"]
    assert all(c.completion_tokens == c.reasoning_tokens == task.max_completion_tokens for c in answered)
    assert {c.raw_output for c in answered} == {""}
    assert answered[0].error == (
        f"cut off: the model used all {task.max_completion_tokens:,} completion tokens "
        f"({task.max_completion_tokens:,} of them reasoning at effort low) before it answered; raise "
        f"max_answer_tokens (now {task.max_completion_tokens:,}) or lower teacher_effort (now low).")


async def test_every_request_carries_the_budget_and_the_effort_and_stores_the_reasoning(
        collector_for, storage, openai_sandbox):
    run = await storage.runs.create(name="fields", channel_id="C1", requester="U1", spec={})
    task = make_task(run.id, 8, model=TEACHER, effort="medium")
    outcome = await collector_for(storage, openai_sandbox).collect(task, unlimited())
    assert outcome.answered == 8 and outcome.cut_off == 0
    stored = await storage.completions.for_run(run.id)
    assert all(0 < c.reasoning_tokens < c.completion_tokens for c in stored)
    assert billed_micro_usd(openai_sandbox) == sum(c.cost_micro_usd for c in stored)
    # A request the sandbox would refuse (temperature, an effort the model lacks) never went out.
    assert {r.status for r in openai_sandbox.requests} == {200}


async def test_a_larger_max_answer_tokens_asks_again_only_the_rows_that_were_cut_off(
        collector_for, storage, openai_sandbox):
    run = await storage.runs.create(name="cut", channel_id="C1", requester="U1", spec={})
    collector = collector_for(storage, openai_sandbox)
    tight = make_task(run.id, 40, model=TEACHER, effort="low", max_answer_tokens=80)
    first = await collector.collect(tight, unlimited())
    assert 0 < first.cut_off < 40 and first.answered == 40 - first.cut_off

    openai_sandbox.reset()
    roomy = make_task(run.id, 40, model=TEACHER, effort="low", max_answer_tokens=2_000)
    second = await collector.collect(roomy, unlimited())
    assert (second.already_answered, second.answered, second.cut_off) == (40 - first.cut_off, first.cut_off, 0)
    assert len(openai_sandbox.requests.paid()) == first.cut_off

    openai_sandbox.reset()
    thinking = make_task(run.id, 40, model=TEACHER, effort="high", max_answer_tokens=2_000)
    third = await collector.collect(thinking, unlimited())
    assert third.answered == 40, "another effort is another request: every row is asked again"


async def test_batch_lines_carry_the_budget_and_cut_off_answers_come_back_invalid(storage, make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=600, reasoning_scale={TEACHER: 1000})
    run = await storage.runs.create(name="batch", channel_id="C1", requester="U1", spec={})
    collector = make_collector(storage, sandbox)
    batches = BatchCollector(storage, collector.provider.client, PriceTable.load())
    task = make_task(run.id, 10, model=TEACHER, effort="low")
    price = PriceTable.load().get(TEACHER)
    most = sum(price.cost_micro_usd(r.prompt_tokens, task.max_completion_tokens, batch=True) for r in task.requests)
    budget = Budget(cap_micro_usd=most)
    try:
        record = await batches.submit(task, budget)
        assert budget.reserved_micro_usd == most
        sent = await collector.provider.client.files.content(record.input_file_id)
        bodies = [json.loads(line)["body"] for line in sent.text.splitlines()]
        assert {(b["max_completion_tokens"], b["reasoning_effort"], "temperature" in b) for b in bodies} == {
            (task.max_completion_tokens, "low", False)}
        batch_id = record.id

        async def polled():
            return await batches.poll(await storage.batches.require(batch_id))

        record = await wait_until(polled, lambda r: r.status not in RUNNING_STATUSES)
    finally:
        await collector.provider.close()
    assert record.status == "stored"
    stored = await storage.completions.for_run(run.id)
    assert len(stored) == 10 and all(c.status == "invalid" and c.error.startswith("cut off:") for c in stored)
    assert sum(c.cost_micro_usd for c in stored) == billed_micro_usd(sandbox, batch=True) <= most
    assert await storage.completions.cut_off_counts(run.id) == {("train", "teacher"): 10}
