"""Free-text and extraction runs through the Slack app, from upload to the per-grader report (GSM8K's word problems
from ../shared/data; sandbox teacher, students and judge)."""

from __future__ import annotations

import csv
import io
import json

from bot.grader_report import report_for_run
from bot.spec import RunSpec
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
