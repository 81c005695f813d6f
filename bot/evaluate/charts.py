"""The eval chart: each model's accuracy (agreement with the teacher when there are no gold labels) with its
95% interval, beside its cost per 1,000 answers, as a PNG in the run's data folder. A grader report draws one panel
per grader (a pass rate or a mean score, with its interval) before the cost panel.

Drawn with matplotlib's object API on an Agg canvas, never pyplot: pyplot keeps global figure state that is
not safe across threads, and the drawing runs in a worker thread to keep the event loop free.
"""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.core.money import format_usd
from bot.evaluate.grader_report import GraderReport
from bot.evaluate.scores import BASE, DISTILLED, ROLE_NAMES, TEACHER, BaselineTable, EvalReport
from bot.evaluate.stats import Interval

COLORS = {TEACHER: "#5b6770", BASE: "#b8c4cc", DISTILLED: "#2f80ed"}
SIZE_INCHES = (8.0, 3.6)
DPI = 100


Table = BaselineTable | EvalReport | GraderReport
PANEL_INCHES = 3.4
PANELS_PER_ROW = 3
SHORT_NAMES = {TEACHER: "teacher", BASE: "base", DISTILLED: "distilled"}


def chart_path(table: Table, run_dir: Path) -> Path:
    """Always the same file for the same kind of table: posting the report again redraws it in place."""
    return run_dir / f"{table.kind}-chart.png"


async def render_chart(table: Table, run_dir: Path) -> Path:
    """Draw the chart (in a thread) and return its path."""
    path = chart_path(table, run_dir)
    await asyncio.to_thread(_draw_panels if isinstance(table, GraderReport) else _draw, table, path)
    return path


def _bars(axes: object, roles: list[str], values: list[float | None], intervals: list[Interval | None],
          scale: float, label: str, names: dict[str, str] = ROLE_NAMES) -> None:
    """One panel: a bar per model with its 95% interval, the value written at the foot of each bar."""
    heights = [scale * (v or 0.0) for v in values]
    # NaN draws no bar at all; max(0, ...): at 0% or 100% a bound can sit a rounding error past the value.
    below = [math.nan if i is None or v is None else max(0.0, scale * (v - i.low)) for v, i in zip(
        values, intervals, strict=True)]
    above = [math.nan if i is None or v is None else max(0.0, scale * (i.high - v)) for v, i in zip(
        values, intervals, strict=True)]
    axes.bar([names[r] for r in roles], heights, color=[COLORS[r] for r in roles], yerr=[below, above],
             capsize=6, ecolor="#222222")
    for x, (height, value) in enumerate(zip(heights, values, strict=True)):  # at the foot, clear of the bars
        text = "—" if value is None else (f"{height:.1f}%" if scale == 100 else f"{value:.2f}")
        axes.text(x, 0.02 * scale, text, ha="center", va="bottom",
                  bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    axes.set_ylim(0, 1.05 * scale)
    axes.set_ylabel(label)


def _draw_panels(report: GraderReport, path: Path) -> None:
    """A panel per grader and the cost, three to a row."""
    roles = list(report.scores)
    panels = report.panels()
    count = len(panels) + 1
    columns, rows = min(count, PANELS_PER_ROW), math.ceil(count / PANELS_PER_ROW)
    figure = Figure(figsize=(PANEL_INCHES * columns, SIZE_INCHES[1] * rows), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for panel_axes, (title, kind, by_role) in zip(axes, panels, strict=False):
        shown = [r for r in roles if r in by_role]
        _bars(panel_axes, shown, [by_role[r][0] for r in shown], [by_role[r][1] for r in shown],
              100 if kind == "rate" else 1, "%" if kind == "rate" else "score", SHORT_NAMES)
        panel_axes.set_title(title, fontsize=9)
    _cost_panel(axes[len(panels)], roles, [report.scores[r].cost_per_1k_micro_usd for r in roles], SHORT_NAMES)
    for unused in axes[count:]:
        unused.set_visible(False)
    figure.suptitle("Each grader with its 95% interval", fontsize=10)
    _finish(figure, axes[:count], path)


def _draw(table: BaselineTable | EvalReport, path: Path) -> None:
    roles = list(table.scores)
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    score_axes, cost_axes = figure.subplots(1, 2)

    values = [table.primary(role) for role in roles]
    intervals = [table.scores[r].accuracy_ci if table.labelled else (None if r == TEACHER else
                                                                       table.scores[r].agreement_ci) for r in roles]
    _bars(score_axes, roles, values, intervals, 100, f"{table.metric.capitalize()} (%)")
    score_axes.set_title(f"{table.metric.capitalize()}, 95% interval", fontsize=10)
    _cost_panel(cost_axes, roles, [table.scores[role].cost_per_1k_micro_usd for role in roles])
    _finish(figure, (score_axes, cost_axes), path)


def _cost_panel(cost_axes: object, roles: list[str], costs: list[int | None],
                names: dict[str, str] = ROLE_NAMES) -> None:
    cost_axes.bar([names[r] for r in roles], [(c or 0) / 1_000_000 for c in costs],
                  color=[COLORS[r] for r in roles])
    for x, cost in enumerate(costs):
        cost_axes.annotate("—" if cost is None else format_usd(cost), ((x, (cost or 0) / 1_000_000)),
                           xytext=(0, 3), textcoords="offset points", ha="center", va="bottom")
    cost_axes.set_ylabel("US dollars")
    cost_axes.set_title("Cost per 1,000 answers", fontsize=10)
    cost_axes.margins(y=0.15)


def _finish(figure: Figure, all_axes: object, path: Path) -> None:
    for axes in all_axes:
        axes.spines[["top", "right"]].set_visible(False)
        axes.tick_params(axis="x", labelsize=9)
    figure.tight_layout()

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    # No "Software" entry: the PNG carries no version string, and the same scores draw the same bytes.
    figure.savefig(partial, format="png", metadata={"Software": None})
    os.replace(partial, path)  # a reader never sees a half-written PNG
