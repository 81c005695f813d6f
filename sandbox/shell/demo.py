"""`distill-bot demo`: the bundled script (demo.distill) run in the shell on the bundled IT-tickets CSV.

Each demo gets a new temporary folder for its database, data folder (the chart) and transcript, and ignores
the environment's DISTILL_* settings, so it runs the same way every time and twice in a row. Sandbox
fine-tuning jobs run 600 times faster than real time and the scheduler polls every 0.2 s, which keeps the
whole distillation to about a minute on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from bot.core.config import TRAINERS, Settings
from bot.examples import TICKETS_CSV
from sandbox.shell.cli import add_today, run_lines
from sandbox.shell.script import parse_script
from sandbox.shell.session import Session, SessionOptions

DEMO_SCRIPT = Path(__file__).with_name("demo.distill")
DEMO_ENV = {"DISTILL_POLL_SECONDS": "0.5"}
CLOCK_SPEED = 600.0
STAND_INS = ("Slack, OpenAI and Together are local stand-ins here (sandbox/): the 'gpt-6.2-sol' teacher and the "
             "base student (Together's Qwen/Qwen3.5-9B, gpt-4o-mini with --trainer openai, gpt-6-luna with --trainer "
             "dicl) are small sandbox models (a word-overlap classifier that bills made-up reasoning tokens, naive "
             "Bayes once fine-tuned, and a similarity-weighted vote of the examples in its prompt), not the real ones. "
             "The app, its storage, approvals, cost estimate, scheduler and evals are the real ones.")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trainer", choices=TRAINERS, default=TRAINERS[0],
                        help="where the student is fine-tuned: together (default: its stand-in fine-tunes Qwen/"
                             "Qwen3.5-9B and serves it on a dedicated deployment for the eval), openai (the student "
                             "becomes gpt-4o-mini) or dicl (nothing is fine-tuned: gpt-6-luna answers with the "
                             "teacher's nearest examples in its prompt)")
    parser.add_argument("--dir", type=Path,
                        help="folder for the demo's database, chart and transcript (default: a new temporary one); "
                             "it must not hold a database yet")
    add_today(parser)


def demo_options(folder: Path, log_level: str, trainer: str = TRAINERS[0], today: str | None = None) -> SessionOptions:
    return SessionOptions(db=folder / "distill.db", transcript=folder / "slack-calls.jsonl",
                          env={**DEMO_ENV, "LOG_LEVEL": log_level}, clock_speed=CLOCK_SPEED,
                          base_dir=TICKETS_CSV.parent, trainer=None if trainer == TRAINERS[0] else trainer,
                          today=today)


async def play(options: SessionOptions, out: TextIO) -> int:
    steps = list(parse_script(DEMO_SCRIPT.read_text(encoding="utf-8").splitlines()))
    async with await Session.open(options, out) as session:
        session.say(f"distill-bot demo. {STAND_INS}\n")
        status = await run_lines(session, steps)
        data_dir = session.settings.data_dir
    charts = sorted(data_dir.glob("**/eval-chart.png"), key=lambda p: p.stat().st_mtime)
    print(file=out)
    if status == 0 and not charts:
        print("error: the run finished but drew no eval chart", file=sys.stderr)
        status = 1
    if charts:
        print(f"Eval chart:   {charts[-1]}", file=out)
    print(f"Database:     {options.db}", file=out)
    print(f"Slack calls:  {options.transcript}  (every Web API call the app made, as JSON lines)", file=out)
    print(f"Look around:  distill-bot shell --db {options.db}", file=out)
    print(STAND_INS, file=out)
    return status


def run(args: argparse.Namespace, settings: Settings) -> int:
    folder = args.dir or Path(tempfile.mkdtemp(prefix="distill-demo-"))
    if (folder / "distill.db").exists():
        print(f"error: {folder} already holds a demo database; give a new --dir, or leave it out for a temporary "
              "folder", file=sys.stderr)
        return 2
    folder.mkdir(parents=True, exist_ok=True)
    log_level = settings.log_level if "LOG_LEVEL" in os.environ else "WARNING"  # the logs would drown the story
    return asyncio.run(play(demo_options(folder, log_level, args.trainer, args.today), sys.stdout))
