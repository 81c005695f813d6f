"""`cosine`: text_similarity's cosine metric, the cosine similarity of the answer's and the reference's embeddings.

OpenAI's Graders guide: "Computes Cosine similarity between embedded input and reference, using
`text-embedding-3-large`. Only available for evals." Here too the texts are embedded with text-embedding-3-large
through the provider's `/embeddings` endpoint (bot/collect/embeddings.py), priced and within the approved cap, and the
cosine is put on OpenAI's 0-1 scale by clipping a negative cosine to 0 (OpenAI never said how it scales it). With a
pass_threshold a row passes at a cosine at least that high. The score of each answer is stored once, like a judge's
judgment (bot/evaluate/grading.py), so posting the report again costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.graders.base import Grade, ungraded

EMBEDDING_MODEL = "text-embedding-3-large"


def cosine(first: np.ndarray, second: np.ndarray) -> float:
    """cos(a, b) = a.b / (|a| |b|), clipped to 0-1; 0 for a zero vector."""
    norms = float(np.linalg.norm(first) * np.linalg.norm(second))
    return 0.0 if norms == 0 else min(1.0, max(0.0, float(np.dot(first, second)) / norms))


@dataclass(frozen=True)
class Cosine:
    threshold: float | None = None

    @property
    def name(self) -> str:
        return "cosine" if self.threshold is None else f"cosine:{self.threshold:g}"

    def grade(self, stored: str | None) -> Grade:
        """The grade from a stored cosine (its text)."""
        try:
            score = float(stored or "")
        except ValueError:
            return ungraded("no stored cosine for this answer")
        return Grade(score, None if self.threshold is None else score >= self.threshold)
