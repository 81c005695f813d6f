"""The classifier behind a sandbox fine-tuned (`ft:`) model: multinomial naive Bayes on the job's examples.

Trained on (last user message -> the assistant's label) pairs with add-one smoothing, it predicts over the
labels a request allows (the enum of its schema), so the distilled model's accuracy is learned from the
training file, not scripted. It learns from the part of the prompt that varies: words in nearly every training
prompt (FIXED_SHARE) are left out.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from sandbox.openai.text import seeded_index, terms

# A word in more than this share of the training prompts is part of the fixed prompt (the instructions, the list
# of choices), not of the example: it says nothing about the label, and counting it would only favour the most
# frequent labels (with 77 choices listed in every prompt, one label for nearly every row).
FIXED_SHARE = 0.9
MIN_DOCUMENTS = 20  # fewer prompts than this cannot tell the fixed words from common ones


class NaiveBayes:
    def __init__(self, examples: Iterable[tuple[str, str]], seed: int = 0) -> None:
        self.seed = seed
        self.doc_counts: Counter[str] = Counter()
        self.term_counts: dict[str, Counter[str]] = {}
        documents: Counter[str] = Counter()
        pairs = [(terms(text), label) for text, label in examples]
        for words, _ in pairs:
            documents.update(set(words))
        fixed = ({t for t, n in documents.items() if n > FIXED_SHARE * len(pairs)} if len(pairs) >= MIN_DOCUMENTS
                 else set())
        for words, label in pairs:
            self.doc_counts[label] += 1
            self.term_counts.setdefault(label, Counter()).update(w for w in words if w not in fixed)
        self.vocabulary = {t for counts in self.term_counts.values() for t in counts}
        self.totals = {label: sum(counts.values()) for label, counts in self.term_counts.items()}

    @property
    def labels(self) -> list[str]:
        return sorted(self.doc_counts)

    def log_likelihoods(self, text: str, labels: Sequence[str]) -> list[float]:
        """log P(label) + sum log P(term | label) for each label; unseen labels get only smoothing mass."""
        n_docs = sum(self.doc_counts.values())
        vocab = len(self.vocabulary) + 1
        observed = Counter(t for t in terms(text) if t in self.vocabulary)
        result = []
        for label in labels:
            counts = self.term_counts.get(label, Counter())
            total = self.totals.get(label, 0)
            score = math.log((self.doc_counts[label] + 1) / (n_docs + len(labels)))
            score += sum(n * math.log((counts[t] + 1) / (total + vocab)) for t, n in observed.items())
            result.append(score)
        return result

    def classify(self, text: str, labels: Sequence[str] | None = None) -> str:
        labels = list(labels) if labels else self.labels
        scores = self.log_likelihoods(text, labels)
        best = max(scores)
        tied = [label for label, s in zip(labels, scores, strict=True) if s == best]
        return tied[seeded_index(self.seed, text, len(tied))]

    def mean_log_loss(self, examples: Sequence[tuple[str, str]]) -> float:
        """Average negative log-probability of the true label: the 'training loss' the job reports."""
        labels = self.labels
        if not examples:
            return 0.0
        total = 0.0
        for text, label in examples:
            scores = self.log_likelihoods(text, labels)
            top = max(scores)
            log_norm = top + math.log(sum(math.exp(s - top) for s in scores))
            total += log_norm - scores[labels.index(label)]
        return total / len(examples)
