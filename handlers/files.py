"""CSV files shared in a run's thread: checked by what Slack says about them, downloaded with the bot token,
handed to the run.

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

from bot.datasets import check_size
from bot.errors import DistillError
from bot.events import DatasetRefused
from handlers import messages
from handlers.surface import Surface

SLACK_FILE_HOSTS = frozenset({"files.slack.com"})
CSV_EXTENSIONS = (".csv", ".tsv")
CHUNK_BYTES = 1 << 16


class FileRefused(DistillError):
    """A shared file cannot be used; the message says why."""


def is_csv(file: dict[str, Any]) -> bool:
    return file.get("filetype") == "csv" or str(file.get("name", "")).lower().endswith(CSV_EXTENSIONS)


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


def file_share_listener(surface: Surface, files: SlackFiles) -> Callable[..., Awaitable[None]]:
    async def on_file_share(event: dict[str, Any]) -> None:
        channel, thread_ts = event.get("channel", ""), event.get("thread_ts")
        if not thread_ts:
            return
        for file in event.get("files", []):
            surface.spawn(*_ingest(surface, files, channel, thread_ts, event.get("user", ""), file))

    return on_file_share


def _ingest(surface: Surface, files: SlackFiles, channel: str, thread_ts: str, user: str,
            file: dict[str, Any]) -> tuple[Awaitable[None], Callable[[str, str | None], Awaitable[None]]]:
    """The work of taking one shared file, and how its failure is told in the thread."""
    name = str(file.get("name") or file.get("title") or file.get("id", "file"))
    found: list[Any] = []

    async def work() -> None:
        run = await surface.service.storage.runs.by_thread(channel, thread_ts)
        if run is None:  # a file shared in some other thread: not ours to take
            return
        found.append(run)
        if not is_csv(file):
            raise FileRefused(messages.not_a_csv(str(file.get("pretty_type") or file.get("filetype") or "not text")))
        check_size(int(file.get("size") or 0), name, surface.settings.max_csv_bytes)
        data = await files.download(file, name=name, max_bytes=surface.settings.max_csv_bytes)
        await surface.service.attach_csv(run, data=data, filename=name, user=user)

    async def report(message: str, error_id: str | None) -> None:
        if found:
            await surface.notifier.post(found[0], DatasetRefused(name, message))

    return work(), report
