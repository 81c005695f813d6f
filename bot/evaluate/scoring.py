"""The one place the watch and `/distill eval` score a model's answers: a figure with its interval, the cost per
1,000 answers and the error rate.

Today it is bot/evaluate/scores.py's scoring (accuracy against gold labels with a Wilson interval where the rows have
them, else agreement with the teacher's answers). A run scored by other graders changes this function only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bot.evaluate.scores import EVAL_SPLIT, role_scores
from bot.evaluate.stats import Interval
from storage.completions import Completion
from storage.runs import RunRow


@dataclass(frozen=True)
class Score:
    metric: str  # "accuracy" or "agreement"
    value: float | None
    interval: Interval | None
    rows: int
    cost_per_1k_micro_usd: int | None
    error_rate: float | None  # answers that are not valid (not one of the choices, cut off, failed) over the rows

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "interval": asdict(self.interval) if self.interval else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Score:
        interval = data.get("interval")
        return cls(**{**data, "interval": Interval(**interval) if interval else None})


def as_eval_split(completions: Sequence[Completion]) -> list[Completion]:
    """bot/evaluate/scores.py scores the answers of the eval split: answers stored under another split (a
    re-evaluation's, a watch period's) are presented as that split's."""
    return [dataclasses.replace(c, split=EVAL_SPLIT) for c in completions]


def score(rows: Sequence[RunRow], completions: Sequence[Completion], role: str, hosting_micro_usd: int = 0) -> Score:
    """How `role`'s answers on `rows` score (the teacher's answers among `completions` are the reference)."""
    scores = role_scores(rows, as_eval_split(completions), role, hosting_micro_usd)
    labelled = scores.labelled > 0
    return Score(
        metric="accuracy" if labelled else "agreement",
        value=scores.accuracy if labelled else scores.agreement,
        interval=scores.accuracy_ci if labelled else scores.agreement_ci,
        rows=scores.rows,
        cost_per_1k_micro_usd=scores.cost_per_1k_micro_usd,
        error_rate=(scores.rows - scores.answered) / scores.rows if scores.rows else None,
    )
