"""Free-text and extraction runs through the Slack app, from upload to the per-grader report (GSM8K's word problems
from ../shared/data; sandbox teacher, students and judge)."""

from __future__ import annotations

import csv
import io
import json

from bot.evaluate.grader_report import report_for_run
from bot.spec.settings import RunSpec
from tests.handlers.conftest import thread_texts
from tests.handlers.test_distillation import _approve_newest, _wait_for_state

REPORT_TITLE = "Eval: teacher vs base student vs distilled student"


def gsm8k_csv(shared_dir, rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["question", "answer"])
    with open(shared_dir / "data" / "gsm8k" / "train.jsonl", encoding="utf-8") as lines:
        for _, line in zip(range(rows), lines, strict=False):
            row = json.loads(line)
            writer.writerow([row["question"], row["answer"]])
    return out.getvalue().encode()


async def start(bot, name: str, content: bytes, filename: str, settings: str) -> None:
    await bot.command(f"new {name}")
    run = await bot.run(name)
    await bot.share(content, filename, thread_ts=run.thread_ts)
    await bot.command(f"set {name} {settings}")


async def distill(bot, name: str) -> None:
    await bot.command(f"collect {name}")
    await _approve_newest(bot, name)
    assert await _wait_for_state(bot, name, "collected", "failed", seconds=60) == "collected"
    await bot.command(f"train {name}")
    await _approve_newest(bot, name)
    assert await _wait_for_state(bot, name, "done", "failed", seconds=90) == "done"


async def test_a_gsm8k_run_goes_from_upload_to_a_report_per_grader(make_bot, openai_sandbox, shared_dir):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await start(bot, "gsm", gsm8k_csv(shared_dir, 120), "gsm8k.csv",
                "task=generate reference=answer graders=numeric,rouge_l,score_model,pairwise train=60 eval=40")
    await distill(bot, "gsm")
    run = await bot.run("gsm")
    spec = RunSpec.from_dict(run.spec)
    _, prepared = await bot.bot.service.prepare_run(run)
    report = await report_for_run(bot.bot.storage, run.id, spec, prepared.eval, "eval")

    texts = thread_texts(await bot.thread("gsm"))
    [posted] = [t for t in texts if REPORT_TITLE in t]
    table = "\n".join(t for t in texts if "numeric (pass rate)" in t)
    for row in ("numeric (pass rate)", "rouge_l (mean)", "score_model (mean)", "pairwise vs teacher W/T/L",
                "95% CI", "win 95% CI"):
        assert row in table
    assert report.verdict in posted
    # each grader for each model, with an interval; pairwise for the two students against the teacher
    for name in ("numeric", "rouge_l", "score_model"):
        assert set(report.figures[name]) == {"teacher", "student_base", "student_ft"}
        assert all(f.interval is not None and f.graded == 40 for f in report.figures[name].values())
    assert set(report.pairwise) == {"student_base", "student_ft"}
    assert all(f.rows + f.unread == 40 for f in report.pairwise.values())
    # the chart has a panel per grader beside the cost
    charts = [f for m in await bot.thread("gsm") for f in m.get("files", []) if f["name"] == "eval-chart.png"]
    assert charts
    # the judge was asked once per answer and grader, in both orders for pairwise; never twice
    judged = [c for c in await bot.bot.storage.completions.for_run(run.id) if c.role.startswith("judge:")]
    assert len(judged) == 3 * 40 + 2 * 2 * 40
    assert report.judge_micro_usd > 0 and "The judge (" in report.body_text()


INVOICE_SCHEMA = {"name": "invoice", "strict": True, "schema": {
    "type": "object", "properties": {"customer": {"type": "string"}, "amount": {"type": "number"},
                                     "paid": {"type": "boolean"}}}}
CUSTOMER_WORDS = ("Client", "Customer", "Buyer")
AMOUNT_WORDS = ("total due", "amount", "balance due")


