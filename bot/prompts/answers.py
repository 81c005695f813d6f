"""What an answer is, per task kind: how it is asked for, read back, stored, trained on and counted.

- `classify`: a label, one of the choices, through a strict schema whose one property `label` is their enum
  (bot/prompts/templates.py). Stored: the label. Trained on: `{"label":"..."}`.
- `generate`: free text, asked without a response format. Stored and trained on: the text, trimmed. Empty is invalid.
- `extract`: a JSON object, through the run's strict schema (bot/prompts/schemas.py). Stored and trained on: the object
as
  compact JSON. Text that is not an object with the schema's top-level fields is invalid.

A free-text or extracted answer has no known length: its budget starts from the run's `max_answer_tokens` (or
FREE_TEXT_ANSWER_TOKENS), which the cap reserves for every request; its expected length is the reference's where the
row has one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.prompts import schemas
from bot.prompts.encodings import encoding_for_model
from bot.prompts.templates import answer_json, parse_answer, response_format

TASKS = ("classify", "generate", "extract")
CLASSIFY, GENERATE, EXTRACT = TASKS
# The longest free-text or extracted answer budgeted when max_answer_tokens is not set: a worked solution of a few
# paragraphs (GSM8K's run to about 400 tokens), well under what one answer may cost.
FREE_TEXT_ANSWER_TOKENS = 1024


@dataclass(frozen=True)
class AnswerFormat:
    task: str
    choices: tuple[str, ...] = ()
    schema: dict[str, Any] | None = field(default=None, hash=False, compare=True)

    @property
    def response_format(self) -> dict[str, Any] | None:
        """The request's response_format (None: plain text, none sent)."""
        if self.task == CLASSIFY:
            return response_format(self.choices)
        if self.task == EXTRACT:
            return schemas.response_format(self.schema or {})
        return None

    def parse(self, text: str | None) -> str | None:
        """The answer as stored (label, text or compact JSON), or None when it is not a valid answer."""
        if self.task == CLASSIFY:
            return parse_answer(text, self.choices)
        if self.task == GENERATE:
            return text.strip() if text and text.strip() else None
        try:
            value = json.loads(text or "")
        except ValueError:
            return None
        if not isinstance(value, dict) or any(name not in value for name in schemas.field_names(self.schema or {})):
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    @property
    def invalid(self) -> str:
        """The error of an answer `parse` refused."""
        return {CLASSIFY: "invalid: the answer is not one of the choices in the schema",
                GENERATE: "invalid: the answer is empty",
                EXTRACT: "invalid: the answer is not a JSON object with the schema's fields"}[self.task]

    def training_content(self, answer: str) -> str:
        """The assistant turn of a training example for a stored answer."""
        return answer_json(answer) if self.task == CLASSIFY else answer

    def tokens(self, answer: str, model: str) -> int:
        """Completion tokens of a stored answer as the model writes it."""
        return len(encoding_for_model(model).encode_ordinary(self.training_content(answer)))

    def longest_tokens(self, model: str, max_answer_tokens: int | None) -> int:
        """The longest answer's tokens: what the answer budget starts from."""
        if self.task == CLASSIFY:
            return max(self.tokens(choice, model) for choice in self.choices)
        return max_answer_tokens or FREE_TEXT_ANSWER_TOKENS

    @classmethod
    def from_request(cls, response_format: dict[str, Any] | None) -> AnswerFormat:
        """The format a request was sent with (a batch line's body carries it)."""
        if not response_format:
            return cls(GENERATE)
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") or {}
        if spec.get("name") == "classification":
            return cls(CLASSIFY, tuple(schema["properties"]["label"]["enum"]))
        return cls(EXTRACT, schema=schema)


def answer_format(task: str, choices: Sequence[str] = (), schema: dict[str, Any] | None = None) -> AnswerFormat:
    return AnswerFormat(task, tuple(choices) if task == CLASSIFY else (), schema if task == EXTRACT else None)
