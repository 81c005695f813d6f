"""The eval chart: each model's accuracy (agreement with the teacher when there are no gold labels) with its
95% interval, beside its cost per 1,000 answers, as a PNG in the run's data folder.

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
from bot.evaluate.scores import BASE, DISTILLED, ROLE_NAMES, TEACHER, BaselineTable, EvalReport

COLORS = {TEACHER: "#5b6770", BASE: "#b8c4cc", DISTILLED: "#2f80ed"}
SIZE_INCHES = (8.0, 3.6)
DPI = 100


def chart_path(table: BaselineTable | EvalReport, run_dir: Path) -> Path:
    """Always the same file for the same kind of table: posting the report again redraws it in place."""
    return run_dir / f"{table.kind}-chart.png"


async def render_chart(table: BaselineTable | EvalReport, run_dir: Path) -> Path:
    """Draw the chart (in a thread) and return its path."""
    path = chart_path(table, run_dir)
    await asyncio.to_thread(_draw, table, path)
    return path


def _draw(table: BaselineTable | EvalReport, path: Path) -> None:
    roles = list(table.scores)
    names = [ROLE_NAMES[role] for role in roles]
    colors = [COLORS[role] for role in roles]
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    score_axes, cost_axes = figure.subplots(1, 2)

    values = [table.primary(role) for role in roles]
    heights = [100 * (v or 0.0) for v in values]
    below, above = [], []
    for role, value in zip(roles, values, strict=True):
        scores = table.scores[role]
        interval = scores.accuracy_ci if table.labelled else (None if role == TEACHER else scores.agreement_ci)
        # NaN draws no bar at all; max(0, ...): at 0% or 100% a bound can sit a rounding error past the value.
        below.append(math.nan if interval is None or value is None else max(0.0, 100 * (value - interval.low)))
        above.append(math.nan if interval is None or value is None else max(0.0, 100 * (interval.high - value)))
    score_axes.bar(names, heights, color=colors, yerr=[below, above], capsize=6, ecolor="#222222")
    for x, (height, value) in enumerate(zip(heights, values, strict=True)):  # at the foot, clear of the bars
        score_axes.text(x, 2, "—" if value is None else f"{height:.1f}%", ha="center", va="bottom",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    score_axes.set_ylim(0, 105)
    score_axes.set_ylabel(f"{table.metric.capitalize()} (%)")
    score_axes.set_title(f"{table.metric.capitalize()}, 95% interval", fontsize=10)

    costs = [table.scores[role].cost_per_1k_micro_usd for role in roles]
    cost_axes.bar(names, [(c or 0) / 1_000_000 for c in costs], color=colors)
    for x, cost in enumerate(costs):
        cost_axes.annotate("—" if cost is None else format_usd(cost), ((x, (cost or 0) / 1_000_000)),
                           xytext=(0, 3), textcoords="offset points", ha="center", va="bottom")
    cost_axes.set_ylabel("US dollars")
    cost_axes.set_title("Cost per 1,000 answers", fontsize=10)
    cost_axes.margins(y=0.15)
    for axes in (score_axes, cost_axes):
        axes.spines[["top", "right"]].set_visible(False)
        axes.tick_params(axis="x", labelsize=9)
    figure.tight_layout()

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    # No "Software" entry: the PNG carries no version string, and the same scores draw the same bytes.
    figure.savefig(partial, format="png", metadata={"Software": None})
    os.replace(partial, path)  # a reader never sees a half-written PNG
