"""The statistics of the eval table: binomial intervals, the paired exact test, F1 and percentiles.

Plain Python on small integer counts (an eval split is hundreds of rows), exact where it can be.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

Z_95 = 1.959963984540054  # the standard normal quantile for a two-sided 95% interval


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson_interval(successes: int, n: int, z: float = Z_95) -> Interval | None:
    """Wilson's score interval for a binomial proportion (Wilson 1927); None when there are no trials."""
    if n == 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact_p(first_only: int, second_only: int) -> float:
    """Two-sided exact McNemar test: a binomial test with p = 1/2 on the discordant pairs."""
    n = first_only + second_only
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(first_only, second_only) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def f1_by_label(gold: Sequence[str], predicted: Sequence[str | None]) -> dict[str, float]:
    """F1 of each label among the gold and predicted ones; a missing prediction is a miss, never a label."""
    labels = sorted(set(gold) | {p for p in predicted if p is not None})
    hits, guesses, actual = Counter(), Counter(), Counter(gold)
    for truth, guess in zip(gold, predicted, strict=True):
        if guess is not None:
            guesses[guess] += 1
            hits[guess] += guess == truth
    return {label: 2 * hits[label] / (guesses[label] + actual[label]) for label in labels}


def nearest_rank(values: Sequence[int], percent: float) -> int | None:
    """The nearest-rank percentile: an observed value, the smallest with `percent`% of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20260  # fixed: the same scores give the same intervals every time


def bootstrap_mean_interval(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                            seed: int = BOOTSTRAP_SEED) -> Interval | None:
    """A 95% percentile-bootstrap interval of the mean (Efron 1979), seeded; None without values."""
    if not values:
        return None
    import numpy as np

    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return Interval(float(low), float(high))


@dataclass(frozen=True)
class PairedDifference:
    """Mean of first - second over the same rows, with a paired-bootstrap 95% interval and two-sided p-value."""

    difference: float
    interval: Interval
    p_value: float


def paired_bootstrap(first: Sequence[float], second: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> PairedDifference | None:
    """Rows are resampled together, so each model keeps its own score on each row. The p-value is twice the share of
    resampled mean differences on the far side of zero (at least 1/resamples), capped at 1."""
    if not first or len(first) != len(second):
        return None
    import numpy as np

    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), size=(resamples, len(differences)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    observed = float(differences.mean())
    if not differences.any():
        return PairedDifference(0.0, Interval(0.0, 0.0), 1.0)
    tail = min(float((means <= 0).mean()), float((means >= 0).mean()))
    return PairedDifference(observed, Interval(float(low), float(high)), min(1.0, max(2 * tail, 1 / resamples)))
