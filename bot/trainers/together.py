"""Together AI fine-tuning (`/v1/files/upload`, `/v1/fine-tunes`, `/v1/endpoints`) over plain HTTP (aiohttp):
a second place to train once OpenAI stops taking fine-tuning jobs (2027-01-06).

Together takes the same chat JSONL as OpenAI and answers the fine-tuned model through an OpenAI-compatible
Chat Completions API, but only on a dedicated endpoint billed per minute, so `deploy` starts one and `undeploy`
deletes it. Its official SDK (together-py) is synchronous-first and pulls in rich/tqdm/filelock; the seven
calls the bot needs are simpler as HTTP. Shapes: docs.together.ai/reference and together-py's src/together/types.

Provider quirks handled here:
- No idempotency header and no job metadata: the idempotency key's hash ends the job's `suffix` (at most 40
  characters, together-py FinetuneRequest), and `start` looks for a job with that suffix before creating one.
  Creation is never retried blindly: each retry looks again first, so a timeout after the job was made cannot
  make a second. `deploy` does the same with the endpoints list.
- `n_epochs` has no "auto" (the API's default is 1): for "auto" the bot sends what its quote assumed,
  `bot.costs.default_epochs` of the file's line count. `learning_rate` is absolute (default 1e-5, together-py
  FineTuningResource.create), so the spec's multiplier scales that default. LoRA rank: the model's
  `default_rank` from `GET /fine-tunes/models/limits`, alpha twice the rank, as together-py does.
- Events have no ids and no paging: the whole list comes oldest first, and each event's `hash` (or, when a
  server sends none, a hash of its position and text) is the cursor.
- A failed job has no error field: the reason is its newest error-level event (type `job_error`).
- Statuses (together-py lib/types/fine_tuning.py FinetuneJobStatus): pending and queued are QUEUED; running,
  compressing, uploading and cancel_requested are RUNNING; completed, error / user_error and cancelled end it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp

from bot.clock import Clock
from bot.config import Secret, Settings
from bot.costs import default_epochs
from bot.logs import mask_secrets
from bot.provider import RETRYABLE_STATUSES, retry_after_seconds
from bot.retries import backoff_seconds
from bot.trainers.base import (
    Deployment,
    EventPage,
    JobEvent,
    JobRequest,
    JobState,
    JobStatus,
    Message,
    ModelCheck,
    TrainerError,
    TrainerQuote,
    TrainingLimits,
    chat_jsonl,
    shutdown_check,
)
from bot.trainers.together_pricing import (
    EndpointQuote,
    TogetherPrices,
    TrainingCost,
    TrainingType,
    endpoint_cost_micro_usd,
)

log = logging.getLogger(__name__)

MIN_EXAMPLES = 1  # together-py lib/constants.py MIN_SAMPLES
DEFAULT_CONTEXT_TOKENS = 8_192  # per example, until the model's limits (max_seq_length_sft) have been read
DEFAULT_LEARNING_RATE = 1e-5
# A small student Together fine-tunes with LoRA and serves serverless: what the shell and demo pick for it.
DEFAULT_STUDENT = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
MAX_SUFFIX_CHARS = 40
# A safety net, not the plan: if the bot dies before `undeploy`, Together stops the endpoint after this many
# idle minutes (the `inactive_timeout` of POST /endpoints), so it does not bill for days.
INACTIVE_TIMEOUT_MINUTES = 10
LIVE_ENDPOINT_STATES = ("PENDING", "STARTING", "STARTED")

_STATUSES = {
    "pending": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "compressing": JobStatus.RUNNING,
    "uploading": JobStatus.RUNNING,
    "cancel_requested": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "error": JobStatus.FAILED,
    "user_error": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
}
_LEVELS = {"warning": "warn", "error": "error"}
_EVENT_DATA = ("type", "step", "total_steps", "token_count", "param_count")


class _Failure(TrainerError):
    """A refused or failed request; `retryable` when the same request may succeed later."""

    def __init__(self, message: str, *, status: int | None, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class TogetherTrainer:
    name = "together"

    def __init__(self, *, base_url: str, api_key: Secret, training_type: TrainingType = "lora",
                 prices: TogetherPrices | None = None, timeout: float = 60.0, attempts: int = 3,
                 retry_base_seconds: float = 0.5, deploy_poll_seconds: float = 10.0,
                 deploy_timeout_seconds: float = 20 * 60, clock: Clock | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.clock = clock or Clock()
        self.api_key = api_key
        self.training_type = training_type
        self.prices = prices or TogetherPrices.load()
        self.timeout = timeout
        self.attempts = attempts
        self.retry_base_seconds = retry_base_seconds
        self.deploy_poll_seconds = deploy_poll_seconds
        # docs.together.ai/docs/fine-tuning/deployment polls for STARTED with a 20-minute safety cap.
        self.deploy_timeout_seconds = deploy_timeout_seconds
        self._context_tokens: dict[str, int] = {}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> TogetherTrainer:
        settings.require("TOGETHER_API_KEY")
        assert settings.together_api_key is not None
        # The endpoint is watched as often as jobs are (DISTILL_POLL_SECONDS): both take minutes to change.
        return cls(base_url=settings.together_base_url, api_key=settings.together_api_key,
                   prices=TogetherPrices.load(settings.prices_path), deploy_poll_seconds=settings.poll_seconds,
                   clock=clock)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ----- files and jobs ----------------------------------------------------------------------------

    def limits(self, base_model: str) -> TrainingLimits:
        return TrainingLimits(MIN_EXAMPLES, self._context_tokens.get(base_model, DEFAULT_CONTEXT_TOKENS))

    def training_file(self, examples: Sequence[Sequence[Message]]) -> bytes:
        return chat_jsonl(examples)

    async def upload(self, content: bytes, filename: str) -> str:
        def form() -> aiohttp.FormData:
            data = aiohttp.FormData()
            data.add_field("file", content, filename=filename, content_type="application/octet-stream")
            for name, value in (("file_name", filename), ("purpose", "fine-tune"), ("file_type", "jsonl")):
                data.add_field(name, value)
            return data

        uploaded = await self._retrying(lambda: self._send("POST", "/files/upload", f"upload {filename}", form=form))
        return uploaded["id"]

    async def start(self, request: JobRequest) -> str:
        suffix = job_suffix(request.suffix, request.idempotency_key)

        async def find_or_create() -> str:
            jobs = (await self._send("GET", "/fine-tunes", "list fine-tuning jobs")).get("data") or []
            found = next((j["id"] for j in jobs if j.get("suffix") == suffix
                          or suffix in (j.get("model_output_name") or "")), None)
            if found:
                return found
            body = await self._job_body(request, suffix)
            created = await self._send("POST", "/fine-tunes", "start the fine-tuning job", body=body)
            return created["id"]

        return await self._retrying(find_or_create)

    async def poll(self, external_id: str) -> JobState:
        job = await self._call("GET", f"/fine-tunes/{external_id}", f"report on fine-tuning job {external_id}")
        raw = str(job.get("status") or "pending")
        status = _STATUSES.get(raw)
        if status is None:
            log.warning("Unknown fine-tuning status %r for job %s; treating it as running", raw, external_id)
            status = JobStatus.RUNNING
        error = None
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            error = await self._reason(external_id)
        total, done = job.get("total_steps"), job.get("steps_completed")
        progress = 1.0 if status is JobStatus.SUCCEEDED else (min(1.0, done / total) if total and done is not None
                                                              else None)
        tokens = job.get("token_count")
        succeeded = status is JobStatus.SUCCEEDED
        return JobState(
            external_id=external_id, status=status, raw_status=raw, progress=progress, error=error,
            fine_tuned_model=job.get("model_output_name") if succeeded else None,
            # What Together bills (docs.together.ai/docs/fine-tuning/pricing): epochs x training-file tokens.
            trained_tokens=tokens * (job.get("n_epochs") or 1) if succeeded and tokens else None,
        )

    async def events(self, external_id: str, cursor: str | None) -> EventPage:
        events = await self._events(external_id)
        ids = [event.id for event in events]
        start = 0
        if cursor is not None:
            if cursor in ids:
                start = ids.index(cursor) + 1
            else:  # repeating events beats dropping them
                log.warning("Event %s of job %s is no longer listed; returning every event", cursor, external_id)
        newer = events[start:]
        return EventPage(newer, newer[-1].id if newer else cursor)

    async def cancel(self, external_id: str) -> JobState:
        try:
            await self._call("POST", f"/fine-tunes/{external_id}/cancel", f"cancel fine-tuning job {external_id}")
        except _Failure:
            state = await self.poll(external_id)
            if state.raw_status in ("cancel_requested", "cancelled"):  # a second click on Cancel
                return state
            raise
        return await self.poll(external_id)

    async def check_base_model(self, model: str) -> ModelCheck:
        supported = (await self._call("GET", "/fine-tunes/models/supported", "list fine-tunable models")).get(
            "models") or []
        if model not in supported:
            return ModelCheck(model, False, None, (
                f"Together does not fine-tune {model}. Models it fine-tunes include "
                f"{', '.join(supported[:6]) or 'none listed'}. Pick one as the student (student=...)."
            ))
        limits = await self._limits(model)
        if self.training_type == "full" and not limits.get("supports_full_training"):
            return ModelCheck(model, False, None, f"Together fine-tunes {model} with LoRA only, and this trainer is "
                                                  "set to full fine-tuning. Use LoRA or another student.")
        # Together's models API publishes no shutdown dates, so there is nothing to warn about.
        return shutdown_check(model, None, self.clock.today())

    def students(self, prices: Any) -> list[Any]:
        """The students (bot.trainers.base.StudentOption) the price table's "together" section sizes: Together
        prices training by model size. `prices` (the model table) has nothing to add. The import is local so that
        this method stays one piece apart from the rest of the file."""
        from bot.trainers.base import StudentOption

        return [StudentOption(model, self.prices.training_cost(model, 1_000_000, 1, self.training_type).usd_per_1m)
                for model in sorted(self.prices.billion_params)]

    # ----- the dedicated endpoint --------------------------------------------------------------------

    async def deploy(self, fine_tuned_model: str) -> Deployment:
        """Start (or find the running) dedicated endpoint for the model and wait until it answers."""

        async def find_or_create() -> dict[str, Any]:
            listed = (await self._send("GET", "/endpoints", "list dedicated endpoints",
                                       params={"type": "dedicated", "mine": "true"})).get("data") or []
            found = next((e for e in listed if e.get("model") == fine_tuned_model
                          and e.get("state") in LIVE_ENDPOINT_STATES), None)
            if found:
                return found
            hardware = (await self.endpoint_quote(await self._base_of(fine_tuned_model), 0)).hardware
            return await self._send("POST", "/endpoints", f"start an endpoint for {fine_tuned_model}", body={
                "model": fine_tuned_model, "hardware": hardware, "display_name": "distill-bot eval",
                "autoscaling": {"min_replicas": 1, "max_replicas": 1}, "inactive_timeout": INACTIVE_TIMEOUT_MINUTES,
            })

        endpoint = await self._started(await self._retrying(find_or_create))
        log.info("Endpoint %s (%s) serves %s", endpoint["id"], endpoint.get("hardware"), fine_tuned_model)
        return Deployment(endpoint["name"], self.base_url, self.api_key, endpoint["id"],
                          created_at=_timestamp(endpoint.get("created_at")),
                          usd_per_hour=self.prices.usd_per_hour.get(endpoint.get("hardware", "")))

    async def undeploy(self, deployment: Deployment) -> int:
        """Delete the endpoint: it bills every minute it exists. Returns its cost: the minutes from its creation
        to now, the last one whole, at its hardware's price (0 for one already gone: its deleter counted it)."""
        if deployment.endpoint_id is None:
            return 0
        try:
            await self._call("DELETE", f"/endpoints/{deployment.endpoint_id}",
                             f"delete endpoint {deployment.endpoint_id}")
        except _Failure as failure:
            if failure.status != 404:
                raise
            return 0
        log.info("Deleted endpoint %s", deployment.endpoint_id)
        if deployment.created_at is None or deployment.usd_per_hour is None:
            log.warning("Endpoint %s: no creation time or no price for its hardware, so its cost is not recorded",
                        deployment.endpoint_id)
            return 0
        seconds = (self.clock.now() - deployment.created_at).total_seconds()
        return endpoint_cost_micro_usd(deployment.usd_per_hour, max(1, math.ceil(seconds / 60)))

    # ----- costs the quote shows ---------------------------------------------------------------------

    def base_model_endpoint(self, model: str) -> Deployment:
        # Together serves the models it fine-tunes serverless on its OpenAI-compatible API: the base student's
        # baseline answers come from there, the teacher's from OPENAI_BASE_URL.
        return Deployment(model, self.base_url, self.api_key)

    async def quote(self, base_model: str, file_tokens: int, epochs: int, eval_requests: int) -> TrainerQuote:
        training = self.training_cost(base_model, file_tokens, epochs)
        endpoint = await self.endpoint_quote(base_model, eval_requests)
        return TrainerQuote(endpoint.cost_micro_usd, (training.explain(), endpoint.explain()))

    def training_cost(self, base_model: str, file_tokens: int, epochs: int) -> TrainingCost:
        """Together's formula for this trainer's training type, explained (`TrainingCost.explain`)."""
        return self.prices.training_cost(base_model, file_tokens, epochs, self.training_type)

    async def endpoint_quote(self, base_model: str, eval_requests: int) -> EndpointQuote:
        """What the eval's dedicated endpoint costs, on the cheapest hardware Together offers for the model."""
        offered = (await self._call("GET", "/hardware", f"list hardware for {base_model}",
                                    params={"model": base_model})).get("data") or []
        available = [h["id"] for h in offered if (h.get("availability") or {}).get("status", "available")
                     == "available"]
        return self.prices.endpoint_quote(available or [h["id"] for h in offered], eval_requests)

    # ----- helpers ------------------------------------------------------------------------------------

    async def _job_body(self, request: JobRequest, suffix: str) -> dict[str, Any]:
        limits = await self._limits(request.base_model)
        epochs = request.epochs
        if epochs == "auto":
            listed = await self._send("GET", f"/files/{request.training_file_id}", "read the training file")
            epochs = min(default_epochs(int(listed.get("LineCount") or 0)), int(limits.get("max_num_epochs") or 20))
        rank = int(limits["lora_training"]["default_rank"])
        body: dict[str, Any] = {
            "model": request.base_model, "training_file": request.training_file_id, "n_epochs": epochs,
            "suffix": suffix, "batch_size": "max" if request.batch_size == "auto" else request.batch_size,
            "training_method": {"method": "sft", "train_on_inputs": "auto"},
            "training_type": {"type": "Full"} if self.training_type == "full" else {
                "type": "Lora", "lora_r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0,
                "lora_trainable_modules": "all-linear"},
        }
        if request.learning_rate_multiplier != "auto":
            body["learning_rate"] = DEFAULT_LEARNING_RATE * request.learning_rate_multiplier
        if request.validation_file_id:
            # Without evaluations Together ignores the validation file; one costs its tokens once.
            body.update(validation_file=request.validation_file_id, n_evals=1)
        if request.seed is not None:
            body["random_seed"] = request.seed
        return body

    async def _limits(self, model: str) -> dict[str, Any]:
        limits = await self._call("GET", "/fine-tunes/models/limits", f"read the fine-tuning limits of {model}",
                                  params={"model_name": model})
        self._context_tokens[model] = int(limits.get("max_seq_length_sft") or DEFAULT_CONTEXT_TOKENS)
        return limits

    async def _base_of(self, fine_tuned_model: str) -> str:
        jobs = (await self._send("GET", "/fine-tunes", "list fine-tuning jobs")).get("data") or []
        job = next((j for j in jobs if j.get("model_output_name") == fine_tuned_model), None)
        if job is None:
            raise TrainerError(f"Together lists no fine-tuning job that made {fine_tuned_model}, so the bot cannot "
                               "tell which hardware can serve it. Check the job in Together's dashboard.")
        return str(job["model"])

    async def _started(self, endpoint: dict[str, Any]) -> dict[str, Any]:
        """Poll the endpoint until STARTED; delete it (it bills) when it fails or takes too long."""
        deadline = time.monotonic() + self.deploy_timeout_seconds
        while endpoint.get("state") != "STARTED":
            state = endpoint.get("state")
            late = time.monotonic() > deadline
            if state not in LIVE_ENDPOINT_STATES or late:
                await self.undeploy(Deployment(endpoint.get("name", ""), self.base_url, self.api_key, endpoint["id"]))
                why = (f"did not start within {self.deploy_timeout_seconds / 60:g} minutes" if late
                       else f"ended as {state}")
                raise TrainerError(f"Together's endpoint for {endpoint.get('model')} {why}, so it was deleted. Try "
                                   "the evaluation again later; Together's dashboard shows the endpoint's events.")
            await asyncio.sleep(self.deploy_poll_seconds)
            endpoint = await self._call("GET", f"/endpoints/{endpoint['id']}", f"read endpoint {endpoint['id']}")
        return endpoint

    async def _events(self, external_id: str) -> list[JobEvent]:
        listed = (await self._call("GET", f"/fine-tunes/{external_id}/events",
                                   f"list the events of fine-tuning job {external_id}")).get("data") or []
        return [self._event(position, item) for position, item in enumerate(listed)]

    async def _reason(self, external_id: str) -> str | None:
        """Why the job ended: its newest error-level (else warning) event, as Together wrote it."""
        events = await self._events(external_id)
        for level in ("error", "warn"):
            found = [e for e in events if e.level == level]
            if found:
                return found[-1].message
        return None

    def _event(self, position: int, item: dict[str, Any]) -> JobEvent:
        message = self._mask(str(item.get("message") or ""))
        created = str(item.get("created_at") or "")
        event_id = item.get("hash") or hashlib.sha256(
            f"{position}\x00{created}\x00{item.get('type')}\x00{message}".encode()).hexdigest()[:32]
        return JobEvent(str(event_id), _unix(created), _LEVELS.get(str(item.get("level")).lower(), "info"), message,
                        {k: item[k] for k in _EVENT_DATA if item.get(k) is not None})

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.api_key.reveal()}"},
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        return await self._retrying(lambda: self._send(method, path, what, **kwargs))

    async def _retrying(self, operation: Callable[[], Awaitable[Any]]) -> Any:
        """Run `operation` again (with backoff) while it fails in a way that may pass."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await operation()
            except _Failure as failure:
                if not failure.retryable or attempt >= self.attempts:
                    raise
                await asyncio.sleep(backoff_seconds(attempt, failure.retry_after, base=self.retry_base_seconds))

    async def _send(self, method: str, path: str, what: str, *, body: Any = None,
                    params: dict[str, str] | None = None, form: Callable[[], aiohttp.FormData] | None = None) -> Any:
        """One request; a refusal or an unreachable server raises _Failure with Together's own reason."""
        try:
            async with self._http().request(method, self.base_url + path, json=body, params=params,
                                             data=form() if form else None) as response:
                if response.status < 400:
                    return {} if response.status == 204 else await response.json(content_type=None)
                reason = _reason(await response.text())
                raise _Failure(self._mask(f"Together refused to {what} (HTTP {response.status}): {reason}"),
                               status=response.status, retryable=response.status in RETRYABLE_STATUSES,
                               retry_after=retry_after_seconds(response.headers))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Failure(self._mask(
                f"Could not reach Together at {self.base_url} to {what} ({type(exc).__name__}: {exc}). "
                "Check TOGETHER_BASE_URL and the network, then try again."), status=None, retryable=True) from exc

    def _mask(self, text: str) -> str:
        return mask_secrets(text, [self.api_key.reveal()])


def job_suffix(name: str | None, idempotency_key: str) -> str:
    """The job's suffix: the run's name made safe, then 8 hex of the key's hash (at most 40 characters)."""
    tag = hashlib.sha256(idempotency_key.encode()).hexdigest()[:8]
    clean = re.sub(r"[^a-z0-9]+", "-", (name or "distill").lower()).strip("-") or "distill"
    return f"{clean[: MAX_SUFFIX_CHARS - len(tag) - 1].rstrip('-')}-{tag}"


def _reason(body: str) -> str:
    """Together's message: {"error": {"message"}} on the OpenAI-compatible routes, {"message"} on others."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500] or "no reason given"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if data.get("message"):
            return str(data["message"])
    return body.strip()[:500]


def _unix(iso: str) -> int:
    try:
        return int(dt.datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return 0


def _timestamp(iso: object) -> dt.datetime | None:
    """Together's ISO 8601 time ("2025-01-01T00:00:00.000Z") as an aware datetime; None when missing or odd."""
    try:
        parsed = dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
