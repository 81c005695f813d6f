"""The run spec: what to distill, from which columns, with which models, and how much to spend.

It is stored as JSON in runs.spec_json. `/distill set NAME key=value ...` changes it through
`RunSpec.with_assignments`, whose keys and one-line help live in SETTINGS (the Slack help is built from it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from bot.core import numbers
from bot.core.config import DEFAULT_EMBEDDING_MODEL, DEFAULT_STUDENT, DEFAULT_TEACHER, TRAINERS
from bot.core.errors import SpecError
from bot.core.money import usd_to_micro
from bot.graders import DEFAULTS as DEFAULT_GRADERS
from bot.graders import JudgeSettings, check_grader
from bot.graders.judges import DEFAULT_LABELS, DEFAULT_PASSING, labels_setting
from bot.prices.reasoning import check_effort
from bot.prices.table import EFFORTS
from bot.prompts import schemas
from bot.prompts.answers import CLASSIFY, TASKS, AnswerFormat, answer_format
from bot.prompts.templates import Template, validate_choices

if TYPE_CHECKING:
    from bot.prices.table import PriceTable

AUTO = "auto"
MODES = ("live", "batch")
TRAINING_DATA = ("all", "match_gold")
# OpenAI fine-tuning: at least 10 examples; n_epochs 1-50 when set by hand; batch_size up to 256
# (https://developers.openai.com/api/docs/api-reference/fine-tuning/create).
MIN_TRAIN_EXAMPLES = 10
# trainer=dicl: the teacher's nearest examples put into each prompt (TensorZero's DICL defaults to 10; each one
# lengthens every request, so the bound keeps a prompt to a few thousand tokens for short rows).
DEFAULT_K = 8
MAX_K = 100
MAX_EPOCHS = 50
MAX_BATCH_SIZE = 256
# Bounds of the rest, checked before any arithmetic (bot/core/numbers.py): far above what a run does, far below what
# would hang or overflow the bot.
MAX_ROWS = 10_000_000  # train, eval, validation and min_per_label
MAX_SEED = 2**32 - 1
MAX_ANSWER_TOKENS = 1_000_000  # above any model's output limit (gpt-6.x: 128,000)
MAX_LEARNING_RATE_MULTIPLIER = Decimal(100)


@dataclass(frozen=True)
class RunSpec:
    label: str | None = None
    template: str | None = None
    system: str | None = None
    choices: tuple[str, ...] | None = None
    min_per_label: int = 5
    train_size: int = 500
    eval_size: int = 200
    seed: int = 0
    teacher: str = DEFAULT_TEACHER
    # OpenAI takes no new fine-tuning jobs after 2027-01-06: a new run trains at Together, a student it serves too.
    student: str = DEFAULT_STUDENT
    trainer: str = TRAINERS[0]
    epochs: int | Literal["auto"] = AUTO
    learning_rate_multiplier: float | Literal["auto"] = AUTO
    batch_size: int | Literal["auto"] = AUTO
    training_data: Literal["all", "match_gold"] = "all"
    validation_size: int = 0
    budget_micro_usd: int | None = None
    mode: Literal["live", "batch"] = "live"
    teacher_effort: str | None = None  # the teacher's reasoning_effort; None: the cheapest its model takes
    # completion tokens per answer, reasoning included; None: see bot/prices/reasoning.py
    max_answer_tokens: int | None = None
    task: str = CLASSIFY  # classify | generate | extract (bot/prompts/answers.py)
    reference: str | None = None  # generate and extract: the column with the gold answer (classify uses `label`)
    schema: dict[str, Any] | None = None  # extract: the strict JSON Schema of an answer (bot/prompts/schemas.py)
    graders: tuple[str, ...] | None = None  # None: the task's defaults (bot/graders)
    judge: str | None = None  # the model graders' judge; None: the teacher
    rubric: str | None = None  # the model graders' instructions; None: their defaults
    judge_labels: tuple[str, ...] = DEFAULT_LABELS
    passing_labels: tuple[str, ...] = DEFAULT_PASSING
    k: int = DEFAULT_K  # trainer=dicl: teacher examples in each prompt (0: the base student as it is)
    embedding_model: str = DEFAULT_EMBEDDING_MODEL  # trainer=dicl: what finds the nearest examples

    @classmethod
    def defaults(cls, *, teacher: str, student: str, trainer: str) -> RunSpec:
        return cls(teacher=teacher, student=student, trainer=trainer)

    @property
    def gold_column(self) -> str | None:
        """The column holding the right answer: the label to classify, else the reference."""
        return self.label if self.task == CLASSIFY else self.reference

    @property
    def grader_names(self) -> tuple[str, ...]:
        """The graders the eval runs: the `graders` setting, or the task's defaults."""
        return self.graders if self.graders is not None else DEFAULT_GRADERS[self.task]

    @property
    def judge_model(self) -> str:
        return self.judge or self.teacher

    def answer_format(self, choices: Sequence[str] = ()) -> AnswerFormat:
        """What this run's answers are (bot/prompts/answers.py), with the choices its data gives a classify run."""
        return answer_format(self.task, choices, self.schema)

    def judge_settings(self) -> JudgeSettings:
        return JudgeSettings(self.rubric, self.judge_labels, self.passing_labels)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in _TUPLES:
            data[name] = list(data[name]) if data[name] is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """The spec stored by to_dict; keys it lacks take their defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"Stored run spec has unknown keys: {', '.join(unknown)}.")
        values = dict(data)
        for name in _TUPLES:
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)

    def with_choices(self, choices: Sequence[str]) -> RunSpec:
        """A copy with explicit label choices (checked against OpenAI's structured-output limits)."""
        validate_choices(choices)
        return dataclasses.replace(self, choices=tuple(choices))

    def with_assignments(self, pairs: Mapping[str, str], prices: PriceTable | None = None) -> RunSpec:
        """A copy with `key=value` settings applied; every bad key or value is reported in one SpecError. With
        `prices`, the teacher's effort is checked against the efforts its model takes."""
        changes: dict[str, Any] = {}
        problems: list[str] = []
        for key, raw in pairs.items():
            setting = SETTINGS.get(key)
            if setting is None:
                problems.append(f"unknown setting {key!r}; settable: {', '.join(SETTINGS)}")
                continue
            try:
                changes[setting.attr] = setting.parse(raw)
            except (SpecError, ValueError) as exc:
                problems.append(f"{key}: {exc}")
        if problems:
            raise SpecError("Cannot apply these settings:\n" + "\n".join(f"  {p}" for p in problems))
        updated = dataclasses.replace(self, **changes)
        if updated.validation_size > updated.train_size - MIN_TRAIN_EXAMPLES:
            raise SpecError(
                f"validation={updated.validation_size} is carved from train={updated.train_size} and must leave "
                f"at least {MIN_TRAIN_EXAMPLES} training rows. Lower validation or raise train."
            )
        if prices is not None and updated.teacher_effort is not None:
            check_effort(updated.teacher, prices.get(updated.teacher).facts, updated.teacher_effort)
        updated.check_task()
        if prices is not None and "embedding_model" in changes:
            kind = prices.get(updated.embedding_model).facts.kind
            if kind != "embedding":
                raise SpecError(f"embedding_model={updated.embedding_model} is a {kind} model, not an embedding "
                                f"model. Pick one such as {DEFAULT_EMBEDDING_MODEL}.")
        return updated

    def check_task(self) -> None:
        """The settings that must fit the task kind together; SpecError names the fix."""
        problems = []
        for text in self.graders or ():
            try:
                check_grader(text, self.task)
            except ValueError as exc:
                problems.append(f"graders: {exc}")
        missing = [label for label in self.passing_labels if label not in self.judge_labels]
        if missing:
            problems.append(f"passing_labels: {', '.join(missing)} not among judge_labels "
                            f"({', '.join(self.judge_labels)})")
        if self.training_data == "match_gold" and self.task != CLASSIFY:
            problems.append("training_data=match_gold compares labels: it needs task=classify")
        if problems:
            raise SpecError("Cannot apply these settings:\n" + "\n".join(f"  {p}" for p in problems))


_TUPLES = ("choices", "graders", "judge_labels", "passing_labels")


@dataclass(frozen=True)
class Setting:
    attr: str
    parse: Callable[[str], Any]
    help: str


def _whole(minimum: int, maximum: int = MAX_ROWS, why: str = "") -> Callable[[str], int]:
    return lambda raw: numbers.whole(raw, minimum, maximum, why)


def _or_auto(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_or_auto(raw: str) -> Any:
        return AUTO if raw.strip().lower() == AUTO else parse(raw)

    return parse_or_auto


def _one_of(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


def _optional_text(raw: str) -> str | None:
    return None if raw.strip().lower() in ("", "none") else raw.strip()


def _template(raw: str) -> str | None:
    if raw.strip().lower() in ("", "default"):
        return None
    Template.parse(raw)  # raises SpecError on unbalanced braces
    return raw


def _choices(raw: str) -> tuple[str, ...] | None:
    if raw.strip().lower() in ("", AUTO):
        return None
    choices = tuple(part.strip() for part in raw.split(",") if part.strip())
    validate_choices(choices)
    return choices


def choices_from_file(text: str) -> tuple[str, ...]:
    """Choices from a file with one per line (blank lines skipped, surrounding spaces removed)."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _graders(raw: str) -> tuple[str, ...] | None:
    """Grader names, checked one by one here and against the task in RunSpec.check_task."""
    if raw.strip().lower() in ("", "default"):
        return None
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    return tuple(check_grader(name, "extract") for name in names)  # the task is checked with the other settings


def _labels(raw: str) -> tuple[str, ...]:
    return labels_setting(raw)


def _passing(raw: str) -> tuple[str, ...]:
    labels = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not labels:
        raise ValueError("expected at least one label, comma-separated (passing_labels=correct)")
    return labels


def _optional_model(raw: str) -> str | None:
    return None if raw.strip().lower() in ("", "default", "teacher") else _model(raw)


def _model(raw: str) -> str:
    value = raw.strip()
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"expected a model name such as gpt-4o, got {raw!r}")
    return value


def _learning_rate(raw: str) -> float:
    return numbers.number(raw, MAX_LEARNING_RATE_MULTIPLIER, "1.8 (or auto)")


def _budget(raw: str) -> int | None:
    return None if raw.strip().lower() in ("", "none") else usd_to_micro(raw)


def _effort(raw: str) -> str | None:
    value = raw.strip().lower()
    if value in ("", "default"):
        return None
    if value not in EFFORTS:
        raise ValueError(f"expected default or one of {', '.join(EFFORTS)} (as the teacher's model takes), got {raw!r}")
    return value


def _optional_whole(minimum: int, maximum: int) -> Callable[[str], int | None]:
    parse = _whole(minimum, maximum)

    def parse_or_default(raw: str) -> int | None:
        return None if raw.strip().lower() in ("", "default") else parse(raw)

    return parse_or_default


SETTINGS: dict[str, Setting] = {
    "label": Setting("label", _optional_text, "column holding the right answer (none: measure agreement only)"),
    "template": Setting("template", _template, "prompt with {column} placeholders and {choices} (default: all)"),
    "system": Setting("system", _optional_text, "system prompt sent before each row (none to drop it)"),
    "choices": Setting("choices", _choices, "allowed labels, comma-separated (auto: labels with min_per_label rows)"),
    "min_per_label": Setting("min_per_label", _whole(1), "labels with fewer rows are left out (default 5)"),
    "train": Setting("train_size", _whole(MIN_TRAIN_EXAMPLES, why=" (OpenAI fine-tuning needs 10 examples)"),
                     "rows the teacher labels for training"),
    "eval": Setting("eval_size", _whole(1), "held-out rows every model is scored on"),
    "seed": Setting("seed", _whole(0, MAX_SEED), "seed of the stratified split"),
    "teacher": Setting("teacher", _model, "large model whose answers are distilled"),
    "teacher_effort": Setting("teacher_effort", _effort, f"the teacher's reasoning_effort ({', '.join(EFFORTS)}), as "
                              "its model takes (default: the cheapest it takes)"),
    "max_answer_tokens": Setting("max_answer_tokens", _optional_whole(1, MAX_ANSWER_TOKENS),
                                 "most completion tokens per answer, reasoning included (default: the answer's size "
                                 "plus the effort's reasoning allowance)"),
    "student": Setting("student", _model, "small base model that is fine-tuned (trainer=dicl: prompted)"),
    "trainer": Setting("trainer", _one_of(TRAINERS), f"where the student is trained: {', '.join(TRAINERS)}"),
    "epochs": Setting("epochs", _or_auto(_whole(1, MAX_EPOCHS)), f"auto or 1-{MAX_EPOCHS} passes over the data"),
    "lr": Setting("learning_rate_multiplier", _or_auto(_learning_rate), "auto or the learning rate multiplier"),
    "batch_size": Setting("batch_size", _or_auto(_whole(1, MAX_BATCH_SIZE)), f"auto or 1-{MAX_BATCH_SIZE}"),
    "training_data": Setting("training_data", _one_of(TRAINING_DATA),
                             "all teacher answers, or match_gold: only those equal to the label"),
    "validation": Setting("validation_size", _whole(0), "training rows held out as the job's validation file"),
    "budget": Setting("budget_micro_usd", _budget, "spending cap in US dollars, e.g. 5 or 2.50 (none: no cap)"),
    "mode": Setting("mode", _one_of(MODES), "live requests, or batch: the Batch API at half price, within 24 h"),
    "task": Setting("task", _one_of(TASKS), "classify (a label), generate (free text) or extract (a JSON object)"),
    "reference": Setting("reference", _optional_text, "generate/extract: column with the gold answer (none: the "
                         "teacher's answer is the reference)"),
    "fields": Setting("schema", schemas.fields_schema, "extract: the answer's fields, name:type,... (string, number, "
                      "integer, boolean; ? when it may be empty), or share a JSON Schema .json file in the thread"),
    "schema": Setting("schema", schemas.schema_from_text, "extract: a JSON Schema (as JSON text; sharing a .json file "
                      "in the thread sets it too)"),
    "graders": Setting("graders", _graders, "how answers are scored, name[:option],...: string_check[:eq|ne|like|"
                       "ilike], fuzzy_match, bleu, gleu, meteor, rouge_1..rouge_5, rouge_l, cosine [:pass_threshold], "
                       "numeric[:tolerance], json_match, score_model[:pass_threshold], label_model, pairwise "
                       "(default: the task's); no grader runs code"),
    "judge": Setting("judge", _optional_model, "model of score_model, label_model and pairwise (default: the teacher)"),
    "rubric": Setting("rubric", _optional_text, "instructions for score_model and label_model (none: the default)"),
    "judge_labels": Setting("judge_labels", _labels, "label_model's labels (default correct,incorrect)"),
    "passing_labels": Setting("passing_labels", _passing, "label_model's labels that pass (default correct)"),
    "k": Setting("k", _whole(0, MAX_K), f"trainer=dicl: teacher examples in each prompt, 0-{MAX_K} (default "
                 f"{DEFAULT_K}; 0: the base student)"),
    "embedding_model": Setting("embedding_model", _model, "trainer=dicl: the embedding model that finds the nearest "
                               f"examples (default {DEFAULT_EMBEDDING_MODEL})"),
}

# Not a field of the spec: a file shared in the run's thread, which bot/runs/eval_files.py resolves.
EVAL_FILE = "eval_file"
SETTABLE_KEYS: dict[str, str] = {
    **{key: setting.help for key, setting in SETTINGS.items()},
    EVAL_FILE: "a file shared in the thread with the comment eval, as the eval split (none: carve it from the data)",
}
