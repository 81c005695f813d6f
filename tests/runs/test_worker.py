"""Big datasets' work in the child process: the same results as in a thread, errors that keep their message,
and a child that dies is replaced with a clear message instead of a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.core.errors import DatasetError, SpecError
from bot.examples import TICKETS_CSV
from bot.prices.table import PriceTable
from bot.runs.worker import DatasetWorker, check_dataset, ingest_csv, prepare_dataset, quote_dataset
from bot.spec.settings import RunSpec
from storage import Storage
from tests.waiting import pause

ROOT = Path(__file__).resolve().parents[2]
SPEC = RunSpec(label="category", train_size=60, eval_size=30, trainer="openai", student="gpt-4o-mini-2024-07-18")
LIMITS = (10 * 1024 * 1024, 10_000)  # max bytes, max rows


@pytest.fixture
async def storage(tmp_path):
    storage = await Storage.open(tmp_path / "distill.db")
    yield storage
    await storage.close()


@pytest.fixture
async def workers(storage):
    """(in this process, in the child process) over the same database."""
    prices = PriceTable.load()
    here = DatasetWorker(storage, prices, prices_path=None, process_over_bytes=10**12)
    child = DatasetWorker(storage, prices, prices_path=None, process_over_bytes=0)
    yield here, child
    await child.close()


async def test_the_child_stores_the_upload_where_the_bot_reads_it_and_quotes_it_as_a_thread_would(storage, workers):
    here, child = workers
    data = TICKETS_CSV.read_bytes()
    ingested = await child.run(len(data), ingest_csv, data, "it-tickets.csv", *LIMITS)
    assert child._pool is not None  # the work went to the child process
    dataset = await storage.datasets.get(ingested.dataset_id)
    assert dataset is not None and dataset.row_count == 480 and not ingested.seen_before
    again = await here.run(len(data), ingest_csv, data, "it-tickets.csv", *LIMITS)
    assert (again.dataset_id, again.seen_before) == (ingested.dataset_id, True)

    in_child = await child.run(1, quote_dataset, dataset.id, SPEC)
    in_thread = await here.run(1, quote_dataset, dataset.id, SPEC)
    assert in_child.quote_hash == in_thread.quote_hash and in_child.to_dict() == in_thread.to_dict()
    prepared = await child.run(1, prepare_dataset, dataset.id, SPEC)
    assert prepared == await here.run(1, prepare_dataset, dataset.id, SPEC)
    assert (len(prepared.train), len(prepared.eval)) == (60, 30)


async def test_errors_raised_in_the_child_reach_the_bot_with_their_message(storage, workers):
    _, child = workers
    with pytest.raises(DatasetError, match="empty"):
        await child.run(1, ingest_csv, b"", "empty.csv", *LIMITS)
    data = TICKETS_CSV.read_bytes()
    ingested = await child.run(len(data), ingest_csv, data, "it-tickets.csv", *LIMITS)
    with pytest.raises(SpecError, match="colour") as raised:
        await child.run(1, check_dataset, ingested.dataset_id, RunSpec(label="colour"))
    assert "category" in str(raised.value)  # the message lists the columns there are


async def test_a_child_that_dies_is_reported_and_the_next_call_starts_a_new_one(storage, workers):
    _, child = workers
    data = TICKETS_CSV.read_bytes()
    ingested = await child.run(len(data), ingest_csv, data, "it-tickets.csv", *LIMITS)
    [pid] = list(child._pool._processes)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(DatasetError, match="worker process that handles big datasets stopped"):
        for _ in range(50):  # the pool notices the death as soon as it looks; until then a call may still work
            await child.run(1, check_dataset, ingested.dataset_id, SPEC)
    await child.run(1, check_dataset, ingested.dataset_id, SPEC)
    assert list(child._pool._processes) != [pid]


def test_the_child_ends_when_the_bot_is_killed(tmp_path):
    script = tmp_path / "the_bot.py"
    script.write_text(f"""
import asyncio

from bot.runs.worker import DatasetWorker, check_dataset
from bot.core.errors import DatasetError
from bot.prices.table import PriceTable
from storage import Storage


async def main():
    storage = await Storage.open({str(tmp_path / "distill.db")!r})
    worker = DatasetWorker(storage, PriceTable.load(), prices_path=None, process_over_bytes=0)
    try:
        await worker.run(1, check_dataset, 1, None)
    except DatasetError:
        pass  # no dataset 1: the point is that the child now exists
    print(*worker._pool._processes, flush=True)
    await asyncio.sleep(60)


if __name__ == "__main__":
    asyncio.run(main())
""")
    bot = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        child = int(bot.stdout.readline())
        os.kill(child, 0)  # alive
    finally:
        bot.kill()  # SIGKILL: no shutdown code runs
        bot.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        pause(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail(f"the worker process {child} outlived the bot")
