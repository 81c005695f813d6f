"""The zero-shot "teacher" and "student" of the sandbox: word overlap between the prompt and each choice.

Each choice is split into stemmed words ("Bordeaux-style Red Blend" -> bordeaux, style, red, blend). A word
counts 1/k when k choices share it (so "blend" says little), and the whole choice phrase found verbatim adds
one. Before scoring, the span of the prompt that merely lists the choices (a run of at least three choice
names separated by commas, semicolons, "or" or new lines, as in the wine cookbook's "Pick one of: ...") is
removed, or every listed choice would get the same free evidence. Ties and prompts without any evidence are
broken by a seeded hash of the prompt, so answers are deterministic.

A student sees only a seeded half of the vocabulary (a word is visible when hash(seed, word) is even), so it
misses evidence the teacher uses and falls back to the seeded guess more often: clearly worse, still fixed.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence

from sandbox.openai.text import STOP_WORDS, fold, seeded_index, stem, terms

_SEPARATOR = r"(?:\s*(?:[,;/|\n]|\bor\b|\band\b)\s*[\"'*\-•]?\s*)+"
_LIST_MIN_RUN = 3


@functools.lru_cache(maxsize=256)
def _list_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    name = "(?:" + "|".join(re.escape(n) for n in names) + r")[\"']?"
    return re.compile(rf"(?<![a-z0-9]){name}(?:{_SEPARATOR}{name}){{{_LIST_MIN_RUN - 1},}}(?![a-z0-9])")


def strip_choice_list(text: str, choices: Sequence[str]) -> str:
    """`text` folded, without any run of >= 3 choice names separated by list punctuation."""
    folded = fold(text)
    names = tuple(sorted({fold(c).strip() for c in choices if fold(c).strip()}, key=lambda n: (-len(n), n)))
    if len(names) < _LIST_MIN_RUN:
        return folded
    return _list_pattern(names).sub(" ", folded)


class LexicalClassifier:
    """Scores choices by overlap with the prompt; `recall` < 1 hides a seeded share of the vocabulary."""

    def __init__(self, seed: int, recall: float = 1.0) -> None:
        self.seed = seed
        self.recall = recall

    def visible(self, term: str) -> bool:
        """Whether the classifier sees a (stemmed) word at all."""
        return self.recall >= 1.0 or seeded_index(self.seed, "vocabulary:" + term, 1000) < self.recall * 1000

    def scores(self, prompt: str, choices: Sequence[str]) -> list[float]:
        text = strip_choice_list(prompt, choices)
        counts = Counter(t for t in terms(text) if self.visible(t))
        choice_terms = [set(terms(c)) for c in choices]
        shared = Counter(t for ts in choice_terms for t in ts)
        result = []
        for choice, ts in zip(choices, choice_terms, strict=True):
            score = sum(min(counts[t], 3) / shared[t] for t in ts)
            phrase = fold(choice).strip()
            if phrase and phrase not in STOP_WORDS and self.visible(stem(phrase)):
                score += len(re.findall(rf"(?<![a-z0-9]){re.escape(phrase)}(?![a-z0-9])", text))
            result.append(score)
        return result

    def classify(self, prompt: str, choices: Sequence[str]) -> str:
        return self.pick(prompt, choices, self.scores(prompt, choices))

    def pick(self, prompt: str, choices: Sequence[str], scores: Sequence[float]) -> str:
        """The best-scored choice; a tie is broken by a seeded hash of the prompt."""
        best = max(scores)
        tied = [c for c, s in zip(choices, scores, strict=True) if s == best]
        return tied[seeded_index(self.seed, prompt, len(tied))]
