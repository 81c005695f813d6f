"""Stored chat completions: what a `store: true` request leaves behind, and the endpoints that read it back.

OpenAI keeps a chat completion created with `store: true` (and only those) for 30 days (the retention its
dashboard shows for stored completions, and issue 17's premise), lists it with `model` and
`metadata[key]=value` filters in cursor pages (`after` is the last id of the previous page, `order` by creation
time, asc by default), and serves the request's messages at `/v1/chat/completions/{id}/messages` in pages of
their own, each message with an id `<completion id>-<index>`. The sandbox does the same by its clock (the test's
pinned one), so advancing the clock past 30 days makes a completion disappear from every endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sandbox.openai.clock import JobClock
from sandbox.openai.errors import bad_request, not_found
from sandbox.openai.paging import limit_param, list_body, page
from sandbox.openai.params import metadata_filter
from sandbox.openai.usage import content_text

RETENTION_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Stored:
    requested_model: str
    completion: dict  # the completion as OpenAI returns it when listed: with metadata and request_id
    messages: tuple[dict, ...]  # the request's messages

    @property
    def created(self) -> int:
        return int(self.completion["created"])


def _order(request: web.Request) -> str:
    order = request.query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise bad_request(f"Invalid 'order': {order!r}. Expected 'asc' or 'desc'.", param="order")
    return order


def stored_message(completion_id: str, index: int, message: dict) -> dict:
    """One request message as the messages endpoint shows it: text content, and its parts when it had parts."""
    content = message.get("content")
    parts = content if isinstance(content, list) else None
    return {"id": f"{completion_id}-{index}", "role": message.get("role"), "content": content_text(content),
            "name": message.get("name"), "content_parts": parts}


class StoredCompletions:
    def __init__(self, clock: JobClock) -> None:
        self.clock = clock
        self._stored: dict[str, Stored] = {}  # by id, in creation order

    def add(self, requested_model: str, completion: dict, messages: list[dict], metadata: dict[str, str],
            request_id: str) -> None:
        listed = {**completion, "metadata": dict(metadata), "request_id": request_id}
        self._stored[completion["id"]] = Stored(requested_model, listed, tuple(messages))

    def live(self) -> list[Stored]:
        """What is still kept: completions created within the last 30 days of the sandbox's clock."""
        oldest = self.clock.now() - RETENTION_SECONDS
        for gone in [key for key, item in self._stored.items() if item.created < oldest]:
            del self._stored[gone]
        return list(self._stored.values())

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/chat/completions", self.list),
            web.get("/v1/chat/completions/{completion_id}", self.retrieve),
            web.get("/v1/chat/completions/{completion_id}/messages", self.messages),
        ]

    def _get(self, completion_id: str) -> Stored:
        found = {item.completion["id"]: item for item in self.live()}.get(completion_id)
        if found is None:
            raise not_found(f"No chat completion found with id '{completion_id}'. Only completions created with "
                            "store=true in the last 30 days can be retrieved.", param="completion_id")
        return found

    async def list(self, request: web.Request) -> web.Response:
        model = request.query.get("model")
        wanted = metadata_filter(request)
        order = _order(request)
        items = [s.completion for s in sorted(self.live(), key=lambda s: s.created)
                 if (model is None or model in (s.requested_model, s.completion["model"]))
                 and wanted.items() <= s.completion["metadata"].items()]
        if order == "desc":
            items.reverse()
        chunk, has_more = page(items, request.query.get("after"), limit_param(request), key=lambda c: c["id"])
        return web.json_response(list_body(chunk, has_more, cursor_ids=True))

    async def retrieve(self, request: web.Request) -> web.Response:
        return web.json_response(self._get(request.match_info["completion_id"]).completion)

    async def messages(self, request: web.Request) -> web.Response:
        completion_id = request.match_info["completion_id"]
        stored = self._get(completion_id)
        items = [stored_message(completion_id, i, m) for i, m in enumerate(stored.messages)]
        if _order(request) == "desc":
            items.reverse()
        chunk, has_more = page(items, request.query.get("after"), limit_param(request), key=lambda m: m["id"])
        return web.json_response(list_body(chunk, has_more, cursor_ids=True))
