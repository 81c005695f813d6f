"""`numeric`: the final number of the answer against the reference's, within a tolerance.

Not one of OpenAI's graders; it is how math answers are graded. The final number of a text is, in order:
- GSM8K's: the number after the first `#### ` (grade-school-math's `extract_answer`: `#### (\\-?[0-9\\.\\,]+)`,
  thousands separators dropped);
- else the last number after the last `Answer:` (simple-evals' MGSM prompt asks for `Answer: N` on the last line);
- else the last number in the text.
The two numbers are compared as numbers, |answer - reference| <= tolerance (default 0), so `18.00` equals `18` and
`1,000` equals `1000`: GSM8K's own check compares strings, where "18.0" is not "18"; simple-evals' MGSM strips the
trailing zeros as this does. A reference without a number is not graded; an answer without one fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from bot.graders.base import Grade, Sample, missing, ungraded

_GSM8K = re.compile(r"#### (\-?[0-9\.\,]+)")
_ANSWER = re.compile(r"(?i)answer\s*:")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def _number(text: str) -> Decimal | None:
    cleaned = text.replace(",", "").rstrip(".")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def final_number(text: str) -> Decimal | None:
    """The final number of a worked answer (see the module docstring), or None when it has none."""
    found = _GSM8K.search(text)
    if found:
        return _number(found.group(1).strip())
    answers = list(_ANSWER.finditer(text))
    tail = text[answers[-1].end():] if answers else text
    numbers = _NUMBER.findall(tail) or (_NUMBER.findall(text) if answers else [])
    return _number(numbers[-1]) if numbers else None


def tolerance(raw: str) -> Decimal:
    value = _number(raw.strip())
    if value is None or value < 0:
        raise ValueError(f"numeric takes a tolerance >= 0 (numeric:0.01), got {raw!r}")
    return value


@dataclass(frozen=True)
class Numeric:
    tolerance: Decimal = Decimal(0)

    @property
    def name(self) -> str:
        return "numeric" if not self.tolerance else f"numeric:{self.tolerance}"

    def grade(self, sample: Sample) -> Grade:
        if sample.reference is not None and final_number(sample.reference) is None:
            return ungraded("the reference has no number")
        if (lacking := missing(sample)) is not None:
            return lacking
        expected, found = final_number(sample.reference), final_number(sample.answer)
        passed = found is not None and abs(found - expected) <= self.tolerance
        return Grade(1.0 if passed else 0.0, passed)
