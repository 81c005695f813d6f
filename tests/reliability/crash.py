"""Crash safety harness: drive the bot in a child process, SIGKILL it at a kill point, start it again, and check
that the run finished without posting or paying anything twice.

A kill point is a condition on what the sandboxes have seen (`KillPoint.after_paid_answers(40)`); the training-poll
and eval kill points are more of them. `crash_and_restart` takes one and returns what happened, so a new stage's
crash test is a scenario (`drive`), a kill point and a finish condition.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.openai import OpenAISandbox
from sandbox.slack import SlackDriver, SlackSandbox
from tests.conftest import OPENAI_TRAINER_ENV
from tests.handlers.conftest import CHANNEL, thread_texts
from tests.reliability.bot_process import BotProcess
from tests.waiting import until


@dataclass(frozen=True)
class KillPoint:
    name: str
    reached: Callable[[World], bool]

    @classmethod
    def after_paid_answers(cls, count: int) -> KillPoint:
        return cls(f"after {count} paid answers", lambda world: len(world.openai.requests.paid()) >= count)


@dataclass
class World:
    """The sandboxes and the bot's environment; `bot()` is a new process on the same database."""

    slack: SlackSandbox
    openai: OpenAISandbox
    folder: Path
    env: dict[str, str]

    @classmethod
    def create(cls, slack: SlackSandbox, openai: OpenAISandbox, folder: Path, **env: str) -> World:
        base = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret,
                "OPENAI_API_KEY": openai.api_key, "OPENAI_BASE_URL": str(openai.url),
                "DISTILL_DB": str(folder / "distill.db"), "DISTILL_DATA_DIR": str(folder / "data"),
                "DISTILL_APPROVERS": "U0ALICE,U0BOB", "LOG_LEVEL": "INFO", **OPENAI_TRAINER_ENV}
        return cls(slack, openai, folder, {**base, **env})

    def bot(self) -> BotProcess:
        return BotProcess(self.env, slack_api_url=self.slack.api_url, log_path=self.folder / "bot.log")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the bot's database (WAL: a reader never blocks the bot's writer)."""
        conn = sqlite3.connect(self.env["DISTILL_DB"])
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def thread(self, name: str) -> list[dict[str, Any]]:
        """The run's thread, root first; empty until the run has a card."""
        found = self.query("SELECT thread_ts FROM runs WHERE channel_id = ? AND name = ?", (CHANNEL, name))
        return self.slack.thread(CHANNEL, found[0][0]) if found and found[0][0] else []

    def said(self, name: str, start: str) -> int:
        """How many messages of the run's thread start with this text."""
        return sum(text.startswith(start) for text in thread_texts(self.thread(name)))

    def posts_in_threads(self) -> Counter[str]:
        """How often each text was posted into a thread, from the Slack sandbox's call log."""
        return Counter(call.args.get("text", "") for call in self.slack.calls_to("chat.postMessage")
                       if call.ok and call.thread_ts)

    def stored_answers(self) -> int:
        """Answers the bot has committed that the provider billed (reused copies cost nothing)."""
        return self.query("SELECT COUNT(*) FROM completions WHERE reused_from IS NULL"
                          " AND status IN ('ok', 'invalid')")[0][0]

    def paid_twice(self) -> int:
        """Answers the provider billed more than once for the same model and messages."""
        paid = Counter((r.model, r.messages_hash) for r in self.openai.requests.paid())
        return sum(paid.values()) - len(paid)


@dataclass(frozen=True)
class CrashOutcome:
    kill_point: str
    paid_at_kill: int  # answers the provider billed for requests sent before the kill
    stored_at_kill: int  # of those, the answers the bot had committed
    driven_before_kill: bool  # the scenario had finished all its steps when the kill came


async def crash_and_restart(world: World, *, drive: Callable[[SlackDriver], Awaitable[None]], kill_point: KillPoint,
                            finished: Callable[[], bool], within: float = 60.0) -> CrashOutcome:
    """Start the bot and `drive` it; SIGKILL it when the kill point is reached; start it again and wait until
    `finished`; stop it cleanly."""
    first = world.bot()
    driving: asyncio.Task | None = None
    try:
        driving = asyncio.create_task(drive(SlackDriver(world.slack, deliver=await first.start())))
        await until(lambda: kill_point.reached(world) or _failed(driving) or not first.running, within=within,
                    what=f"kill point {kill_point.name}")
        if _failed(driving):
            raise driving.exception()  # type: ignore[misc]
        if not first.running:
            raise RuntimeError(f"the bot exited before the kill point:\n{first.log()}")
        driven = driving.done()
        await first.kill()
        stored_at_kill = world.stored_answers()
    finally:
        await first.kill()
        if driving is not None:
            driving.cancel()  # a request to the killed process would fail: the scenario ends there
            await asyncio.gather(driving, return_exceptions=True)
    second = world.bot()
    restarted_at = world.openai.clock.now()  # the request log's clock
    try:
        await second.start()
        await until(finished, within=within, what="the restarted bot to finish the run")
        await second.stop()
    finally:
        await second.kill()
    # The killed process's last requests may be answered (and billed) just after it died: count by who sent them.
    paid_at_kill = sum(1 for r in world.openai.requests.paid() if r.time < restarted_at)
    return CrashOutcome(kill_point.name, paid_at_kill, stored_at_kill, driven)


def _failed(task: asyncio.Task) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None
