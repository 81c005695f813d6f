"""Files shared in a run's thread: checked by what Slack says about them, downloaded with the bot token, handed to
the run: a CSV or a JSONL of examples, or a .json JSON Schema of an extract run's answers. The message's text says
what a data file is for: nothing (the run's data), `eval` (a separate eval file) or `watch` (the distilled model's
answers for its watch).

Slack's file URLs need the bot token in an Authorization header
(https://docs.slack.dev/messaging/working-with-files#authenticating); without the files:read scope the same URL
answers 200 with an HTML sign-in page, which must not be mistaken for a CSV. The token is only ever sent to
Slack's own file host (or the Web API's host, for a local Slack), and a file over the size limit is refused by
the size Slack reports, before any byte is downloaded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.core.errors import DistillError
from bot.core.events import DatasetRefused
from bot.data.datasets import check_size
from handlers import messages
from handlers.surface import Surface
from storage.runs import Run

SLACK_FILE_HOSTS = frozenset({"files.slack.com"})
CSV_EXTENSIONS = (".csv", ".tsv")
JSON_EXTENSIONS = (".json",)
MAX_SCHEMA_BYTES = 1 << 20  # a JSON Schema within OpenAI's limits is far smaller (120,000 characters of names)
JSONL_EXTENSIONS = (".jsonl", ".ndjson")  # Slack calls them Plain Text (filetype "text")
PURPOSES = ("eval", "watch")
CHUNK_BYTES = 1 << 16


class FileRefused(DistillError):
    """A shared file cannot be used; the message says why."""


def is_csv(file: dict[str, Any]) -> bool:
    return file.get("filetype") == "csv" or str(file.get("name", "")).lower().endswith(CSV_EXTENSIONS)


def is_json(file: dict[str, Any]) -> bool:
    return file.get("filetype") == "json" or str(file.get("name", "")).lower().endswith(JSON_EXTENSIONS)


def is_jsonl(file: dict[str, Any]) -> bool:
    return str(file.get("name", "")).lower().endswith(JSONL_EXTENSIONS)


def purpose(event: dict[str, Any]) -> str | None:
    """What the message sharing the file says it is for (`eval`, `watch`), or None for the run's data."""
    text = str(event.get("text") or "").strip().lower()
    return text if text in PURPOSES else None


class SlackFiles:
    """Downloads of shared files, with the bot token, from Slack's hosts only."""

    def __init__(self, token: str, *, api_url: str) -> None:
        self._headers = {"Authorization": f"Bearer {token}"}
        self.hosts = SLACK_FILE_HOSTS | {urlsplit(api_url).netloc}
        self._session: aiohttp.ClientSession | None = None

    async def download(self, file: dict[str, Any], *, name: str, max_bytes: int) -> bytes:
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        if urlsplit(url).scheme not in ("https", "http") or urlsplit(url).netloc not in self.hosts:
            raise FileRefused(messages.foreign_url())
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
        async with self._session.get(url, headers=self._headers) as response:
            if response.status != 200:
                raise FileRefused(messages.download_failed(response.status))
            if response.content_type == "text/html":
                raise FileRefused(messages.sign_in_page())
            data = bytearray()
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                data += chunk
                check_size(len(data), name, max_bytes)  # Slack's `size` was checked; this guards the stream too
        return bytes(data)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class SharedFile:
    """One file shared in a channel: taken into the run whose thread it is in, or left alone."""

    def __init__(self, surface: Surface, files: SlackFiles, event: dict[str, Any], file: dict[str, Any]) -> None:
        self.surface, self.files, self.event, self.file = surface, files, event, file
        self.name = str(file.get("name") or file.get("title") or file.get("id", "file"))
        self.run: Run | None = None

    async def take(self) -> None:
        self.run = await self.surface.service.run_of_thread(self.event["channel"], self.event["thread_ts"])
        if self.run is None:  # a file shared in some other thread: not ours to take
            return
        if is_json(self.file):
            check_size(int(self.file.get("size") or 0), self.name, MAX_SCHEMA_BYTES)
            data = await self.files.download(self.file, name=self.name, max_bytes=MAX_SCHEMA_BYTES)
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise FileRefused(messages.schema_not_utf8()) from None
            await self.surface.service.attach_schema(self.run, text=text, filename=self.name,
                                                     user=self.event.get("user", ""))
            return
        jsonl = is_jsonl(self.file)
        if not jsonl and not is_csv(self.file):
            kind = str(self.file.get("pretty_type") or self.file.get("filetype") or "not text")
            raise FileRefused(messages.not_a_csv(kind))
        limit = self.surface.settings.max_csv_bytes
        check_size(int(self.file.get("size") or 0), self.name, limit)
        data = await self.files.download(self.file, name=self.name, max_bytes=limit)
        service, user, used_for = self.surface.service, self.event.get("user", ""), purpose(self.event)
        if used_for == "eval":
            await service.eval_files.attach(self.run, data=data, filename=self.name, user=user)
        elif used_for == "watch":
            await service.watch.attach_file(self.run, data=data, filename=self.name, user=user)
        elif jsonl:
            await service.imports.attach_jsonl(self.run, data=data, filename=self.name, user=user)
        else:
            await service.attach_csv(self.run, data=data, filename=self.name, user=user)

    async def report(self, message: str, error_id: str | None) -> None:
        """A refusal or a failure, told in the run's thread (the error id, if any, is in the message)."""
        if self.run is not None:
            await self.surface.notifier.post(self.run, DatasetRefused(self.name, message))


def file_share_listener(surface: Surface, files: SlackFiles) -> Callable[..., Awaitable[None]]:
    async def on_file_share(event: dict[str, Any]) -> None:
        if not event.get("thread_ts"):
            return
        for file in event.get("files", []):
            shared = SharedFile(surface, files, event, file)
            surface.spawn(shared.take(), shared.report)

    return on_file_share
