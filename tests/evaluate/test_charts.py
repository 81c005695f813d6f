"""The eval chart: a PNG at a fixed path in the run's folder, drawn from the scores."""

from __future__ import annotations

import io

from matplotlib.image import imread

from bot.evaluate.charts import DPI, SIZE_INCHES, render_chart
from bot.evaluate.scores import BASE, TEACHER, baseline_table, eval_report
from storage.completions import Completion
from tests.evaluate.test_scores import completions, eval_rows

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_chart_is_a_png_at_a_fixed_path_and_redrawn_in_place(tmp_path):
    report = eval_report(eval_rows(), completions())
    run_dir = tmp_path / "runs" / "7"
    path = await render_chart(report, run_dir)
    first = path.read_bytes()
    assert path == run_dir / "eval-chart.png" and first.startswith(PNG_SIGNATURE)
    height, width, _ = imread(io.BytesIO(first)).shape
    assert (width, height) == (SIZE_INCHES[0] * DPI, SIZE_INCHES[1] * DPI)
    assert await render_chart(report, run_dir) == path and path.read_bytes() == first  # same scores, same bytes
    assert sorted(p.name for p in run_dir.iterdir()) == ["eval-chart.png"]  # no partial file left behind

    baseline = await render_chart(baseline_table(eval_rows(), completions((TEACHER, BASE))), run_dir)
    assert baseline == run_dir / "baseline-chart.png" and path.read_bytes() == first


async def test_chart_changes_with_the_scores(tmp_path):
    report = eval_report(eval_rows(), completions())
    better_base = [c if c.role != BASE else Completion(**{**c.__dict__, "parsed_label": eval_rows()[c.row_index]
                                                          .gold_label}) for c in completions()]
    first = (await render_chart(report, tmp_path / "a")).read_bytes()
    second = (await render_chart(eval_report(eval_rows(), better_base), tmp_path / "b")).read_bytes()
    unlabelled_report = eval_report(eval_rows(labelled=False), completions())
    unlabelled = (await render_chart(unlabelled_report, tmp_path / "c")).read_bytes()
    assert len({first, second, unlabelled}) == 3
