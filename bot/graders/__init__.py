"""Graders: how an answer is scored against its reference, with the semantics of OpenAI's graders of the same name.

One module per family: strings (string_check), similarity (text_similarity's metrics), numeric, fields
(json_match), judges (score_model, label_model), pairwise, embeddings (cosine). Here: the names a run's `graders`
setting takes, each with its one option, and the defaults per task. No grader runs code: OpenAI's `python` grader
has no counterpart, because nothing typed into Slack is ever executed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from bot.graders import judges, numeric, strings
from bot.graders.base import pass_threshold
from bot.graders.embeddings import Cosine
from bot.graders.fields import JsonMatch
from bot.graders.judges import LabelModel, ScoreModel
from bot.graders.numeric import Numeric
from bot.graders.pairwise import Pairwise
from bot.graders.similarity import METRICS, TextSimilarity
from bot.graders.strings import StringCheck

JUDGED = ("score_model", "label_model", "pairwise")
STORED = (*JUDGED, "cosine")  # graders whose grades are paid for once and stored (bot/evaluate/grading.py)
NAMES = ("string_check", *METRICS, "numeric", "json_match", *JUDGED)
DEFAULTS = {"classify": (), "generate": ("rouge_l", "fuzzy_match", "score_model"), "extract": ("json_match",)}
OPTIONS = {  # what the option after ':' is, for the help and for messages
    "string_check": "eq, ne, like or ilike (default eq)",
    **{metric: "pass_threshold 0-1 (default: none, the mean score only)" for metric in METRICS},
    "numeric": "tolerance (default 0)",
    "score_model": "pass_threshold 0-1 (default: none, the mean score only)",
}
_PARSERS = {"string_check": strings.operation, **{m: partial(pass_threshold, grader=m) for m in METRICS},
            "numeric": numeric.tolerance, "score_model": partial(pass_threshold, grader="score_model")}


@dataclass(frozen=True)
class JudgeSettings:
    """A run's settings for its model graders."""

    rubric: str | None = None
    labels: tuple[str, ...] = judges.DEFAULT_LABELS
    passing_labels: tuple[str, ...] = judges.DEFAULT_PASSING


def split_name(text: str) -> tuple[str, str | None]:
    name, _, option = text.partition(":")
    return name.strip().lower(), option.strip() or None


def family(text: str) -> str:
    """The grader a setting names, without its option: `score_model:0.7` -> score_model."""
    return split_name(text)[0]


def check_grader(text: str, task: str) -> str:
    """The grader named by `text` (`name` or `name:option`), written as the setting keeps it; ValueError says what is
    wrong and what would be right."""
    name, option = split_name(text)
    if name == "python":
        raise ValueError("there is no python grader: the bot never runs code typed into Slack. Grade with "
                         "string_check, a text-similarity metric, numeric, json_match or a model grader")
    if name not in NAMES:
        raise ValueError(f"unknown grader {name!r}; graders: {', '.join(NAMES)}")
    if name == "json_match" and task != "extract":
        raise ValueError("json_match grades extracted JSON objects: it needs task=extract")
    if option is None:
        return name
    if name not in _PARSERS:
        raise ValueError(f"{name} takes no option, got {text!r}")
    parsed = _PARSERS[name](option)
    return f"{name}:{parsed:g}" if isinstance(parsed, float) else f"{name}:{parsed}"


def grader_for(text: str, judge: JudgeSettings | None = None) -> Any:
    """The grader a setting names (see check_grader): an object with a `name`, and `grade(sample)` for the
    deterministic ones, `messages`, `response_format` and `grade(reply)` for the judges, `grade(stored)` for
    cosine, and Pairwise."""
    name, option = split_name(text)
    judge = judge or JudgeSettings()
    if name == "string_check":
        return StringCheck(strings.operation(option or "eq"))
    if name == "cosine":
        return Cosine(_PARSERS[name](option) if option else None)
    if name in METRICS:
        return TextSimilarity(name, _PARSERS[name](option) if option else None)
    if name == "numeric":
        return Numeric(numeric.tolerance(option or "0"))
    if name == "json_match":
        return JsonMatch()
    if name == "score_model":
        return ScoreModel(judge.rubric or judges.SCORE_RUBRIC, _PARSERS[name](option) if option else None)
    if name == "label_model":
        return LabelModel(judge.labels, judge.passing_labels, judge.rubric or judges.LABEL_RUBRIC)
    if name == "pairwise":
        return Pairwise()
    raise ValueError(f"unknown grader {name!r}")