def invoices_csv(rows: int) -> bytes:
    """Made-up invoice notes with their fields as a JSON reference; the key words vary, so reading them is learned."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["note", "fields"])
    for i in range(rows):
        customer, amount, paid = f"Firm {i} Ltd", 100 + 7 * i, i % 3 == 0
        note = (f"Invoice {1000 + i} for services in week {i % 52 + 1}. {CUSTOMER_WORDS[i % 3]}: {customer}; "
                f"{AMOUNT_WORDS[i % 2 + (i % 5 == 0)]} {amount}; paid: {'yes' if paid else 'no'}.")
        writer.writerow([note, json.dumps({"customer": customer, "amount": amount, "paid": paid})])
    return out.getvalue().encode()


async def test_an_extract_run_with_a_shared_json_schema_reports_json_match_per_field(make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await start(bot, "invoices", invoices_csv(90), "invoices.csv", "task=extract reference=fields train=50 eval=30")
    run = await bot.run("invoices")
    assert any("share it as a .json file" in t for t in thread_texts(await bot.thread("invoices")))
    await bot.share(json.dumps(INVOICE_SCHEMA).encode(), "invoice.schema.json", thread_ts=run.thread_ts)
    run = await bot.run("invoices")
    spec = RunSpec.from_dict(run.spec)
    assert spec.task == "extract" and spec.grader_names == ("json_match",)
    assert spec.schema["required"] == ["customer", "amount", "paid"] and spec.schema["additionalProperties"] is False
    texts = thread_texts(await bot.thread("invoices"))
    assert any("`schema=invoice.schema.json (customer, amount, paid)`" in t for t in texts)

    await distill(bot, "invoices")
    run = await bot.run("invoices")
    _, prepared = await bot.bot.service.prepare_run(run)
    report = await report_for_run(bot.bot.storage, run.id, spec, prepared.eval, "eval")
    assert set(report.fields) == {"customer", "amount", "paid"}
    for by_role in report.fields.values():
        assert set(by_role) == {"teacher", "student_base", "student_ft"}
        assert all(f.kind == "pass" and f.interval is not None and f.graded == 30 for f in by_role.values())
    table = "\n".join(thread_texts(await bot.thread("invoices")))
    for row in ("json_match (pass rate)", "field customer", "field amount", "field paid"):
        assert row in table
    # the teacher reads every key word it knows; the base student sees half of them
    teacher, base = (report.fields["customer"][role].value for role in ("teacher", "student_base"))
    assert teacher == 1.0 and base < teacher
    # the distilled student learned the key words from the teacher's answers in its training file
    assert report.figures["json_match"]["student_ft"].value > report.figures["json_match"]["student_base"].value


async def test_a_broken_schema_file_is_refused_with_the_rule_it_breaks(make_bot, openai_sandbox):
    bot = await make_bot()
    await start(bot, "inv", invoices_csv(30), "invoices.csv", "task=extract reference=fields")
    run = await bot.run("inv")
    bad = {"type": "object", "properties": {"a": {"type": "string"}}, "allOf": [{"required": ["a"]}]}
    await bot.share(json.dumps(bad).encode(), "bad.json", thread_ts=run.thread_ts)
    texts = thread_texts(await bot.thread("inv"))
    assert any("Could not use *bad.json*" in t and "allOf" in t and "Rewrite it without" in t for t in texts)
    assert RunSpec.from_dict((await bot.run("inv")).spec).schema is None


async def test_free_text_answers_that_run_long_stay_within_the_approved_cap(make_bot, openai_sandbox, shared_dir):
    bot = await make_bot()
    # GSM8K's worked answers run to ~100 tokens; 40 cuts most of them off. gpt-4o does not reason: the answer is all.
    await start(bot, "long", gsm8k_csv(shared_dir, 80), "gsm8k.csv",
                "task=generate reference=answer teacher=gpt-4o max_answer_tokens=40 train=40 eval=20")
    await bot.command("estimate long")
    await bot.command("collect long")
    await _approve_newest(bot, "long")
    assert await _wait_for_state(bot, "long", "collected", "failed", seconds=60) == "collected"

    run = await bot.run("long")
    approval = await bot.bot.storage.approvals.latest(run.id, "collect")
    stored = await bot.bot.storage.completions.for_run(run.id)
    # every request carried max_completion_tokens=40, so none billed more; the cap reserved that much for each
    assert all(c.completion_tokens <= 40 for c in stored) and max(c.completion_tokens for c in stored) == 40
    assert sum(c.cost_micro_usd for c in stored) <= approval.amount_micro_usd
    teacher = [c for c in stored if c.role == "teacher"]
    cut = [c for c in teacher if c.status == "invalid" and c.error.startswith("cut off:")]
    assert len(cut) > len(teacher) // 2  # a cut-off solution is not an answer to train on
    texts = thread_texts(await bot.thread("long"))
    every_cut = sum(c.status == "invalid" and c.error.startswith("cut off:") for c in stored)
    assert any(t.startswith(f":scissors: {every_cut} answers were cut off before the answer was complete")
               for t in texts)
    # the estimate said the most: every answer at its 40 tokens
    assert any("Generate: answers are expected as long as the references in 'answer'" in t and "40 answer tokens" in t
               for t in texts)


async def test_cosine_embeds_each_answer_once_and_prices_it(make_bot, openai_sandbox, shared_dir):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await start(bot, "cos", gsm8k_csv(shared_dir, 60), "gsm8k.csv",
                "task=generate reference=answer graders=cosine:0.5,fuzzy_match train=30 eval=20")
    await bot.command("estimate cos")
    estimate = "\n".join(thread_texts(await bot.thread("cos")))
    assert "embedding" in estimate and "text-embedding-3-large" in estimate
    await distill(bot, "cos")
    run = await bot.run("cos")
    spec = RunSpec.from_dict(run.spec)
    _, prepared = await bot.bot.service.prepare_run(run)
    report = await report_for_run(bot.bot.storage, run.id, spec, prepared.eval, "eval")
    cosine = report.figures["cosine:0.5"]
    assert set(cosine) == {"teacher", "student_base", "student_ft"}
    assert all(f.kind == "pass" and f.graded == 20 and 0 < f.mean <= 1 for f in cosine.values())
    stored = [c for c in await bot.bot.storage.completions.for_run(run.id) if c.role.startswith("judge:cosine:")]
    embedded = [r for r in openai_sandbox.requests if r.path == "/v1/embeddings"]
    assert len(stored) == 60 and embedded
    billed = sum(r.usage["prompt_tokens"] for r in embedded)
    assert sum(c.cost_micro_usd for c in stored) == -(-billed * 13 // 100)  # $0.13 per 1M tokens, rounded up
    await bot.command("report cos")  # posting the report again embeds nothing more
    assert len([r for r in openai_sandbox.requests if r.path == "/v1/embeddings"]) == len(embedded)
    assert "cosine:0.5 (pass rate)" in "\n".join(thread_texts(await bot.thread("cos")))


async def test_the_export_carries_each_answer_and_its_grades(make_bot, openai_sandbox, shared_dir):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await start(bot, "exp", gsm8k_csv(shared_dir, 60), "gsm8k.csv",
                "task=generate reference=answer graders=numeric,rouge_l train=30 eval=20")
    await distill(bot, "exp")
    await bot.command("export exp")
    run = await bot.run("exp")
    [exported] = [f for m in await bot.thread("exp") for f in m.get("files", []) if f["name"] == "predictions.csv"]
    content = bot.slack.workspace.files[exported["id"]].content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(content)))
    header = rows[0]
    assert header[:3] == ["row", "input", "gold"]
    for role in ("teacher", "base student", "distilled student"):
        assert f"{role}: numeric" in header and f"{role}: rouge_l" in header
    numeric = header.index("distilled student: numeric")
    assert {r[numeric] for r in rows[1:]} <= {"true", "false"} and len(rows) == 21
    rouge = [float(r[header.index("teacher: rouge_l")]) for r in rows[1:]]
    assert all(0 <= value <= 1 for value in rouge) and run.state == "done"


async def test_the_run_card_counts_judgments_apart_from_answers(make_bot, openai_sandbox, shared_dir):
    from bot.runs.cards import build_card

    bot = await make_bot(DISTILL_POLL_SECONDS="0.2")
    await start(bot, "card", gsm8k_csv(shared_dir, 60), "gsm8k.csv",
                "task=generate reference=answer graders=numeric,score_model train=30 eval=20")
    await distill(bot, "card")
    figures = dict((await build_card(bot.bot.storage, await bot.run("card"))).figures)
    assert "judge" not in figures["Answers"] and figures["Graded"] == "60 judgments (model graders and embeddings)"
    assert figures["Numeric pass rate"].startswith("base student ")
