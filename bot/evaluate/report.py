"""The tables a run posts: the baseline (teacher vs base student) after collection, with its chart."""

from __future__ import annotations

from pathlib import Path

from bot.core.events import TableReady
from bot.data.splits import PreparedRow
from bot.evaluate.charts import render_chart
from bot.evaluate.grader_report import report_for_run as grader_report_for_run
from bot.evaluate.grader_report import uses_graders
from bot.evaluate.scores import baseline_for_run
from bot.spec.settings import RunSpec
from storage import Storage


async def baseline_event(storage: Storage, run_id: int, spec: RunSpec, eval_rows: list[PreparedRow],
                         folder: Path) -> TableReady:
    """The teacher vs base student table of the run's eval split (by its graders, or accuracy and agreement),
    with its chart drawn into `folder`."""
    if uses_graders(spec):
        table = await grader_report_for_run(storage, run_id, spec, eval_rows, "baseline")
    else:
        table = await baseline_for_run(storage, run_id)
    chart = await render_chart(table, folder)
    return TableReady("Baseline: teacher vs base student", table.body_text(), table.verdict, chart)
