"""`distill-bot run`: the bot in production.

With SLACK_APP_TOKEN it connects out over Socket Mode (no public URL needed); otherwise it serves HTTP on
$PORT: Slack's Request URL at /slack/events (requests verified with SLACK_SIGNING_SECRET) and /healthz for
the platform's health check. Either way storage is opened, interrupted collections resume, and the
background services (the training scheduler) start before the first request is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.runs.startup import ready_for_serving
from handlers.wiring import SLACK_API_URL, build_bot

log = logging.getLogger(__name__)


def required_variables(settings: Settings) -> tuple[str, ...]:
    """What `run` cannot start without, for the mode the settings select."""
    mode = ("SLACK_APP_TOKEN",) if settings.slack_app_token else ("SLACK_SIGNING_SECRET",)
    return ("SLACK_BOT_TOKEN", *mode, "OPENAI_API_KEY")


async def serve(settings: Settings, *, stop: asyncio.Event, host: str = "0.0.0.0", port: int | None = None,
                slack_api_url: str = SLACK_API_URL, on_ready: Callable[[str], None] | None = None,
                clock: Clock | None = None) -> None:
    """Run until `stop` is set. on_ready gets the HTTP base URL, or "socket-mode"."""
    settings.require(*required_variables(settings))
    bot = await build_bot(settings, slack_api_url=slack_api_url, clock=clock)
    try:
        await bot.start()
        ready_for_serving(settings)
        if settings.slack_app_token:
            handler = AsyncSocketModeHandler(bot.app, settings.slack_app_token.reveal())
            await handler.connect_async()
            log.info("connected to Slack over Socket Mode")
            if on_ready:
                on_ready("socket-mode")
            try:
                await stop.wait()
            finally:
                await handler.close_async()
        else:
            runner = web.AppRunner(bot.web_app(), access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, host, settings.port if port is None else port).start()
                bound_host, bound_port = runner.addresses[0][:2]
                log.info("listening on http://%s:%s (Slack Request URL path /slack/events)", bound_host, bound_port)
                if on_ready:
                    on_ready(f"http://{bound_host}:{bound_port}")
                await stop.wait()
            finally:
                await runner.cleanup()
    finally:
        await bot.close()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="interface for HTTP mode (default: all)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop=stop, host=args.host)

    asyncio.run(main())
    return 0
