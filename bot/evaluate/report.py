"""The tables a run posts: the baseline (teacher vs base student) after collection, with its chart."""

from __future__ import annotations

from pathlib import Path

from bot.core.events import TableReady
from bot.evaluate.charts import render_chart
from bot.evaluate.scores import baseline_for_run
from storage import Storage


async def baseline_event(storage: Storage, run_id: int, folder: Path) -> TableReady:
    """The teacher vs base student table of the run's eval split, with its chart drawn into `folder`."""
    table = await baseline_for_run(storage, run_id)
    chart = await render_chart(table, folder)
    return TableReady("Baseline: teacher vs base student", table.body_text(), table.verdict, chart)
