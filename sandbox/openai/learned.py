"""What a sandbox fine-tuned model learned from its training file, for every kind of answer.

- labels (classify): a multinomial naive Bayes over (last user message -> label) (sandbox/openai/naive_bayes.py);
- word problems: cue words lined up with the worked answers' calculator steps (sandbox/openai/word_problems.py);
- other free text: the examples themselves, recalled by the closest prompt (sandbox/openai/writing.py);
- extractions: the key words before each field's value (sandbox/openai/extraction.py).
The job's training loss is the naive Bayes' mean log-loss when the answers are labels, and otherwise the mean
per-word log-loss of the answers under their own smoothed word frequencies (what a unigram language model fitted
to them would score).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from sandbox.openai.extraction import learn_keys
from sandbox.openai.naive_bayes import NaiveBayes
from sandbox.openai.text import words
from sandbox.openai.word_problems import Lexicon, learn_lexicon
from sandbox.openai.writing import AnswerMemory

MAX_LABELS = 50  # more distinct answers than this: free text, not labels


class LearnedModel:
    def __init__(self, examples: Sequence[tuple[str, str]], seed: int = 0) -> None:
        self.examples = list(examples)
        self.bayes = NaiveBayes(self.examples, seed)
        self.lexicon: Lexicon = learn_lexicon(self.examples)
        self.memory = AnswerMemory(self.examples)
        self.keys = learn_keys(self.examples)

    @property
    def labels(self) -> list[str]:
        return self.bayes.labels

    def classify(self, text: str, labels: Sequence[str] | None = None) -> str:
        return self.bayes.classify(text, labels)

    def mean_log_loss(self) -> float:
        if len(self.bayes.labels) <= MAX_LABELS:
            return self.bayes.mean_log_loss(self.examples)
        counts = Counter(w for _, answer in self.examples for w in words(answer))
        total, vocabulary = sum(counts.values()), len(counts) + 1
        losses = [-sum(math.log((counts[w] + 1) / (total + vocabulary)) for w in words(answer)) / max(1, len(words(
            answer))) for _, answer in self.examples]
        return sum(losses) / len(losses) if losses else 0.0
