"""Prompt templates, the exact chat messages sent, and the structured-output answer format.

A template is text with `{column}` placeholders; `{choices}` is the label choices joined by ", " (the
OpenAI wine-distillation cookbook lists the varieties in its prompt this way); `{{` and `}}` are literal
braces. A missing cell renders as the word `unknown` (MISSING), never as `nan` or an empty gap, so the model
reads a sentence such as "The price is unknown." instead of a blank.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.errors import SpecError

MISSING = "unknown"
CHOICES = "choices"

# OpenAI's documented Structured Outputs limits ("Supported schemas", Structured Outputs guide,
# https://developers.openai.com/api/docs/guides/structured-outputs#supported-schemas, as raised in July 2025):
# at most 1000 enum values in a schema; when one string enum has more than 250 values their total length
# may not exceed 15,000 characters; all property names and enum values together at most 120,000 characters.
MAX_ENUM_VALUES = 1000
LARGE_ENUM_COUNT = 250
MAX_LARGE_ENUM_CHARS = 15_000
MAX_SCHEMA_CHARS = 120_000
_PROPERTY = "label"

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def cell_text(value: Any) -> str:
    """A cell as it appears in a prompt: missing (None, NaN, empty) becomes MISSING."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return MISSING
    return str(value)


@dataclass(frozen=True)
class Template:
    """A parsed template: `literals[i]` comes before `fields[i]`, and `literals[-1]` ends the text."""

    text: str
    literals: tuple[str, ...]
    fields: tuple[str, ...]

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def parse(text: str) -> Template:
        literals: list[str] = []
        fields: list[str] = []
        buffer: list[str] = []
        position = 0
        for match in _TOKEN.finditer(text):
            buffer.append(text[position : match.start()])
            position = match.end()
            token, name = match.group(0), match.group(1)
            if token in ("{{", "}}"):
                buffer.append(token[0])
            elif name is not None and name.strip():
                literals.append("".join(buffer))
                buffer.clear()
                fields.append(name.strip())
            else:
                raise SpecError(_syntax_problem(text, match.start(), token))
        buffer.append(text[position:])
        literals.append("".join(buffer))
        return Template(text, tuple(literals), tuple(fields))

    @property
    def columns(self) -> tuple[str, ...]:
        """Placeholders that name columns (everything but {choices}), in order of first use."""
        return tuple(dict.fromkeys(f for f in self.fields if f != CHOICES))

    def bind_choices(self, choices: Sequence[str]) -> Template:
        """The same template with {choices} written into the literal text, leaving only column fields."""
        if CHOICES not in self.fields:
            return self
        joined = ", ".join(choices)
        literals = [self.literals[0]]
        fields: list[str] = []
        for name, literal in zip(self.fields, self.literals[1:], strict=True):
            if name == CHOICES:
                literals[-1] += joined + literal
            else:
                fields.append(name)
                literals.append(literal)
        return Template(self.text, tuple(literals), tuple(fields))

    def render(self, values: Sequence[str]) -> str:
        """Interleave the literals with already-rendered field values (one per field, in order)."""
        parts = [self.literals[0]]
        for value, literal in zip(values, self.literals[1:], strict=True):
            parts.append(value)
            parts.append(literal)
        return "".join(parts)


def _syntax_problem(text: str, position: int, token: str) -> str:
    line = text.count("\n", 0, position) + 1
    if len(token) > 1:
        what = "an empty placeholder {}"
    elif token == "{":
        what = "a '{' with no '}'"
    else:
        what = "a '}' with no '{'"
    return (
        f"The template has {what} on line {line}. Placeholders look like {{description}}; "
        "write {{ or }} for a literal brace."
    )


def render_template(template: str, row: Mapping[str, Any], choices: Sequence[str]) -> str:
    """Render one row: {column} takes the row's value (missing -> MISSING), {choices} the joined choices."""
    bound = Template.parse(template).bind_choices(choices)
    return bound.render([cell_text(row.get(name)) for name in bound.fields])


def default_template(columns: Sequence[str], label: str | None, task: str = "classify") -> str:
    """A template that shows every column except the label or reference (and unnamed index columns) as `name: value`;
    a generate run's single column is shown as it is."""
    shown = [c for c in columns if c != label and not c.startswith("Unnamed:") and not set("{}") & set(c)]
    lines = [f"{column}: {{{column}}}" for column in shown]
    if task == "generate":
        return f"{{{shown[0]}}}" if len(shown) == 1 else "\n".join(lines)
    if task == "extract":
        return "\n".join(["Extract the fields of the schema from this example.", *lines])
    question = f"Which {label} fits this example?" if label else "Which label fits this example?"
    return "\n".join([question, *lines, "", "Answer with one of: {choices}."])


def validate_choices(choices: Sequence[str]) -> None:
    """Raise SpecError when the choices cannot be an enum of a strict OpenAI JSON schema."""
    if not choices:
        raise SpecError("There are no label choices. Set a label column, or choices=A,B,C (or a choices file).")
    if any(not c.strip() for c in choices):
        raise SpecError("A label choice is empty. Remove empty lines or double commas from the choices.")
    duplicates = sorted(c for c, n in Counter(choices).items() if n > 1)
    if duplicates:
        raise SpecError(f"Label choices appear twice: {', '.join(duplicates)}. List each choice once.")
    total = sum(len(c) for c in choices)
    if len(choices) > MAX_ENUM_VALUES:
        raise SpecError(
            f"{len(choices)} label choices is more than the {MAX_ENUM_VALUES} that OpenAI structured outputs "
            "allow in one schema. Raise min_per_label or set fewer choices."
        )
    if len(choices) > LARGE_ENUM_COUNT and total > MAX_LARGE_ENUM_CHARS:
        raise SpecError(
            f"The {len(choices)} label choices are {total:,} characters long; OpenAI structured outputs allow "
            f"{MAX_LARGE_ENUM_CHARS:,} when there are more than {LARGE_ENUM_COUNT}. Use shorter or fewer choices."
        )
    if total + len(_PROPERTY) > MAX_SCHEMA_CHARS:
        raise SpecError(
            f"The label choices are {total:,} characters long; OpenAI structured outputs allow "
            f"{MAX_SCHEMA_CHARS:,} in one schema. Use shorter or fewer choices."
        )


def response_format(choices: Sequence[str]) -> dict[str, Any]:
    """The strict json_schema response format whose one property `label` is an enum of the choices."""
    validate_choices(choices)
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "classification",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {_PROPERTY: {"type": "string", "enum": list(choices)}},
                "required": [_PROPERTY],
                "additionalProperties": False,
            },
        },
    }


def answer_json(label: str) -> str:
    """The answer exactly as a model writes it under the schema: compact JSON, non-ASCII kept as is."""
    return json.dumps({_PROPERTY: label}, ensure_ascii=False, separators=(",", ":"))


def parse_answer(text: str | None, choices: Collection[str]) -> str | None:
    """The label of a model's answer, or None when it is not JSON with a `label` that is one of the choices."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return None
    label = value.get(_PROPERTY) if isinstance(value, dict) else None
    return label if isinstance(label, str) and label in choices else None
