"""One shell session: the sandbox Slack (and OpenAI, unless a real endpoint is given; and Together, unless the
session's trainer is openai), a database, the real app from `build_bot`, and the steps of the script language
carried out against them.

The app is the production one: Bolt listeners, storage, run service and scheduler. Only Slack, OpenAI and Together
are replaced, by the local servers in sandbox/, and the people are played by the SlackDriver, which sends the app
the signed requests Slack would send. Everything the app posts is rendered to `out` as it happens.
"""

from __future__ import annotations

import asyncio
import shlex
import tempfile
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.logs import configure_logging
from bot.trainers import BACK_ENDS
from handlers.wiring import Bot, build_bot
from sandbox.openai import OpenAISandbox
from sandbox.ray.standin import RUN_SETTINGS as RAY_RUN_SETTINGS
from sandbox.shell import script
from sandbox.shell.render import Renderer
from sandbox.shell.standins import start_stand_ins
from sandbox.shell.transcript import Transcript
from sandbox.slack import SlackDriver, SlackEvent, SlackSandbox
from storage.runs import Run

WAIT_POLL_SECONDS = 0.05
CAST = ("alice", "bob", "carol")  # in the workspace from the start, so mentions of them show their names
# Settings a session sets unless the environment gives them: bob and carol may approve (so alice can ask and
# someone else decide), training jobs are polled often enough for a sandbox job of a few seconds, and the
# logs stay out of the conversation.
SESSION_DEFAULTS = {"DISTILL_APPROVERS": "U0BOB,U0CAROL", "DISTILL_POLL_SECONDS": "1", "LOG_LEVEL": "WARNING"}
# The sandbox OpenAI answers in milliseconds: the bot's own pacing (500 requests a minute by default) would be
# the slowest part of a session. A real endpoint keeps the environment's pacing.
SANDBOX_DEFAULTS = {"DISTILL_RPM": "20000", "DISTILL_TPM": "20000000"}
# What the session always decides: the Slack stand-in's credentials, the database and no Socket Mode.
SESSION_OWNS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "DISTILL_DB")
FAILED_STATES = ("failed", "cancelled")


class StepError(Exception):
    """A step could not be carried out (no such run, no such button, a wait that timed out)."""


@dataclass
class SessionOptions:
    db: Path | None = None  # None: a fresh database in a new temporary folder
    openai_url: str | None = None  # a real OpenAI-compatible endpoint (OPENAI_API_KEY from env) instead of the sandbox
    trainer: str | None = None  # set on every run the session creates (None: the runs' default, DISTILL_TRAINER)
    transcript: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # the environment the settings are read from
    clock_speed: float = 60.0  # how much faster sandbox fine-tuning jobs run than real time
    today: str | None = None  # YYYY-MM-DD: the stand-ins and the app run as if it were that day (None: today)
    seed: int = 0
    card_interval: float = 1.0  # seconds between edits of one run card (the app's throttle)
    base_dir: Path = field(default_factory=Path.cwd)  # where relative :upload paths are found
    user: str = "alice"
    channel: str = "general"


def session_trainer(options: SessionOptions) -> str:
    """Where the session's runs train: --trainer, else DISTILL_TRAINER of the environment, else the bot's default."""
    return options.trainer or options.env.get("DISTILL_TRAINER") or Settings().trainer


def session_env(options: SessionOptions, slack: SlackSandbox, db: Path, stand_ins: Mapping[str, str],
                sandbox_openai: bool) -> dict[str, str]:
    """The variables the app's Settings are read from: the environment's, then the session's defaults under
    them and its own choices over them. `stand_ins` are the settings of the sandbox servers; without the
    sandbox OpenAI (a real endpoint) the environment's key is kept."""
    env = {k: v for k, v in options.env.items() if k not in SESSION_OWNS}
    env.update(SLACK_BOT_TOKEN=slack.bot_token, SLACK_SIGNING_SECRET=slack.signing_secret, DISTILL_DB=str(db))
    env.setdefault("DISTILL_DATA_DIR", str(db.with_name(f"{db.stem}-data")))
    defaults = dict(SESSION_DEFAULTS)
    env.update(stand_ins)
    if sandbox_openai:
        defaults.update(SANDBOX_DEFAULTS)
    if options.openai_url:  # inference and OpenAI fine-tuning both go there
        env["OPENAI_BASE_URL"] = options.openai_url
    return {**defaults, **env}


