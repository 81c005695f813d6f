"""A 100 MB CSV through the bot's upload path: time and peak memory to load, profile and store it.

The file is the shared French wine reviews repeated to 100 MB (about 235,000 rows, 14 columns) in a temporary
folder. Two ways through the same code, on fresh SQLite databases:
- in this process: bot.datasets.load_and_profile (decode, sniff, parse, pandas frame, profile; in a worker
  thread) then store_dataset. This is the path of CSVs up to DISTILL_PROCESS_OVER_MB, and shows what the work
  itself costs in time and memory;
- the bot's path for a file this big: bot.dataset_worker.DatasetWorker sends it to a child process (started for
  the occasion, so its start-up is included), which loads, profiles and stores it.
The baseline, in the same run, is pandas.read_csv of the same file with every column as text: what loading alone
costs with the usual tool. Peak memory is the process's resident high-water mark (VmHWM, reset before each step
through /proc/self/clear_refs; ru_maxrss where that is not available, which cannot be reset); the event loop's
longest stall is measured in this process while each path runs.
Run: python -m bench.ingest
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pandas as pd

from bot.data.datasets import load_and_profile, store_dataset
from bot.prices.table import PriceTable
from bot.runs.worker import DatasetWorker, ingest_csv
from storage import Storage
from storage.datasets import Dataset
from tests.reliability.loop_stalls import StallMeter

ROOT = Path(__file__).resolve().parents[1]
WINE = ROOT.parent / "shared" / "data" / "wine-reviews-france.csv"
TARGET_BYTES = 100_000_000
MAX_BYTES = 100 * 1024 * 1024  # DISTILL_MAX_CSV_MB's default
MAX_ROWS = 500_000  # DISTILL_MAX_ROWS's default
T = TypeVar("T")


def build_csv(path: Path) -> tuple[int, int]:
    """The wine reviews repeated (header once) up to TARGET_BYTES; returns the data rows and the bytes written."""
    header, _, body = WINE.read_bytes().partition(b"\n")
    lines = body.splitlines(keepends=True)
    rows, written = 0, len(header) + 1
    with path.open("wb") as out:
        out.write(header + b"\n")
        while True:
            for line in lines:
                if written + len(line) > TARGET_BYTES:
                    return rows, written
                out.write(line)
                written += len(line)
                rows += 1


def database_mb(folder: Path) -> float:
    """The SQLite database with its WAL, in MB."""
    return sum(p.stat().st_size for p in folder.glob("distill.db*")) / 1e6  # not worker.db: the same again


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Start a new resident high-water mark (Linux: writing 5 to clear_refs); False where that cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def resident_mib() -> float:
    return (_status_kib("VmRSS") or 0) / 1024


def peak_mib() -> float:
    peak = _status_kib("VmHWM")
    return (peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


async def measured(step: Callable[[], Awaitable[T]]) -> tuple[T, float, float]:
    """Run a step; returns its result, its seconds, and the peak resident MiB above what was resident before."""
    reset_peak()
    before = resident_mib()
    started = time.perf_counter()
    result = await step()
    return result, time.perf_counter() - started, peak_mib() - before


async def bench() -> None:
    resettable = reset_peak()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wine-100mb.csv"
        rows, size = await asyncio.to_thread(build_csv, path)
        print(f"{path.name}: {size / 1e6:.1f} MB, {rows:,} rows of the French wine reviews repeated; peak memory "
              f"as {'VmHWM, reset before each step' if resettable else 'ru_maxrss (not resettable here)'}")

        def read_csv() -> pd.DataFrame:
            return pd.read_csv(path, dtype=str, keep_default_na=False)

        frame, pandas_seconds, pandas_mib = await measured(lambda: asyncio.to_thread(read_csv))
        del frame
        data, read_seconds, _ = await measured(lambda: asyncio.to_thread(path.read_bytes))
        # The bot's path first, while this process holds no big objects (as the bot's process does not).
        worker_dataset, worker_seconds, worker_mib, worker_stall = await through_the_worker(Path(folder), data)
        meter = StallMeter()
        meter.start()
        (loaded, profile), load_seconds, load_mib = await measured(lambda: load_and_profile(
            data, filename=path.name, max_bytes=MAX_BYTES, max_rows=MAX_ROWS))
        storage = await Storage.open(Path(folder) / "distill.db")
        try:
            dataset, store_seconds, store_mib = await measured(lambda: store_dataset(storage, loaded, profile))
        finally:
            await storage.close()
        await meter.stop()
        db_mb = await asyncio.to_thread(database_mb, Path(folder))
    for stored in (dataset, worker_dataset):
        if stored.row_count != rows or len(stored.columns) != 14:
            raise SystemExit(f"stored {stored.row_count:,} rows, {len(stored.columns)} columns; expected {rows:,}, 14")
    total = read_seconds + load_seconds + store_seconds
    print(f"  pandas.read_csv (baseline)  {pandas_seconds:6.1f} s  peak +{pandas_mib:7.0f} MiB")
    print(f"  read the file               {read_seconds:6.1f} s")
    print(f"  load and profile            {load_seconds:6.1f} s  peak +{load_mib:7.0f} MiB")
    print(f"  store in SQLite             {store_seconds:6.1f} s  peak +{store_mib:7.0f} MiB  database {db_mb:.0f} MB")
    print(f"  total                       {total:6.1f} s  {rows / total:,.0f} rows/s; longest event-loop stall "
          f"{meter.longest_seconds * 1000:.0f} ms")
    print(f"  the bot's path: a worker process loads, profiles and stores it (its start included): "
          f"{worker_seconds:.1f} s; the bot's own peak +{worker_mib:.0f} MiB; longest event-loop stall "
          f"{worker_stall * 1000:.0f} ms")
    print(f"ingest: file_mb={size / 1e6:.1f} rows={rows} total_seconds={total:.1f} rows_per_s={rows / total:.0f} "
          f"load_profile_seconds={load_seconds:.1f} store_seconds={store_seconds:.1f} "
          f"load_profile_peak_mib={load_mib:.0f} store_peak_mib={store_mib:.0f} "
          f"peak_mib_per_file_mb={max(load_mib, store_mib) / (size / 1e6):.1f} "
          f"read_csv_seconds={pandas_seconds:.1f} read_csv_peak_mib={pandas_mib:.0f} "
          f"seconds_vs_read_csv={(load_seconds + store_seconds) / pandas_seconds:.1f} "
          f"longest_loop_stall_ms={meter.longest_seconds * 1000:.0f} worker_seconds={worker_seconds:.1f} "
          f"worker_bot_peak_mib={worker_mib:.0f} worker_longest_loop_stall_ms={worker_stall * 1000:.0f}")


async def through_the_worker(folder: Path, data: bytes) -> tuple[Dataset, float, float, float]:
    """The upload as the bot handles a file this big: the dataset, seconds, this process's peak MiB, longest stall."""
    storage = await Storage.open(folder / "worker.db")
    worker = DatasetWorker(storage, PriceTable.load(), prices_path=None, process_over_bytes=0)
    meter = StallMeter()
    meter.start()
    try:
        ingested, seconds, peak = await measured(lambda: worker.run(
            len(data), ingest_csv, data, "wine-100mb.csv", MAX_BYTES, MAX_ROWS))
        await meter.stop()
        dataset = await storage.datasets.get(ingested.dataset_id)
        assert dataset is not None
        return dataset, seconds, peak, meter.longest_seconds
    finally:
        await worker.close()
        await storage.close()


def main() -> None:
    asyncio.run(bench())


if __name__ == "__main__":
    main()
