"""SlackNotifier: bot.notify.Notifier over the Slack Web API.

The run card is the thread's root message. Its first showing posts it (and stores its ts, so a card whose
first post failed is posted by the next refresh); later showings edit it in place, at most once per
`card_interval` seconds per run, newest card wins. chat.update is a Tier 3 method (about 50 calls a minute,
https://docs.slack.dev/reference/methods/chat.update) and a collection refreshes the card on every
progress report, so edits in between are coalesced rather than sent. An edit Slack still rate-limits after the
client's retries is tried again later (the newest card still wins).

A card someone deleted is posted again as a new thread root and the run moves to that thread (Slack keeps
no thread under a deleted root without replies: posts into it get thread_not_found). Any other refusal
becomes a bot.notify.DeliveryError, which stages log and commands report, so a lost message never changes a
run's state.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.events import CodeSample, Event, TableReady
from bot.runs.cards import Card, build_card
from bot.runs.notify import DeliveryError
from handlers import messages
from handlers.mrkdwn import masked
from handlers.packer import Message, outgoing, section
from handlers.render import Renderer
from storage import Storage
from storage.runs import Run

log = logging.getLogger(__name__)

CARD_INTERVAL_SECONDS = 2.0
CARD_GONE = frozenset({"message_not_found", "cant_update_message"})
THREAD_GONE = frozenset({"thread_not_found"})


class SlackNotifier:
    def __init__(self, client: AsyncWebClient, renderer: Renderer, storage: Storage, *, secrets: Iterable[str] = (),
                 card_interval: float = CARD_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.renderer = renderer
        self.storage = storage
        self.secrets = tuple(secrets)
        self.card_interval = card_interval
        self.clock = clock
        self._pending: dict[int, tuple[int, Run, Card]] = {}  # run -> (its number in _shown, run, card)
        self._shown: dict[int, int] = {}  # how many cards of each run were shown: the newest wins
        self._last_edit: dict[int, float] = {}
        self._timers: dict[int, asyncio.Task] = {}  # runs whose next edit is scheduled but not started
        self._edits: set[asyncio.Task] = set()  # every edit task, scheduled or sending
        self._locks: dict[int, asyncio.Lock] = {}

    # ----- the card ----------------------------------------------------------------------------------------

    async def show_card(self, run: Run, card: Card) -> str | None:
        if not run.card_ts:
            run = await self.storage.runs.require(run.id)  # another call may have posted it meanwhile
        if not run.card_ts:
            async with self._lock(run.id):
                ts = await self.send(run.channel_id, None, self.renderer.card(run, card))
                self._last_edit[run.id] = self.clock()
            await self.storage.runs.update(run.id, thread_ts=ts, card_ts=ts)
            return ts
        self._shown[run.id] = self._shown.get(run.id, 0) + 1
        self._pending[run.id] = (self._shown[run.id], run, card)
        if run.id not in self._timers:
            delay = max(0.0, self._last_edit.get(run.id, -math.inf) + self.card_interval - self.clock())
            self._schedule(run.id, delay)
        return run.card_ts

    def _schedule(self, run_id: int, delay: float) -> None:
        task = asyncio.create_task(self._edit_after(run_id, delay), name=f"card-{run_id}")
        self._timers[run_id] = task
        self._edits.add(task)
        task.add_done_callback(self._edits.discard)

    async def _edit_after(self, run_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        # Taken off the books before sending, so a card shown while this edit is in flight gets its own turn.
        del self._timers[run_id]
        shown, run, card = self._pending.pop(run_id)
        async with self._lock(run_id):
            self._last_edit[run_id] = self.clock()
            run = await self.storage.runs.require(run_id)  # the card may have moved since this edit was queued
            try:
                await self.client.chat_update(channel=run.channel_id, ts=run.card_ts,
                                              **self._outgoing(self.renderer.card(run, card)))
            except SlackApiError as exc:
                error = exc.response.get("error")
                if error in CARD_GONE:
                    await self._repost_card(run, card)
                elif error == "ratelimited":
                    if self._shown[run_id] == shown:  # sent again only while no newer card was shown
                        retry_after = float(exc.response.headers.get("Retry-After", self.card_interval))
                        self._pending[run_id] = (shown, run, card)
                        if run_id not in self._timers:
                            self._schedule(run_id, max(retry_after, self.card_interval))
                else:
                    log.warning("could not update the card of run %s: %s", run_id, error)

    async def _repost_card(self, run: Run, card: Card) -> Run:
        """The card was deleted: post it as a new thread root, move the run there and say why in it."""
        try:
            ts = await self.send(run.channel_id, None, self.renderer.card(run, card))
            run = await self.storage.runs.update(run.id, thread_ts=ts, card_ts=ts)
            await self.send(run.channel_id, ts, Message(messages.card_moved(), [section(messages.card_moved())]))
        except SlackApiError as exc:
            log.warning("could not post the card of run %s again: %s", run.id, exc.response.get("error"))
        return run

    def _lock(self, run_id: int) -> asyncio.Lock:
        return self._locks.setdefault(run_id, asyncio.Lock())

    async def idle(self) -> None:
        """Wait until every scheduled card edit has been sent."""
        while self._edits:
            await asyncio.gather(*list(self._edits), return_exceptions=True)

    async def close(self) -> None:
        """Send the waiting card edits now, without waiting out the interval (shutdown keeps the newest card)."""
        for run_id, timer in list(self._timers.items()):
            timer.cancel()
            self._schedule(run_id, 0.0)
        await self.idle()

    # ----- the thread --------------------------------------------------------------------------------------

    async def post(self, run: Run, event: Event) -> str | None:
        run = await self.storage.runs.require(run.id)  # the thread moves when its card was deleted
        first = None
        for message in self.renderer.event(run, event):
            ts = await self._delivered(run, lambda run=run, message=message: self.send(
                run.channel_id, run.thread_ts, message))
            first = first or ts
        if isinstance(event, TableReady) and event.chart is not None:
            await self.upload(run, event.chart, event.title)
        if isinstance(event, CodeSample) and event.file is not None:
            await self.upload(run, event.file, event.file_title)
        return first

    async def update(self, run: Run, ts: str, event: Event) -> None:
        [message, *_] = self.renderer.event(run, event)
        await self._delivered(run, lambda run: self.client.chat_update(channel=run.channel_id, ts=ts,
                                                                        **self._outgoing(message)))

    async def upload(self, run: Run, path: Path, title: str) -> None:
        run = await self.storage.runs.require(run.id)
        await self._delivered(run, lambda run: self.client.files_upload_v2(
            channel=run.channel_id, thread_ts=run.thread_ts, file=str(path), filename=path.name,
            title=masked(title, self.secrets)))

    async def _delivered(self, run: Run, call: Callable[[Run], Awaitable[Any]]) -> Any:
        """Make a call into the run's thread; a thread lost with its deleted card moves to a new card first.
        Refusals become DeliveryError, with the fix when the workspace can make one."""
        try:
            try:
                return await call(run)
            except SlackApiError as exc:
                if exc.response.get("error") not in THREAD_GONE:
                    raise
                run = await self._repost_card(run, await build_card(self.storage, run))
                return await call(run)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            explained = messages.slack_refused(error, exc.response.get("needed"))
            raise DeliveryError(explained or f"Slack refused a message for run '{run.name}' ({error}).",
                                reason=error) from exc

    async def send(self, channel: str, thread_ts: str | None, message: Message) -> str:
        """Post one message (into a thread when thread_ts is given); returns its ts."""
        reply = await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, unfurl_links=False,
                                                   unfurl_media=False, **self._outgoing(message))
        return reply["ts"]

    def _outgoing(self, message: Message) -> dict:
        return outgoing(message, self.secrets)
