"""The collection engine against a cookbook-style loop, under the same requests- and tokens-per-minute limits.

Both collect the same 2,000 support-ticket prompts from the sandbox OpenAI server (gpt-4o, structured
outputs). The baseline is written like OpenAI's distillation cookbook: a ThreadPoolExecutor calling the
synchronous client from a default ThreadPoolExecutor(), no rate control (the SDK's default two retries are
all it has). Time is compressed: the
sandbox's and the limiter's "minute" last MINUTE_SECONDS, so a run that would take minutes at real limits
takes seconds; every figure is relative to that minute.

Printed per method: seconds, rows answered and lost, throughput as a fraction of what the limits allow
(1.0 = as fast as the limits permit after the first minute's allowance), 429 answers, and the cost. The
cookbook loop runs twice: with the default thread pool, and with 32 threads to show what more concurrency
without rate control does. Then
the engine alone at 10x the rows, to show how cost and time grow. Run: python -m bench.collect
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from openai import OpenAI

from bot.collect.engine import Collector, CollectTask
from bot.collect.ratelimit import RateLimiters
from bot.core.provider import ChatProvider
from bot.costs.budget import Budget
from bot.prices.table import PriceTable
from sandbox.openai import OpenAISandbox
from storage import Storage
from tests.collect.helpers import make_task

MODEL = "gpt-4o"
ROWS = 2_000
MINUTE_SECONDS = 6.0
RPM, TPM = 1_200, 24_000  # per compressed minute
MANY_THREADS = 32  # the cookbook loop with its thread pool turned up, still without rate control
LATENCY_SECONDS = 0.05
ENGINE_CONCURRENCY = 16


@dataclass
class Result:
    name: str
    rows: int
    seconds: float
    answered: int
    rate_limited: int
    cost_micro_usd: int

    def fraction_of_limit(self, per_request_tokens: int) -> float:
        """For the rows answered: ideal time (set by requests or tokens, after the first minute's allowance)
        over actual time."""
        by_requests = max(0, self.answered - RPM) / RPM * MINUTE_SECONDS
        by_tokens = max(0, self.answered * per_request_tokens - TPM) / TPM * MINUTE_SECONDS
        return max(by_requests, by_tokens) / self.seconds


def cookbook_baseline(base_url: str, task: CollectTask, threads: int | None) -> int:
    """What the cookbook does: threads calling the sync client; a row whose call raises is lost."""
    client = OpenAI(base_url=base_url, api_key="sk-sandbox")

    def ask(request) -> bool:
        try:
            client.chat.completions.create(model=MODEL, messages=request.messages,
                                           response_format=task.response_format)
            return True
        except Exception:
            return False

    # The cookbook's process_dataframe leaves max_workers at its default (threads=None).
    with ThreadPoolExecutor(max_workers=threads) as pool:
        answered = sum(pool.map(ask, task.requests))
    client.close()
    return answered


async def run_engine(sandbox: OpenAISandbox, rows: int, folder: Path) -> Result:
    storage = await Storage.open(folder / f"engine-{rows}.db")
    run = await storage.runs.create(name="bench", channel_id="C1", requester="U1", spec={})
    task = make_task(run.id, rows, model=MODEL)
    provider = ChatProvider(base_url=sandbox.url, api_key="sk-sandbox")
    limiters = RateLimiters(requests_per_minute=RPM, tokens_per_minute=TPM, window_seconds=MINUTE_SECONDS)
    collector = Collector(storage, provider, PriceTable.load(), limiters, concurrency=ENGINE_CONCURRENCY)
    sandbox.reset()
    started = time.monotonic()
    outcome = await collector.collect(task, Budget(cap_micro_usd=None))
    seconds = time.monotonic() - started
    await provider.close()
    await storage.close()
    return Result("engine", rows, seconds, outcome.answered + outcome.invalid, _rate_limited(sandbox),
                  outcome.spend_micro_usd)


async def run_baseline(sandbox: OpenAISandbox, rows: int, threads: int | None, name: str) -> Result:
    task = make_task(1, rows, model=MODEL)
    sandbox.reset()
    started = time.monotonic()
    answered = await asyncio.to_thread(cookbook_baseline, sandbox.url, task, threads)
    seconds = time.monotonic() - started
    price = PriceTable.load().get(MODEL)
    cost = sum(price.cost_micro_usd(r.usage["prompt_tokens"], r.usage["completion_tokens"])
               for r in sandbox.requests if r.paid)
    return Result(name, rows, seconds, answered, _rate_limited(sandbox), cost)


def _rate_limited(sandbox: OpenAISandbox) -> int:
    return sum(1 for record in sandbox.requests if record.status == 429)


def _line(result: Result, per_request_tokens: int) -> str:
    fraction = result.fraction_of_limit(per_request_tokens)
    return (f"{result.name:10s} rows={result.rows:6,d} seconds={result.seconds:7.1f} answered={result.answered:6,d} "
            f"lost={result.rows - result.answered:5,d} fraction_of_limit={fraction:.2f} "
            f"429s={result.rate_limited:5,d} cost=${result.cost_micro_usd / 1e6:,.4f}")


async def bench() -> None:
    limits = {MODEL: RPM}, {MODEL: TPM}
    async with OpenAISandbox(rpm_limits=limits[0], tpm_limits=limits[1], rate_window_seconds=MINUTE_SECONDS,
                             latency_seconds=LATENCY_SECONDS) as sandbox:
        sample = make_task(1, 1, model=MODEL)
        per_request = sample.requests[0].prompt_tokens + sample.max_completion_tokens
        print(f"limits: {RPM} requests and {TPM:,} tokens per minute, one minute = {MINUTE_SECONDS:g} s; "
              f"{LATENCY_SECONDS:g} s per answer; engine {ENGINE_CONCURRENCY} in flight, cookbook "
              f"ThreadPoolExecutor() ({min(32, (os.cpu_count() or 1) + 4)} threads here); "
              f"~{per_request} tokens per request")
        with tempfile.TemporaryDirectory() as folder:
            engine = await run_engine(sandbox, ROWS, Path(folder))
            print(_line(engine, per_request))
            baseline = await run_baseline(sandbox, ROWS, None, "cookbook")
            print(_line(baseline, per_request))
            crowded = await run_baseline(sandbox, ROWS, MANY_THREADS, f"cookbook{MANY_THREADS}")
            print(_line(crowded, per_request))
            tenfold = await run_engine(sandbox, ROWS * 10, Path(folder))
            print(_line(tenfold, per_request))
        speedup = (engine.answered / engine.seconds) / max(baseline.answered / baseline.seconds, 1e-9)
        print(f"cost at 10x rows / cost at 1x: {tenfold.cost_micro_usd / engine.cost_micro_usd:.2f}; "
              f"time at 10x / time at 1x: {tenfold.seconds / engine.seconds:.2f}")
        print(f"collect: engine_fraction_of_limit={engine.fraction_of_limit(per_request):.2f} "
              f"cookbook_fraction_of_limit={baseline.fraction_of_limit(per_request):.2f} "
              f"engine_429s={engine.rate_limited} cookbook_429s={baseline.rate_limited} "
              f"cookbook_rows_lost={baseline.rows - baseline.answered} "
              f"cookbook{MANY_THREADS}_fraction_of_limit={crowded.fraction_of_limit(per_request):.2f} "
              f"cookbook{MANY_THREADS}_429s={crowded.rate_limited} "
              f"cookbook{MANY_THREADS}_rows_lost={crowded.rows - crowded.answered} "
              f"answered_rows_per_second_ratio={speedup:.2f}")


def main() -> None:
    asyncio.run(bench())


if __name__ == "__main__":
    main()
