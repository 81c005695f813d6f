"""What every grader shares: the sample it grades, the grade it gives, and how a grader is named in a run's settings.

A grader compares one model's answer on one eval row (OpenAI's `sample.output_text`) with the row's reference (OpenAI's
`item.reference_answer`: the gold answer from the run's reference column, or the teacher's answer when there is none)
and gives a score from 0 to 1, and where the grader has a pass rule, a pass or a fail. The semantics follow OpenAI's
graders of the same name (its Graders guide and the openai-python types `graders/*.py`; /work/notes/graders.md);
where OpenAI never published a detail, the module that implements it says what this one does.

In a run's settings a grader is `name` or `name:option` (`graders=numeric,rouge_l:0.6,string_check:ilike`); the
option is the grader's one knob: a string_check's operation, a text-similarity metric's pass_threshold, numeric's
tolerance, a model grader's pass_threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One answer to grade against its reference. `answer` is None when the model gave no valid answer."""

    answer: str | None
    reference: str | None
    prompt: str = ""  # what the model was asked (a model grader shows it to its judge)


@dataclass(frozen=True)
class Grade:
    """A grader's verdict on one sample: a score from 0 to 1 and, where the grader has a pass rule, pass or fail.

    `error` says why a sample could not be graded at all (a reference without a number, a judge that refused); such a
    row is left out of that grader's figures rather than counted as a fail. `fields` holds json_match's per-field
    results."""

    score: float
    passed: bool | None = None
    error: str | None = None
    fields: dict[str, bool] = field(default_factory=dict)

    @property
    def graded(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"score": self.score, "passed": self.passed}
        if self.error:
            data["error"] = self.error
        if self.fields:
            data["fields"] = dict(self.fields)
        return data


def pass_threshold(raw: str, grader: str) -> float:
    """A pass_threshold option: a number from 0 to 1; ValueError names the grader and an example."""
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise ValueError(f"{grader} takes a pass_threshold from 0 to 1 ({grader}:0.6), got {raw!r}")
    return value


def ungraded(reason: str) -> Grade:
    return Grade(0.0, None, error=reason)


def no_answer() -> Grade:
    """A model that gave no valid answer scores 0 and fails: it cannot score better by failing."""
    return Grade(0.0, False)


def missing(sample: Sample) -> Grade | None:
    """The grade of a sample that lacks its reference (not graded) or its answer (0, a fail); None when it has both."""
    if sample.reference is None:
        return ungraded("no reference for this row")
    if sample.answer is None:
        return no_answer()
    return None
