"""From collected answers to a posted eval report, through the Slack app, with the scheduler polling the job."""

from __future__ import annotations

import datetime as dt

from bot.core.config import DEFAULT_TEACHER
from bot.evaluate.scores import report_for_run
from tests.handlers.conftest import buttons, thread_texts
from tests.waiting import until

REPORT_TITLE = "Eval: teacher vs base student vs distilled student"


def _event_lines(texts: list[str]) -> list[str]:
    """The trainer's event messages posted in the thread (one per line of the fenced blocks)."""
    return [line.strip("`") for t in texts if "new event" in t or t.startswith("```")
            for line in t.splitlines() if line.strip("`").startswith(("Step ", "Fine-tuning job", "Validating",
                                                                     "Files validated", "Created fine-tuning"))]


async def _approve_newest(bot, name: str) -> None:
    """Bob presses Approve on the newest approval request of the run."""
    thread = await bot.thread(name)
    request = next(m for m in reversed(thread) if "approve" in buttons(m))
    await bot.click(request["ts"], "approve", user="bob", value=buttons(request)["approve"])


async def _wait_for_state(bot, name: str, *states: str, seconds: float = 30) -> str:
    """Wait until the run reaches one of `states` and the work that follows the change is done."""

    async def reached():
        await bot.bot.idle()
        return (await bot.run(name)).state in states

    await until(reached, within=seconds, what=f"run {name} to be {' or '.join(states)}")
    await bot.bot.idle()
    return (await bot.run(name)).state


async def _collected(bot, name: str = "tickets") -> None:
    await bot.ready_run(name)
    await bot.command(f"collect {name}")
    await _approve_newest(bot, name)
    assert await _wait_for_state(bot, name, "collected") == "collected"


async def test_collected_answers_become_a_distilled_model_and_one_eval_report_with_its_chart(
        make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await _collected(bot)
    texts = thread_texts(await bot.thread("tickets"))
    assert any("Baseline: teacher vs base student" in t for t in texts)

    await bot.command("train tickets")
    request = thread_texts(await bot.thread("tickets"))
    assert any("train" in t.lower() and "$" in t for t in request)
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "done", "failed") == "done"

    run = await bot.run("tickets")
    [job] = await bot.bot.storage.jobs.for_run(run.id)
    assert job.status == "SUCCEEDED" and job.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:")
    assert job.trained_tokens > 0 and job.cost_micro_usd > 0
    # the file the sandbox trained on passes its OpenAI-style validation: the job would have failed otherwise
    evals = await bot.bot.storage.evals.latest(run.id)
    assert set(evals) == {"teacher", "student_base", "student_ft"}

    thread = await bot.thread("tickets")
    texts = thread_texts(thread)
    assert sum(REPORT_TITLE in t for t in texts) == 1
    verdict = (await report_for_run(bot.bot.storage, run.id)).verdict
    assert sum(t.count(verdict[:60]) for t in texts) == 1  # the verdict is said once, not again in the table
    charts = [f for m in thread for f in m.get("files", []) if f["name"].endswith(".png")]
    assert len(charts) == 2  # the baseline's and the report's
    event_lines = _event_lines(texts)
    assert any(line.startswith("Step ") for line in event_lines)
    assert len(event_lines) == len(set(event_lines))  # every training event posted once

    await bot.command("report tickets")
    await bot.command("export tickets")
    texts = thread_texts(await bot.thread("tickets"))
    assert sum(REPORT_TITLE in t for t in texts) == 2
    exported = [f for m in await bot.thread("tickets") for f in m.get("files", []) if f["name"] == "predictions.csv"]
    assert len(exported) == 1


async def test_a_bot_restarted_mid_training_resumes_polling_without_reposting_events(
        make_bot, openai_sandbox, tmp_path):
    openai_sandbox.clock.speed = 15  # a four-second job, so the restart lands in the middle of it
    database = str(tmp_path / "restart.db")
    first = await make_bot(DISTILL_POLL_SECONDS="0.2", DISTILL_DB=database)
    await _collected(first)
    await first.command("train tickets")
    await _approve_newest(first, "tickets")
    await _wait_for_state(first, "tickets", "training")
    async def job_events_posted():
        return _event_lines(thread_texts(await first.thread("tickets")))

    await until(job_events_posted, within=30, what="a batch of job events in the thread")
    await first.bot.close()

    second = await make_bot(DISTILL_POLL_SECONDS="0.2", DISTILL_DB=database)
    assert await _wait_for_state(second, "tickets", "done", "failed", seconds=60) == "done"
    texts = thread_texts(await second.thread("tickets"))
    event_lines = _event_lines(texts)
    assert event_lines and len(event_lines) == len(set(event_lines))
    assert sum(REPORT_TITLE in t for t in texts) == 1
    job_creates = [r for r in openai_sandbox.requests if r.method == "POST" and r.path == "/v1/fine_tuning/jobs"]
    assert len(job_creates) == 1


