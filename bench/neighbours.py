"""Nearest-neighbour search for trainer=dicl: numpy's one product against faiss's exact index (IndexFlatIP) and its
HNSW graph, with the eval's few hundred queries over indexes of train-split vectors.

Vectors are 1,536 floats (text-embedding-3-small's size) drawn around 64 centres, so neighbours are real
neighbours; queries are new points around the same centres. HNSW (M=32, efConstruction 64, efSearch 64) is
timed on the smaller indexes only: its build is what makes it lose for a single evaluation.
Run: python -m bench.neighbours
"""

from __future__ import annotations

import time

import faiss
import numpy as np

from bot.train.neighbours import NearestIndex

DIMENSIONS = 1536
QUERIES = 200
K = 8
SIZES = (5_000, 20_000, 50_000)
HNSW_UP_TO = 20_000


def points(rng: np.random.Generator, centres: np.ndarray, count: int) -> np.ndarray:
    chosen = centres[rng.integers(0, len(centres), count)]
    made = chosen + 0.6 * rng.standard_normal((count, DIMENSIONS)).astype(np.float32) / np.sqrt(DIMENSIONS)
    return made / np.linalg.norm(made, axis=1, keepdims=True)


def timed(work, *args):
    started = time.perf_counter()
    result = work(*args)
    return time.perf_counter() - started, result


def hnsw(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    index = faiss.IndexHNSWFlat(DIMENSIONS, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(vectors)
    index.hnsw.efSearch = 64
    return index.search(queries, K)[1]


def main() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((64, DIMENSIONS)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = points(rng, centres, QUERIES)
    summary = []
    for size in SIZES:
        vectors = points(rng, centres, size)
        numpy_seconds, exact = timed(NearestIndex(vectors, numpy_max_scores=10**12).search, queries, K)
        faiss_seconds, flat = timed(NearestIndex(vectors, numpy_max_scores=0).search, queries, K)
        same = bool(np.array_equal(exact, flat))
        line = (f"{size:>7,} vectors x {QUERIES} queries: numpy {numpy_seconds:6.2f} s, faiss flat "
                f"{faiss_seconds:6.2f} s (same neighbours: {same})")
        if size <= HNSW_UP_TO:
            hnsw_seconds, approximate = timed(hnsw, vectors, queries)
            recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(exact, approximate, strict=True)])
            line += f", faiss HNSW build+search {hnsw_seconds:6.2f} s (recall@{K} {recall:.3f})"
        print(line, flush=True)
        summary.append(f"n{size}_numpy_s: {numpy_seconds:.2f} n{size}_faiss_flat_s: {faiss_seconds:.2f}")
    print("neighbours: " + " ".join(summary))


if __name__ == "__main__":
    main()
