"""`distill-bot run`: the bot in production.

With SLACK_APP_TOKEN it connects out over Socket Mode (no public URL needed); otherwise it serves HTTP on
$PORT: Slack's Request URL at /slack/events (requests verified with SLACK_SIGNING_SECRET) and /healthz for
the platform's health check. Either way storage is opened, interrupted collections resume, and the
background services (the training scheduler) start before the first request is taken.

SIGTERM and SIGINT stop it within seconds whatever it is doing: starting, connecting to a Slack it cannot reach
(slack_sdk's Socket Mode client retries forever), serving, or waiting on Slack mid-request. The serving is
cancelled where it stands, and the shutdown that follows waits a bounded time (handlers/wiring.Bot.close).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.runs.startup import ready_for_serving
from handlers.wiring import SLACK_API_URL, Bot, build_bot

log = logging.getLogger(__name__)

SOCKET_CLOSE_SECONDS = 2.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


# Said when SLACK_SIGNING_SECRET is missing: without SLACK_APP_TOKEN the bot takes HTTP mode, which needs it.
SOCKET_MODE_HINT = ("SLACK_SIGNING_SECRET is for HTTP mode; in Socket Mode (no public URL) set SLACK_APP_TOKEN "
                    "(xapp-..., Basic Information -> App-Level Tokens) instead.")


def required_variables(settings: Settings) -> tuple[str, ...]:
    """What `run` cannot start without, for the mode the settings select."""
    mode = ("SLACK_APP_TOKEN",) if settings.slack_app_token else ("SLACK_SIGNING_SECRET",)
    return ("SLACK_BOT_TOKEN", *mode, "OPENAI_API_KEY")


async def serve(settings: Settings, *, stop: asyncio.Event, host: str = "0.0.0.0", port: int | None = None,
                slack_api_url: str = SLACK_API_URL, on_ready: Callable[[str], None] | None = None,
                clock: Clock | None = None) -> None:
    """Run until `stop` is set. on_ready gets the HTTP base URL, or "socket-mode"."""
    settings.require(*required_variables(settings), hints={"SLACK_SIGNING_SECRET": SOCKET_MODE_HINT})
    bot = await build_bot(settings, slack_api_url=slack_api_url, clock=clock)
    try:
        await until_stopped(_serving(bot, settings, host, port, on_ready), stop)
    finally:
        log.info("stopping: answers in progress get a few seconds, stages resume at the next start")
        await bot.close()


async def until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run `work` until it ends or `stop` is set; then it is cancelled wherever it is waiting."""
    working = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (working, stopping):
            task.cancel()
        await asyncio.gather(working, stopping, return_exceptions=True)
    if not working.cancelled() and working.exception() is not None:
        raise working.exception()


async def _serving(bot: Bot, settings: Settings, host: str, port: int | None,
                   on_ready: Callable[[str], None] | None) -> None:
    """Start the bot and take Slack's requests until cancelled."""
    await bot.start()
    ready_for_serving(settings)
    if settings.slack_app_token:
        handler = AsyncSocketModeHandler(bot.app, settings.slack_app_token.reveal())
        try:
            log.info("connecting to Slack over Socket Mode")
            await handler.connect_async()
            log.info("connected to Slack over Socket Mode")
            if on_ready:
                on_ready("socket-mode")
            await asyncio.Event().wait()  # until cancelled
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handler.close_async(), SOCKET_CLOSE_SECONDS)
    else:
        runner = web.AppRunner(bot.web_app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, settings.port if port is None else port).start()
            bound_host, bound_port = runner.addresses[0][:2]
            log.info("listening on http://%s:%s (Slack Request URL path /slack/events)", bound_host, bound_port)
            if on_ready:
                on_ready(f"http://{bound_host}:{bound_port}")
            await asyncio.Event().wait()  # until cancelled
        finally:
            await runner.cleanup()


async def serve_until_signalled(settings: Settings, **options: Any) -> None:
    """serve() until SIGTERM or SIGINT (what a platform sends to stop or restart it, and Ctrl-C)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(settings, stop=stop, **options)
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="interface for HTTP mode (default: all)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(serve_until_signalled(settings, host=args.host))
    return 0
