"""`text_similarity`: OpenAI's similarity grader, a score from 0 to 1 between the answer and the reference, and a pass
when the score is at least `pass_threshold` ("a value greater than or equal indicates a passing grade",
openai-python's TextSimilarityGrader, 2025-04).

Each metric is the library OpenAI's guide names, or the standard one where it names none; OpenAI never published its
exact settings, so these are the libraries' defaults, put on OpenAI's 0-1 scale:
- `fuzzy_match`: rapidfuzz `fuzz.ratio` (normalised Indel similarity) / 100, on the texts as they are.
- `bleu`: sacrebleu `sentence_bleu` (its 13a tokenizer, exponential smoothing) / 100.
- `gleu`: NLTK's `sentence_gleu` (Google BLEU, n-grams 1-4) on whitespace tokens.
- `meteor`: NLTK's `meteor_score` on lower-cased whitespace tokens, with WordNet synonyms (alpha 0.9, beta 3,
  gamma 0.5). WordNet is data NLTK does not ship: without it METEOR says so and how to get it (`WordNetMissing`).
- `rouge_1` ... `rouge_5`, `rouge_l`: the `rouge-score` package's F-measure (no stemming, its default).
- `cosine`: the cosine of the two texts' embeddings (bot/graders/embeddings.py), clipped to 0-1.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.graders.base import Grade, Sample, missing, ungraded

ROUGE = {f"rouge_{n}": f"rouge{n}" for n in range(1, 6)} | {"rouge_l": "rougeL"}
LOCAL_METRICS = ("fuzzy_match", "bleu", "gleu", "meteor", *ROUGE)
METRICS = (*LOCAL_METRICS, "cosine")
WORDNET_HELP = ("METEOR needs WordNet, which NLTK does not ship: run `python -m nltk.downloader wordnet` where the bot "
                "runs (or point NLTK_DATA at a folder holding corpora/wordnet), or grade with another metric")


class WordNetMissing(LookupError):
    """METEOR was asked for where NLTK cannot find WordNet."""


def fuzzy_match(answer: str, reference: str) -> float:
    from rapidfuzz import fuzz

    return fuzz.ratio(answer, reference) / 100


def bleu(answer: str, reference: str) -> float:
    import sacrebleu

    return sacrebleu.sentence_bleu(answer, [reference]).score / 100


def gleu(answer: str, reference: str) -> float:
    from nltk.translate.gleu_score import sentence_gleu

    return float(sentence_gleu([reference.split()], answer.split()))


@functools.cache
def wordnet() -> Any:
    """NLTK's WordNet reader, loaded; WordNetMissing when NLTK finds no WordNet data."""
    from nltk.corpus import wordnet as reader

    try:
        reader.ensure_loaded()
    except LookupError:
        raise WordNetMissing(WORDNET_HELP + ".") from None
    return reader


def meteor(answer: str, reference: str, synonyms: Any = None) -> float:
    """`synonyms`: anything with WordNet's `synsets(word)` (tests pass a small one); None loads NLTK's WordNet."""
    from nltk.translate.meteor_score import meteor_score

    return float(meteor_score([reference.lower().split()], answer.lower().split(),
                              wordnet=synonyms if synonyms is not None else wordnet()))


@functools.cache
def _rouge(kind: str) -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([kind])


def rouge(kind: str, answer: str, reference: str) -> float:
    return float(_rouge(kind).score(reference, answer)[kind].fmeasure)


def metric_function(metric: str) -> Callable[[str, str], float]:
    """The (answer, reference) -> 0..1 function of a local metric."""
    if metric in ROUGE:
        return functools.partial(rouge, ROUGE[metric])
    return {"fuzzy_match": fuzzy_match, "bleu": bleu, "gleu": gleu, "meteor": meteor}[metric]


@dataclass(frozen=True)
class TextSimilarity:
    """A local metric; with a pass_threshold the row passes at a score at least that high."""

    metric: str
    threshold: float | None = None

    @property
    def name(self) -> str:
        return self.metric if self.threshold is None else f"{self.metric}:{self.threshold:g}"

    def grade(self, sample: Sample) -> Grade:
        if (lacking := missing(sample)) is not None:
            return lacking
        try:
            score = min(1.0, max(0.0, metric_function(self.metric)(sample.answer, sample.reference)))
        except WordNetMissing as exc:
            return ungraded(str(exc))
        return Grade(score, None if self.threshold is None else score >= self.threshold)

    def check_available(self) -> None:
        """Raise WordNetMissing for METEOR without WordNet; every other metric runs anywhere."""
        if self.metric == "meteor":
            wordnet()
