"""A whole run with trainer=dicl through the Slack app (issue 20): a student that cannot be fine-tuned (gpt-6-luna)
goes from the train approval to an eval report whose distilled column is the student with the teacher's nearest
examples in its prompt; with k=0 the same run shows the base student's score. The index is priced and approved,
resumes without paying twice, and the export (file and snippet) lands in the thread."""

from __future__ import annotations

import json
import re

from bot.cards import spend_micro_usd
from bot.evals import report_for_run
from tests.handlers.conftest import thread_texts
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

