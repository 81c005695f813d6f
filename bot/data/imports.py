"""Answers a team already has, as a run's data: chat examples whose replies are the teacher's answers.

A JSONL file of chat examples or an import of the provider's stored completions (bot/data/chat_examples.py,
bot/data/stored_completions.py) becomes a `chat` dataset: one row per distinct input (inputs are compared normalized,
as the eval split compares them; the newest copy is kept), with the user message as `input`, the reply's label as
`answer`, the model that wrote it and where it came from. The run's settings follow from it: the template is the
input itself, the system prompt the one the examples share, and the choices the answers that occur at least
min_per_label times. There is no gold label: the eval table measures agreement with these answers.

When the run collects, the stored answers become the run's teacher answers on every split, free: only the base
student is asked (on the eval split). An answer that is not one of the choices stays, as an invalid teacher answer,
so it is neither trained on nor scored.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.core.errors import SpecError
from bot.data.chat_examples import ChatExample, Unusable
from bot.data.splits import PreparedRow, input_hash
from bot.prices.table import PriceTable
from bot.prompts.templates import validate_choices
from bot.spec.settings import RunSpec
from storage import Storage
from storage.completions import Completion
from storage.datasets import Dataset

KIND = "chat"
INPUT, ANSWER, MODEL, SOURCE = "input", "answer", "model", "source"
COLUMNS = (INPUT, ANSWER, MODEL, SOURCE)
TEMPLATE = "{" + INPUT + "}"
IMPORTED_MODEL = "imported"  # the model of an answer whose source does not name one
SHOWN_LABELS = 15


def label_of(answer: str) -> str:
    """The label an answer gives: `{"label": X}` as the bot's own answers are written, else the text itself."""
    try:
        value = json.loads(answer)
    except ValueError:
        return answer.strip()
    label = value.get("label") if isinstance(value, dict) else None
    return label.strip() if isinstance(label, str) else answer.strip()


@dataclass(frozen=True)
class ChatData:
    """Examples made ready to store: one row per distinct input."""

    rows: list[dict[str, Any]]
    system: str | None
    duplicates: int  # examples dropped because a newer one has the same normalized input
    unusable: list[Unusable]  # with the parser's, the examples whose system prompt differs from the others'
    sha256: str

    def labels(self) -> Counter[str]:
        return Counter(row[ANSWER] for row in self.rows)

    def models(self) -> Counter[str]:
        return Counter(row[MODEL] for row in self.rows)

    def choices(self, min_per_label: int) -> tuple[str, ...]:
        """The answers common enough to be labels, most frequent first."""
        counted = sorted(self.labels().items(), key=lambda item: (-item[1], item[0]))
        return tuple(label for label, n in counted if n >= min_per_label)


def chat_data(examples: Sequence[ChatExample], unusable: Sequence[Unusable] = ()) -> ChatData:
    """The rows of `examples`: the system prompt most share (others named as unusable), one per normalized input."""
    systems = Counter(e.system for e in examples)
    system = systems.most_common(1)[0][0] if systems else None
    skipped = list(unusable)
    newest: dict[str, ChatExample] = {}
    for example in examples:
        if example.system != system:
            skipped.append(Unusable(example.where, "its system prompt differs from the one most examples share: "
                                                   "import each system prompt as a run of its own"))
            continue
        key = input_hash(example.user)
        kept = newest.get(key)
        if kept is None or (example.created or 0) > (kept.created or 0):
            newest[key] = example
    kept_examples = sorted(newest.values(), key=lambda e: ((e.created or 0), e.where))
    rows = [{INPUT: e.user, ANSWER: label_of(e.answer), MODEL: e.model or IMPORTED_MODEL, SOURCE: e.where}
            for e in kept_examples]
    canonical = json.dumps({"system": system, "rows": rows}, sort_keys=True, ensure_ascii=False)
    used = len(examples) - (len(skipped) - len(unusable))
    return ChatData(rows, system, used - len(rows), _in_order(skipped),
                    hashlib.sha256(canonical.encode("utf-8")).hexdigest())


def _in_order(unusable: list[Unusable]) -> list[Unusable]:
    def key(u: Unusable) -> tuple[int, str]:
        return (int(u.where.removeprefix("line ")), "") if u.where.startswith("line ") else (0, u.where)

    return sorted(unusable, key=key)


