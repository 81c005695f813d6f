"""Speed of the exact token estimator against the naive loop (render each prompt, encode it).

Rows are the shared French wine reviews, repeated to 10,000 and 130,000 rows; the prompt is the OpenAI
wine-distillation cookbook's template with its 76 varieties. Both methods start from the rendered field
values (what bot.splits.prepare hands the estimator) and must agree on every row.
Run: python -m bench.estimate
"""

from __future__ import annotations

import itertools
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bot.data.datasets import load_csv
from bot.prompts.counting import PromptCounter
from bot.prompts.encodings import get_encoding
from bot.prompts.templates import Template, cell_text

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TEMPLATE = ROOT / "tests" / "fixtures" / "cookbook_wine_template.txt"
SIZES = (10_000, 130_000)


def cookbook_choices() -> list[str]:
    """French varieties with at least 5 rows in the whole France data, in order of first appearance."""
    loaded = load_csv((DATA / "wine-reviews-france-country-points-price-variety.csv").read_bytes(),
                      filename="france-4-columns.csv", max_bytes=1 << 30, max_rows=10**7)
    counts = loaded.frame["variety"].value_counts()
    return [v for v in loaded.frame["variety"].unique() if counts[v] >= 5]


def estimator(template: Template, columns: list[list[str]]) -> np.ndarray:
    return PromptCounter(template, get_encoding("o200k_base")).count(columns, len(columns[0]))


def naive(template: Template, columns: list[list[str]]) -> np.ndarray:
    encoding = get_encoding("o200k_base")
    return np.array([len(encoding.encode(template.render(values))) for values in zip(*columns, strict=True)])


def timed(method: Callable, *args) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = method(*args)
    return time.perf_counter() - start, result


def peak_mib(method: Callable, *args) -> float:
    """Peak Python heap (numpy included) while the method runs; measured in a separate, slower run."""
    tracemalloc.start()
    method(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / (1024 * 1024)


def threads_check(texts: list[str]) -> str:
    """Why the counter encodes on one thread: rows/s of encoding distinct texts with 1 and 2 threads."""
    encoding = get_encoding("o200k_base")

    def work(chunk: list[str]) -> list[int]:
        return [len(encoding.encode_ordinary(t)) for t in chunk]

    one, _ = timed(work, texts)
    with ThreadPoolExecutor(2) as pool:
        two, _ = timed(lambda: list(pool.map(work, [texts[0::2], texts[1::2]])))
    return f"encode distinct texts: 1 thread {len(texts) / one:,.0f}/s, 2 threads {len(texts) / two:,.0f}/s"


def main() -> None:
    loaded = load_csv((DATA / "wine-reviews-france.csv").read_bytes(), filename="wine-reviews-france.csv",
                      max_bytes=1 << 30, max_rows=10**7)
    french = list(loaded.rows())
    template = Template.parse(TEMPLATE.read_text(encoding="utf-8")).bind_choices(cookbook_choices())
    get_encoding("o200k_base")  # load the vocabulary outside the timings
    print(f"{len(french):,} French rows repeated; template with {len(template.fields)} fields")
    summary = {}
    for size in SIZES:
        rows = list(itertools.islice(itertools.cycle(french), size))
        columns = [[cell_text(row.get(name)) for row in rows] for name in template.fields]
        fast_seconds, fast = timed(estimator, template, columns)
        slow_seconds, slow = timed(naive, template, columns)
        if not np.array_equal(fast, slow):
            raise SystemExit(f"estimator and naive loop disagree on {int((fast != slow).sum())} rows")
        fast_mib, slow_mib = peak_mib(estimator, template, columns), peak_mib(naive, template, columns)
        ratio = slow_seconds / fast_seconds
        print(f"{size:>8,} rows, {int(fast.sum()):,} tokens, equal on every row")
        print(f"  estimator {size / fast_seconds:>12,.0f} rows/s  peak {fast_mib:7.1f} MiB")
        print(f"  naive     {size / slow_seconds:>12,.0f} rows/s  peak {slow_mib:7.1f} MiB")
        print(f"  ratio     {ratio:>12.1f}x")
        summary[size] = (size / fast_seconds, size / slow_seconds, ratio, fast_mib, slow_mib)
    print(threads_check([row["description"] or "" for row in french]))
    fast_rate, slow_rate, ratio, fast_mib, slow_mib = summary[SIZES[-1]]
    print(f"estimate_rows_per_s: {fast_rate:.0f} naive_rows_per_s: {slow_rate:.0f} speedup: {ratio:.1f} "
          f"estimator_peak_mib: {fast_mib:.1f} naive_peak_mib: {slow_mib:.1f} rows: {SIZES[-1]}")


if __name__ == "__main__":
    main()
