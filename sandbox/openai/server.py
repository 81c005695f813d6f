"""OpenAISandbox: the aiohttp app that puts the sandbox's resources behind OpenAI's auth, errors and headers."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from bot.core.clock import Clock
from sandbox.openai.batches import Batches
from sandbox.openai.chat import ChatEngine
from sandbox.openai.clock import JobClock
from sandbox.openai.completions import Completions
from sandbox.openai.embeddings import Embeddings
from sandbox.openai.errors import APIError, error_response_on_failure, server_error
from sandbox.openai.faults import Faults, Injection
from sandbox.openai.files import Files
from sandbox.openai.finetuning import FineTuning
from sandbox.openai.ids import request_id
from sandbox.openai.models import ModelCatalog, model_routes
from sandbox.openai.ratelimit import RateLimiter
from sandbox.openai.requestlog import RECORD_KEY, RequestLog, RequestRecord
from sandbox.serving import serve

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # OpenAI's per-file upload limit
_TIMEOUT_HOLD_SECONDS = 600.0


class OpenAISandbox:
    """An OpenAI-compatible API on 127.0.0.1 for tests, the shell and the demo. See sandbox/openai/__init__.py."""

    def __init__(
        self,
        api_key: str = "sk-sandbox",
        seed: int = 0,
        clock_speed: float = 1.0,
        rpm_limits: dict[str, int] | None = None,
        tpm_limits: dict[str, int] | None = None,
        fault_rate: float = 0.0,
        fault_statuses: Sequence[int] = (500, 503),
        slow_rate: float = 0.0,
        slow_seconds: float = 0.0,
        latency_seconds: float = 0.0,
        shutdown_dates: dict[str, str | None] | None = None,
        fail_jobs_with: str | None = None,
        expire_batches: bool = False,
        rate_window_seconds: float = 60.0,
        clock: Clock | None = None,
        reasoning_scale: dict[str, float] | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency_seconds = latency_seconds
        self.requests = RequestLog()
        self.clock = JobClock(clock_speed, clock)
        self.faults = Faults(seed, fault_rate, fault_statuses, slow_rate, slow_seconds)
        self.files = Files(self.clock)
        self.catalog = ModelCatalog(shutdown_dates, finetuned=lambda: self.fine_tuning.succeeded_models(),
                                    today=self.clock.today)
        self.fine_tuning = FineTuning(self.files, self.catalog, self.clock, fail_jobs_with)
        engine = self.engine = ChatEngine(self.catalog, self.clock, seed, reasoning_scale)
        self.completions = Completions(engine, RateLimiter(rpm_limits, tpm_limits, rate_window_seconds))
        self.embeddings = Embeddings(self.catalog, self.completions.limiter)
        self.batches = Batches(self.files, engine, self.clock, self.requests, expire_batches)
        self.url: str | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._gate = asyncio.Event()
        self._gate.set()
        self._held_prefix = ""
        self.held: list[dict[str, str]] = []  # the metadata of each request that waited at the closed gate

    def inject(self, path_prefix: str = "/v1/chat/completions", outcome: int | str = 500, count: int = 1,
               retry_after: float = 1, method: str | None = None) -> None:
        """Answer the next `count` requests under `path_prefix` (of `method`, or any) with `outcome` (429, 500,
        503, "malformed", "timeout" instead of the real handler; "lost" after it: see sandbox/openai/faults.py)."""
        self.faults.inject(path_prefix, outcome, count, retry_after, method)

    def set_reasoning_scale(self, model: str, factor: float) -> None:
        """Make a reasoning model (an id or a family) think `factor` times as long as it would (see chat.py)."""
        self.engine.reasoning_scale[model] = factor

    def hold(self, path_prefix: str = "/v1/chat/completions") -> None:
        """Keep the requests under `path_prefix` waiting, unanswered, until `release` (as a provider that stalls,
        then recovers at once): a test can line several clients up at one instant, whatever their start-up took."""
        self.held.clear()
        self._held_prefix = path_prefix
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def degrade(self, model: str, share: float) -> None:
        """Make a model (an id, such as a fine-tuned `ft:...`, or a family) answer `share` of its prompts wrongly,
        as a model whose quality dropped would (see chat.py); 0 restores it."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share is a fraction from 0 to 1, got {share}")
        self.engine.degraded[model] = share

    def reset(self) -> None:
        """Forget the request log, pending injections and rate-limit usage (stored objects stay)."""
        self.requests.clear()
        self.faults.clear()
        self.completions.limiter.reset()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=_MAX_UPLOAD_BYTES)
        app.add_routes([*self.completions.routes(), *self.embeddings.routes(), *self.files.routes(),
                        *self.fine_tuning.routes(), *self.batches.routes(), *model_routes(self.catalog),
                        web.get("/sandbox/requests", self._requests), web.post("/sandbox/reset", self._reset)])
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = a free port) and return the base URL, ending in /v1."""
        self._stopping.clear()
        self._runner, root = await serve(self.app(), host, port)
        self.url = f"{root}/v1"
        return self.url

    async def stop(self) -> None:
        self._stopping.set()  # releases requests held by an injected "timeout"
        self._gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OpenAISandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _requests(self, request: web.Request) -> web.Response:
        return web.json_response([r.as_json() for r in self.requests])

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = RequestRecord(self.clock.now(), request.method, request.path, request_id())
        request[RECORD_KEY] = record
        response = await error_response_on_failure(request, self._answer(request, handler, record))
        response.headers["x-request-id"] = record.request_id
        if request.path.startswith("/v1/"):
            record.status = response.status
            record.paid = response.status == 200 and record.usage is not None
            self.requests.append(record)
        return response

    async def _answer(self, request: web.Request, handler: Handler, record: RequestRecord) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        self._authorize(request)
        if not self._gate.is_set() and request.path.startswith(self._held_prefix):
            body = await request.json() if request.can_read_body else {}
            self.held.append(dict(body.get("metadata") or {}) if isinstance(body, dict) else {})
            await self._gate.wait()
        delay = self.latency_seconds + self.faults.random_delay()
        if delay:
            await asyncio.sleep(delay)
        injection = self.faults.take_injection(request.path, request.method)
        if injection is not None:
            record.fault = f"injected {injection.outcome}"
            if injection.outcome == "lost":
                await handler(request)
                raise server_error(502)
            return await self._injected(injection, request)
        status = self.faults.random_status()
        if status is not None:
            record.fault = f"random {status}"
            raise server_error(status)
        return await handler(request)

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[len("Bearer ") :].strip():
            raise APIError(401, "You didn't provide an API key. You need to provide your API key in an "
                           "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                           code="invalid_api_key")
        if header[len("Bearer ") :].strip() != self.api_key:
            # Unlike OpenAI, the message shows no part of the key: callers may log it.
            raise APIError(401, "Incorrect API key provided. Check the key the client sends (OPENAI_API_KEY).",
                           code="invalid_api_key")

    async def _injected(self, injection: Injection, request: web.Request) -> web.StreamResponse:
        if injection.outcome == "echo_key":
            key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if injection.status == 401:
                raise APIError(401, f"Incorrect API key provided: {key}. The gateway could not authenticate it.",
                               code="invalid_api_key")
            raise APIError(injection.status, f"The key {key} may not send this request to this model.")
        if injection.outcome == 429:
            wait = injection.retry_after
            raise APIError(429, f"Rate limit reached (injected by the sandbox). Please try again in {wait}s.",
                           type="requests", code="rate_limit_exceeded",
                           headers={"retry-after": str(max(1, math.ceil(wait))),
                                    "retry-after-ms": str(math.ceil(wait * 1000))})
        if injection.outcome == "malformed":
            return web.Response(status=200, body=b'{"id": "chatcmpl-', content_type="application/json")
        if injection.outcome == "timeout":
            try:
                await asyncio.wait_for(self._stopping.wait(), _TIMEOUT_HOLD_SECONDS)
            except TimeoutError:
                pass
            raise APIError(504, "The sandbox held this request on purpose (injected timeout).", type="server_error")
        raise server_error(int(injection.outcome))
