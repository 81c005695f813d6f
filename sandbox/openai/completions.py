"""`/v1/chat/completions`: create (rate-limited, logged, stored when `store` is true: sandbox/openai/stored.py)."""

from __future__ import annotations

from aiohttp import web

from sandbox.openai.chat import ChatEngine
from sandbox.openai.params import json_body
from sandbox.openai.ratelimit import RateLimiter
from sandbox.openai.requestlog import RECORD_KEY, RequestRecord
from sandbox.openai.stored import StoredCompletions


class Completions:
    def __init__(self, engine: ChatEngine, limiter: RateLimiter) -> None:
        self.engine = engine
        self.limiter = limiter
        self.stored = StoredCompletions(engine.clock)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/chat/completions", self.create), *self.stored.routes()]

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
            self.stored.add(answer.request_model, answer.completion, body["messages"], answer.metadata,
                            record.request_id)
        record.usage = {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
        return web.json_response(answer.completion, headers=headers)
