"""TogetherSandbox: the aiohttp app that puts the Together-shaped resources behind a bearer key on 127.0.0.1."""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.core.clock import Clock
from sandbox.openai.chat import ChatEngine
from sandbox.openai.clock import JobClock
from sandbox.openai.completions import Completions
from sandbox.openai.errors import APIError, error_response_on_failure, server_error
from sandbox.openai.faults import Faults
from sandbox.openai.files import Files
from sandbox.openai.ids import request_id
from sandbox.openai.ratelimit import RateLimiter
from sandbox.openai.requestlog import RECORD_KEY, RequestLog, RequestRecord
from sandbox.serving import serve
from sandbox.together.catalog import PROJECT_ID, PROJECT_SLUG, TogetherCatalog
from sandbox.together.deployments import Deployments
from sandbox.together.files import UPLOAD_PATH, TogetherFiles
from sandbox.together.finetunes import FineTunes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_UPLOAD_BYTES = 64 * 1024 * 1024


class TogetherSandbox:
    """A Together-shaped API on 127.0.0.1 for tests and the shell. See sandbox/together/__init__.py."""

    def __init__(self, api_key: str = "together-sandbox-key", seed: int = 0, clock_speed: float = 1.0,
                 fail_jobs_with: str | None = None, fail_deployments_with: str | None = None,
                 clock: Clock | None = None) -> None:
        self.api_key = api_key
        self.requests = RequestLog()
        self.clock = JobClock(clock_speed, clock)
        self.faults = Faults(seed)
        self.files = TogetherFiles(Files(self.clock), secret=secrets.token_hex(16))
        self.catalog = TogetherCatalog(routed=lambda model: self.deployments.routed(model), today=self.clock.today)
        self.fine_tunes = FineTunes(self.files, self.catalog, self.clock, fail_jobs_with)
        self.deployments = Deployments(self.fine_tunes, self.catalog, self.clock, fail_deployments_with)
        self.completions = Completions(ChatEngine(self.catalog, self.clock, seed), RateLimiter())
        self.url: str | None = None
        self._runner: web.AppRunner | None = None

    @property
    def v1_url(self) -> str:
        """The OpenAI-compatible base URL (ending in /v1), for an OpenAI client of its chat completions."""
        assert self.url is not None, "start the sandbox first"
        return f"{self.url}/v1"

    def inject(self, path_prefix: str, outcome: int | str = 500, count: int = 1, method: str | None = None,
               retry_after: float = 1) -> None:
        """Answer the next `count` requests under `path_prefix` (of `method`, or any) with HTTP 429 (with
        `retry-after` and `retry-after-ms`), 500 or 503; or "lost": carry the request out, then answer 502, as when
        a gateway drops the reply of a call that went through."""
        self.faults.inject(path_prefix, outcome, count, retry_after=retry_after, method=method)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=_MAX_UPLOAD_BYTES)
        app.add_routes([*self.files.routes(), *self.fine_tunes.routes(), *self.deployments.routes(),
                        *self.catalog.routes(self.deployments.base_of), *self.completions.routes(),
                        web.get("/v3/whoami", self._whoami)])
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = a free port) and return the base URL, like https://api.together.ai (no /v1:
        together-py 3.x puts the version in each path)."""
        self._runner, self.url = await serve(self.app(), host, port)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _whoami(self, request: web.Request) -> web.Response:
        """GET /v3/whoami for a project API key (together-py 3.1.1 types/whoami_project_api_key.py)."""
        return web.json_response({
            "type": "project_api_key", "api_key": {"id": "key_sandbox"},
            "organization": {"id": "org_sandbox", "name": "distill-bot sandbox"},
            "project": {"id": PROJECT_ID, "name": "distill-bot sandbox", "slug": PROJECT_SLUG},
        })

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = RequestRecord(self.clock.now(), request.method, request.path, request_id())
        request[RECORD_KEY] = record
        response = await error_response_on_failure(request, self._answer(request, handler, record))
        record.status = response.status
        record.paid = response.status == 200 and record.usage is not None
        self.requests.append(record)
        return response

    async def _answer(self, request: web.Request, handler: Handler, record: RequestRecord) -> web.StreamResponse:
        if not request.path.startswith(UPLOAD_PATH):  # a signed upload URL carries its own authorization
            self._authorize(request)
        injection = self.faults.take_injection(request.path, request.method)
        if injection is not None:
            record.fault = f"injected {injection.outcome}"
            if injection.outcome == "lost":
                await handler(request)
                raise server_error(502)
            if injection.outcome == 429:
                wait = injection.retry_after
                raise APIError(429, "Rate limit reached (injected by the sandbox).", type="rate_limit_exceeded",
                               headers={"retry-after": str(max(1, math.ceil(wait))),
                                        "retry-after-ms": str(math.ceil(wait * 1000))})
            raise server_error(int(injection.outcome))
        return await handler(request)

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if header.removeprefix("Bearer ").strip() != self.api_key or not header.startswith("Bearer "):
            # Together's 401 names where keys live; like the OpenAI sandbox, it never echoes the key sent.
            raise APIError(401, "Invalid API key provided. You can find your API key at "
                           "https://api.together.ai/settings/api-keys.", code="invalid_api_key")
