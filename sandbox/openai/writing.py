"""How the sandbox's stand-ins write free text that is not a word problem: extractive, and honest about it.

- The teacher answers with the prompt's most informative sentences: the (at most) two whose content words are rarest
  in the prompt, in their order. It knows nothing beyond the prompt, so its answers are summaries, not knowledge.
- A base student answers with the prompt's first sentence.
- A fine-tuned student remembers its training file (`AnswerMemory`): it answers with the answer of the training prompt
  most like the new one (Jaccard similarity of their content words) when that one is close enough, and like its base
  otherwise. What it writes is what it was trained on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from sandbox.openai.text import terms

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_FIRST_SENTENCE = re.compile(r"^(.{1,200}?[.!?])(?:\s|$)", re.DOTALL)
TEACHER_SENTENCES = 2
MIN_SIMILARITY = 0.2


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def first_sentence(text: str) -> str:
    match = _FIRST_SENTENCE.match(text.strip())
    return match.group(1) if match else text.strip()[:200]


def summary(text: str, count: int = TEACHER_SENTENCES) -> str:
    """The `count` sentences whose content words are rarest in `text`, in their order."""
    found = sentences(text)
    if len(found) <= count:
        return " ".join(found) or text.strip()
    frequency = Counter(t for s in found for t in terms(s))

    def weight(sentence: str) -> float:
        words = set(terms(sentence))
        return sum(1 / frequency[w] for w in words) if words else 0.0

    chosen = sorted(sorted(range(len(found)), key=lambda i: (-weight(found[i]), i))[:count])
    return " ".join(found[i] for i in chosen)


class AnswerMemory:
    """The training file's (prompt, answer) pairs, recalled by the closest prompt."""

    def __init__(self, examples: Iterable[tuple[str, str]]) -> None:
        self.examples = [(frozenset(terms(text)), answer) for text, answer in examples]

    def recall(self, prompt: str, min_similarity: float = MIN_SIMILARITY) -> str | None:
        words = frozenset(terms(prompt))
        best, answer = 0.0, None
        for known, known_answer in self.examples:
            union = len(words | known)
            similarity = len(words & known) / union if union else 0.0
            if similarity > best:
                best, answer = similarity, known_answer
        return answer if best >= min_similarity else None
