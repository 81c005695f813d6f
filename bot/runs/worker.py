"""Dataset-sized CPU work for big datasets in a child process, so the bot's event loop never waits on it.

Loading a CSV of a hundred thousand rows, rendering and splitting its prompts and counting their tokens take
seconds of CPU. In a worker thread they still stall the event loop: long pandas calls and CPython's full
garbage collections over the rows hold the GIL for 100-250 ms at a time (bench/responsiveness.py measured it).
So a dataset over DISTILL_PROCESS_OVER_MB goes to one child process (started with `spawn` on first use and
kept for the next call). The child opens the same SQLite file, runs the same functions below and sends back
only what the bot needs: a dataset id, a quote, the split rows. Smaller datasets stay in a thread, where
starting a process would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.core.errors import DatasetError
from bot.costs.quotes import Billing, Quote, estimate
from bot.data.datasets import load_and_profile, store_dataset
from bot.data.splits import EvalFile, PreparedRun, prepare
from bot.prices.reasoning import ReasoningExpectation
from bot.prices.table import PriceTable
from bot.spec.settings import RunSpec
from storage import Storage

log = logging.getLogger(__name__)

T = TypeVar("T")
PARENT_CHECK_SECONDS = 1.0
Work = Callable[..., Awaitable[T]]  # work(storage, prices, *args): runs in this process or in the child


@dataclass(frozen=True)
class Ingested:
    dataset_id: int
    warnings: list[str]
    seen_before: bool  # the same bytes were uploaded before; their stored copy is used


async def ingest_csv(storage: Storage, prices: PriceTable, data: bytes, filename: str, max_bytes: int,
                     max_rows: int) -> Ingested:
    """Load, profile and store a CSV (DatasetError names what is wrong with it)."""
    loaded, profile = await load_and_profile(data, filename=filename, max_bytes=max_bytes, max_rows=max_rows)
    seen_before = await storage.datasets.get_by_sha256(loaded.sha256) is not None
    dataset = await store_dataset(storage, loaded, profile)
    return Ingested(dataset.id, list(loaded.warnings), seen_before)


async def prepare_dataset(storage: Storage, prices: PriceTable, dataset_id: int, spec: RunSpec,
                          eval_dataset_id: int | None = None) -> PreparedRun:
    """The dataset's rows rendered, filtered, deduplicated and split for `spec` (the eval split: the rows of
    `eval_dataset_id` when given)."""
    dataset = await storage.datasets.get(dataset_id)
    if dataset is None:
        raise DatasetError(f"Dataset {dataset_id} is not in the database any more; upload the CSV again.")
    rows = await storage.datasets.rows(dataset_id)
    eval_file = None
    if eval_dataset_id is not None:
        held = await storage.datasets.get(eval_dataset_id)
        if held is None:
            raise DatasetError(f"Eval file {eval_dataset_id} is not in the database any more; share it again.")
        eval_file = EvalFile(held.filename, held.columns, await storage.datasets.rows(eval_dataset_id))
    return await asyncio.to_thread(prepare, spec, dataset.columns, rows, eval_file)


async def check_dataset(storage: Storage, prices: PriceTable, dataset_id: int, spec: RunSpec,
                        eval_dataset_id: int | None = None) -> None:
    """Raise the SpecError or DatasetError that says why `spec` does not fit the dataset, if it does not."""
    await prepare_dataset(storage, prices, dataset_id, spec, eval_dataset_id)


async def quote_dataset(storage: Storage, prices: PriceTable, dataset_id: int, spec: RunSpec,
                        billing: Billing | None = None, expected: Sequence[ReasoningExpectation] = (),
                        teacher_imported: bool = False, eval_dataset_id: int | None = None) -> Quote:
    """The exact cost of every stage of `spec` on the dataset (`billing`: how its trainer bills, bot.costs;
    `expected`: what pilots measured of reasoning; `teacher_imported`: the data carries the teacher's answers)."""
    prepared = await prepare_dataset(storage, prices, dataset_id, spec, eval_dataset_id)
    return await asyncio.to_thread(estimate, prepared, spec, prices, billing, expected, teacher_imported)


class DatasetWorker:
    """Runs a dataset's work here (small datasets) or in the child process (big ones)."""

    def __init__(self, storage: Storage, prices: PriceTable, *, prices_path: Path | None,
                 process_over_bytes: int) -> None:
        self.storage = storage
        self.prices = prices
        self.prices_path = prices_path
        self.process_over_bytes = process_over_bytes
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, size_bytes: int, work: Work[T], *args: Any) -> T:
        """`work(storage, prices, *args)` for a dataset (or upload) of `size_bytes`."""
        if size_bytes <= self.process_over_bytes:
            return await work(self.storage, self.prices, *args)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_exit_with_parent, initargs=(os.getpid(),))
        call = functools.partial(_in_child, str(self.storage.db.path), self.storage.db.now, self.prices_path, work,
                                 args)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except BrokenProcessPool:
            log.warning("The dataset worker process stopped during %s; a new one starts on the next call",
                        work.__name__)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            raise DatasetError(
                "The worker process that handles big datasets stopped before it finished (most often: the "
                "machine ran out of memory). Nothing was lost; try again, or use a smaller file."
            ) from None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


def _exit_with_parent(parent_pid: int) -> None:
    """In the child: end when the bot's process is gone. A SIGKILL leaves no one to shut the pool down, and the
    child would wait for work forever (it holds both ends of its own task pipe, so it never sees an EOF)."""

    def watch() -> None:
        # Never set: its timed wait paces the checks, and unlike time.sleep it works under libfaketime (the suite is
        # also run with the date moved).
        tick = threading.Event()
        while os.getppid() == parent_pid:
            tick.wait(PARENT_CHECK_SECONDS)
        os._exit(0)  # an unfinished write transaction is rolled back by SQLite, as after any crash

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _in_child(db_path: str, now: Callable[[], str], prices_path: Path | None, work: Work[T],
              args: tuple[Any, ...]) -> T:
    return asyncio.run(_with_storage(db_path, now, prices_path, work, args))


async def _with_storage(db_path: str, now: Callable[[], str], prices_path: Path | None, work: Work[T],
                        args: tuple[Any, ...]) -> T:
    storage = await Storage.open(db_path, now=now)  # the bot's clock (bot/core/clock.py), sent over
    try:
        return await work(storage, _child_prices(prices_path), *args)
    finally:
        await storage.close()


@functools.cache
def _child_prices(prices_path: Path | None) -> PriceTable:
    return PriceTable.load(prices_path)
