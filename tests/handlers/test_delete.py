"""`/distill delete NAME` and DISTILL_RETENTION_DAYS (issue 19: uploaded rows, prompts and answers stayed in the
database and the data folder forever, and the files the bot uploaded stayed at the provider)."""

from __future__ import annotations

import datetime as dt
import sqlite3

from bot.examples import TICKETS_CSV
from bot.runs.cards import spend_micro_usd
from tests.handlers.conftest import CHANNEL, buttons, thread_texts
from tests.handlers.test_distillation import _approve_newest, _wait_for_state
from tests.handlers.test_distillation_together import together_env, training
from tests.reliability.crash import until

A_TICKET = "The accounting software shows a blank screen"  # a subject in the bundled CSV, and in no setting


def _database_text(bot) -> str:
    with sqlite3.connect(bot.bot.storage.db.path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(str(v) for t in tables for row in conn.execute(f"SELECT * FROM {t}") for v in row)


async def _confirm(bot, text: str, answer: str) -> None:
    await bot.command(text)
    question = bot.slack.ephemerals("alice")[-1]
    assert set(buttons(question.message)) == {f"{text.split()[0]}_confirmed", f"{text.split()[0]}_kept"}
    await bot.click(question.message["ts"], f"{text.split()[0]}_{answer}", user="alice")


async def test_delete_asks_first_then_removes_the_data_and_the_provider_files_and_keeps_the_audit_trail(
        make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await bot.ready_run("tickets", "label=category train=30 eval=20 mode=batch")
    await bot.command("collect tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "collected", "failed") == "collected"
    await bot.command("train tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "done", "failed") == "done"
    run = await bot.run("tickets")
    storage = bot.bot.storage
    files = {f for job in await storage.jobs.for_run(run.id) for f in (job.training_file_id, job.validation_file_id)
             if f} | {f for b in await storage.batches.for_run(run.id)
                      for f in (b.input_file_id, b.output_file_id, b.error_file_id) if f}
    assert len(files) >= 4 and all(f in openai_sandbox.files for f in files)
    folder = bot.bot.service.run_folder(run)
    assert any(folder.iterdir()) and A_TICKET in _database_text(bot)

    await _confirm(bot, "delete tickets", "kept")
    assert (await bot.run("tickets")).state == "done" and "was not deleted" in bot.said_to("alice")[-1]
    await _confirm(bot, "delete tickets", "confirmed")

    run = await bot.run("tickets")
    assert run.state == "deleted" and run.dataset_id is None
    assert not {"label", "template", "system", "choices"} & set(run.spec) and run.spec["teacher"]
    assert not [f for f in files if f in openai_sandbox.files], "the provider's copies are gone"
    assert not folder.exists()
    assert await storage.completions.for_run(run.id) == [] and await storage.runs.rows(run.id) == []
    assert await storage.evals.latest(run.id) == {} and await storage.batches.for_run(run.id) == []
    assert A_TICKET not in _database_text(bot)
    audit = await storage.audit.for_run(run.id)
    assert audit[0].action == "run-created" and audit[-1].action == "run-deleted"
    assert audit[-1].actor == "U0ALICE" and audit[-1].detail["uploaded_rows"] == 480
    assert audit[-1].detail["provider_files_deleted"] == len(files) and audit[-1].detail["spent_micro_usd"] > 0
    note = thread_texts(await bot.thread("tickets"))[-1]
    assert f"<@U0ALICE> deleted this run's data: 480 uploaded rows, {audit[-1].detail['answers']:,} answers" in note
    assert "(`/distill audit tickets`)" in note

    await bot.command("audit tickets")
    assert "run-deleted" in bot.said_to("alice")[-1]
    await bot.command("collect tickets")
    assert "Run 'tickets' was deleted: only its audit trail is left" in bot.said_to("alice")[-1]


async def test_a_file_another_run_uses_is_kept_and_answers_it_reused_stay_its_own(make_bot):
    bot = await make_bot(DISTILL_AUTO_APPROVE_USD="100")
    for name in ("first", "second"):
        await bot.ready_run(name, "label=category train=20 eval=10")
        await bot.command(f"collect {name}")
        assert (await bot.run(name)).state == "collected"
    first, second = await bot.run("first"), await bot.run("second")
    assert first.dataset_id == second.dataset_id
    storage = bot.bot.storage
    spent = [await spend_micro_usd(storage, r.id) for r in (first, second)]
    assert spent[1] == 0, "the second run reused every answer the first paid for"
    await _confirm(bot, "delete first", "confirmed")
    assert (await storage.datasets.get(second.dataset_id)).row_count == 480, "the second run's data stays"
    assert "no uploaded rows (another run uses the same file)" in thread_texts(await bot.thread("first"))[-1]
    answers = await storage.completions.for_run(second.id)
    assert answers and all(a.reused_from is None for a in answers)
    assert await spend_micro_usd(storage, second.id) == 0, "reused answers do not become spend of their own"


async def test_the_scheduler_deletes_the_data_of_runs_finished_longer_ago_than_the_retention(make_bot, clock):
    bot = await make_bot(DISTILL_RETENTION_DAYS="30", DISTILL_POLL_SECONDS="0.05")
    for name in ("old", "recent", "working"):
        await bot.command(f"new {name}")
        await bot.share(TICKETS_CSV.read_bytes(), "it-tickets.csv", thread_ts=(await bot.run(name)).thread_ts)
    await _confirm(bot, "cancel old", "confirmed")
    clock.advance(dt.timedelta(days=29))
    await _confirm(bot, "cancel recent", "confirmed")
    clock.advance(dt.timedelta(days=2))  # old finished 31 days ago, recent 2; working never finished

    old = await bot.run("old")
    said = ("The retention period (DISTILL_RETENTION_DAYS=30) deleted this run's data: no uploaded rows (another run "
            "uses the same file)")
    await until(lambda: said in "\n".join(thread_texts(bot.slack.thread(CHANNEL, old.thread_ts))), within=30,
                what="the retention purge")  # the scheduler's work: no idle() waits for it
    assert _state(bot, "old") == "deleted"
    assert _state(bot, "recent") == "cancelled" and _state(bot, "working") == "ready"
    [entry] = [e for e in await bot.bot.storage.audit.for_run(old.id) if e.action == "run-deleted"]
    assert entry.actor == "system" and "DISTILL_RETENTION_DAYS=30" in entry.detail["why"]
    assert (await bot.bot.storage.datasets.get((await bot.run("recent")).dataset_id)).row_count == 480


def _state(bot, name: str) -> str:
    with sqlite3.connect(bot.bot.storage.db.path) as conn:
        return conn.execute("SELECT state FROM runs WHERE name = ?", (name,)).fetchone()[0]


async def test_delete_removes_the_training_file_a_together_run_uploaded(make_bot, together_sandbox):
    bot = await make_bot(**together_env(together_sandbox))
    await training(bot)
    assert await _wait_for_state(bot, "tickets", "done", "failed") == "done"
    [job] = await bot.bot.storage.jobs.for_run((await bot.run("tickets")).id)
    assert job.training_file_id in together_sandbox.files.files
    await _confirm(bot, "delete tickets", "confirmed")
    assert job.training_file_id not in together_sandbox.files.files
    assert "1 file(s) at the provider" in thread_texts(await bot.thread("tickets"))[-1]
