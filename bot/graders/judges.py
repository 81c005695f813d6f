"""`score_model` and `label_model`: a judge model reads the question, the reference and the answer, and gives a score or
a label, as OpenAI's model graders did.

`score_model` (OpenAI's Graders guide): the judge is asked, through a strict response format, for
`{"steps": [{"description", "conclusion"}], "result": number}`; the result is clamped to the grader's range (0-1
here) and "default[s] to 0 for all non-numeric outputs"; with a pass_threshold a row passes at a result at least that
high. `steps` comes first so the judge reasons before it scores (structured outputs keep the schema's key order).
`label_model` (OpenAI's cookbook: "under the hood, this uses structured outputs so that labels are always valid"):
the judge picks one of `labels`; the row passes, and scores 1, when the label is one of `passing_labels`.

A judge that refuses, or a request that fails, leaves the row ungraded (OpenAI counted those as errors, not fails).
The judge is the run's teacher unless `judge=MODEL` says otherwise, and the team's `rubric` replaces the default
instructions. The judge's prompt shows the reference and the answer between FastChat's MT-Bench markers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.graders.base import Grade, Sample, ungraded

SCORE_RUBRIC = ("You grade an AI assistant's answer against a reference answer. Judge whether the answer reaches the "
                "same result as the reference and whether its reasoning is sound; ignore style and length. Give a "
                "score from 0 (wrong or unrelated) to 1 (as correct and complete as the reference).")
LABEL_RUBRIC = ("You grade an AI assistant's answer against a reference answer. Judge whether the answer reaches the "
                "same result as the reference; ignore style and length. Pick the one label that fits.")
# A judge's reply: a few reasoning steps and a result, or a short comparison: what its budget starts from; and what
# one is expected to take (the sandbox's run to about 40; a real judge's steps are longer).
JUDGE_ANSWER_TOKENS = 512
JUDGE_EXPECTED_TOKENS = 150
DEFAULT_LABELS = ("correct", "incorrect")
DEFAULT_PASSING = ("correct",)
_STEPS = {"type": "array", "items": {"type": "object", "properties": {"description": {"type": "string"},
                                                                       "conclusion": {"type": "string"}},
                                     "required": ["description", "conclusion"], "additionalProperties": False}}


def judge_prompt(sample: Sample, reference_label: str = "Reference Answer") -> str:
    """The user message a judge reads: the question, the reference and the answer, between MT-Bench's markers."""
    return (f"[User Question]\n{sample.prompt}\n\n[The Start of {reference_label}]\n{sample.reference}\n"
            f"[The End of {reference_label}]\n\n[The Start of Assistant's Answer]\n{sample.answer}\n"
            "[The End of Assistant's Answer]")


def _strict(name: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": {
        "type": "object", "properties": {"steps": _STEPS, "result": result},
        "required": ["steps", "result"], "additionalProperties": False}}}


def _result(text: str | None) -> Any:
    try:
        value = json.loads(text or "")
    except ValueError:
        return None
    return value.get("result") if isinstance(value, dict) else None


@dataclass(frozen=True)
class ScoreModel:
    rubric: str = SCORE_RUBRIC
    threshold: float | None = None
    low: float = 0.0
    high: float = 1.0

    @property
    def name(self) -> str:
        return "score_model" if self.threshold is None else f"score_model:{self.threshold:g}"

    def messages(self, sample: Sample) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.rubric}, {"role": "user", "content": judge_prompt(sample)}]

    @property
    def response_format(self) -> dict[str, Any]:
        return _strict("score_model_grade", {"type": "number"})

    def grade(self, reply: str | None) -> Grade:
        result = _result(reply)
        if isinstance(result, bool) or not isinstance(result, int | float):
            score = self.low  # OpenAI: "default to 0 for all non-numeric outputs"
        else:
            score = min(self.high, max(self.low, float(result)))
        return Grade(score, None if self.threshold is None else score >= self.threshold)


@dataclass(frozen=True)
class LabelModel:
    labels: Sequence[str] = DEFAULT_LABELS
    passing: Sequence[str] = DEFAULT_PASSING
    rubric: str = LABEL_RUBRIC

    name: str = "label_model"

    def messages(self, sample: Sample) -> list[dict[str, str]]:
        rubric = f"{self.rubric}\nLabels: {', '.join(self.labels)}."
        return [{"role": "system", "content": rubric}, {"role": "user", "content": judge_prompt(sample)}]

    @property
    def response_format(self) -> dict[str, Any]:
        return _strict("label_model_grade", {"type": "string", "enum": list(self.labels)})

    def grade(self, reply: str | None) -> Grade:
        label = _result(reply)
        if label not in self.labels:
            return ungraded(f"the judge's label {label!r} is not one of {', '.join(self.labels)}")
        passed = label in self.passing
        return Grade(1.0 if passed else 0.0, passed)


def labels_setting(raw: str) -> tuple[str, ...]:
    labels = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if len(labels) < 2:
        raise ValueError(f"label_model needs at least two labels, comma-separated (labels=correct,incorrect), "
                         f"got {raw!r}")
    return labels
