"""A whole run with trainer=dicl through the Slack app (issue 20): a student that cannot be fine-tuned (gpt-6-luna)
goes from the train approval to an eval report whose distilled column is the student with the teacher's nearest
examples in its prompt; with k=0 the same run shows the base student's score. The index is priced and approved,
resumes without paying twice, and the export (file and snippet) lands in the thread."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys

from bot.evaluate.scores import report_for_run
from bot.runs.cards import spend_micro_usd
from tests.handlers.conftest import buttons, thread_texts
from tests.handlers.test_distillation import REPORT_TITLE, _approve_newest, _wait_for_state

SETTINGS = "label=category train=200 eval=60 trainer=dicl student=gpt-6-luna"
STUDENT = "gpt-6-luna"


async def _collected(bot, settings: str = SETTINGS) -> None:
    await bot.ready_run("tickets", settings)
    await bot.command("collect tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "collected", "failed") == "collected"


def _embeddings(sandbox) -> list:
    return [r for r in sandbox.requests if r.path == "/v1/embeddings" and r.status == 200]


def _row(report: str, name: str) -> tuple[str, str, str]:
    return re.search(rf"^{name} +(\S+) +(\S+) +(\S+)$", report, re.M).groups()


async def test_a_dicl_run_reports_the_student_with_its_nearest_teacher_examples(make_bot, openai_sandbox):
    bot = await make_bot()
    await _collected(bot)
    await bot.command("estimate tickets")
    texts = thread_texts(await bot.thread("tickets"))
    estimate = "\n".join(texts[max(i for i, t in enumerate(texts) if "Estimate for tickets" in t):])
    assert re.search(r"^train +embedding +text-embedding-3-small +200 ", estimate, re.M)
    assert re.search(r"^evaluate +embedding +text-embedding-3-small +60 ", estimate, re.M)
    base = int(re.search(rf"^collect +student +{STUDENT} +60 +([\d,]+)", estimate, re.M).group(1).replace(",", ""))
    prompted = int(re.search(rf"^evaluate +distilled +{STUDENT} +60 +([\d,]+)", estimate, re.M).group(1)
                   .replace(",", ""))
    assert prompted > 5 * base  # eight examples in every prompt
    await bot.command("train tickets")
    texts = thread_texts(await bot.thread("tickets"))
    [request] = [t for t in texts if "Spending request: train" in t]
    assert "trainer=dicl fine-tunes nothing" in request and "text-embedding-3-small" in request
    assert not _embeddings(openai_sandbox)  # nothing is embedded before the approval
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "done", "failed") == "done"

    run = await bot.run("tickets")
    [job] = await bot.bot.storage.jobs.for_run(run.id)
    assert (job.trainer, job.status, job.fine_tuned_model) == ("dicl", "SUCCEEDED", f"{STUDENT}+dicl(k=8)")
    embedded = _embeddings(openai_sandbox)
    _, query_tokens = await bot.bot.storage.vectors.spend_micro_usd(job.id, "eval")
    assert sum(r.usage["prompt_tokens"] for r in embedded) == job.trained_tokens + query_tokens
    # every eval request carries 8 examples (16 turns) before the row; the student, not a fine-tune, answered
    asked = [r for r in openai_sandbox.requests if r.path == "/v1/chat/completions" and r.model == STUDENT
             and r.metadata.get("role") == "student_ft"]
    assert len(asked) == 60

    report = await report_for_run(bot.bot.storage, run.id)
    base, distilled = report.scores["student_base"], report.scores["student_ft"]
    assert distilled.model == STUDENT and distilled.accuracy >= base.accuracy + 0.1
    thread = await bot.thread("tickets")
    texts = thread_texts(thread)
    [table] = [t for t in texts if "teacher" in t and "distilled" in t and "Cost per 1,000" in t]
    assert f"distilled {STUDENT}+dicl(k=8)" in table
    teacher_cost, base_cost, distilled_cost = _row(table, "Cost per 1,000")
    # longer prompts and the query embedding cost more than the base student, still far less than the teacher
    assert float(base_cost[1:]) < float(distilled_cost[1:]) < float(teacher_cost[1:]) / 5
    assert sum(REPORT_TITLE in t for t in texts) == 1
    [snippet] = [i for i, t in enumerate(texts) if "Use the distilled model outside the bot" in t]
    assert texts[snippet + 1].startswith("```") and "client.embeddings.create" in texts[snippet + 1]
    [index_file] = [f for m in thread for f in m.get("files", []) if f["name"] == "dicl-index.json"]
    document = json.loads(bot.slack.workspace.files[index_file["id"]].content)
    answered = await bot.bot.storage.completions.for_run(run.id, split="train", role="teacher")
    assert document["model"] == STUDENT and document["k"] == 8
    assert len(document["examples"]) == sum(c.status == "ok" for c in answered) > 100
    assert document["request"]["response_format"]["type"] == "json_schema"
    assert await spend_micro_usd(bot.bot.storage, run.id) >= job.cost_micro_usd + job.hosting_micro_usd > 0



async def test_the_same_run_with_k_0_shows_the_base_students_score_for_free(make_bot, openai_sandbox):
    bot = await make_bot()
    await _collected(bot)
    await bot.command("train tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "done", "failed") == "done"
    run = await bot.run("tickets")
    with_examples = (await report_for_run(bot.bot.storage, run.id)).scores["student_ft"]

    await bot.command("set tickets k=0")
    await bot.command("estimate tickets")
    texts = thread_texts(await bot.thread("tickets"))
    estimate = "\n".join(texts[max(i for i, t in enumerate(texts) if "Estimate for tickets" in t):])
    assert re.search(r"^train +embedding", estimate, re.M) is None  # nothing to embed
    assert "k=0 fine-tunes nothing and adds no example" in estimate
    embedded_before = len(_embeddings(openai_sandbox))
    await bot.command("train tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "done", "failed") == "done"

    report = await report_for_run(bot.bot.storage, run.id)
    base, distilled = report.scores["student_base"], report.scores["student_ft"]
    assert (distilled.correct, distilled.agreeing, distilled.cost_per_1k_micro_usd) == (
        base.correct, base.agreeing, base.cost_per_1k_micro_usd)
    assert with_examples.correct > base.correct
    assert len(_embeddings(openai_sandbox)) == embedded_before  # no example, no query to embed
    answers = await bot.bot.storage.completions.for_run(run.id, split="eval", role="student_ft")
    assert len(answers) == 60 and all(a.reused_from is not None for a in answers)  # the base student's, not paid
    texts = thread_texts(await bot.thread("tickets"))
    assert sum(REPORT_TITLE in t for t in texts) == 2  # one report per distilled model
    assert f"distilled {STUDENT}+dicl(k=0)" in texts[[i for i, t in enumerate(texts) if REPORT_TITLE in t][-1] + 1]


async def test_a_bot_stopped_while_indexing_resumes_without_paying_for_a_vector_twice(make_bot, openai_sandbox,
                                                                                      tmp_path):
    database = str(tmp_path / "restart.db")
    first = await make_bot(DISTILL_DB=database)
    await _collected(first)
    first.bot.service.training.dicl.embedder.max_inputs = 20  # ten requests for the 200 train rows
    openai_sandbox.latency_seconds = 0.2
    await first.command("train tickets")
    request = next(m for m in reversed(await first.thread("tickets")) if "approve" in buttons(m))
    # Clicked without waiting for the bot to be idle: the indexing is under way when the bot stops.
    await first.driver.click(user="bob", channel="general", message_ts=request["ts"], action_id="approve",
                             value=buttons(request)["approve"])
    run = await first.run("tickets")
    for _ in range(200):  # until some vectors, not all, are stored
        stored = await first.bot.storage.vectors.latest(run.id, "train", "text-embedding-3-small")
        if len(stored) >= 40:
            break
        await asyncio.sleep(0.05)
    assert 40 <= len(stored) < 200
    await first.bot.close()
    openai_sandbox.latency_seconds = 0

    second = await make_bot(DISTILL_DB=database)
    assert await _wait_for_state(second, "tickets", "done", "failed", seconds=60) == "done"
    [job] = await second.bot.storage.jobs.for_run(run.id)
    paid = sum(r.usage["prompt_tokens"] for r in _embeddings(openai_sandbox))
    _, query_tokens = await second.bot.storage.vectors.spend_micro_usd(job.id, "eval")
    stored_tokens = job.trained_tokens + query_tokens
    # Only a request in flight when the bot stopped (at most 20 rows) can have been paid without being stored.
    most_per_request = 20 * max(v.prompt_tokens for v in stored.values())
    assert stored_tokens <= paid <= stored_tokens + most_per_request
    texts = thread_texts(await second.thread("tickets"))
    assert sum(REPORT_TITLE in t for t in texts) == 1
    assert sum("Training finished: gpt-6-luna+dicl(k=8) is ready" in t for t in texts) == 1


async def test_the_snippet_answers_like_the_distilled_model_from_the_exported_file(make_bot, openai_sandbox,
                                                                                   tmp_path):
    bot = await make_bot()
    await _collected(bot)
    await bot.command("train tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "done", "failed") == "done"
    thread = await bot.thread("tickets")
    texts = thread_texts(thread)
    [start] = [i for i, t in enumerate(texts) if "Use the distilled model outside the bot" in t]
    code = texts[start + 1].strip("`").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    [file] = [f for m in thread for f in m.get("files", []) if f["name"] == "dicl-index.json"]
    (tmp_path / "dicl-index.json").write_bytes(bot.slack.workspace.files[file["id"]].content)
    [asked] = [r for r in openai_sandbox.requests if r.path == "/v1/chat/completions"
               and r.metadata.get("role") == "student_ft" and r.metadata.get("split") == "eval"][:1]
    program = f"{code}\nprint(answer({asked.last_user_text!r}).choices[0].message.content)"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", program, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "OPENAI_BASE_URL": openai_sandbox.url, "OPENAI_API_KEY": "sk-sandbox"})
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    outside = [r for r in openai_sandbox.requests if r.path == "/v1/chat/completions"][-1]
    assert outside.messages_hash == asked.messages_hash  # the very request the bot sent for that row
    assert out.decode().startswith('{"label":')