def _ts_key(ts: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ts.split("."))


def _button_value(message: dict[str, Any], action: str) -> tuple[bool, str | None]:
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                if element.get("action_id") == action:
                    return True, element.get("value")
    return False, None


def _actions(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message.get("blocks") or [] if b.get("type") == "actions"
            for e in b.get("elements", []) if e.get("action_id")]


class Session:
    def __init__(self, *, bot: Bot, slack: SlackSandbox, openai: OpenAISandbox | None, settings: Settings,
                 options: SessionOptions, out: TextIO, transcript: Transcript | None, stack: AsyncExitStack,
                 trainer_stand_in: bool = False) -> None:
        self.bot = bot
        self.slack = slack
        self.openai = openai  # None with a real endpoint
        self.trainer_stand_in = trainer_stand_in  # the session serves its trainer's stand-in (Together's)
        self.settings = settings
        self.options = options
        self.out = out
        self.transcript = transcript
        self.driver = SlackDriver(slack, deliver=bot.app)
        self.user = options.user
        self.channel = options.channel
        self.last_run: Run | None = None
        self._stack = stack
        workspace = slack.workspace
        self.renderer = Renderer(lambda uid: workspace.users[uid]["name"] if uid in workspace.users else uid,
                                 lambda cid: workspace.channels[cid].name if cid in workspace.channels else cid)
        slack.subscribe(self._show)  # for the sandbox's whole life: it is stopped and dropped with the session

    @classmethod
    async def open(cls, options: SessionOptions, out: TextIO) -> Session:
        """Start the stand-ins and the app; closing the session stops them all, the app first."""
        db = options.db or Path(tempfile.mkdtemp(prefix="distill-shell-")) / "distill.db"
        async with AsyncExitStack() as stack:
            slack = SlackSandbox()
            await slack.start()
            stack.push_async_callback(slack.stop)
            for name in CAST:
                slack.user(name)
            clock = Clock.at(options.today) if options.today else Clock()
            openai, stand_ins = await start_stand_ins(stack, trainer=session_trainer(options), seed=options.seed,
                                                      clock_speed=options.clock_speed, clock=clock,
                                                      openai=not options.openai_url)
            settings = Settings.from_env(session_env(options, slack, db, stand_ins, openai is not None))
            configure_logging(settings)
            transcript = Transcript(options.transcript) if options.transcript else None
            if transcript:
                stack.callback(lambda: transcript.close(slack.calls))  # after the app's last calls
            bot = await build_bot(settings, slack_api_url=slack.api_url, card_interval=options.card_interval,
                                  clock=clock)
            stack.push_async_callback(bot.close)
            session = cls(bot=bot, slack=slack, openai=openai, settings=settings, options=options, out=out,
                          transcript=transcript, stack=stack.pop_all(),
                          trainer_stand_in=any(not k.startswith("OPENAI_") for k in stand_ins))
        try:
            await bot.start()
        except BaseException:
            await session.close()
            raise
        return session

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._stack.aclose()

    @property
    def prompt(self) -> str:
        return f"{self.user}@#{self.channel}> "

    def _show(self, event: SlackEvent) -> None:
        text = self.renderer.render(event)
        if text is not None:
            print(text, file=self.out, flush=True)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # ----- steps --------------------------------------------------------------------------------------------

    async def run(self, step: script.Step) -> None:
        """Carry out one step and wait until the app has nothing left to post; StepError when it cannot."""
        try:
            match step:
                case script.Command(text):
                    await self._command(text)
                case script.As(user):
                    self.user = self.slack.user(user)["name"]
                case script.Channel(name):
                    self.channel = self.slack.channel(name).name
                case script.Upload(path, run):
                    await self._upload(path, run)
                case script.Click(action, run):
                    await self._click(action, run)
                case script.Wait(state, run, seconds):
                    await self._wait(state, run, seconds)
                case script.Sleep(seconds):
                    await asyncio.sleep(seconds)
            await self.bot.idle()
        except (LookupError, OSError, ValueError) as exc:
            raise StepError(str(exc)) from exc
        finally:
            if self.transcript:
                self.transcript.write(self.slack.calls)

    async def _command(self, text: str, *, channel: str | None = None) -> None:
        channel_id = self.slack.channel(channel or self.channel).id
        created = await self._new_run_name(text, channel_id)
        reply = await self.driver.slash_command(user=self.user, channel=channel_id, text=text)
        if reply.status != 200:
            raise StepError(f"the app answered HTTP {reply.status}: {reply.body}")
        await self.bot.idle()
        if created and (run := await self.bot.storage.runs.by_name(channel_id, created)):
            self.last_run = run
            if self.options.trainer:
                setting = f"set {shlex.quote(run.name)} trainer={self.options.trainer}"
                back_end = BACK_ENDS.get(self.options.trainer)
                if back_end and back_end.default_student and run.spec.get("student") != back_end.default_student:
                    setting += f" student={back_end.default_student}"
                if self.options.trainer == "ray":  # the tiny student the session built, at the rate it learns at
                    setting += f" {RAY_RUN_SETTINGS}"
                self.say(f"(the shell, for --trainer {self.options.trainer}) /distill {setting}")
                await self._command(setting, channel=channel_id)

    async def _new_run_name(self, text: str, channel_id: str) -> str | None:
        """The name a `new NAME` command would create, when no run has it yet."""
        words = text.split()
        if len(words) == 2 and words[0].lower() == "new":
            return None if await self.bot.storage.runs.by_name(channel_id, words[1]) else words[1]
        return None

    async def _run(self, name: str | None) -> Run:
        """The named run of the current channel, or the last run this session created."""
        if name is None:
            if self.last_run is None:
                raise StepError("no run created in this session yet: name one (e.g. :wait done tickets) "
                                "or create one with /distill new NAME")
            return await self.bot.storage.runs.require(self.last_run.id)
        channel_id = self.slack.channel(self.channel).id
        run = await self.bot.storage.runs.by_name(channel_id, name)
        if run is None:
            names = ", ".join(r.name for r in await self.bot.storage.runs.in_channel(channel_id)) or "none"
            raise StepError(f"no run named {name!r} in #{self.channel} (runs here: {names})")
        return run

    async def _upload(self, path: str, run_name: str | None) -> None:
        run = await self._run(run_name)
        file = await asyncio.to_thread(lambda: self.options.base_dir / Path(path).expanduser())
        if not await asyncio.to_thread(file.is_file):
            raise StepError(f"no file {file} to upload (relative paths start at {self.options.base_dir})")
        if not run.thread_ts:
            raise StepError(f"run {run.name!r} has no thread to share into (its card was never posted)")
        await self.driver.share_file(file, user=self.user, channel=run.channel_id, thread_ts=run.thread_ts)

    async def _click(self, action: str, run_name: str | None) -> None:
        run = await self._run(run_name) if run_name else None
        channel = self.slack.channel(run.channel_id if run else self.channel)
        user_id = self.slack.user(self.user)["id"]
        visible = [m for m in channel.messages.values() if self.slack.workspace.is_live(m)]
        visible += [e.message for e in self.slack.ephemerals(user_id, channel.id)]
        if run:
            visible = [m for m in visible if m.get("thread_ts", m["ts"]) == run.thread_ts
                       or _button_value(m, action)[1] == str(run.id)]
        candidates = [m for m in visible if _button_value(m, action)[0]]
        if not candidates:
            offered = sorted({a for m in visible for a in _actions(m)})
            where = f"run {run.name!r}" if run else f"#{channel.name}"
            raise StepError(f"no button {action!r} that {self.user} can see in {where}; buttons there now: "
                            f"{', '.join(offered) or 'none'}")
        message = max(candidates, key=lambda m: _ts_key(m["ts"]))
        reply = await self.driver.click(user=self.user, channel=channel.id, message_ts=message["ts"], action_id=action,
                                        value=_button_value(message, action)[1])
        if reply.status != 200:
            raise StepError(f"the app answered HTTP {reply.status}: {reply.body}")

    async def _wait(self, state: str, run_name: str | None, seconds: float) -> None:
        run = await self._run(run_name)
        deadline = time.monotonic() + seconds
        while run.state != state:
            if run.state in FAILED_STATES:
                reason = f": {run.error}" if run.error else ""
                raise StepError(f"run {run.name!r} is {run.state}, so it will not reach '{state}' by itself{reason}")
            if time.monotonic() >= deadline:
                raise StepError(f"run {run.name!r} did not reach '{state}' within {seconds:g} s (it is '{run.state}')")
            await asyncio.sleep(WAIT_POLL_SECONDS)
            if self.transcript:
                self.transcript.write(self.slack.calls)
            run = await self.bot.storage.runs.require(run.id)
