"""A reasoning teacher through Slack: the pilot measures its reasoning, quotes expect it, and the approved cap
holds when the teacher reasons long."""

from __future__ import annotations

import re
from collections import Counter

from bot.core.config import DEFAULT_TEACHER
from bot.prices.table import PriceTable
from tests.handlers.conftest import buttons, thread_texts

PILOT_ROWS = 10
TRAIN, EVAL = 60, 30  # Harness.ready_run's settings


async def _approve_newest(bot, name: str = "tickets") -> None:
    thread = await bot.thread(name)
    request = next(m for m in reversed(thread) if "approve" in buttons(m))
    await bot.click(request["ts"], "approve", user="bob", value=buttons(request)["approve"])


def billed_micro_usd(sandbox) -> int:
    """What the sandbox billed the teacher, priced from its own usage records."""
    price = PriceTable.load().get(DEFAULT_TEACHER)
    return sum(price.cost_micro_usd(r.usage["prompt_tokens"], r.usage["completion_tokens"])
               for r in sandbox.requests.paid() if r.model == DEFAULT_TEACHER)


async def test_a_pilot_measures_the_reasoning_and_the_collection_expects_it_without_paying_twice(
        bot, openai_sandbox):
    await bot.ready_run("tickets")
    await bot.command("estimate tickets")
    before = "\n".join(thread_texts(await bot.thread("tickets")))
    assert f"{DEFAULT_TEACHER} reasons at effort low: reasoning is not measured yet" in before

    await bot.command(f"pilot tickets rows={PILOT_ROWS}")
    texts = thread_texts(await bot.thread("tickets"))
    [request] = [t for t in texts if "Spending request: pilot" in t]
    assert f"teacher `{DEFAULT_TEACHER}` at effort low" in request and "Expected *$" in request
    await _approve_newest(bot)

    run = await bot.run("tickets")
    assert run.state == "ready"
    [pilot] = await bot.bot.storage.pilots.for_run(run.id)
    assert (pilot.model, pilot.effort, pilot.rows, pilot.answered, pilot.cut_off) == (
        DEFAULT_TEACHER, "low", PILOT_ROWS, PILOT_ROWS, 0)
    assert 0 < pilot.mean_reasoning_tokens <= pilot.max_reasoning_tokens
    measured = (f"expected from a pilot of {PILOT_ROWS} rows: {pilot.mean_reasoning_tokens:,.0f} reasoning tokens "
                f"per answer (mean; p90 {pilot.p90_reasoning_tokens:,})")
    texts = thread_texts(await bot.thread("tickets"))
    assert any(t.startswith(":test_tube: Pilot finished") and measured in t for t in texts)
    pilot_requests = len(openai_sandbox.requests.paid())
    assert pilot_requests == PILOT_ROWS

    await bot.command("estimate tickets")
    await bot.command("collect tickets")
    texts = thread_texts(await bot.thread("tickets"))
    assert sum(measured in t for t in texts) >= 3  # the pilot's message, the estimate, the spending request
    await _approve_newest(bot)
    assert (await bot.run("tickets")).state == "collected"
    teacher = Counter(r.messages_hash for r in openai_sandbox.requests.paid() if r.model == DEFAULT_TEACHER)
    assert sum(teacher.values()) == TRAIN + EVAL and max(teacher.values()) == 1, "the pilot's rows were not paid again"


async def test_a_teacher_that_does_not_reason_has_nothing_to_pilot(bot):
    await bot.ready_run("tickets", "label=category train=60 eval=30 teacher=gpt-4o")
    await bot.command("pilot tickets")
    await bot.command("pilot tickets rows=none")
    await bot.command("pilot tickets twenty")
    not_reasoning, bad_rows, not_rows = bot.said_to("alice")
    assert "The teacher gpt-4o does not reason, so there is no reasoning to measure" in not_reasoning
    assert "rows=none is not a number of rows from 1 to 200" in bad_rows
    assert "`twenty` is not how many rows to pilot: write `rows=N`" in not_rows


async def test_a_teacher_reasoning_long_stays_within_the_approved_cap_and_its_cut_off_answers_are_counted(
        bot, openai_sandbox):
    openai_sandbox.set_reasoning_scale(DEFAULT_TEACHER, 50)  # some answers now need more than low's allowance
    await bot.ready_run("tickets")
    await bot.command("collect tickets")
    await _approve_newest(bot)

    run = await bot.run("tickets")
    approval = await bot.bot.storage.approvals.latest(run.id, "collect")
    stored = await bot.bot.storage.completions.for_run(run.id)
    assert run.state == "collected"
    assert sum(c.cost_micro_usd for c in stored) <= approval.amount_micro_usd
    assert billed_micro_usd(openai_sandbox) == sum(c.cost_micro_usd for c in stored if c.model == DEFAULT_TEACHER)
    cut = [c for c in stored if c.status == "invalid" and c.error.startswith("cut off:")]
    assert 0 < len(cut) < TRAIN + EVAL
    texts = thread_texts(await bot.thread("tickets"))
    summary = "\n".join(texts)
    assert re.search(r"answers +ok +invalid +cut off +failed +reused", summary)
    assert re.search(rf"teacher/train +\d+ +\d+ +{sum(c.split == 'train' for c in cut)} +0 +0", summary)
    assert any(t.startswith(f":scissors: {len(cut)} answers were cut off before the answer was complete") and
               "raise max_answer_tokens (now 4,117) or lower teacher_effort (now low)" in t for t in texts)

    # With room to think, collecting again asks only the rows that were cut off.
    openai_sandbox.reset()
    await bot.command("set tickets max_answer_tokens=20000")
    await bot.command("collect tickets")
    await _approve_newest(bot)
    assert (await bot.run("tickets")).state == "collected"
    assert len(openai_sandbox.requests.paid()) == len(cut)
    stored = await bot.bot.storage.completions.for_run(run.id)
    assert not [c for c in stored if c.status != "ok"]
