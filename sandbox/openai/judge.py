"""How the sandbox's stand-ins judge answers (score_model, label_model, pairwise): by similarity to the reference.

A request is a judging one when its last user message holds MT-Bench's answer markers ("[The Start of Assistant's
Answer]", or Assistant A's and B's). The judge reads the reference and the answer(s) between the markers and scores an
answer against the reference:
- both with a final number (GSM8K's `#### N`, else the last number): 0.8 + 0.2 x word overlap when the numbers are
  equal, 0.5 x word overlap when they are not;
- otherwise the word overlap: the F1 of their content words.
Without a reference (a pairwise judgment without one) an answer is scored by its overlap with the question.

- score_model: the score, rounded to 2 places, as `result`, with one reasoning step saying what it compared.
- label_model: a label from the enum: the most positive-sounding one (correct, pass, yes, ...) for a score of at least
  0.5, the most negative-sounding one below; a neutral label (partly, ...) between 0.35 and 0.65 when there is one.
- pairwise: "[[A]]" or "[[B]]" for the clearly better answer (by more than 0.1); within 0.1 it favours the answer
  shown first, as real judges do (position bias), and "[[C]]" only when both score the same. Judging both orders, as
  the bot does, turns that bias into a tie.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sandbox.openai.text import terms

_SECTION = re.compile(r"\[The Start of ([^\]]+)\]\n(.*?)\n\[The End of \1\]", re.DOTALL)
_QUESTION = re.compile(r"\[User Question\]\n(.*?)(?:\n\n\[|$)", re.DOTALL)
_GSM8K = re.compile(r"#### (\-?[0-9\.\,]+)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
POSITIVE = ("correct", "pass", "yes", "good", "right", "accurate", "true", "match", "acceptable", "excellent")
NEGATIVE = ("incorrect", "wrong", "fail", "no", "bad", "inaccurate", "false", "mismatch", "unacceptable", "poor")
MARGIN = 0.1


def is_judging(prompt: str) -> bool:
    return "[The Start of Assistant" in prompt


def sections(prompt: str) -> dict[str, str]:
    found = {name: body for name, body in _SECTION.findall(prompt)}
    question = _QUESTION.search(prompt)
    if question:
        found["question"] = question.group(1).strip()
    return found


def _final_number(text: str) -> float | None:
    match = _GSM8K.search(text)
    numbers = [match.group(1)] if match else _NUMBER.findall(text)
    try:
        return float(numbers[-1].replace(",", "").rstrip(".")) if numbers else None
    except ValueError:
        return None


def overlap(answer: str, reference: str) -> float:
    """F1 of the two texts' content words."""
    mine, theirs = set(terms(answer)), set(terms(reference))
    if not mine or not theirs:
        return 0.0
    shared = len(mine & theirs)
    return 2 * shared / (len(mine) + len(theirs))


def score(answer: str, reference: str) -> float:
    words = overlap(answer, reference)
    mine, theirs = _final_number(answer), _final_number(reference)
    if mine is not None and theirs is not None:
        return round(0.8 + 0.2 * words if mine == theirs else 0.5 * words, 2)
    return round(words, 2)


def judged_score(prompt: str) -> tuple[float, str]:
    """The score of a score_model or label_model request, and what the judge says it compared."""
    found = sections(prompt)
    answer = found.get("Assistant's Answer", "")
    reference = found.get("Reference Answer")
    if reference is None:
        return round(overlap(answer, found.get("question", "")), 2), "the answer's overlap with the question"
    return score(answer, reference), "the answer against the reference: final number and wording"


def label_for(labels: Sequence[str], value: float) -> str:
    def polarity(label: str) -> int:
        words = set(re.findall(r"[a-z]+", label.lower()))
        return (1 if words & set(POSITIVE) else 0) - (1 if words & set(NEGATIVE) else 0)

    ranked = sorted(labels, key=lambda label: (-polarity(label), labels.index(label)))
    neutral = [label for label in labels if polarity(label) == 0]
    if neutral and 0.35 <= value < 0.65:
        return neutral[0]
    return ranked[0] if value >= 0.5 else ranked[-1]


def pairwise(prompt: str) -> str:
    """A pairwise judgment: a short explanation and the verdict in FastChat's format."""
    found = sections(prompt)
    first, second = found.get("Assistant A's Answer", ""), found.get("Assistant B's Answer", "")
    reference = found.get("Reference Answer")
    against = reference if reference is not None else found.get("question", "")
    judge = score if reference is not None else overlap
    a, b = judge(first, against), judge(second, against)
    if a == b:
        verdict = "C"
    elif abs(a - b) <= MARGIN:
        verdict = "A"  # position bias: the first answer wins a close call
    else:
        verdict = "A" if a > b else "B"
    basis = "the reference answer" if reference is not None else "the question"
    return (f"Compared with {basis}, assistant A scores {a:.2f} and assistant B {b:.2f}. [[{verdict}]]")
