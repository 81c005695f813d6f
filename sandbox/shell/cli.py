"""`distill-bot shell`: the real app in a terminal, typed at a prompt or fed a script of the shell language."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TextIO

from bot.core.config import Settings
from bot.core.errors import ConfigError
from sandbox.shell.script import FORMS, Line, ScriptError, parse_line, parse_script
from sandbox.shell.session import Session, SessionOptions, StepError
from sandbox.shell.standins import TRAINER_STAND_INS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--script", metavar="FILE",
                        help="run the lines of FILE ('-': standard input) instead of prompting; exits non-zero at "
                             "the first line that fails")
    parser.add_argument("--db", type=Path, help="database file (default: a fresh one in a new temporary folder)")
    parser.add_argument("--openai", metavar="URL",
                        help="a real OpenAI-compatible base URL (with OPENAI_API_KEY) instead of the sandbox OpenAI")
    parser.add_argument("--trainer", help="trainer of every run the session creates: together, openai or dicl "
                                          "(default: the runs' own, $DISTILL_TRAINER or together; Together's stand-in "
                                          "is served only for together)")
    parser.add_argument("--transcript", type=Path, metavar="FILE",
                        help="write every Slack Web API call the app makes to FILE as JSON lines")
    add_today(parser)
    parser.add_argument("--clock-speed", type=float, default=60.0,
                        help="how much faster sandbox fine-tuning jobs run than real time (default 60)")


def options_from(args: argparse.Namespace, settings: Settings, env: dict[str, str]) -> SessionOptions:
    """Session options from the command line; ConfigError names a flag that cannot work here."""
    if args.openai and settings.openai_api_key is None:
        raise ConfigError(f"--openai {args.openai} needs OPENAI_API_KEY in the environment (the endpoint's key).")
    if args.trainer:
        check_trainer(args.trainer)
    script_dir = Path(args.script).resolve().parent if args.script and args.script != "-" else Path.cwd()
    return SessionOptions(db=args.db, openai_url=args.openai, trainer=args.trainer, transcript=args.transcript,
                          env=env, clock_speed=args.clock_speed, base_dir=script_dir, today=args.today)


def add_today(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--today", type=_day, metavar="YYYY-MM-DD",
                        help="run the stand-ins and the app as if it were this day (their models' published "
                             "shutdown dates are read against it); default: the system date")


def _day(raw: str) -> str:
    try:
        return dt.date.fromisoformat(raw).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date such as 2026-11-29, got {raw!r}") from None


def check_trainer(name: str) -> None:
    """A trainer the session can drive: known to the bot, with its stand-in when it has its own provider."""
    from bot.trainers import TRAINERS

    missing = [] if name in TRAINERS else [f"bot/trainers has no {name!r} back end"]
    stand_in = TRAINER_STAND_INS.get(name)
    if stand_in and not stand_in.available():
        missing.append(f"there is no {stand_in.module} stand-in to train against")
    if missing:
        raise ConfigError(f"--trainer {name} is not available in this version: {'; '.join(missing)}. "
                          f"Trainers here: {', '.join(TRAINERS)} (leave out --trainer for the default, together).")


async def run_lines(session: Session, lines: Iterable[Line], *, echo: bool = True) -> int:
    """Run the steps in order; 0 at the end, 1 at the first step that fails (its line number and text on stderr)."""
    for line in lines:
        if echo:
            session.say(f"{session.prompt}{line.text}")
        try:
            await session.run(line.step)
        except StepError as exc:
            print(f"error: line {line.number}: {line.text}\n  {exc}", file=sys.stderr, flush=True)
            return 1
    return 0


async def _typed_lines(prompt: Callable[[], str]) -> AsyncIterator[str]:
    """Lines typed at the terminal. A daemon thread reads them, one prompt at a time, so Ctrl-C or the end of
    the session never waits on a blocked input()."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    turn = threading.Event()

    def read() -> None:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
        while True:
            turn.wait()
            turn.clear()
            try:
                line: str | None = input(prompt())
            except EOFError:
                line = None
            loop.call_soon_threadsafe(queue.put_nowait, line)
            if line is None:
                return

    threading.Thread(target=read, name="shell-input", daemon=True).start()
    while True:
        turn.set()
        line = await queue.get()
        if line is None:
            return
        yield line


async def interactive(session: Session) -> int:
    session.say("Type /distill help, or a directive: " + ", ".join(FORMS.values()) + ". Ctrl-D ends the session.")
    async for text in _typed_lines(lambda: session.prompt):
        try:
            step = parse_line(text)
            if step is not None:
                await session.run(step)
        except (ScriptError, StepError) as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
    return 0


def banner(session: Session) -> list[str]:
    settings = session.settings
    openai = ("the sandbox OpenAI (its models are local stand-ins that answer like gpt-6.2-sol and gpt-4o-mini, "
              "not the real ones)" if session.openai else settings.openai_base_url)
    users = session.slack.workspace.users
    approvers = ", ".join(f"{users[a]['name']} ({a})" if a in users else a for a in settings.approvers)
    together = (f"  Together: the sandbox stand-in at {settings.together_base_url}" if session.trainer_stand_in
                else f"  Together: {settings.together_base_url}")
    return [
        "distill-bot shell: the real app, with a local Slack stand-in, and " + openai + ".",
        together + f" (new runs train at {settings.trainer}, student {settings.student_model})",
        f"  database {settings.db_path}, data folder {settings.data_dir}",
        f"  approvers: {approvers or 'anyone in the channel'} (DISTILL_APPROVERS)",
        f"  you are {session.user} in #{session.channel}",
    ]


async def start_session(options: SessionOptions, script_lines: list[str] | None, out: TextIO) -> int:
    steps = list(parse_script(script_lines)) if script_lines is not None else None
    async with await Session.open(options, out) as session:
        for line in banner(session):
            session.say(line)
        return await interactive(session) if steps is None else await run_lines(session, steps)


def read_script(source: str) -> list[str]:
    if source == "-":
        return sys.stdin.read().splitlines()
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"--script {source}: no such file. Give a file of shell lines, or - for standard input.")
    return path.read_text(encoding="utf-8").splitlines()


def run(args: argparse.Namespace, settings: Settings) -> int:
    options = options_from(args, settings, dict(os.environ))
    source = args.script or (None if sys.stdin.isatty() else "-")
    try:
        lines = read_script(source) if source else None
        return asyncio.run(start_session(options, lines, sys.stdout))
    except ScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
