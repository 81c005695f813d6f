"""Slack's 3-second ack while the bot is busy: ack latency of signed slash commands, idle and under load.

The bot runs as `distill-bot run` does (HTTP, in a child process: tests/reliability/bot_process.py) against the
sandbox Slack and OpenAI servers in this process. Two runs are prepared through Slack first: `tickets`, 5,000
generated support tickets, and `wine`, the shared French wine reviews repeated to 130,000 rows (each copy's
description marked, or the splits would drop the copies as duplicates). Then 200 signed `/distill status` commands
are sent to the idle bot (the baseline), and 200 more while `tickets` collects 5,000 answers (sandbox latency 20 ms)
and `wine` is estimated: 130,000 prompts counted. Printed: p50/p99 ack latency of each phase and the longest
event-loop stall the child measured in each (a ticker that sleeps 5 ms and records how late it wakes).
Targets: p99 well under 3 s, stalls under 100 ms. Run: python -m bench.responsiveness
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bot.examples.generate_tickets import make_rows
from sandbox.openai import OpenAISandbox
from sandbox.slack import SlackDriver, SlackSandbox
from tests.reliability.crash import World, until

ROOT = Path(__file__).resolve().parents[1]
WINE = ROOT.parent / "shared" / "data" / "wine-reviews-france.csv"
COMMANDS = 200
COMMAND_GAP_SECONDS = 0.05  # one command every 50 ms: 200 over 10 s
TICKET_ROWS, TRAIN, EVAL = 5_200, 4_800, 100  # teacher on train and eval, base student on eval: 5,000 requests
WINE_ROWS, WINE_TRAIN, WINE_EVAL = 130_000, 125_000, 5_000
LATENCY_SECONDS = 0.02
WINE_TEMPLATE = ("Wine by {winery} from {province}, {country} ({region_1}): {description} Reviewed by {taster_name}, "
                 "{points} points, price {price}. Varieties: {choices}. Which grape variety is it?")
SETUP_SECONDS = 600.0
FINISHED = ":white_check_mark: Collection finished"


def tickets_csv(count: int) -> bytes:
    rows = make_rows(count=count)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def wine_csv(count: int) -> bytes:
    """The French wine reviews repeated to `count` rows, each copy's description marked so no two rows match."""
    with WINE.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames or [], list(reader)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for number, row in enumerate(itertools.islice(itertools.cycle(rows), count)):
        writer.writerow({**row, "description": f"{row['description']} (copy {number // len(rows)})"})
    return buffer.getvalue().encode()


@dataclass
class Phase:
    name: str
    latencies: list[float]
    started: float  # time.time()
    ended: float
    longest_stall: float = 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def line(self) -> str:
        return (f"{self.name:5s} {len(self.latencies)} commands  p50 {self.percentile(0.5) * 1000:7.1f} ms  "
                f"p99 {self.percentile(0.99) * 1000:7.1f} ms  max {max(self.latencies) * 1000:7.1f} ms  "
                f"longest loop stall {self.longest_stall * 1000:6.1f} ms")


async def send_commands(driver: SlackDriver, name: str, text: str) -> Phase:
    """COMMANDS signed slash commands, one every COMMAND_GAP_SECONDS, each timed from send to Slack's answer."""

    async def one() -> float:
        started = time.perf_counter()
        reply = await driver.slash_command(user="bob", channel="general", text=text)
        if reply.status != 200:
            raise RuntimeError(f"the bot answered HTTP {reply.status} to /distill {text}")
        return time.perf_counter() - started

    started = time.time()
    pending = []
    for _ in range(COMMANDS):
        pending.append(asyncio.create_task(one()))
        await asyncio.sleep(COMMAND_GAP_SECONDS)
    latencies = await asyncio.gather(*pending)
    return Phase(name, list(latencies), started, time.time())


async def said_in_thread(world: World, name: str, start: str) -> None:
    """Wait until the run's thread has a message starting with `start`; stop at once if alice was refused."""

    def refusal() -> str | None:
        texts = [str(e.message.get("text", "")) for e in world.slack.ephemerals("alice")]
        return next((t for t in texts if t.startswith((":no_entry:", ":x:"))), None)

    await until(lambda: world.said(name, start) > 0 or refusal() is not None, within=SETUP_SECONDS,
                what=f"'{start}' in the thread of {name}")
    if refusal():
        raise SystemExit(f"the bot refused: {refusal()}")


