"""`string_check`: OpenAI's string comparison grader, 1 for a match and 0 otherwise.

Operations, as OpenAI's Graders guide defines them: `eq` the answer equals the reference (case-sensitive), `ne` it does
not, `like` the answer contains the reference (case-sensitive), `ilike` the same without case. `like` is a plain
substring test: the guide says "contains", and nothing says that `%` or `_` are wildcards, so they are literal here.
The guide writes `neq` where the API's enum says `ne`; both are accepted. Nothing is trimmed or normalised first
(OpenAI documents no trimming), and `ilike` folds case with str.casefold.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.graders.base import Grade, Sample, missing

OPERATIONS = ("eq", "ne", "like", "ilike")
ALIASES = {"neq": "ne"}


def operation(raw: str) -> str:
    """The operation named by `raw` (eq, ne or neq, like, ilike); ValueError names the choices."""
    value = ALIASES.get(raw.strip().lower(), raw.strip().lower())
    if value not in OPERATIONS:
        raise ValueError(f"string_check takes one of {', '.join(OPERATIONS)} (string_check:ilike), got {raw!r}")
    return value


def check(answer: str, reference: str, op: str) -> bool:
    if op == "eq":
        return answer == reference
    if op == "ne":
        return answer != reference
    if op == "like":
        return reference in answer
    return reference.casefold() in answer.casefold()


@dataclass(frozen=True)
class StringCheck:
    op: str = "eq"

    @property
    def name(self) -> str:
        return f"string_check:{self.op}"

    def grade(self, sample: Sample) -> Grade:
        if (lacking := missing(sample)) is not None:
            return lacking
        passed = check(sample.answer, sample.reference, self.op)
        return Grade(1.0 if passed else 0.0, passed)
