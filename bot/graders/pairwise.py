"""`pairwise`: the judge compares a student's answer with the teacher's on the same eval row, in both orders.

The MT-Bench method (Zheng et al. 2023, "Judging LLM-as-a-Judge"), as FastChat's llm_judge implements it: the judge
gets FastChat's `pair-v2` instructions (`pair-math-v1`'s reference block when the row has a gold reference) and ends its
reply with "[[A]]", "[[B]]" or "[[C]]" for a tie, checked in that order. Each row is judged twice, the student first
and then the teacher first, to cancel the judge's position bias; as FastChat's `show_result.py` counts it, the
student wins a row only when both orders agree it is better, loses only when both agree it is worse, and any
disagreement (or a tie in the first order) is a tie. A row where either judgment cannot be read is left out.
"""

from __future__ import annotations

import re

from bot.graders.base import Sample

SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the "
    "user question displayed below. You should choose the assistant that follows the user's instructions and answers "
    "the user's question better. Your evaluation should consider factors such as the helpfulness, relevance, "
    "accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by comparing the two "
    "responses and provide a short explanation. Avoid any position biases and ensure that the order in which the "
    "responses were presented does not influence your decision. Do not allow the length of the responses to "
    "influence your evaluation. Do not favor certain names of the assistants. Be as objective as possible. After "
    "providing your explanation, output your final verdict by strictly following this format: \"[[A]]\" if "
    "assistant A is better, \"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie."
)
WITH_REFERENCE = (" Your evaluation should consider correctness and helpfulness. You will be given a reference answer, "
                  "assistant A's answer, and assistant B's answer. Identify and correct any mistakes.")
ORDERS = ("ab", "ba")  # ab: the student is assistant A; ba: the teacher is
WIN, TIE, LOSS = "win", "tie", "loss"
_VERDICT = re.compile(r"\[\[(A|B|C)\]\]")


def messages(sample: Sample, teacher_answer: str, order: str) -> list[dict[str, str]]:
    """One judgment's messages: `sample.answer` is the student's; `order` says which assistant it is."""
    first, second = (sample.answer, teacher_answer) if order == "ab" else (teacher_answer, sample.answer)
    reference = (f"[The Start of Reference Answer]\n{sample.reference}\n[The End of Reference Answer]\n\n"
                 if sample.reference is not None else "")
    user = (f"[User Question]\n{sample.prompt}\n\n{reference}"
            f"[The Start of Assistant A's Answer]\n{first}\n[The End of Assistant A's Answer]\n\n"
            f"[The Start of Assistant B's Answer]\n{second}\n[The End of Assistant B's Answer]")
    system = SYSTEM + (WITH_REFERENCE if sample.reference is not None else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def verdict(reply: str | None) -> str | None:
    """A, B or C (a tie) from a judge's reply, as FastChat reads it ([[A]] first, then [[B]], then [[C]]); None
    when it has none."""
    found = set(_VERDICT.findall(reply or ""))
    return next((v for v in ("A", "B", "C") if v in found), None)


def outcome(first: str | None, second: str | None) -> str | None:
    """The student's result on a row from the verdicts of order ab (`first`) and ba (`second`); None when either
    could not be read."""
    if first is None or second is None:
        return None
    mine = {"A": WIN, "B": LOSS, "C": TIE}[first]
    swapped = {"A": LOSS, "B": WIN, "C": TIE}[second]
    return mine if mine != TIE and mine == swapped else TIE


class Pairwise:
    """The grader a run's `graders=pairwise` names: the module's functions under one name."""

    name = "pairwise"
    messages = staticmethod(messages)
    verdict = staticmethod(verdict)
    outcome = staticmethod(outcome)
