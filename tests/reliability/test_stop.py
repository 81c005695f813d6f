"""SIGTERM and SIGINT stop `distill-bot run` within seconds in every state (issue 19: in Socket Mode, with Slack
unreachable, it hung in the connection and only SIGKILL ended it, so a platform's restart or deploy hung too).

Each test runs the bot as `distill-bot run` does (tests/reliability/bot_process.py) in Socket Mode, against the
Slack sandbox or against a Slack that cannot be reached: a port that refuses connections, or a server that accepts
them and never answers.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator

import pytest

from tests.conftest import OPENAI_TRAINER_ENV
from tests.reliability.bot_process import BotProcess
from tests.reliability.crash import until

STOP_SECONDS = 10.0  # "within seconds": the shutdown waits at most 5 s for answers and 2 s for card edits


class Blackhole:
    """A Slack that accepts connections and never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self._held: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._held.append(writer)

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/api/"

    async def __aexit__(self, *exc_info: object) -> None:
        for writer in self._held:
            writer.close()
        assert self._server is not None
        self._server.close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/"  # nothing listens there any more: connections are refused


def _env(tmp_path, slack_sandbox, openai_sandbox) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": slack_sandbox.bot_token, "SLACK_APP_TOKEN": slack_sandbox.socket_mode.app_token,
            "OPENAI_API_KEY": openai_sandbox.api_key, "OPENAI_BASE_URL": str(openai_sandbox.url),
            "DISTILL_DB": str(tmp_path / "distill.db"), "DISTILL_DATA_DIR": str(tmp_path / "data"),
            "LOG_LEVEL": "INFO", **OPENAI_TRAINER_ENV}


@pytest.fixture
async def blackhole() -> AsyncIterator[Blackhole]:
    hole = Blackhole()
    yield hole


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("slack", ["refusing", "silent"])
async def test_a_bot_connecting_to_a_slack_it_cannot_reach_stops_on_a_signal(tmp_path, slack_sandbox, openai_sandbox,
                                                                             blackhole, sig, slack):
    async with blackhole as silent_url:
        url = silent_url if slack == "silent" else _closed_port_url()
        bot = BotProcess(_env(tmp_path, slack_sandbox, openai_sandbox), slack_api_url=url, log_path=tmp_path / "log")
        await bot.launch()
        await until(lambda: "connecting to Slack over Socket Mode" in bot.log(), within=30, what="the connection")
        if slack == "silent":
            await until(lambda: blackhole.connections > 0, within=30, what="a request to Slack")
        assert await bot.signalled(sig, within=STOP_SECONDS) == 0
        assert "connected to Slack" not in bot.log()


async def test_a_bot_starting_while_slack_does_not_answer_stops_on_sigterm(tmp_path, slack_sandbox, openai_sandbox,
                                                                         blackhole):
    """Start-up posts the card of a run that has none yet; Slack never answers that call."""
    import sqlite3

    from storage import Storage

    storage = await Storage.open(tmp_path / "distill.db")
    await storage.runs.create(name="tickets", channel_id="C0GENERAL", requester="U0ALICE", spec={})
    await storage.close()
    async with blackhole as silent_url:
        bot = BotProcess(_env(tmp_path, slack_sandbox, openai_sandbox), slack_api_url=silent_url,
                         log_path=tmp_path / "log")
        await bot.launch()
        await until(lambda: blackhole.connections > 0, within=30, what="the card's post")
        assert await bot.signalled(signal.SIGTERM, within=STOP_SECONDS) == 0
        assert "connecting to Slack" not in bot.log(), "it was still starting"
    with sqlite3.connect(tmp_path / "distill.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("slack_goes_away", [False, True], ids=["connected", "connection-lost"])
async def test_a_bot_connected_over_socket_mode_stops_on_a_signal(tmp_path, slack_sandbox, openai_sandbox,
                                                                  slack_goes_away):
    bot = BotProcess(_env(tmp_path, slack_sandbox, openai_sandbox), slack_api_url=slack_sandbox.api_url,
                     log_path=tmp_path / "log")
    assert await bot.start() == "socket-mode"
    await until(lambda: slack_sandbox.socket_mode.connected, within=30, what="the Socket Mode connection")
    if slack_goes_away:
        await slack_sandbox.stop()  # the WebSocket closes and the API refuses connections: the client tries again
        await until(lambda: not slack_sandbox.socket_mode.connected, within=30, what="the lost connection")
    assert await bot.signalled(signal.SIGINT if slack_goes_away else signal.SIGTERM, within=STOP_SECONDS) == 0
    # Issue 19: with SLACK_BOT_TOKEN in the environment, as in production, Bolt warned at every start.
    assert "will be unused" not in bot.log() and "connected to Slack over Socket Mode" in bot.log()
