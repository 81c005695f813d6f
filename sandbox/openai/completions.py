"""`/v1/chat/completions`: create (rate-limited, logged, stored when `store` is true), list and retrieve."""

from __future__ import annotations

from aiohttp import web

from sandbox.openai.chat import ChatEngine
from sandbox.openai.errors import bad_request, not_found
from sandbox.openai.paging import limit_param, list_body, page
from sandbox.openai.params import json_body, metadata_filter
from sandbox.openai.ratelimit import RateLimiter
from sandbox.openai.requestlog import RECORD_KEY, RequestRecord


class Completions:
    def __init__(self, engine: ChatEngine, limiter: RateLimiter) -> None:
        self.engine = engine
        self.limiter = limiter
        self._stored: dict[str, tuple[str, dict]] = {}  # id -> (model as requested, stored completion)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self.create),
            web.get("/v1/chat/completions", self.list),
            web.get("/v1/chat/completions/{completion_id}", self.retrieve),
        ]

    async def create(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        record: RequestRecord = request[RECORD_KEY]
        record.model = body.get("model") if isinstance(body.get("model"), str) else None
        answer = self.engine.answer(body)
        record.metadata, record.messages_hash = answer.metadata, answer.messages_hash
        record.last_user_text = answer.last_user_text
        usage = answer.usage
        headers = self.limiter.charge(answer.request_model, usage["prompt_tokens"]
                                      + (answer.max_tokens or usage["completion_tokens"]))
        if answer.store:
            stored = {**answer.completion, "metadata": answer.metadata, "request_id": record.request_id}
            self._stored[stored["id"]] = (answer.request_model, stored)
        record.usage = {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
        return web.json_response(answer.completion, headers=headers)

    async def list(self, request: web.Request) -> web.Response:
        model = request.query.get("model")
        wanted = metadata_filter(request)
        order = request.query.get("order", "asc")
        if order not in ("asc", "desc"):
            raise bad_request(f"Invalid 'order': {order!r}. Expected 'asc' or 'desc'.", param="order")
        items = [c for asked, c in self._stored.values()
                 if (model is None or model in (asked, c["model"])) and wanted.items() <= c["metadata"].items()]
        if order == "desc":
            items.reverse()
        chunk, has_more = page(items, request.query.get("after"), limit_param(request), key=lambda c: c["id"])
        return web.json_response(list_body(chunk, has_more, cursor_ids=True))

    async def retrieve(self, request: web.Request) -> web.Response:
        completion_id = request.match_info["completion_id"]
        if completion_id not in self._stored:
            raise not_found(f"No chat completion found with id '{completion_id}'. Only completions created with "
                            "store=true can be retrieved.", param="completion_id")
        return web.json_response(self._stored[completion_id][1])
