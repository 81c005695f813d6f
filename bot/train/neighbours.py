"""The k nearest stored vectors of each query, by cosine: numpy while the scores fit in memory, faiss beyond.

The bot searches once per evaluation, with the eval rows as queries (hundreds, a few thousand at most), so
exact search is both right and fastest: an approximate index (faiss HNSW, hnswlib) pays for its build only over
many more queries than that (`python -m bench.neighbours`: over 20,000 vectors of 1,536 floats, 200 queries took
0.6 s with numpy, 1.6 s with faiss's exact index, 20 s with HNSW's build). numpy multiplies the queries by the
whole index in one product, which holds queries x vectors scores in memory; past NUMPY_MAX_SCORES that is too
much, and faiss's exact inner-product index (IndexFlatIP, from the faiss-cpu wheel: no compiler needed, unlike
hnswlib's sdist) searches in blocks, keeping only each query's best k. Vectors are normalised first, so the inner
product is the cosine. Equal scores are ordered by position, so the same index and queries give the same
neighbours.
"""

from __future__ import annotations

import numpy as np

# 25M float32 scores: 100 MB, for example 2,000 queries over 12,500 vectors.
NUMPY_MAX_SCORES = 25_000_000


def _unit(vectors: np.ndarray) -> np.ndarray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


class NearestIndex:
    """Exact cosine search over a fixed set of vectors (one per row of `vectors`)."""

    def __init__(self, vectors: np.ndarray, numpy_max_scores: int = NUMPY_MAX_SCORES) -> None:
        self.vectors = _unit(vectors)
        self.numpy_max_scores = numpy_max_scores

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """For each query, the positions of its k nearest vectors, nearest first (fewer when the index is
        smaller than k). CPU work: callers on the event loop use a thread."""
        k = min(k, len(self.vectors))
        queries = _unit(queries)
        if k == 0 or len(queries) == 0:
            return np.zeros((len(queries), 0), dtype=np.int64)
        if len(queries) * len(self.vectors) <= self.numpy_max_scores:
            scores = queries @ self.vectors.T
        else:
            import faiss  # only for large searches: its import is slow and heavy

            index = faiss.IndexFlatIP(self.vectors.shape[1])
            index.add(self.vectors)
            # A margin past k, so that positions tied with the k-th are all seen before the tie is broken.
            found_scores, found = index.search(queries, min(len(self.vectors), 2 * k))
            return np.array([_ordered(s, f, k) for s, f in zip(found_scores, found, strict=True)], dtype=np.int64)
        return np.array([_ordered(row, np.arange(len(row)), k) for row in scores], dtype=np.int64)


def _ordered(scores: np.ndarray, positions: np.ndarray, k: int) -> np.ndarray:
    """The k best positions by score, equal scores by position."""
    if len(scores) > k:  # only those at least as good as the k-th best can be among them
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= kth
        scores, positions = scores[keep], positions[keep]
    order = np.lexsort((positions, -scores))
    return positions[order[:k]]
