"""The composition root: one function builds the whole bot from Settings, for `distill-bot run`, the tests and
the shell. Pointing it at the sandbox servers is a matter of two URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.collect.engine import Collector
from bot.collect.ratelimit import RateLimiters
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.logs import redactor, secret_values
from bot.core.provider import ChatProvider
from bot.prices.table import PriceTable
from bot.runs.scheduler import Scheduler
from bot.runs.service import RunService
from handlers.app import build_app
from handlers.directory import SlackDirectory
from handlers.files import SlackFiles
from handlers.followups import Followups
from handlers.notifier import CARD_INTERVAL_SECONDS, SlackNotifier
from handlers.render import Renderer
from handlers.surface import Surface
from storage import Storage

SLACK_API_URL = "https://slack.com/api/"
EVENTS_PATH = "/slack/events"
# Retries a 429 (honouring Retry-After) and a dropped connection; chat.update and usergroups.users.list are
# the methods most likely to be rate-limited (https://docs.slack.dev/apis/web-api/rate-limits).
SLACK_RATE_LIMIT_RETRIES = 3
# A stop waits this long for answers in progress, then this long for the last card edits: a platform sends SIGKILL
# some seconds after SIGTERM (Heroku: 30), and with Slack unreachable neither would ever end.
FOLLOWUP_GRACE_SECONDS = 5.0
CARD_GRACE_SECONDS = 2.0


class BackgroundService(Protocol):
    """Something that runs beside the app for its whole life (the training-job scheduler)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Bot:
    app: AsyncApp
    service: RunService
    storage: Storage
    notifier: SlackNotifier
    surface: Surface
    client: AsyncWebClient
    files: SlackFiles
    provider: ChatProvider
    services: list[BackgroundService] = field(default_factory=list)  # started by start(), e.g. the scheduler

    async def start(self) -> None:
        """Resume interrupted collections, then start the background services."""
        await self.service.resume()
        for service in self.services:
            await service.start()

    async def idle(self) -> None:
        """Wait until nothing is left to do (tests and the shell). In this order because follow-ups start stages
        and stages edit cards, never the other way round."""
        await self.surface.followups.wait_idle()
        await self.service.tasks.wait_idle()
        await self.notifier.idle()

    def web_app(self) -> web.Application:
        """The HTTP app: Slack's Request URL at /slack/events and a health check at /healthz."""
        app = self.app.web_app(path=EVENTS_PATH)
        app.router.add_get("/healthz", _healthz)
        return app

    async def close(self) -> None:
        """Stop taking work, let answers in progress finish (briefly), stop stages where they are (they resume at
        the next start), send the last card edits (briefly), and close connections and storage. Bounded in time
        even when Slack cannot be reached; the storage is closed whatever happens (its threads would keep the
        process alive)."""
        try:
            for service in reversed(self.services):
                await service.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.surface.followups.wait_idle(), FOLLOWUP_GRACE_SECONDS)
            await self.surface.followups.close()
            await self.service.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.notifier.close(), CARD_GRACE_SECONDS)
            await self.files.close()
            await self.provider.close()
        finally:
            await self.storage.close()


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def slack_client(token: str, api_url: str = SLACK_API_URL) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=api_url, retry_handlers=[
        AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=SLACK_RATE_LIMIT_RETRIES)])


async def build_bot(settings: Settings, *, slack_api_url: str = SLACK_API_URL, openai_base_url: str | None = None,
                    clock: Clock | None = None, card_interval: float = CARD_INTERVAL_SECONDS) -> Bot:
    """The bot for these settings. Needs SLACK_BOT_TOKEN and OPENAI_API_KEY (callers check with Settings.require).
    `clock` is every "now" of the bot and its database (tests pin "today" with it)."""
    clock = clock or Clock()
    if openai_base_url:  # the provider, the trainer and the models list all use it
        settings = dataclasses.replace(settings, openai_base_url=openai_base_url)
    settings.require("SLACK_BOT_TOKEN", "OPENAI_API_KEY")
    assert settings.slack_bot_token is not None and settings.openai_api_key is not None
    token = settings.slack_bot_token.reveal()
    secrets = tuple(secret_values(settings))
    storage = await Storage.open(settings.db_path, now=clock.iso, redact=redactor(secrets))
    prices = await asyncio.to_thread(PriceTable.load, settings.prices_path)
    provider = ChatProvider(base_url=settings.openai_base_url,
                            api_key=settings.openai_api_key.reveal(), store=settings.store_completions)
    collector = Collector(storage, provider, prices, RateLimiters(requests_per_minute=settings.requests_per_minute,
                                                                  tokens_per_minute=settings.tokens_per_minute),
                          concurrency=settings.concurrency)
    client = slack_client(token, slack_api_url)
    directory = SlackDirectory(client)
    renderer = Renderer(settings)
    notifier = SlackNotifier(client, renderer, storage, secrets=secrets, card_interval=card_interval)
    service = RunService(storage=storage, settings=settings, prices=prices, notifier=notifier, directory=directory,
                         collector=collector, clock=clock)
    surface = Surface(service, settings, notifier, renderer, Followups(), secrets)
    files = SlackFiles(token, api_url=slack_api_url)
    signing_secret = settings.slack_signing_secret.reveal() if settings.slack_signing_secret else None
    app = build_app(surface, files, client=client, signing_secret=signing_secret)
    return Bot(app, service, storage, notifier, surface, client, files, provider,
               services=[Scheduler(service, settings.poll_seconds)])
