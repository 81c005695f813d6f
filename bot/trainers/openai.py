"""OpenAI fine-tuning (`/v1/files`, `/v1/fine_tuning/jobs`) through AsyncOpenAI at any base URL with the same
API: api.openai.com, Azure's `/openai/v1`, the sandbox.

Provider quirks handled here:
- No idempotency header for job creation (the SDK sends none; the API reference documents none), so the key
  goes into the job's `metadata` and `start` first looks for a job carrying it. Creation itself is never
  retried blindly: each retry looks again first, so a timeout after the job was made cannot make a second.
- `list_events` is newest first, paged with `after` = the last id of the previous page (API reference,
  "List fine-tuning events"). `events` walks pages from the newest down to the caller's cursor and returns
  what it passed, oldest first.
- The job object carries no progress or loss; the newest `metrics` event does (`data.step`, `total_steps`,
  `train_loss`, ...), so `poll` reads the first page of events while a job runs.
- OpenAI's own self-serve fine-tuning takes no new jobs after 2027-01-06 (deprecations page, notice of
  2026-05-07), and none of its current models (gpt-6.x) can be fine-tuned. So at api.openai.com this trainer
  refuses new jobs from 2027-01-07 (its clock) and names the alternatives, and warns within
  SHUTDOWN_WARNING_DAYS of that day. It stays for the OpenAI-compatible fine-tuning APIs at other base URLs
  (Azure OpenAI's /openai/v1, Amazon Bedrock's), which announce their own dates through their models endpoint.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import openai
from openai import AsyncOpenAI

from bot.core.clock import Clock
from bot.core.config import Secret, Settings
from bot.core.logs import mask_secrets
from bot.core.provider import delete_file, provider_date
from bot.core.retries import find_or_create
from bot.costs.quotes import Billing
from bot.prompts.encodings import base_model_name
from bot.trainers.base import (
    SHUTDOWN_WARNING_DAYS,
    Deployment,
    EventPage,
    JobEvent,
    JobRequest,
    JobState,
    JobStatus,
    Message,
    ModelCheck,
    StudentOption,
    TrainerError,
    TrainerQuote,
    TrainingLimits,
    chat_jsonl,
    shutdown_check,
)

if TYPE_CHECKING:
    import httpx2

    from bot.prices.table import PriceTable

log = logging.getLogger(__name__)

IDEMPOTENCY_METADATA = "distill_idempotency_key"
EVENTS_PAGE = 100  # the largest `limit` the events endpoint takes
MAX_LISTED = 100_000  # a bound on any list walked page by page

# OpenAI's fine-tuning guide: a file needs at least 10 examples. Tokens per training example, from the
# fine-tuning models table (learn.microsoft.com/azure/ai-foundry/openai/includes/fine-tune-models, "Training
# example context length"; OpenAI's guide gives the same 65,536 for gpt-4o-mini): 65,536 for gpt-4o,
# gpt-4o-mini, gpt-4.1 and gpt-4.1-mini, 32,768 for gpt-4.1-nano. Most specific prefix first.
MIN_EXAMPLES = 10
_EXAMPLE_TOKENS = (("gpt-4.1-nano", 32_768), ("gpt-4.1", 65_536), ("gpt-4o", 65_536))
DEFAULT_EXAMPLE_TOKENS = 65_536

# The statuses of the fine-tuning job object (API reference). A status outside this list counts as running:
# never taken for an end, it is polled again and shown raw.
_STATUSES = {
    "validating_files": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
}
_PROGRESS_KEYS = frozenset({"step", "total_steps"})

OPENAI_HOST = "api.openai.com"
LAST_NEW_JOB_DAY = dt.date(2027, 1, 6)  # OpenAI's deprecations page: no new fine-tuning jobs after this day
NO_NEW_JOBS = (
    "OpenAI takes no new fine-tuning jobs after 2027-01-06 (its deprecations page), so the student cannot be "
    "trained at api.openai.com. Train it with Together instead (trainer=together with a student Together "
    "fine-tunes; `/distill models` lists them). OpenAI's own current models (gpt-6.x) cannot be fine-tuned at "
    "all. An OpenAI-compatible fine-tuning API elsewhere (Azure OpenAI, Amazon Bedrock) still works with "
    "trainer=openai: point OPENAI_BASE_URL at it."
)


class OpenAITrainer:
    name = "openai"
    auto_epochs = True  # n_epochs "auto": OpenAI picks it from the file's size
    in_context = False  # it fine-tunes the student
    default_student = "gpt-4o-mini-2024-07-18"  # fine-tunable until 2027-01-06; what the shell and demo use

    def __init__(self, *, base_url: str, api_key: Secret, timeout: float = 60.0, start_attempts: int = 3,
                 retry_base_seconds: float = 0.5, clock: Clock | None = None,
                 http_client: httpx2.AsyncClient | None = None) -> None:
        self.base_url = base_url
        self.clock = clock or Clock()
        self.api_key = api_key
        self.start_attempts = start_attempts
        self.retry_base_seconds = retry_base_seconds
        # The SDK may retry reads and uploads itself; job creation goes through `_create_once` without retries.
        # `http_client` carries a transport of the caller's (a test routes api.openai.com to the sandbox).
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key.reveal(), timeout=timeout, max_retries=2,
                                  http_client=http_client)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> OpenAITrainer:
        settings.require("OPENAI_API_KEY")
        assert settings.openai_api_key is not None
        return cls(base_url=settings.openai_base_url, api_key=settings.openai_api_key, clock=clock)

    async def close(self) -> None:
        await self.client.close()

    def limits(self, base_model: str) -> TrainingLimits:
        name = base_model_name(base_model)
        tokens = next((limit for prefix, limit in _EXAMPLE_TOKENS if name.startswith(prefix)), DEFAULT_EXAMPLE_TOKENS)
        return TrainingLimits(MIN_EXAMPLES, tokens)

    def training_file(self, examples: Sequence[Sequence[Message]]) -> bytes:
        return chat_jsonl(examples)

    def _at_openai(self) -> bool:
        return urlparse(self.base_url).hostname == OPENAI_HOST

    def takes_new_jobs(self) -> bool:
        """False at api.openai.com after OpenAI's last day for new fine-tuning jobs (this trainer's clock)."""
        return not self._at_openai() or self.clock.today() <= LAST_NEW_JOB_DAY

    def students(self, prices: PriceTable) -> list[StudentOption]:
        """OpenAI's fine-tunable models: those with a training price in the table (none at api.openai.com after
        its last day for new jobs)."""
        if not self.takes_new_jobs():
            return []
        return [StudentOption(name, price.training_usd_per_1m, price.facts.shutdown_date)
                for name, price in prices.prices.items()
                if price.training_usd_per_1m is not None and not name.startswith("ft:")
                and price.facts.provider == "openai" and price.facts.kind == "chat"]

    async def upload(self, content: bytes, filename: str) -> str:
        async with self._errors(f"upload {filename}"):
            uploaded = await self.client.files.create(file=(filename, content), purpose="fine-tune")
        return uploaded.id

    async def delete_file(self, file_id: str) -> None:
        async with self._errors(f"delete file {file_id}"):
            await delete_file(self.client, file_id)

    async def start(self, request: JobRequest) -> str:
        if not self.takes_new_jobs():
            raise TrainerError(NO_NEW_JOBS)
        try:
            return await find_or_create(lambda: self._find(request.idempotency_key),
                                        lambda: self._create_once(request),
                                        attempts=self.start_attempts, base_seconds=self.retry_base_seconds)
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            raise self._error("start the fine-tuning job", exc) from exc

    async def poll(self, external_id: str) -> JobState:
        async with self._errors(f"report on fine-tuning job {external_id}"):
            job = await self.client.fine_tuning.jobs.retrieve(external_id)
            status = _STATUSES.get(job.status, JobStatus.RUNNING)
            metrics: dict[str, float] = {}
            if status in (JobStatus.RUNNING, JobStatus.SUCCEEDED):
                metrics = await self._latest_metrics(external_id)
        progress = None
        if status is JobStatus.SUCCEEDED:
            progress = 1.0
        elif metrics.get("total_steps"):
            progress = min(1.0, metrics.get("step", 0) / metrics["total_steps"])
        if job.status not in _STATUSES:
            log.warning("Unknown fine-tuning status %r for job %s; treating it as running", job.status, job.id)
        return JobState(
            external_id=job.id,
            status=status,
            raw_status=job.status,
            progress=progress,
            metrics={k: v for k, v in metrics.items() if k not in _PROGRESS_KEYS},
            error=self._mask(job.error.message) if job.error and job.error.message else None,
            fine_tuned_model=job.fine_tuned_model,
            trained_tokens=job.trained_tokens,
        )

    async def events(self, external_id: str, cursor: str | None) -> EventPage:
        newer: list[JobEvent] = []
        found = cursor is None
        async with self._errors(f"list the events of fine-tuning job {external_id}"):
            async for event in _distinct(self.client.fine_tuning.jobs.list_events(external_id, limit=EVENTS_PAGE)):
                if event.id == cursor:
                    found = True
                    break
                newer.append(self._event(event))
        if not found:
            # The cursor's event is gone from the provider's list; repeating events beats dropping them.
            log.warning("Event %s of job %s is no longer listed; returning every event", cursor, external_id)
        newer.reverse()
        return EventPage(newer, newer[-1].id if newer else cursor)

    async def cancel(self, external_id: str) -> JobState:
        try:
            async with self._errors(f"cancel fine-tuning job {external_id}"):
                await self.client.fine_tuning.jobs.cancel(external_id)
        except TrainerError:
            state = await self.poll(external_id)
            if state.status is JobStatus.CANCELLED:  # a second click on Cancel
                return state
            raise
        return await self.poll(external_id)

    async def deploy(self, fine_tuned_model: str) -> Deployment:
        # OpenAI serves a fine-tuned model on the same Chat Completions endpoint as soon as the job succeeds.
        return Deployment(fine_tuned_model, self.base_url, self.api_key)

    async def deploy_base(self, model: str) -> Deployment | None:
        return None  # the base student answers at base_model_endpoint

    async def undeploy(self, deployment: Deployment) -> int:
        """Nothing to stop: OpenAI bills fine-tuned models per token, not per endpoint."""
        return 0

    def base_model_endpoint(self, model: str) -> Deployment | None:
        return None  # the base student answers at OPENAI_BASE_URL, like the teacher

    @classmethod
    def price_billing(cls, student: str, settings: Settings) -> Billing:
        # OpenAI picks n_epochs itself for "auto" and serves ft: models on the normal endpoint per token.
        return Billing(cls.name)

    async def billing(self, base_model: str) -> Billing:
        return Billing(self.name)

    async def quote(self, base_model: str, file_tokens: int, epochs: int, eval_requests: int) -> TrainerQuote:
        # OpenAI bills trained tokens (file tokens x epochs) at the model's training price and serves ft: models
        # on the normal endpoint at their own per-token price: nothing to host.
        return TrainerQuote((f"OpenAI bills epochs x training-file tokens: {epochs} x {file_tokens:,} tokens at "
                                f"{base_model}'s training price. The fine-tuned model answers on the normal "
                                "endpoint, billed per token like any model.",))

    async def check_base_model(self, model: str) -> ModelCheck:
        today = self.clock.today()
        if not self.takes_new_jobs():
            return ModelCheck(model, False, None, NO_NEW_JOBS)
        check = await self._check_served(model, today)
        days = (LAST_NEW_JOB_DAY - today).days
        if check.trainable and self._at_openai() and days <= SHUTDOWN_WARNING_DAYS:
            soon = (f"OpenAI takes new fine-tuning jobs until 2027-01-06 only (in {days} days); after that, train with "
                    "trainer=together.")
            return ModelCheck(model, True, check.shutdown_date, f"{check.message} {soon}".strip())
        return check

    async def _check_served(self, model: str, today: dt.date) -> ModelCheck:
        try:
            found = await self.client.models.retrieve(model)
        except openai.NotFoundError as exc:
            return ModelCheck(model, False, None, self._mask(
                f"The provider does not offer {model}: {_reason(exc)} Pick a model it lists (GET /v1/models)."
            ))
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            raise self._error(f"look up model {model}", exc) from exc
        details = found.to_dict()
        # Azure's models list adds capabilities.fine_tune and deprecation.fine_tune (Unix seconds) instead of
        # shutdown_date (learn.microsoft.com/rest/api/azureopenai/models/list).
        capabilities = details.get("capabilities") or {}
        deprecation = details.get("deprecation") or {}
        shutdown = provider_date(details.get("shutdown_date")) or provider_date(deprecation.get("fine_tune"))
        if capabilities.get("fine_tune") is False:
            return ModelCheck(model, False, shutdown, (
                f"The provider says {model} cannot be fine-tuned. Pick a fine-tunable student model (student=...)."
            ))
        return shutdown_check(model, shutdown, today)

    async def _find(self, idempotency_key: str) -> str | None:
        """The newest job carrying the key. The filter is also applied here, for servers that ignore it."""
        jobs = self.client.fine_tuning.jobs.list(metadata={IDEMPOTENCY_METADATA: idempotency_key}, limit=100)
        async for job in _distinct(jobs):
            if (job.metadata or {}).get(IDEMPOTENCY_METADATA) == idempotency_key:
                return job.id
        return None

    async def _create_once(self, request: JobRequest) -> str:
        chosen = {"n_epochs": request.epochs, "batch_size": request.batch_size,
                  "learning_rate_multiplier": request.learning_rate_multiplier}
        # "auto" is the default of each; leaving it out keeps the request valid on servers that reject it.
        hyperparameters = {name: value for name, value in chosen.items() if value != "auto"}
        optional: dict[str, Any] = {
            "validation_file": request.validation_file_id, "suffix": request.suffix, "seed": request.seed,
        }
        job = await self.client.with_options(max_retries=0).fine_tuning.jobs.create(
            model=request.base_model,
            training_file=request.training_file_id,
            method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
            metadata={**request.metadata, IDEMPOTENCY_METADATA: request.idempotency_key},
            **{name: value for name, value in optional.items() if value is not None},
        )
        return job.id

    async def _latest_metrics(self, external_id: str) -> dict[str, float]:
        page = await self.client.fine_tuning.jobs.list_events(external_id, limit=EVENTS_PAGE)
        for event in page.data:  # newest first
            if event.type == "metrics" and isinstance(event.data, Mapping):
                return {k: float(v) for k, v in event.data.items()
                        if isinstance(v, int | float) and not isinstance(v, bool)}
        return {}

    def _event(self, event: Any) -> JobEvent:
        data = event.data if isinstance(event.data, Mapping) else {}
        return JobEvent(event.id, event.created_at, event.level, self._mask(event.message), dict(data))

    def _mask(self, text: str) -> str:
        return mask_secrets(text, [self.api_key.reveal()])

    def _error(self, what: str, exc: Exception) -> TrainerError:
        if isinstance(exc, openai.APIStatusError):
            return TrainerError(self._mask(f"The provider refused to {what} (HTTP {exc.status_code}): {_reason(exc)}"))
        return TrainerError(self._mask(
            f"Could not reach the provider at {self.base_url} to {what} ({type(exc).__name__}: {exc}). "
            "Check OPENAI_BASE_URL and the network, then try again."
        ))

    @contextlib.asynccontextmanager
    async def _errors(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            raise self._error(what, exc) from exc


async def _distinct(items: AsyncIterator[Any], most: int = MAX_LISTED) -> AsyncIterator[Any]:
    """The items of an auto-paged list, ending at the first id seen before: a server that ignores `after` would
    otherwise send the same page forever (Prism's mock of OpenAI's spec does)."""
    seen: set[str] = set()
    async for item in items:
        if item.id in seen or len(seen) >= most:
            return
        seen.add(item.id)
        yield item


def _reason(exc: openai.APIStatusError) -> str:
    """The provider's own message: the SDK keeps the `error` object of the body in `exc.body`."""
    body = exc.body if isinstance(exc.body, Mapping) else {}
    return str(body.get("message") or exc.message)


