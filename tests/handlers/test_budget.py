"""A run's `budget` setting caps every approval and the run's total spend (issue 19: it did nothing; a run set to
budget=0.01 asked to approve "at most $1.64" and spent $1.58)."""

from __future__ import annotations

from bot.core.money import format_usd
from tests.handlers.conftest import thread_texts


async def _spend(bot, name: str) -> int:
    from bot.runs.cards import spend_micro_usd

    return await spend_micro_usd(bot.bot.storage, (await bot.run(name)).id)


async def test_a_stage_over_the_budget_is_refused_before_anyone_is_asked_and_the_refusal_names_the_budget(bot):
    await bot.ready_run("tickets", "label=category train=60 eval=30 budget=0.01")
    await bot.command("collect tickets")
    [refusal] = bot.said_to("alice")
    assert "The collect stage can cost up to $" in refusal
    assert "more than run 'tickets' has left of its budget of $0.01 ($0.01 left, $0.00 spent)" in refusal
    assert "`/distill set tickets budget=...`" in refusal and "No approver was asked." in refusal
    run = await bot.run("tickets")
    assert run.state == "ready" and await bot.bot.storage.approvals.for_run(run.id) == []
    assert not [t for t in thread_texts(await bot.thread("tickets")) if "Spending request" in t]


async def test_a_quote_under_the_auto_approval_amount_is_still_refused_over_the_budget(make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_AUTO_APPROVE_USD="100")
    await bot.ready_run("tickets", "label=category train=60 eval=30 budget=0.05")
    await bot.command("collect tickets")
    assert "more than run 'tickets' has left of its budget of $0.05" in bot.said_to("alice")[-1]
    assert (await bot.run("tickets")).state == "ready" and not openai_sandbox.requests.paid()


async def test_what_the_run_has_spent_counts_against_its_budget(make_bot, openai_sandbox):
    """A pilot's spend leaves less of the budget: the collection that would pass the rest is refused."""
    bot = await make_bot(DISTILL_AUTO_APPROVE_USD="100")
    await bot.ready_run("tickets", "label=category train=60 eval=30 budget=1")
    await bot.command("pilot tickets rows=5")
    spent = await _spend(bot, "tickets")
    assert spent > 0 and (await bot.run("tickets")).state == "ready"
    await bot.command("collect tickets")
    refusal = bot.said_to("alice")[-1]
    assert f"its budget of $1.00 ({format_usd(1_000_000 - spent)} left, {format_usd(spent)} spent)" in refusal
    await bot.command("set tickets budget=50")
    await bot.command("collect tickets")
    assert (await bot.run("tickets")).state == "collected", "within the budget the stage runs (auto-approved here)"
    approvals = await bot.bot.storage.approvals.for_run((await bot.run("tickets")).id, statuses=("approved",))
    assert sum(a.amount_micro_usd for a in approvals) <= 50_000_000
    assert await _spend(bot, "tickets") <= 50_000_000