async def prepare_run(world: World, driver: SlackDriver, name: str, data: bytes, settings: str) -> float:
    """/distill new, the CSV shared in its thread, /distill set; returns the seconds the bot took to load the CSV."""
    await driver.slash_command(user="alice", channel="general", text=f"new {name}")
    await until(lambda: bool(world.thread(name)), what=f"the card of {name}")
    started = time.monotonic()
    await driver.share_file(data, user="alice", channel="general", filename=f"{name}.csv",
                            thread_ts=world.thread(name)[0]["ts"])
    await said_in_thread(world, name, ":white_check_mark: Loaded")
    loaded = time.monotonic() - started
    await driver.slash_command(user="alice", channel="general", text=f"set {name} {settings}")
    await said_in_thread(world, name, "<@U0ALICE> changed")
    return loaded


async def bench() -> None:
    async with OpenAISandbox(latency_seconds=LATENCY_SECONDS) as openai:
        slack = SlackSandbox()
        await slack.start()
        try:
            with tempfile.TemporaryDirectory() as folder:
                world = World.create(slack, openai, Path(folder), DISTILL_AUTO_APPROVE_USD="1000",
                                     DISTILL_RPM="1000000", DISTILL_TPM="1000000000", LOG_LEVEL="WARNING")
                await measure(world)
        finally:
            await slack.stop()


async def measure(world: World) -> None:
    tickets, wine = tickets_csv(TICKET_ROWS), await asyncio.to_thread(wine_csv, WINE_ROWS)
    bot = world.bot()
    driver = SlackDriver(world.slack, deliver=await bot.start())
    try:
        await prepare_run(world, driver, "tickets", tickets, f"label=category train={TRAIN} eval={EVAL}")
        wine_seconds = await prepare_run(world, driver, "wine", wine, f'label=variety train={WINE_TRAIN} '
                                         f'eval={WINE_EVAL} template="{WINE_TEMPLATE}"')
        print(f"wine.csv: {len(wine) / 1e6:.1f} MB, {WINE_ROWS:,} rows, downloaded, loaded, profiled and stored "
              f"by the bot in {wine_seconds:.1f} s", flush=True)
        idle = await send_commands(driver, "idle", "status tickets")

        busy_from = time.monotonic()
        await driver.slash_command(user="alice", channel="general", text="collect tickets")
        await driver.slash_command(user="alice", channel="general", text="estimate wine")
        busy = await send_commands(driver, "busy", "status tickets")
        collecting_at_end = world.said("tickets", FINISHED) == 0
        await said_in_thread(world, "wine", ":abacus: *Estimate for wine*")
        estimated = time.monotonic() - busy_from
        await said_in_thread(world, "tickets", FINISHED)
        collected = time.monotonic() - busy_from
        meter = await bot.stop()
    finally:
        await bot.kill()
    answered = world.query("SELECT COUNT(*) FROM completions WHERE status = 'ok'")[0][0]
    for phase in (idle, busy):
        phase.longest_stall = meter.longest_between(phase.started, phase.ended)
    print(f"collection: {answered:,} answers in {collected:.1f} s ({answered / collected:,.0f}/s); estimate of "
          f"{WINE_ROWS:,} rows posted after {estimated:.1f} s; still collecting after the last command: "
          f"{'yes' if collecting_at_end else 'no'}")
    print(idle.line())
    print(busy.line())
    print(f"longest loop stall over the whole run (CSV loads included): {meter.longest_seconds * 1000:.1f} ms")
    print(f"responsiveness: idle_p50_ms={idle.percentile(0.5) * 1000:.1f} "
          f"idle_p99_ms={idle.percentile(0.99) * 1000:.1f} busy_p50_ms={busy.percentile(0.5) * 1000:.1f} "
          f"busy_p99_ms={busy.percentile(0.99) * 1000:.1f} "
          f"p99_ratio={busy.percentile(0.99) / idle.percentile(0.99):.2f} "
          f"idle_longest_stall_ms={idle.longest_stall * 1000:.1f} "
          f"busy_longest_stall_ms={busy.longest_stall * 1000:.1f} collected_rows={answered} "
          f"collect_seconds={collected:.1f} estimate_rows={WINE_ROWS} estimate_seconds={estimated:.1f} "
          f"commands={COMMANDS}")


def main() -> None:
    asyncio.run(bench())


if __name__ == "__main__":
    main()
