"""The bot as `distill-bot run` runs it (handlers.server.serve_until_signalled: HTTP, or Socket Mode when the
environment has SLACK_APP_TOKEN), in a child process, against the sandbox servers of the parent. The parent can
SIGKILL it at any moment and start it again on the same database.

    bot = BotProcess(env, slack_api_url=slack.api_url, log_path=tmp_path / "bot.log")
    url = await bot.start()            # the app's base URL ("socket-mode" in Socket Mode); drive it with SlackDriver
    await bot.kill()                   # SIGKILL: no shutdown code runs
    meter = await bot.stop()           # SIGTERM: a clean stop; returns the child's event-loop StallMeter
    await bot.launch()                 # start it without waiting until it serves (a Slack it cannot reach)
    code = await bot.signalled(signal.SIGINT, within=10)  # the exit code of a stop that must not hang

Run as a module (`python -m tests.reliability.bot_process`) it is the child: settings from the environment, the
Slack Web API at $SANDBOX_SLACK_API_URL, "ready URL" on stdout once it serves, and on a clean stop one JSON line
with the loop stalls it measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.reliability.loop_stalls import StallMeter

ROOT = Path(__file__).resolve().parents[2]
SLACK_URL_VARIABLE = "SANDBOX_SLACK_API_URL"
READY = "ready "
START_SECONDS = 30.0


class BotProcess:
    def __init__(self, env: Mapping[str, str], *, slack_api_url: str, log_path: Path) -> None:
        self.env = {**os.environ, **env, SLACK_URL_VARIABLE: slack_api_url}
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.url: str | None = None

    async def launch(self) -> None:
        """Start the child; it serves once it prints its ready line (start() waits for it)."""
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.reliability.bot_process", cwd=ROOT, env=self.env,
                stdout=asyncio.subprocess.PIPE, stderr=log)

    async def start(self) -> str:
        """Start the child and wait until it serves; returns its base URL (or "socket-mode")."""
        await self.launch()
        assert self.process is not None and self.process.stdout is not None
        try:
            line = (await asyncio.wait_for(self.process.stdout.readline(), START_SECONDS)).decode()
        except TimeoutError:
            line = ""
        if not line.startswith(READY):
            await self.kill()
            raise RuntimeError(f"the bot did not start; its log ({self.log_path}):\n{self.log()}")
        self.url = line[len(READY):].strip()
        return self.url

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        """SIGKILL: the process ends between two instructions, as in a crash or an OOM kill."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            await self.process.communicate()

    async def signalled(self, sig: signal.Signals, *, within: float) -> int:
        """Send `sig` and return the child's exit code; TimeoutError (and a SIGKILL) when it is not gone `within`
        seconds."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            await asyncio.wait_for(self.process.communicate(), within)
        except TimeoutError:
            await self.kill()
            raise TimeoutError(f"the bot did not stop within {within:g} s of {sig.name}:\n{self.log()}") from None
        assert self.process.returncode is not None
        return self.process.returncode

    async def stop(self) -> StallMeter:
        """SIGTERM (what a platform sends before stopping a dyno); returns what the child's stall meter saw."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(self.process.communicate(), START_SECONDS)
        if self.process.returncode != 0 or not out.strip():
            raise RuntimeError(f"the bot did not stop cleanly (exit {self.process.returncode}):\n{self.log()}")
        report = json.loads(out.decode().strip().splitlines()[-1])
        return StallMeter(longest_seconds=report["longest_seconds"],
                          stalls=[(ended, late) for ended, late in report["stalls"]])


async def _serve() -> None:
    from bot.core.clock import Clock
    from bot.core.config import Settings
    from bot.core.logs import configure_logging
    from handlers.server import serve_until_signalled
    from tests.conftest import TODAY

    settings = Settings.from_env()
    configure_logging(settings)
    meter = StallMeter()

    def ready(url: str) -> None:
        meter.start()  # from the first request it can take: start-up work before that keeps no one waiting
        print(READY + url, flush=True)

    await serve_until_signalled(settings, host="127.0.0.1", port=0, slack_api_url=os.environ[SLACK_URL_VARIABLE],
                                on_ready=ready, clock=Clock.at(TODAY))  # the day the sandboxes' dates are read against
    await meter.stop()
    print(json.dumps({"longest_seconds": meter.longest_seconds, "stalls": meter.stalls}), flush=True)


if __name__ == "__main__":
    asyncio.run(_serve())
