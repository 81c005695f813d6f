"""Distilling from answers a team already has, through the Slack app: a JSONL of chat examples, an import of the
provider's stored completions, a separate eval file, and a re-evaluation of a finished run on a new one."""

from __future__ import annotations

import csv
import io
import json

from bot.core.config import DEFAULT_TEACHER
from bot.data.splits import EVAL_FILE_ROW_OFFSET
from bot.examples import TICKETS_CSV
from tests.handlers.conftest import buttons, thread_texts
from tests.handlers.test_distillation import REPORT_TITLE, _approve_newest, _wait_for_state

SYSTEM = "Sort the IT ticket into its category."
TICKETS = list(csv.DictReader(io.StringIO(TICKETS_CSV.read_text(encoding="utf-8"))))


def _chat_line(ticket: dict[str, str], *, as_json_answer: bool) -> str:
    answer = json.dumps({"label": ticket["category"]}) if as_json_answer else ticket["category"]
    return json.dumps({"messages": [{"role": "system", "content": SYSTEM},
                                    {"role": "user", "content": f"{ticket['subject']}\n{ticket['body']}"},
                                    {"role": "assistant", "content": answer}]})


def _examples_jsonl(tickets: list[dict[str, str]], broken: dict[int, str]) -> bytes:
    """One chat example a line (fine-tuning format; half the answers as the bot writes them, half as plain text),
    with `broken` lines (by line number) put in their place."""
    lines = [_chat_line(t, as_json_answer=i % 2 == 0) for i, t in enumerate(tickets)]
    for number, text in sorted(broken.items()):
        lines.insert(number - 1, text)
    return ("\n".join(lines) + "\n").encode()


def _csv(tickets: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(tickets[0]))
    writer.writeheader()
    writer.writerows(tickets)
    return out.getvalue().encode()


def _teacher_requests(openai_sandbox, run_name: str) -> list:
    return [r for r in openai_sandbox.requests
            if r.paid and r.metadata.get("distill_run") == run_name and r.metadata.get("role") == "teacher"]


async def _train_to_done(bot, name: str) -> None:
    await bot.command(f"train {name}")
    await _approve_newest(bot, name)
    assert await _wait_for_state(bot, name, "done", "failed", seconds=60) == "done"


BROKEN = {
    4: '{"messages": [{"role": "user", "content": "cut off',
    9: json.dumps({"messages": [{"role": "user", "content": "My laptop does not boot"}]}),
    15: json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "Hardware"},
                                 {"role": "user", "content": "b"}, {"role": "assistant", "content": "Hardware"}]}),
    16: json.dumps({"prompt": "old completions format", "completion": "Network"}),
}