async def test_a_failing_job_posts_the_providers_reason_and_fails_the_run(make_bot, openai_sandbox):
    openai_sandbox.fine_tuning.fail_jobs_with = "The job ran out of training capacity in this sandbox."
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await _collected(bot)
    await bot.command("train tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "failed", "done") == "failed"
    run = await bot.run("tickets")
    assert "ran out of training capacity" in run.error
    # The state is stored before it is announced, by the scheduler's tick: wait for the message itself.
    await until(lambda: any("Training failed" in t and "ran out of training capacity" in t
                            for t in thread_texts(bot.slack.thread(run.channel_id, run.thread_ts))),
                within=30, what="the job's failure in the thread")


async def test_a_student_past_its_shutdown_date_is_refused_before_any_spend(make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await _collected(bot)
    openai_sandbox.catalog.set_shutdown_date("gpt-4o-mini-2024-07-18", "2026-01-01")
    await bot.command("train tickets")
    [*_, refused] = bot.said_to("alice")
    assert "was shut down on 2026-01-01" in refused
    run = await bot.run("tickets")
    assert run.state == "collected" and await bot.bot.storage.jobs.for_run(run.id) == []


async def test_a_student_close_to_its_shutdown_date_gets_a_warning_in_the_thread(make_bot, openai_sandbox, clock):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await _collected(bot)
    soon = (clock.today() + dt.timedelta(days=32)).isoformat()
    openai_sandbox.catalog.set_shutdown_date("gpt-4o-mini-2024-07-18", soon)
    await bot.command("train tickets")
    texts = thread_texts(await bot.thread("tickets"))
    assert any(f"shuts down on {soon}" in t and "fine-tuned from it stops answering" in t for t in texts)


async def test_a_teacher_close_to_its_shutdown_date_gets_one_warning_and_one_past_it_is_refused(
        make_bot, openai_sandbox, clock):
    bot = await make_bot()
    soon = (clock.today() + dt.timedelta(days=30)).isoformat()
    openai_sandbox.catalog.set_shutdown_date(DEFAULT_TEACHER, soon)
    await bot.ready_run("tickets")
    await bot.command("collect tickets")
    await bot.command("collect tickets")  # asked again: the warning is not repeated
    texts = thread_texts(await bot.thread("tickets"))
    assert sum(f"{DEFAULT_TEACHER} shuts down on {soon} (in 30 days)" in t for t in texts) == 1
    assert any("Spending request: collect" in t for t in texts)

    openai_sandbox.catalog.set_shutdown_date(DEFAULT_TEACHER, "2026-01-01")
    await bot.command("set tickets eval=20")
    await bot.command("collect tickets")
    refused = bot.said_to("alice")[-1]
    assert f"{DEFAULT_TEACHER} was shut down on 2026-01-01" in refused
    assert "`/distill set tickets teacher=...`" in refused
    assert (await bot.run("tickets")).state == "ready"


async def test_batch_mode_collects_through_the_batch_api_and_the_scheduler(make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await bot.ready_run("tickets", "label=category train=30 eval=20 mode=batch")
    await bot.command("collect tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "collected", "failed") == "collected"
    run = await bot.run("tickets")
    batches = await bot.bot.storage.batches.for_run(run.id)
    assert {(b.split, b.role) for b in batches} == {("train", "teacher"), ("eval", "teacher"),
                                                    ("eval", "student_base")}
    assert all(b.status == "stored" for b in batches)
    assert all(r.batch for r in openai_sandbox.requests if r.paid)
    counts = await bot.bot.storage.completions.counts(run.id)
    assert counts[("train", "teacher", "ok")] + counts.get(("train", "teacher", "invalid"), 0) == 30
    assert any("Baseline: teacher vs base student" in t for t in thread_texts(await bot.thread("tickets")))