async def store_chat_data(storage: Storage, data: ChatData, filename: str, size_bytes: int) -> tuple[Dataset, bool]:
    """Store the rows as a chat dataset (the same rows again return the stored copy, and True)."""
    seen_before = await storage.datasets.get_by_sha256(data.sha256) is not None
    profile = {"system": data.system, "labels": dict(data.labels().most_common()),
               "models": dict(data.models().most_common()), "duplicates": data.duplicates,
               "unusable": len(data.unusable)}
    dataset = await storage.datasets.create(
        sha256=data.sha256, filename=filename, size_bytes=size_bytes, encoding="utf-8", delimiter="",
        columns=COLUMNS, rows=data.rows, profile=profile, kind=KIND)
    return dataset, seen_before


def spec_for_chat(spec: RunSpec, dataset: Dataset, prices: PriceTable) -> RunSpec:
    """The run's settings for a chat dataset: its input as the prompt, its shared system prompt, its answers as the
    choices, and its model as the teacher when every answer came from one model the price table knows."""
    labels = sorted(dataset.profile.get("labels", {}).items(), key=lambda item: (-item[1], item[0]))
    choices = tuple(label for label, n in labels if n >= spec.min_per_label)
    if len(choices) < 2:
        few = ", ".join(f"{label} ({n})" for label, n in labels[:SHOWN_LABELS])
        raise SpecError(f"The answers hold fewer than two labels with {spec.min_per_label} or more examples each "
                        f"({few or 'none'}), so there is nothing to classify between. Add examples, or lower "
                        "min_per_label before sharing the file again.")
    validate_choices(choices)
    models = list(dataset.profile.get("models", {}))
    teacher = models[0] if len(models) == 1 and models[0] in prices.prices else spec.teacher
    return replace(spec, label=None, template=TEMPLATE, system=dataset.profile.get("system"), choices=choices,
                   teacher=teacher)


def summary_lines(data: ChatData, dataset: Dataset, spec: RunSpec, run_name: str) -> list[str]:
    """What the thread is told about stored answers: counts, what was left out and why, the next step."""
    labels = data.labels()
    choices = set(spec.choices or ())
    outside = sum(n for label, n in labels.items() if label not in choices)
    lines = [f"{len(data.rows):,} examples with their answers, from {_models(data.models())}. They are the teacher's "
             "answers: collecting asks only the base student, on the eval split."]
    if data.duplicates:
        lines.append(f"{data.duplicates:,} examples repeat an input already kept (compared normalized): the newest "
                     "copy is kept.")
    if outside:
        lines.append(f"{outside:,} answers are not one of the {len(choices)} choices (labels with fewer than "
                     f"{spec.min_per_label} examples): they stay as invalid teacher answers, neither trained on nor "
                     f"scored. `/distill set {run_name} choices=...` to change that.")
    if spec.system:
        lines.append(f"System prompt, shared by the examples: {_short(spec.system)}")
    lines.append("Settings: template={input}, label none (no gold labels: scores are agreement with these answers), "
                 f"choices {', '.join(sorted(choices, key=lambda c: -labels[c]))}, teacher {spec.teacher} (asked "
                 "again only by `/distill eval` and `/distill watch`).")
    return lines


def _models(models: Counter[str]) -> str:
    return ", ".join(f"{model} ({n:,})" for model, n in models.most_common(5))


def _short(text: str, chars: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[: chars - 1] + "…"


def imported_answers(run_id: int, groups: Sequence[tuple[str, Sequence[PreparedRow]]], choices: Sequence[str],
                     rows: dict[int, dict[str, Any]], done: dict[str, dict[int, str]]) -> list[Completion]:
    """Teacher answers from the stored ones for each (split, rows) group. `done` holds the request hash of each row's
    stored teacher answer by split: a row that already has this answer is skipped; one answered for other data (a
    file shared before) gets it instead. The hash is apart from any request's (bot/collect/engine.py), so no request
    reuses an imported answer as if the teacher had given it."""
    allowed = set(choices)
    answers = []
    for split, group in groups:
        for row in group:
            stored = rows[row.row_index]
            digest = "imported:" + hashlib.sha256(f"{stored[SOURCE]}:{row.input_hash}".encode()).hexdigest()
            if done.get(split, {}).get(row.row_index) == digest:
                continue
            label = stored[ANSWER] if stored[ANSWER] in allowed else None
            answers.append(Completion(
                run_id=run_id, row_index=row.row_index, split=split, role="teacher", model=stored[MODEL],
                request_hash=digest, status="ok" if label else "invalid", raw_output=stored[ANSWER],
                parsed_label=label, provider_completion_id=stored[SOURCE] if stored[SOURCE].startswith("chatcmpl")
                else None, attempts=0,
                error=None if label else f"imported answer {stored[ANSWER][:80]!r} is not one of the choices"))
    return answers