async def test_a_jsonl_with_broken_lines_names_them_and_trains_on_its_answers_without_asking_the_teacher(
        make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await bot.command("new chats")
    run = await bot.run("chats")
    await bot.share(_examples_jsonl(TICKETS[:150], BROKEN), "tickets.jsonl", thread_ts=run.thread_ts)

    texts = thread_texts(await bot.thread("chats"))
    named = next(t for t in texts if "examples were not used" in t)
    assert "4 of 154 examples were not used (lines 4, 9, 15-16)" in named
    assert "line 4: not JSON" in named
    assert "line 9: there is no assistant reply" in named
    assert "line 15: it has an earlier assistant message" in named
    assert 'line 16: it has no "messages" list' in named
    assert any("148 examples with their answers" in t and "asks only the base student" in t for t in texts)
    assert any("2 examples repeat an input already kept" in t for t in texts)
    run = await bot.run("chats")
    assert run.state == "ready" and run.spec["template"] == "{input}" and run.spec["system"] == SYSTEM
    assert set(run.spec["choices"]) == {t["category"] for t in TICKETS[:150]} and run.spec["label"] is None

    await bot.command("set chats train=60 eval=30")
    await bot.command("collect chats")
    request = next(t for t in thread_texts(await bot.thread("chats")) if "Spending request: collect" in t)
    assert "pays only for the base student's answers" in request
    await _approve_newest(bot, "chats")
    assert await _wait_for_state(bot, "chats", "collected", "failed") == "collected"
    await _train_to_done(bot, "chats")

    run = await bot.run("chats")
    teacher = await bot.bot.storage.completions.for_run(run.id, role="teacher")
    assert len(teacher) == 90 and all(c.cost_micro_usd == 0 and c.model == "imported" for c in teacher)
    assert not _teacher_requests(openai_sandbox, "chats")  # nothing paid for the teacher
    assert not [r for r in openai_sandbox.requests if r.paid and r.model == DEFAULT_TEACHER]
    texts = thread_texts(await bot.thread("chats"))
    assert sum(REPORT_TITLE in t for t in texts) == 1
    assert any("No gold labels: scores are agreement with the teacher's answers." in t for t in texts)


async def test_a_file_that_is_neither_csv_nor_usable_jsonl_is_refused_and_the_run_keeps_its_data(bot):
    run = await bot.ready_run("tickets")
    dataset = run.dataset_id
    await bot.share(b'{"not": "chat"}\nplain words\n', "notes.jsonl", thread_ts=run.thread_ts)
    last = thread_texts(await bot.thread("tickets"))[-1]
    assert "Could not use *notes.jsonl*: notes.jsonl has no usable chat example" in last
    assert "line 1: it has no" in last and "line 2: not JSON" in last
    run = await bot.run("tickets")
    assert run.dataset_id == dataset and run.spec["label"] == "category"


async def test_a_separate_eval_csv_is_the_eval_split_and_eval_posts_a_second_report_next_to_the_first(
        make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await bot.command("new tickets")
    run = await bot.run("tickets")
    await bot.share(_csv(TICKETS[:400]), "tickets.csv", thread_ts=run.thread_ts)
    await bot.command("set tickets label=category train=60 eval=30")
    held_out = TICKETS[360:440]  # 40 of them are in the data too: they must leave train
    await bot.share(_csv(held_out), "test.csv", thread_ts=run.thread_ts, text="eval")
    run = await bot.run("tickets")
    assert run.eval_dataset_id is not None
    assert "The eval split is now the rows of test.csv (80 rows)" in thread_texts(await bot.thread("tickets"))[-1]

    await bot.command("collect tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "collected", "failed") == "collected"
    rows = await bot.bot.storage.runs.rows(run.id)
    evaluated = [r for r in rows if r.split == "eval"]
    trained = [r for r in rows if r.split == "train"]
    assert len(evaluated) == 80 and all(r.row_index >= EVAL_FILE_ROW_OFFSET for r in evaluated)
    assert len(trained) == 60 and all(r.row_index < EVAL_FILE_ROW_OFFSET for r in trained)
    assert not {r.input_hash for r in evaluated} & {r.input_hash for r in trained}
    await _train_to_done(bot, "tickets")

    await bot.command("eval tickets")
    assert "No new eval file for run 'tickets'" in bot.said_to("alice")[-1]
    await bot.share(_csv(TICKETS[440:480]), "fresh.csv", thread_ts=run.thread_ts, text="eval")
    assert "as a new eval for the distilled model" in thread_texts(await bot.thread("tickets"))[-1]
    assert (await bot.run("tickets")).eval_dataset_id == run.eval_dataset_id  # the first eval split stays
    paid_before = len(openai_sandbox.requests.paid())
    await bot.command("eval tickets")
    request = next(t for t in reversed(thread_texts(await bot.thread("tickets"))) if "Spending request: eval" in t)
    assert "fresh.csv: 40 eval rows" in request
    await _approve_newest(bot, "tickets")
    await bot.bot.idle()

    texts = thread_texts(await bot.thread("tickets"))
    assert sum(REPORT_TITLE in t for t in texts) == 1  # the first report, once
    assert sum("Eval #1 on fresh.csv: teacher vs base student vs distilled student" in t for t in texts) == 1
    compared = next(t for t in texts if "Next to the run's first report" in t)
    assert "distilled student: accuracy" in compared and "points)" in compared
    assert len(openai_sandbox.requests.paid()) - paid_before == 3 * 40  # teacher, base and distilled on 40 rows
    [reeval] = await bot.bot.storage.reevals.for_run(run.id)
    assert reeval.state == "done" and reeval.report["scores"]["student_ft"]["rows"] == 40
    assert (await bot.run("tickets")).state == "done"


async def test_a_second_run_imports_the_first_runs_stored_teacher_answers_and_trains_without_collection_spend(
        make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await bot.ready_run("tickets")
    await bot.command("collect tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "collected") == "collected"
    stored = [c async for c in bot.bot.provider.client.chat.completions.list(
        metadata={"distill_run": "tickets", "role": "teacher"}, limit=100)]
    assert len(stored) == 90 and {c.model for c in stored} == {DEFAULT_TEACHER}

    await bot.command("new tickets2")
    await bot.command("import tickets2 metadata.distill_run=tickets metadata.role=teacher")
    texts = thread_texts(await bot.thread("tickets2"))
    preview = next(t for t in texts if "Stored completions matching" in t)
    assert "metadata.distill_run=tickets metadata.role=teacher limit=1000: 90" in preview
    table = next(t for t in texts if "metadata.split" in t)
    assert "train" in table and "eval" in table and "metadata.role" in table
    assert any("kept 30 days" in t and "deleted by the provider on 2026-12-29" in t for t in texts)
    assert (await bot.run("tickets2")).dataset_id is None  # nothing stored before the confirmation
    [question] = bot.slack.ephemerals("alice")[-1:]
    assert set(buttons(question.message)) == {"import_confirmed", "import_kept"}
    await bot.click(question.message["ts"], "import_confirmed", user="alice",
                    value=buttons(question.message)["import_confirmed"])

    run = await bot.run("tickets2")
    assert run.state == "ready" and run.spec["teacher"] == DEFAULT_TEACHER
    assert any("90 examples with their answers, from gpt-6.2-sol (90)" in t
               for t in thread_texts(await bot.thread("tickets2")))
    paid_before = len(openai_sandbox.requests.paid())
    await bot.command("set tickets2 train=60 eval=30")
    await bot.command("collect tickets2")
    await _approve_newest(bot, "tickets2")
    assert await _wait_for_state(bot, "tickets2", "collected", "failed") == "collected"
    assert not _teacher_requests(openai_sandbox, "tickets2")
    collected = openai_sandbox.requests.paid()[paid_before:]
    assert {r.metadata["role"] for r in collected} == {"student_base"} and len(collected) == 30
    await _train_to_done(bot, "tickets2")
    texts = thread_texts(await bot.thread("tickets2"))
    assert sum(REPORT_TITLE in t for t in texts) == 1
    teacher = await bot.bot.storage.completions.for_run(run.id, role="teacher")
    assert teacher and all(c.cost_micro_usd == 0 and c.provider_completion_id.startswith("chatcmpl") for c in teacher)
    distilled = [r for r in openai_sandbox.requests if r.paid and r.metadata.get("distill_run") == "tickets2"
                 and r.metadata.get("role") == "student_ft"]
    assert len(distilled) == 30  # the bot's own requests say which run and role they are


async def test_examples_shared_again_replace_the_teacher_answers_of_the_ones_before(make_bot):
    bot = await make_bot()
    await bot.command("new chats")
    run = await bot.run("chats")
    for tickets in (TICKETS[:120], TICKETS[120:240]):  # the second file's rows take the first one's row indexes
        await bot.share(_examples_jsonl(tickets, {}), "tickets.jsonl", thread_ts=run.thread_ts)
        await bot.command("set chats train=40 eval=20")
        await bot.command("collect chats")
        await _approve_newest(bot, "chats")
        assert await _wait_for_state(bot, "chats", "collected", "failed") == "collected"
    run = await bot.run("chats")
    rows = await bot.bot.storage.datasets.rows(run.dataset_id)
    teacher = await bot.bot.storage.completions.for_run(run.id, role="teacher")
    assert len(teacher) == 60
    assert all(c.raw_output == rows[c.row_index]["answer"] for c in teacher)
    assert {rows[c.row_index]["input"] for c in teacher} <= {f"{t['subject']}\n{t['body']}" for t in TICKETS[120:240]}


async def test_eval_file_picks_a_shared_eval_file_or_none_and_a_wrong_name_lists_the_shared_ones(bot):
    run = await bot.ready_run("tickets")
    await bot.share(_csv(TICKETS[440:480]), "test.csv", thread_ts=run.thread_ts, text="eval")
    held = (await bot.run("tickets")).eval_dataset_id
    await bot.command("set tickets eval_file=none")
    assert (await bot.run("tickets")).eval_dataset_id is None
    assert "carved from the data again" in thread_texts(await bot.thread("tickets"))[-1]
    await bot.command("set tickets eval_file=test.csv eval=25")
    run = await bot.run("tickets")
    assert run.eval_dataset_id == held and run.spec["eval_size"] == 25
    await bot.command("set tickets eval_file=holdout.csv")
    assert ("No eval file named 'holdout.csv' was shared in this run's thread. Eval files shared here: test.csv."
            in bot.said_to("alice")[-1])
    await bot.share(b'{"messages": []}\n', "more.jsonl", thread_ts=run.thread_ts, text="eval")
    assert "this run's data is a CSV, so its eval file is a CSV" in thread_texts(await bot.thread("tickets"))[-1]
    assert (await bot.run("tickets")).eval_dataset_id == held
