"""TogetherSandbox: the aiohttp app that puts the Together-shaped resources behind a bearer key on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.clock import Clock
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
from sandbox.together.catalog import TogetherCatalog
from sandbox.together.endpoints import Endpoints
from sandbox.together.files import TogetherFiles
from sandbox.together.finetunes import FineTunes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_UPLOAD_BYTES = 64 * 1024 * 1024


class TogetherSandbox:
    """A Together-shaped API on 127.0.0.1 for tests and the shell. See sandbox/together/__init__.py."""

    def __init__(self, api_key: str = "together-sandbox-key", seed: int = 0, clock_speed: float = 1.0,
                 fail_jobs_with: str | None = None, clock: Clock | None = None) -> None:
        self.api_key = api_key
        self.requests = RequestLog()
        self.clock = JobClock(clock_speed, clock)
        self.faults = Faults(seed)
        files = Files(self.clock)
        self.catalog = TogetherCatalog(deployed=lambda: self.endpoints.deployed(),
                                       used=lambda model: self.endpoints.touch(model), today=self.clock.today)
        self.fine_tunes = FineTunes(files, self.catalog, self.clock, fail_jobs_with)
        self.endpoints = Endpoints(self.fine_tunes, self.clock)
        self.files = TogetherFiles(files)
        self.completions = Completions(ChatEngine(self.catalog, self.clock, seed), RateLimiter())
        self.url: str | None = None
        self._runner: web.AppRunner | None = None

    def inject(self, path_prefix: str, status: int = 500, count: int = 1) -> None:
        """Answer the next `count` requests under `path_prefix` with HTTP `status` (429, 500 or 503)."""
        self.faults.inject(path_prefix, status, count)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=_MAX_UPLOAD_BYTES)
        app.add_routes([*self.files.routes(), *self.fine_tunes.routes(), *self.endpoints.routes(),
                        *self.catalog.routes(self.endpoints.parent_of), *self.completions.routes()])
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = a free port) and return the base URL, ending in /v1."""
        self._runner, root = await serve(self.app(), host, port)
        self.url = f"{root}/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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
        self._authorize(request)
        injection = self.faults.take_injection(request.path, request.method)
        if injection is not None:
            record.fault = f"injected {injection.outcome}"
            raise server_error(int(injection.outcome)) if injection.outcome != 429 else APIError(
                429, "Rate limit reached (injected by the sandbox).", type="rate_limit_exceeded",
                headers={"retry-after": "1"})
        return await handler(request)

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if header.removeprefix("Bearer ").strip() != self.api_key or not header.startswith("Bearer "):
            # Together's 401 names where keys live; like the OpenAI sandbox, it never echoes the key sent.
            raise APIError(401, "Invalid API key provided. You can find your API key at "
                           "https://api.together.ai/settings/api-keys.", code="invalid_api_key")
