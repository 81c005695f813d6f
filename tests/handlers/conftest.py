"""The real bot (build_bot) against the sandbox Slack and OpenAI servers, driven by signed requests.

`make_bot(**env)` starts one; `over_http=True` serves it with aiohttp on a free port and delivers Slack's requests
there, otherwise they go through Bolt's async_dispatch. Every helper waits for the bot to be idle, so a test reads
like a conversation: `await bot.command("new tickets")`, then look at the thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from bot.core.config import Settings
from bot.examples import TICKETS_CSV
from handlers.wiring import Bot, build_bot
from sandbox.slack import AppReply, SlackDriver, SlackSandbox
from tests.conftest import OPENAI_TRAINER_ENV, SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET

CHANNEL = "C0GENERAL"


@dataclass
class Harness:
    bot: Bot
    driver: SlackDriver
    slack: SlackSandbox
    url: str | None = None  # the app's base URL when served over HTTP

    async def command(self, text: str, *, user: str = "alice", channel: str = "general") -> AppReply:
        reply = await self.driver.slash_command(user=user, channel=channel, text=text)
        await self.bot.idle()
        return reply

    async def click(self, message_ts: str, action_id: str, *, user: str = "bob", channel: str = "general",
                    value: str | None = None) -> AppReply:
        reply = await self.driver.click(user=user, channel=channel, message_ts=message_ts, action_id=action_id,
                                        value=value)
        await self.bot.idle()
        return reply

    async def share(self, content: bytes, filename: str, *, thread_ts: str, user: str = "alice",
                    channel: str = "general", text: str = "") -> AppReply:
        """Share a file in a thread; `text` is the message's comment (`eval`, `watch`)."""
        reply = await self.driver.share_file(content, user=user, channel=channel, filename=filename,
                                             thread_ts=thread_ts, text=text)
        await self.bot.idle()
        return reply

    async def run(self, name: str, channel: str = CHANNEL) -> Any:
        return await self.bot.storage.runs.by_name(channel, name)

    async def thread(self, name: str, channel: str = CHANNEL) -> list[dict[str, Any]]:
        """The run's thread, root (the card) first."""
        return self.slack.thread(channel, (await self.run(name, channel)).thread_ts)

    def said_to(self, user: str) -> list[str]:
        """Everything shown to one user alone (acks and ephemeral replies), oldest first, one text per message."""
        return ["\n".join(thread_texts([e.message])) for e in self.slack.ephemerals(user)]

    async def ready_run(self, name: str = "tickets", settings: str = "label=category train=60 eval=30") -> Any:
        await self.command(f"new {name}")
        run = await self.run(name)
        await self.share(TICKETS_CSV.read_bytes(), "it-tickets.csv", thread_ts=run.thread_ts)
        await self.command(f"set {name} {settings}")
        return await self.run(name)


def thread_texts(thread: list[dict[str, Any]]) -> list[str]:
    """Every section text of every message (fallback text for messages without blocks)."""
    texts = []
    for message in thread:
        blocks = message.get("blocks") or []
        texts += [b["text"]["text"] for b in blocks if b.get("type") == "section" and "text" in b] or [message["text"]]
    return texts


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """action_id -> value of the buttons in a message."""
    return {e["action_id"]: e.get("value") for b in message.get("blocks", []) if b["type"] == "actions"
            for e in b["elements"]}


@pytest.fixture
async def make_bot(tmp_path, slack_sandbox, openai_sandbox, clock):
    started: list[tuple[Bot, web.AppRunner | None]] = []

    async def make(*, over_http: bool = False, card_interval: float = 0.01, **env: str) -> Harness:
        settings = Settings.from_env({
            "SLACK_BOT_TOKEN": SLACK_BOT_TOKEN, "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
            "OPENAI_API_KEY": "sk-sandbox", "OPENAI_BASE_URL": openai_sandbox.url,
            "DISTILL_DB": str(tmp_path / f"distill-{len(started)}.db"), "DISTILL_DATA_DIR": str(tmp_path / "data"),
            "DISTILL_APPROVERS": "U0ALICE,U0BOB,U0CAROL", **OPENAI_TRAINER_ENV, **env,
        })
        bot = await build_bot(settings, slack_api_url=slack_sandbox.api_url, clock=clock,
                              card_interval=card_interval)
        await bot.start()
        runner = None
        deliver: Any = bot.app
        if over_http:
            runner = web.AppRunner(bot.web_app(), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            deliver = f"http://{host}:{port}"
        started.append((bot, runner))
        return Harness(bot, SlackDriver(slack_sandbox, deliver=deliver), slack_sandbox,
                       deliver if isinstance(deliver, str) else None)

    yield make
    for bot, runner in started:
        if runner is not None:
            await runner.cleanup()
        await bot.close()


@pytest.fixture
async def bot(make_bot) -> Harness:
    return await make_bot()
