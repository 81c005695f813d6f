"""Fixtures shared by the whole suite. Nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.clock import Clock
from storage import Storage

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
# The day the fixtures pin for the bot and its stand-ins alike, so the suite passes on any real date: the
# sandbox keeps OpenAI's real shutdown dates, and a test about them sets its own day (`Clock.at`).
TODAY = "2026-11-29"


@pytest.fixture
def clock() -> Clock:
    """The test's clock, pinned to TODAY at noon UTC and running from there; shared by bot and sandboxes."""
    return Clock.at(TODAY)


@pytest.fixture
async def storage(tmp_path: Path, clock: Clock):
    store = await Storage.open(tmp_path / "distill.db", now=clock.iso)
    yield store
    await store.close()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout: read-only public data and Slack/OpenAI samples."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the tests read public data and samples from ../shared")
    return SHARED


DOCS = Path(__file__).resolve().parents[1] / "docs"


def doc_text(name: str) -> str:
    """A page of docs/ (where the tables that restate the code live)."""
    return (DOCS / name).read_text(encoding="utf-8")


@pytest.fixture
async def openai_sandbox(clock: Clock):
    """A started OpenAI sandbox (key "sk-sandbox", seed 0, clock at 60x: a fine-tuning job takes about 1 s)."""
    from sandbox.openai import OpenAISandbox

    sandbox = OpenAISandbox(api_key="sk-sandbox", seed=0, clock_speed=60, clock=clock)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def make_openai_sandbox(clock: Clock):
    """Start OpenAI sandboxes with any knobs: `sb = await make_openai_sandbox(tpm_limits={"gpt-4o": 500})`."""
    from sandbox.openai import OpenAISandbox

    started = []

    async def make(**knobs):
        sandbox = OpenAISandbox(**{"api_key": "sk-sandbox", "clock": clock, **knobs})
        await sandbox.start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        await sandbox.stop()


@pytest.fixture
async def collector_for():
    """tests.collect_helpers.make_collector, closing each provider's HTTP client at the end of the test."""
    from tests.collect.helpers import make_collector

    made = []

    def make(*args, **kwargs):
        made.append(make_collector(*args, **kwargs))
        return made[-1]

    yield make
    for collector in made:
        await collector.provider.close()


SLACK_BOT_TOKEN = "xoxb-sandbox-test"
SLACK_SIGNING_SECRET = "sandbox-signing-secret"


@pytest.fixture
async def slack_sandbox():
    """A started Slack sandbox (bot token SLACK_BOT_TOKEN, signing secret SLACK_SIGNING_SECRET, #general exists)."""
    from sandbox.slack import SlackSandbox

    slack = SlackSandbox(bot_token=SLACK_BOT_TOKEN, signing_secret=SLACK_SIGNING_SECRET)
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
def slack_client(slack_sandbox):
    """A real slack_sdk AsyncWebClient talking to the Slack sandbox with the bot token."""
    from slack_sdk.web.async_client import AsyncWebClient

    return AsyncWebClient(token=slack_sandbox.bot_token, base_url=slack_sandbox.api_url)


TOGETHER_API_KEY = "together-sandbox-key"
# New runs train at Together by default (issue 14). Tests that drive whole runs against the OpenAI sandbox alone set
# its trainer and a student it fine-tunes; the Together runs (tests/handlers/test_distillation_together.py, the
# shell and the demo) start Together's stand-in.
OPENAI_TRAINER_ENV = {"DISTILL_TRAINER": "openai", "DISTILL_STUDENT_MODEL": "gpt-4o-mini-2024-07-18"}


@pytest.fixture
async def make_together_sandbox(clock: Clock):
    """Start Together sandboxes with any knobs: `sb = await make_together_sandbox(fail_jobs_with="...")`."""
    from sandbox.together import TogetherSandbox

    started = []

    async def make(**knobs):
        sandbox = TogetherSandbox(**{"api_key": TOGETHER_API_KEY, "clock_speed": 600, "clock": clock, **knobs})
        await sandbox.start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        await sandbox.stop()


@pytest.fixture
async def together_sandbox(make_together_sandbox):
    """A started Together sandbox (key TOGETHER_API_KEY, clock at 600x: a job takes about 0.1 s)."""
    return await make_together_sandbox()


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    """A private Ray head on 127.0.0.1 (sandbox/ray), shared by the session's trainer=ray tests, stopped by pid."""
    from sandbox.ray import RayHead

    with RayHead(log_path=tmp_path_factory.mktemp("ray") / "head.log") as head:
        yield head


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory) -> Path:
    """A tiny Llama with a tokenizer learnt from the bundled tickets CSV (no downloads): the trainer=ray student."""
    from bot.examples import TICKETS_CSV
    from sandbox.ray import build_tiny_model

    texts = TICKETS_CSV.read_text(encoding="utf-8").splitlines()
    return build_tiny_model([*texts, '{"label":"Software"}'], tmp_path_factory.mktemp("tiny") / "base")


def ray_env(head, storage: Path, **env: str) -> dict[str, str]:
    """Settings that train on the local head on CPU at $2.50 a device-hour, files in `storage`."""
    return {"RAY_ADDRESS": head.url, "DISTILL_RAY_STORAGE": str(storage), "DISTILL_RAY_GPUS": "0",
            "DISTILL_GPU_HOUR_USD": "2.50", **env}
