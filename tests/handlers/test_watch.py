"""`/distill watch` through the Slack app: the distilled model's stored answers sampled every period on the bot's
clock, scored against the teacher, one line a period even across restarts, and an alert when the model degrades."""

from __future__ import annotations

import datetime as dt
import json

import openai

from bot.prompts.templates import cell_text, response_format
from bot.spec.messages import build_messages
from tests.handlers.conftest import thread_texts
from tests.handlers.test_bring_your_own_data import TICKETS
from tests.handlers.test_distillation import _approve_newest, _wait_for_state
from tests.reliability.crash import until

WATCH_LINE = "Watch of tickets, period"


async def _done_run(bot) -> tuple[object, str]:
    await bot.ready_run("tickets", "label=category train=200 eval=30")
    await bot.command("collect tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "collected") == "collected"
    await bot.command("train tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "done", "failed", seconds=60) == "done"
    run = await bot.run("tickets")
    [job] = await bot.bot.storage.jobs.for_run(run.id)
    return run, job.fine_tuned_model


async def _traffic(bot, sandbox, model: str, tickets: list[dict[str, str]], app: str) -> None:
    """The team's own app calling the distilled model with the run's prompt, with store=true and its metadata."""
    spec, prepared = await bot.bot.service.prepare_run(await bot.run("tickets"))
    async with openai.AsyncOpenAI(base_url=sandbox.url, api_key=sandbox.api_key, max_retries=0) as app_client:
        for ticket in tickets:
            prompt = prepared.template.render([cell_text(ticket.get(name)) for name in prepared.template.fields])
            await app_client.chat.completions.create(
                model=model, messages=build_messages(spec, prompt), store=True, metadata={"app": app},
                response_format=response_format(list(prepared.choices)))


def _watch_lines(texts: list[str]) -> list[str]:
    return [t for t in texts if WATCH_LINE in t]


async def test_a_watch_posts_every_period_survives_restarts_without_posting_twice_and_alerts_on_a_drop(
        make_bot, openai_sandbox, clock, tmp_path):
    database = str(tmp_path / "watch.db")
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2", DISTILL_DB=database)
    run, model = await _done_run(bot)
    await _traffic(bot, openai_sandbox, model, TICKETS[300:340], "helpdesk")
    await _traffic(bot, openai_sandbox, model, TICKETS[340:350], "other-app")

    await bot.command("watch tickets every=7d sample=30 metadata.app=helpdesk alert=60%")
    request = next(t for t in reversed(thread_texts(await bot.thread("tickets"))) if "Spending request: watch" in t)
    assert "A standing approval" in request and "a calendar month (5 periods" in request
    await _approve_newest(bot, "tickets")
    await until(lambda: _watch_lines(thread_texts(bot.slack.thread(run.channel_id, run.thread_ts))),
                within=30, what="the first period's line")
    [first] = _watch_lines(thread_texts(await bot.thread("tickets")))
    assert "period 1" in first and "of 30 sampled answers (of 40)" in first and "cost per 1,000 $" in first
    assert "ALERT" not in first
    answers = await bot.bot.storage.completions.for_run(run.id, split="watch1.1")
    assert sum(c.role == "teacher" for c in answers) == sum(c.role == "student_ft" for c in answers) == 30
    paid = [r for r in openai_sandbox.requests if r.paid and r.metadata.get("split") == "watch1.1"]
    assert paid and {r.metadata["role"] for r in paid} == {"teacher"}
    # inputs the teacher answered before (in the run's own data) are reused, not paid again
    assert len(paid) == sum(c.role == "teacher" and c.reused_from is None for c in answers)
    await bot.bot.close()

    # A restart between periods posts nothing again.
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2", DISTILL_DB=database)
    run = await bot.run("tickets")
    ticks = await bot.bot.storage.watches.ticks(1)
    [watch] = await bot.bot.storage.watches.for_run(run.id)
    assert [t.number for t in ticks] == [1] and watch.next_due_at > clock.iso()

    # The distilled model degrades; a week later the next period is due, and a restart interrupts it.
    openai_sandbox.degrade(model, 0.8)
    clock.advance(dt.timedelta(days=3))
    await _traffic(bot, openai_sandbox, model, TICKETS[350:390], "helpdesk")
    openai_sandbox.inject("/v1/chat/completions", "timeout", count=30, method="POST")  # the teacher hangs
    clock.advance(dt.timedelta(days=4, minutes=1))
    await until(lambda: bot.bot.service.tasks.running("watch1-2"),
                within=30, what="the second period's work")
    await bot.bot.close()
    assert [t.state for t in await _ticks(database, clock)] == ["done", "running"]
    openai_sandbox.faults.clear()

    bot = await make_bot(DISTILL_POLL_SECONDS="0.2", DISTILL_DB=database)
    await until(lambda: len(_watch_lines(thread_texts(bot.slack.thread(run.channel_id, run.thread_ts)))) == 2,
                within=30, what="the second period's line")
    await bot.bot.idle()
    lines = _watch_lines(thread_texts(await bot.thread("tickets")))
    assert len(lines) == 2 and "period 1" in lines[0] and "period 2" in lines[1]
    assert "of 30 sampled answers (of 40)" in lines[1] and "trend" in lines[1]
    assert "ALERT: below the 60% threshold" in lines[1]
    first_score, second_score = (float(line.split("teacher on ")[1].split("%")[0]) for line in lines)
    assert first_score >= 60 > second_score
    assert f"{first_score:.1f}% → {second_score:.1f}%" in lines[1]

    # A file of the model's answers, shared with the comment `watch`, is what the next period samples.
    lines = [json.dumps({"messages": [{"role": "user", "content": f"{t['subject']}: {t['body']}"},
                                      {"role": "assistant", "content": json.dumps({"label": t["category"]})}]})
             for t in TICKETS[400:440]]
    await bot.share(("\n".join(lines) + "\n").encode(), "answers.jsonl", thread_ts=run.thread_ts, text="watch")
    assert "The watch's next period samples the 40 answers of answers.jsonl" in thread_texts(
        await bot.thread("tickets"))[-1]
    clock.advance(dt.timedelta(days=7))
    await until(lambda: len(_watch_lines(thread_texts(bot.slack.thread(run.channel_id, run.thread_ts)))) == 3,
                within=30, what="the third period's line")
    await bot.bot.idle()
    third = _watch_lines(thread_texts(await bot.thread("tickets")))[-1]
    assert "period 3" in third and "of 30 sampled answers (of 40)" in third and "cost per 1,000 unknown" in third

    await bot.command("watch tickets off")
    [watch] = await bot.bot.storage.watches.for_run(run.id)
    assert watch.state == "off"
    clock.advance(dt.timedelta(days=8))
    await bot.bot.service.watch.tick_due()
    assert len(await bot.bot.storage.watches.ticks(watch.id)) == 3  # nothing due once it is off


async def _ticks(database: str, clock) -> list:
    from storage import Storage

    storage = await Storage.open(database, now=clock.iso)
    try:
        return await storage.watches.ticks(1)
    finally:
        await storage.close()
