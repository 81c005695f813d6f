"""`json_match`: an extracted JSON object against the reference object, field by field.

Not one of OpenAI's graders (its evals compared fields with one string_check per field); here one grader checks every
top-level field of the reference. A field matches when both values are equal as JSON, with two allowances an
extraction deserves: text is compared with its case folded and its whitespace collapsed ("  ACME corp" matches
"Acme Corp"), and numbers as numbers (2 matches 2.0). Objects and arrays must match exactly after those allowances,
element by element. The score is the share of the reference's fields that match; the row passes when all do.
An answer that is not a JSON object matches no field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.graders.base import Grade, Sample, missing, ungraded


def _normal(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return " ".join(value.casefold().split())
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def same(answer: Any, reference: Any) -> bool:
    """Whether two JSON values match under json_match's allowances."""
    return _normal(answer) == _normal(reference)


def _object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class JsonMatch:
    name: str = "json_match"

    def grade(self, sample: Sample) -> Grade:
        reference = _object(sample.reference) if sample.reference is not None else None
        if sample.reference is not None and reference is None:
            return ungraded("the reference is not a JSON object")
        if (lacking := missing(sample)) is not None and not lacking.graded:
            return lacking
        if not reference:
            return ungraded("the reference object has no fields")
        answer = _object(sample.answer or "") or {}  # no answer: every field missed
        fields = {name: name in answer and same(answer[name], value) for name, value in reference.items()}
        matched = sum(fields.values())
        return Grade(matched / len(fields), matched == len(fields), fields=fields)
