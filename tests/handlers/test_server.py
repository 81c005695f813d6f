"""`distill-bot run`: refuses to start without its variables, and serves HTTP with resumed runs."""

from __future__ import annotations

import asyncio
import gc

import aiohttp
import pytest

from bot.cli.main import main
from bot.core.config import VARIABLES, Settings
from handlers.server import serve
from sandbox.slack import SlackDriver
from storage import Storage
from tests.conftest import SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET


@pytest.fixture
def clean_env(monkeypatch):
    for var in VARIABLES:
        monkeypatch.delenv(var.name, raising=False)
    return monkeypatch


@pytest.fixture
def thawed():
    """serve() freezes what start-up made (bot/runs/startup.py): give the test process its collector back after."""
    gc.unfreeze()
    yield
    gc.unfreeze()


async def _new_run_then_stop(driver: SlackDriver, stop: asyncio.Event, server: asyncio.Task) -> None:
    """Type `/distill new tickets`, wait for the card to appear, then stop the server."""
    reply = await driver.slash_command(user="alice", channel="general", text="new tickets")
    assert reply.status == 200
    while not driver.slack.messages("C0GENERAL"):
        await asyncio.sleep(0.01)
    stop.set()
    await server


def test_run_names_every_missing_variable_for_http_mode(clean_env, capsys):
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "Missing configuration: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, OPENAI_API_KEY" in err


def test_the_missing_signing_secret_says_that_socket_mode_takes_the_app_token_instead(clean_env, capsys):
    """Issue 19: a team meaning Socket Mode was told only that SLACK_SIGNING_SECRET is missing."""
    clean_env.setenv("SLACK_BOT_TOKEN", "xoxb-secret-value")
    clean_env.setenv("OPENAI_API_KEY", "sk-secret-value")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "Missing configuration: SLACK_SIGNING_SECRET." in err
    assert "in Socket Mode (no public URL) set SLACK_APP_TOKEN (xapp-..., Basic Information -> App-Level Tokens)" in err


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("SLACK_BOT_TOKEN", "xapp-1-A0-secret-value",
     "this is an app-level token (xapp-...), which goes in SLACK_APP_TOKEN"),
    ("SLACK_BOT_TOKEN", "xoxp-1-secret-value", "this is a user token (xoxp-...): the bot posts as itself, with its "
                                               "bot token (xoxb-...)"),
    ("SLACK_APP_TOKEN", "xoxb-1-secret-value", "this is a bot token (xoxb-...), which goes in SLACK_BOT_TOKEN"),
])
def test_a_slack_token_of_the_wrong_kind_is_refused_at_start_without_showing_it(clean_env, capsys, variable, value,
                                                                                 says):
    """Issue 19: an xapp- token put in SLACK_BOT_TOKEN was accepted."""
    clean_env.setenv(variable, value)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert f"{variable}: {says}; this variable takes a" in err and "secret-value" not in err


def test_socket_mode_needs_the_app_token_instead_of_the_signing_secret(clean_env, capsys):
    clean_env.setenv("SLACK_APP_TOKEN", "xapp-1-A0-secret-value")
    clean_env.setenv("SLACK_BOT_TOKEN", "xoxb-secret-value")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "Missing configuration: OPENAI_API_KEY." in err and "xapp-1" not in err and "xoxb-" not in err


async def test_serve_resumes_stored_runs_then_answers_slack_over_http(tmp_path, slack_sandbox, openai_sandbox, thawed):
    db = tmp_path / "distill.db"
    storage = await Storage.open(db)
    stranded = await storage.runs.create(name="old", channel_id="C0GENERAL", requester="U0ALICE", spec={})
    await storage.runs.update(stranded.id, state="collecting")  # the process died mid-collection, unapproved
    await storage.close()
    settings = Settings.from_env({"SLACK_BOT_TOKEN": SLACK_BOT_TOKEN, "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
                                  "OPENAI_API_KEY": "sk-sandbox", "OPENAI_BASE_URL": openai_sandbox.url,
                                  "DISTILL_DB": str(db)})
    stop, urls = asyncio.Event(), []
    assert gc.get_freeze_count() == 0
    server = asyncio.create_task(serve(settings, stop=stop, host="127.0.0.1", port=0,
                                       slack_api_url=slack_sandbox.api_url, on_ready=urls.append))
    while not urls:
        await asyncio.sleep(0.01)
    assert gc.get_freeze_count() > 100_000  # start-up's objects are out of every later collection's way
    async with aiohttp.ClientSession() as session, session.get(f"{urls[0]}/healthz") as health:
        assert health.status == 200
    await _new_run_then_stop(SlackDriver(slack_sandbox, deliver=urls[0]), stop, server)
    storage = await Storage.open(db)
    try:
        assert (await storage.runs.require(stranded.id)).state == "failed"
        assert (await storage.runs.by_name("C0GENERAL", "tickets")).card_ts
    finally:
        await storage.close()


async def test_serve_connects_over_socket_mode_when_the_app_token_is_set(tmp_path, slack_sandbox, openai_sandbox,
                                                                        thawed):
    settings = Settings.from_env({"SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
                                  "SLACK_APP_TOKEN": slack_sandbox.socket_mode.app_token,
                                  "OPENAI_API_KEY": "sk-sandbox", "OPENAI_BASE_URL": openai_sandbox.url,
                                  "DISTILL_DB": str(tmp_path / "distill.db")})
    stop, modes = asyncio.Event(), []
    server = asyncio.create_task(serve(settings, stop=stop, slack_api_url=slack_sandbox.api_url,
                                       on_ready=modes.append))
    while not modes:
        await asyncio.sleep(0.01)
    assert modes == ["socket-mode"]
    await _new_run_then_stop(SlackDriver(slack_sandbox, deliver=slack_sandbox.socket_mode), stop, server)
    assert not slack_sandbox.socket_mode.connected
