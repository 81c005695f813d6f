"""The `distill-bot` command line. Each command has a one-line summary and an example in its --help.

The composition root: the one module of bot/ that imports handlers/ and sandbox/, which stand above it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import handlers.server as handlers_server
import sandbox.cli as sandbox_cli
import sandbox.shell.cli as sandbox_shell_cli
import sandbox.shell.demo as sandbox_shell_demo
from bot.cli import estimate as estimate_cli
from bot.core.config import Settings
from bot.core.errors import USER_ERRORS


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    example: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Settings], int]


def _db_path_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, help="database file (default: $DISTILL_DB or ./distill.db)")


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from storage import Storage

    async def upgrade() -> int:
        storage = await Storage.open(args.db or settings.db_path)
        try:
            return await storage.db.schema_version()
        finally:
            await storage.close()

    print(f"schema version {asyncio.run(upgrade())}")
    return 0


def _db_check(args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import Database
    from storage.migrations import bundled_migrations

    path = args.db or settings.db_path
    if not Path(path).exists():
        print(f"{path}: no database here. Create one with: distill-bot db upgrade --db {path}", file=sys.stderr)
        return 1

    async def check() -> tuple[int, list[str]]:
        db = await Database.open(path, migrate=False)
        try:
            return await db.schema_version(), await db.integrity_check()
        finally:
            await db.close()

    version, problems = asyncio.run(check())
    latest = bundled_migrations()[-1].version
    if version < latest:
        problems.append(f"schema version {version} is behind {latest}; run: distill-bot db upgrade --db {path}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{path}: schema version {version}, integrity {'ok' if not problems else 'FAILED'}")
    return 0 if not problems else 1


COMMANDS: list[Command] = [
    Command("db upgrade", "Create the database or migrate it to the latest schema (safe to repeat).",
            "distill-bot db upgrade --db ./distill.db", _db_path_argument, _db_upgrade),
    Command("db check", "Run SQLite's integrity check and print the schema version.",
            "distill-bot db check --db ./distill.db", _db_path_argument, _db_check),
    Command("estimate", "Print what a run on a CSV would cost, stage by stage, before anything is spent.",
            "distill-bot estimate reviews.csv --label variety --train 450 --eval 50",
            estimate_cli.configure, estimate_cli.run),
    Command("sandbox", "Serve the local OpenAI, Together and Slack stand-ins on 127.0.0.1 until interrupted.",
            "distill-bot sandbox --tpm gpt-4o=30000 --fault-rate 0.1",
            sandbox_cli.configure, sandbox_cli.run),
    Command("shell", "Drive the real app from a terminal against local Slack, OpenAI and Together stand-ins.",
            "distill-bot shell --script session.distill --transcript calls.jsonl",
            sandbox_shell_cli.configure, sandbox_shell_cli.run),
    Command("demo", "Run a whole distillation of the bundled IT-tickets CSV in the shell, start to finish.",
            "distill-bot demo", sandbox_shell_demo.configure, sandbox_shell_demo.run),
    Command("run", "Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on $PORT.",
            "distill-bot run", handlers_server.configure, handlers_server.run),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distill-bot",
        description="Distill a large language model into a small one from a Slack thread.",
        epilog="Example: distill-bot demo",
    )
    groups: dict[str, argparse._SubParsersAction] = {}
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        words = command.name.split()
        if len(words) == 2:
            if words[0] not in groups:
                group = top.add_parser(words[0], help=f"{words[0]} commands")
                groups[words[0]] = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
            container = groups[words[0]]
        else:
            container = top
        sub = container.add_parser(
            words[-1], help=command.summary, description=command.summary, epilog=f"Example: {command.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.configure(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        from bot.core.logs import configure_logging

        configure_logging(settings)
        return args.handler(args, settings)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
