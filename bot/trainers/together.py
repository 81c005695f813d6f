"""Together AI fine-tuning through its official SDK (together-py 3.x, `AsyncTogether`), and the v2 dedicated
deployment that serves the fine-tuned model for its eval: where students train once OpenAI stops taking
fine-tuning jobs (2027-01-06).

Together takes the same chat JSONL as OpenAI and answers through an OpenAI-compatible Chat Completions API, but
serverless LoRA inference is discontinued, so a fine-tuned model answers only from a dedicated deployment billed
per minute of each ready replica: `deploy` makes an endpoint and a deployment of the job's model, routes the
endpoint's traffic to it and waits until it is READY; `undeploy` stops and deletes both. Research notes of
2026-11-29 (docs/research/together.md) hold the sources for every shape used here.

Provider quirks handled here:
- Base URL: 3.x puts /v1, /v2, /v3 in each path, so TOGETHER_BASE_URL has none (bot/core/config.py drops a trailing
  one). With the default URL the SDK sends chat to https://api-inference.together.ai; so does the eval.
- Retries are the SDK's (2, exponential backoff, Retry-After honoured, on 408/409/429/5xx and lost connections),
  except where a retry could make a second billed resource: job, endpoint and deployment creation go without them
  (`with_options(max_retries=0)`) through `bot.retries.find_or_create`, which looks for the one made before
  (the job by its suffix, the endpoint by a name derived from the job, the deployment by its name) before every
  attempt.
- No idempotency header and no job metadata: the idempotency key's hash ends the job's `suffix` (at most 40
  characters), and the fine-tuned model's name carries it too.
- `n_epochs` has no "auto" (the SDK's default is 1): the training stage sends the epochs its quote assumed
  (`auto_epochs = False`). `learning_rate` is absolute (default 1e-5), so the spec's multiplier scales that.
  LoRA rank: the model's `default_rank` from its limits, alpha twice the rank, as the SDK does.
- Events have no ids and no paging: the whole list comes oldest first, and each event's `hash` (or, when a
  server sends none, a hash of its position and text) is the cursor. A failed job's reason is its newest
  error-level event (type `job_error`).
- v2 deployments: `projects/{project}/models/{model_object_id}` of the finished job, a config from
  `models.configs.list(reference_model=<the base's resource>)` (else the base's deployment profile) on the cheapest
  hardware `endpoints.hardware.list()` prices, minReplicas = maxReplicas = 1, `inactiveTimeout` 30 minutes (the
  least the API takes) as a safety net should the bot die before `undeploy`. A READY deployment gets no traffic
  until the endpoint's `trafficSplit` gives it a weight; one found STOPPED or FAILED after a restart is deleted
  and made again. A project id comes from TOGETHER_PROJECT_ID, else from `whoami`.
- What hosting cost is measured, not billed back: Together publishes no per-deployment bill in the API. `undeploy`
  counts the minutes from when the bot saw the deployment READY (or, when it found one READY already, the
  deployment's `updatedAt`) to when it asked to scale it to zero, the last one whole, times the replicas and the
  hardware's priceCentsPerHour. The first can be a poll interval late, so the figure is an approximation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import logging
import math
import re
import tempfile
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import together
from together import AsyncTogether
from together.lib.utils import check_file

from bot.core.clock import Clock
from bot.core.config import DEFAULT_STUDENT, TOGETHER_BASE_URL, Secret, Settings
from bot.core.logs import mask_secrets
from bot.core.money import micro_usd_rounded_up
from bot.core.provider import RETRYABLE_STATUSES, retry_after_seconds
from bot.core.retries import find_or_create
from bot.costs.quotes import Billing
from bot.prices.table import PriceTable
from bot.trainers.base import (
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
from bot.trainers.together_pricing import TogetherPrices, TrainingCost, TrainingType

log = logging.getLogger(__name__)
T = TypeVar("T")

MIN_EXAMPLES = 1  # together-py lib/constants.py MIN_SAMPLES
DEFAULT_CONTEXT_TOKENS = 8_192  # per example, until the model's limits (max_seq_length_sft) have been read
DEFAULT_LEARNING_RATE = 1e-5
INFERENCE_URL = "https://api-inference.together.ai/v1"  # where 3.x sends chat when the base URL is the default
MAX_SUFFIX_CHARS = 40
CREATE_ATTEMPTS = 3
DEPLOYMENT_NAME = "eval"
# 0 disables automatic stopping; otherwise 30-1440 minutes (together-py 3.1.1 deployment_create_params.py).
INACTIVE_TIMEOUT_MINUTES = 30
READY, FAILED = "DEPLOYMENT_STATE_READY", "DEPLOYMENT_STATE_FAILED"
STOPPED, STOPPING = "DEPLOYMENT_STATE_STOPPED", "DEPLOYMENT_STATE_STOPPING"

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
_LEVELS = {"warning": "warn", "legacy_iwarning": "warn", "error": "error", "legacy_ierror": "error"}
_EVENT_DATA = ("type", "step", "total_steps", "token_count", "param_count")


class _Failure(TrainerError):
    """A refused or failed request; `retryable` when the same request may succeed later."""

    def __init__(self, message: str, *, status: int | None, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


def _transient(exc: BaseException) -> tuple[bool, float | None]:
    return (exc.retryable, exc.retry_after) if isinstance(exc, _Failure) else (False, None)


@dataclasses.dataclass(frozen=True)
class _Hardware:
    """Where a fine-tune of one base model can run: a config revision and the instance type it selects."""

    config: str  # projects/{project}/configs/{id}
    hardware: str
    cents_per_hour: int


class TogetherTrainer:
    name = "together"
    auto_epochs = False  # n_epochs has no "auto": the training stage sends the number its quote assumed
    in_context = False  # it fine-tunes the student
    default_student = DEFAULT_STUDENT  # fine-tuned and served on dedicated hardware: what the shell and demo use

    def __init__(self, *, base_url: str, api_key: Secret, project_id: str | None = None,
                 training_type: TrainingType = "lora", prices: TogetherPrices | None = None,
                 max_retries: int = 2, timeout: float = 60.0, retry_base_seconds: float = 0.5,
                 deploy_poll_seconds: float = 10.0, deploy_timeout_seconds: float = 45 * 60,
                 clock: Clock | None = None) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        # The SDK sends chat to the inference host unless the base URL is overridden; the eval does the same.
        self.inference_url = INFERENCE_URL if self.base_url == TOGETHER_BASE_URL else f"{self.base_url}/v1"
        self.api_key = api_key
        self.project_id = project_id
        self.training_type = training_type
        self.prices = prices or TogetherPrices.load()
        self.clock = clock or Clock()
        self.max_retries = max_retries
        self.timeout = timeout
        self.retry_base_seconds = retry_base_seconds
        self.deploy_poll_seconds = deploy_poll_seconds
        # SKILLS: first provisioning takes "up to ~20 minutes"; a deployment never READY within 6 hours is FAILED.
        self.deploy_timeout_seconds = deploy_timeout_seconds
        self._context_tokens: dict[str, int] = {}
        self._sdk: AsyncTogether | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> TogetherTrainer:
        settings.require("TOGETHER_API_KEY")
        assert settings.together_api_key is not None
        # The deployment is watched as often as jobs are (DISTILL_POLL_SECONDS): both take minutes to change.
        return cls(base_url=settings.together_base_url, api_key=settings.together_api_key,
                   project_id=settings.together_project_id, prices=TogetherPrices.load(settings.prices_path),
                   deploy_poll_seconds=settings.poll_seconds, clock=clock)

    async def close(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None

    def _client(self, *, retries: bool = True) -> AsyncTogether:
        if self._sdk is None:
            self._sdk = AsyncTogether(api_key=self.api_key.reveal(), base_url=self.base_url,
                                      project_id=self.project_id, max_retries=self.max_retries,
                                      timeout=self.timeout)
        return self._sdk if retries else self._sdk.with_options(max_retries=0)

    # ----- files and jobs ----------------------------------------------------------------------------

    def limits(self, base_model: str) -> TrainingLimits:
        return TrainingLimits(MIN_EXAMPLES, self._context_tokens.get(base_model, DEFAULT_CONTEXT_TOKENS))

    def training_file(self, examples: Sequence[Sequence[Message]]) -> bytes:
        return chat_jsonl(examples)

    async def upload(self, content: bytes, filename: str) -> str:
        """The SDK's upload (metadata, then the bytes to a signed URL, then preprocess) of the file's bytes, after
        the SDK's own format check, run in a thread: it reads the whole file, which would stall the event loop."""
        with tempfile.TemporaryDirectory(prefix="distill-together-") as folder:
            path = Path(folder) / (Path(filename).stem + ".jsonl")  # the SDK picks the file type by extension
            await asyncio.to_thread(path.write_bytes, content)
            report = await asyncio.to_thread(check_file, path, "fine-tune")
            if not report.get("is_check_passed"):
                raise TrainerError(f"Together's SDK refuses {filename}: {report.get('message')}")
            uploaded = await self._call(f"upload {filename}", lambda: self._client().files.upload(
                path, purpose="fine-tune", check=False))
        return uploaded.id

    async def start(self, request: JobRequest) -> str:
        if request.epochs == "auto":
            raise TrainerError("Together has no epochs=auto: the job needs the number of epochs the quote assumed.")
        suffix = job_suffix(request.suffix, request.idempotency_key)

        async def find() -> str | None:
            jobs = (await self._call("list fine-tuning jobs", lambda: self._client().fine_tuning.list())).data
            return next((j.id for j in jobs if getattr(j, "suffix", None) == suffix
                         or suffix in (j.x_model_output_name or "")), None)

        async def create() -> str:
            limits = await self._limits(request.base_model)
            params = self._job_params(request, suffix, limits)
            job = await self._call("start the fine-tuning job", lambda: self._client(retries=False).fine_tuning.create(
                **params, model_limits=limits))
            return job.id

        return await find_or_create(find, create, attempts=CREATE_ATTEMPTS, base_seconds=self.retry_base_seconds,
                                    transient=_transient)

    async def poll(self, external_id: str) -> JobState:
        job = await self._call(f"report on fine-tuning job {external_id}",
                               lambda: self._client().fine_tuning.retrieve(external_id))
        raw = str(job.status or "pending")
        status = _STATUSES.get(raw)
        if status is None:
            log.warning("Unknown fine-tuning status %r for job %s; treating it as running", raw, external_id)
            status = JobStatus.RUNNING
        error = None
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            error = await self._reason(external_id)
        succeeded = status is JobStatus.SUCCEEDED
        return JobState(
            external_id=external_id, status=status, raw_status=raw, progress=_progress(job, succeeded), error=error,
            fine_tuned_model=job.x_model_output_name if succeeded else None,
            # What Together bills (docs.together.ai/docs/fine-tuning/pricing): epochs x training-file tokens.
            trained_tokens=job.token_count * (job.n_epochs or 1) if succeeded and job.token_count else None,
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

    async def delete_file(self, file_id: str) -> None:
        try:
            await self._call(f"delete file {file_id}", lambda: self._client().files.delete(file_id))
        except _Failure as failure:
            if failure.status != 404:  # a file already gone is what was asked for
                raise

    async def cancel(self, external_id: str) -> JobState:
        try:
            await self._call(f"cancel fine-tuning job {external_id}",
                             lambda: self._client().fine_tuning.cancel(external_id))
        except _Failure:
            state = await self.poll(external_id)
            if state.raw_status in ("cancel_requested", "cancelled"):  # a second click on Cancel
                return state
            raise
        return await self.poll(external_id)

    async def check_base_model(self, model: str) -> ModelCheck:
        """Trainable here: Together fine-tunes it (with this trainer's training type) and can serve its fine-tune
        on dedicated hardware, which the eval needs; Together publishes no shutdown dates."""
        trainable = await self._supported("PRODUCT_FINE_TUNING")
        if model not in trainable:
            return ModelCheck(model, False, None, (
                f"Together does not fine-tune {model}. Models it fine-tunes include "
                f"{', '.join(list(trainable)[:6]) or 'none listed'}. Pick one as the student (student=...)."
            ))
        limits = await self._limits(model)
        if self.training_type == "full" and not limits.supports_full_training:
            return ModelCheck(model, False, None, f"Together fine-tunes {model} with LoRA only, and this trainer is "
                                                  "set to full fine-tuning. Use LoRA or another student.")
        hostable = [m for m in await self._supported("PRODUCT_DEDICATED") if m in trainable]
        if model not in hostable:
            return ModelCheck(model, False, None, (
                f"Together fine-tunes {model} but cannot serve its fine-tune on dedicated hardware, and the eval "
                "needs that (serverless LoRA is discontinued). Students it fine-tunes and serves: "
                f"{', '.join(hostable[:6]) or 'none listed'}. Pick one (student=...)."
            ))
        return shutdown_check(model, None, self.clock.today())

    def students(self, prices: PriceTable) -> list[StudentOption]:
        """The students whose fine-tunes Together also serves on dedicated hardware (the eval needs that), at the
        training rate of their size; `prices` (the per-model table) has nothing to add."""
        return [StudentOption(model, self.prices.training_cost(model, 1_000_000, 1, self.training_type).usd_per_1m)
                for model in sorted(self.prices.hostable()) if model in self.prices.billion_params]

    # ----- the dedicated deployment ------------------------------------------------------------------

    async def deploy(self, fine_tuned_model: str) -> Deployment:
        """Find or make the endpoint and deployment that serve the model, route the endpoint to it and wait until
        it is READY; a FAILED one is deleted and its reason raised."""
        project = await self._project()
        job = await self._job_making(fine_tuned_model)
        if not job.api_model_object_id:
            raise TrainerError(f"Together's job {job.id} names no model object for {fine_tuned_model}, so there is "
                               "nothing to deploy. Check the job in Together's dashboard.")
        endpoint_name = endpoint_name_for(job.id)
        endpoint = await find_or_create(
            lambda: self._endpoint_named(endpoint_name),
            lambda: self._call(f"create endpoint {endpoint_name}", lambda: self._client(retries=False).endpoints.create(
                project_id=project, name=endpoint_name)),
            attempts=CREATE_ATTEMPTS, base_seconds=self.retry_base_seconds, transient=_transient)
        deployment = await self._deployment_named(endpoint.id)
        if deployment is not None and deployment.status.state in (STOPPED, FAILED):
            # Stopped by its inactive timeout while the bot was down (its minutes are not recorded), or failed:
            # a new one serves the eval.
            await self._delete_when_stopped(endpoint.id, deployment.id)
            deployment = None
        first_seen_ready = deployment is not None and deployment.status.state == READY
        hardware = None
        if deployment is None:
            hardware = await self._hardware_for(str(job.model))
            deployment = await find_or_create(
                lambda: self._deployment_named(endpoint.id),
                lambda: self._call(f"deploy {fine_tuned_model}", lambda: self._client(
                    retries=False).endpoints.deployments.create(
                    endpoint.id, project_id=project, name=DEPLOYMENT_NAME,
                    model=f"projects/{project}/models/{job.api_model_object_id}", config=hardware.config,
                    autoscaling={"min_replicas": 1, "max_replicas": 1},
                    inactive_timeout=INACTIVE_TIMEOUT_MINUTES)),
                attempts=CREATE_ATTEMPTS, base_seconds=self.retry_base_seconds, transient=_transient)
        if not any(e.deployment_id == deployment.id and e.weight > 0 for e in endpoint.traffic_split):
            # A READY deployment answers nothing until the endpoint routes to it (else 503 routing_error).
            endpoint = await self._call(f"route endpoint {endpoint.name} to its deployment",
                                        lambda: self._client().endpoints.update(
                                            endpoint.id, project_id=project, update_mask="trafficSplit",
                                            traffic_split=[{"deployment_id": deployment.id, "weight": 1}]))
        ready = await self._ready(endpoint.id, deployment, fine_tuned_model)
        ready_at = _timestamp(ready.updated_at) if first_seen_ready else self.clock.now()
        log.info("Deployment %s (%s) of %s serves %s", ready.id, ready.hardware, fine_tuned_model, endpoint.name)
        usd_per_hour = (Decimal(hardware.cents_per_hour) / 100 if hardware is not None
                        else await self._usd_per_hour(ready.hardware))
        return Deployment(endpoint.name, self.inference_url, self.api_key, endpoint.id,
                          billed_from=min(ready_at or self.clock.now(), self.clock.now()), usd_per_hour=usd_per_hour)

    async def deploy_base(self, model: str) -> Deployment | None:
        return None  # the base student answers at base_model_endpoint

    async def undeploy(self, deployment: Deployment) -> int:
        """Stop and delete the deployments and the endpoint; returns what hosting cost as the bot measured it (see
        the module docstring), 0 for an endpoint already gone (whoever deleted it counted it)."""
        if deployment.endpoint_id is None:
            return 0
        project, endpoint_id = await self._project(), deployment.endpoint_id
        try:
            deployments = await self._all(f"list the deployments of endpoint {endpoint_id}",
                                          self._client().endpoints.deployments.list(endpoint_id, project_id=project))
        except _Failure as failure:
            if failure.status != 404:
                raise
            return 0
        stopped_at = self.clock.now()
        for item in deployments:
            if item.status.state not in (STOPPED, FAILED):
                await self._call(f"stop deployment {item.id}", lambda item=item: self._client(
                ).endpoints.deployments.update(item.id, project_id=project, endpoint_id=endpoint_id,
                                               update_mask="autoscaling",
                                               autoscaling={"min_replicas": 0, "max_replicas": 0}))
        for item in deployments:
            await self._delete_when_stopped(endpoint_id, item.id)
        await self._ignoring_404(f"delete endpoint {endpoint_id}", lambda: self._client().endpoints.delete(
            endpoint_id, project_id=project))
        log.info("Deleted endpoint %s and its %d deployment(s)", endpoint_id, len(deployments))
        if deployment.billed_from is None:  # never READY: nothing billed
            return 0
        if deployment.usd_per_hour is None:
            log.warning("Endpoint %s: Together lists no price for its hardware, so its cost is not recorded",
                        endpoint_id)
            return 0
        minutes = max(1, math.ceil((stopped_at - deployment.billed_from).total_seconds() / 60))
        return micro_usd_rounded_up(deployment.usd_per_hour * minutes * 1_000_000 / 60)

    # ----- costs the quote shows ---------------------------------------------------------------------

    @classmethod
    def price_billing(cls, student: str, settings: Settings) -> Billing:
        """How a run of `student` bills, from the price table alone (no credentials: estimates use it)."""
        return TogetherPrices.load(settings.prices_path).billing(student)

    def base_model_endpoint(self, model: str) -> Deployment:
        # The untuned student answers on Together's serverless chat API (per-token price), the teacher at
        # OPENAI_BASE_URL.
        return Deployment(model, self.inference_url, self.api_key)

    async def billing(self, base_model: str) -> Billing:
        """The price table's billing for the student, its deployment at the price Together lists today for the
        cheapest hardware that serves its fine-tunes."""
        billing = self.prices.billing(base_model)
        hardware = await self._hardware_for(base_model)
        hosting = self.prices.hosting_on([hardware.hardware],
                                         usd_per_hour={hardware.hardware: Decimal(hardware.cents_per_hour) / 100},
                                         as_of=self.clock.today().isoformat(),
                                         source=f"{self.base_url}/v2/public/inference-instance-types")
        return dataclasses.replace(billing, hosting=hosting)

    async def quote(self, base_model: str, file_tokens: int, epochs: int, eval_requests: int) -> TrainerQuote:
        return TrainerQuote((self.training_cost(base_model, file_tokens, epochs).explain(),))

    def training_cost(self, base_model: str, file_tokens: int, epochs: int) -> TrainingCost:
        """Together's formula for this trainer's training type, explained (`TrainingCost.explain`)."""
        return self.prices.training_cost(base_model, file_tokens, epochs, self.training_type)

    # ----- helpers ------------------------------------------------------------------------------------

    def _job_params(self, request: JobRequest, suffix: str, limits: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "training_file": request.training_file_id, "model": request.base_model, "n_epochs": int(request.epochs),
            "suffix": suffix, "batch_size": "max" if request.batch_size == "auto" else request.batch_size,
            "training_method": "sft", "train_on_inputs": "auto", "lora": self.training_type == "lora",
        }
        if self.training_type == "lora":
            rank = int(limits.lora_training.default_rank)
            params.update(lora_r=rank, lora_alpha=2 * rank, lora_dropout=0.0, lora_trainable_modules="all-linear")
        if request.learning_rate_multiplier != "auto":
            params["learning_rate"] = DEFAULT_LEARNING_RATE * request.learning_rate_multiplier
        if request.validation_file_id:
            # Without evaluations Together ignores the validation file; one costs its tokens once.
            params.update(validation_file=request.validation_file_id, n_evals=1)
        if request.seed is not None:
            params["random_seed"] = request.seed
        return params

    async def _limits(self, model: str) -> Any:
        limits = await self._call(f"read the fine-tuning limits of {model}",
                                  lambda: self._client().fine_tuning.model_limits(model_name=model))
        self._context_tokens[model] = int(limits.max_seq_length_sft or DEFAULT_CONTEXT_TOKENS)
        return limits

    async def _supported(self, product: str) -> dict[str, Any]:
        """The catalog's models for one product (PRODUCT_FINE_TUNING, PRODUCT_DEDICATED, ...), by name."""
        listed = await self._all(f"list the models of {product}",
                                 self._client().models.list_supported(product=product))  # type: ignore[arg-type]
        return {m.name: m for m in listed}

    async def _project(self) -> str:
        """TOGETHER_PROJECT_ID, else the project of the API key (GET /v3/whoami)."""
        if self.project_id is None:
            who = await self._call("find the API key's project (whoami)", lambda: self._client().whoami())
            project = getattr(who, "project", None)
            if project is None:
                raise TrainerError("Together's whoami names no project for this API key (it is not a project key). "
                                   "Set TOGETHER_PROJECT_ID to the project that should own the eval's endpoints.")
            self.project_id = project.id
        return self.project_id

    async def _job_making(self, fine_tuned_model: str) -> Any:
        jobs = (await self._call("list fine-tuning jobs", lambda: self._client().fine_tuning.list())).data
        found = next((j for j in jobs if j.x_model_output_name == fine_tuned_model), None)
        if found is None:
            raise TrainerError(f"Together lists no fine-tuning job that made {fine_tuned_model}, so the bot cannot "
                               "deploy it. Check the job in Together's dashboard.")
        return await self._call(f"read fine-tuning job {found.id}",
                                lambda: self._client().fine_tuning.retrieve(found.id))

    async def _endpoint_named(self, name: str) -> Any:
        project = await self._project()
        endpoints = await self._all("list endpoints", self._client().endpoints.list(project_id=project))
        return next((e for e in endpoints if e.name.rsplit("/", 1)[-1] == name), None)

    async def _deployment_named(self, endpoint_id: str) -> Any:
        project = await self._project()
        deployments = await self._all(f"list the deployments of endpoint {endpoint_id}",
                                      self._client().endpoints.deployments.list(endpoint_id, project_id=project))
        return next((d for d in deployments if d.name.rsplit("/", 1)[-1] == DEPLOYMENT_NAME), None)

    async def _hardware_for(self, base_model: str) -> _Hardware:
        """The cheapest config Together certifies for fine-tunes of `base_model`, on hardware it prices."""
        project = await self._project()
        supported = (await self._supported("PRODUCT_DEDICATED")).get(base_model)
        if supported is None:
            raise TrainerError(f"Together cannot serve fine-tunes of {base_model} on dedicated hardware (it is not in "
                               "GET /v2/supported-models?product=PRODUCT_DEDICATED). Pick another student.")
        instances = (await self._call("list the hardware", lambda: self._client().endpoints.hardware.list())).data
        by_id = {key: h for h in instances for key in (h.id, h.name)}
        configs = await self._all(f"list the configs that run {base_model}", self._client().models.configs.list(
            project_id=project, reference_model=supported.base_model))
        options = []
        for config in configs:
            selectors = {s.key: s.value for s in config.selectors}
            instance = by_id.get(f"{selectors.get('accelerator_count')}x{selectors.get('accelerator_type')}")
            if instance is not None:
                options.append((instance.price_cents_per_hour, f"projects/{config.project_id}/configs/{config.id}",
                                instance))
        for profile in supported.deployment_profiles if not options else ():
            instance = next((h for h in instances if h.gpu_type == profile.gpu_type
                             and h.gpu_count == profile.gpu_count), None)
            if instance is not None and profile.config:
                options.append((instance.price_cents_per_hour, profile.config, instance))
        if not options:
            raise TrainerError(f"Together lists no config on priced hardware for fine-tunes of {base_model}. Pick "
                               "another student, or deploy it by hand in Together's dashboard.")
        cents, config, instance = min(options, key=lambda o: (o[0], o[2].gpu_count, o[2].gpu_memory_gib))
        return _Hardware(config, instance.id, cents)

    async def _usd_per_hour(self, hardware: str) -> Decimal | None:
        instances = (await self._call("list the hardware", lambda: self._client().endpoints.hardware.list())).data
        found = next((h for h in instances if hardware in (h.id, h.name)), None)
        return None if found is None else Decimal(found.price_cents_per_hour) / 100

    async def _ready(self, endpoint_id: str, deployment: Any, model: str) -> Any:
        """Poll the deployment until READY; stop and delete it (and the endpoint) when it fails or takes too long."""
        project = await self._project()
        deadline = time.monotonic() + self.deploy_timeout_seconds
        deployment_id = deployment.id
        while deployment.status.state != READY:
            state = deployment.status.state
            late = time.monotonic() > deadline
            if state in (FAILED, STOPPED, STOPPING) or late:
                await self.undeploy(Deployment("", self.inference_url, self.api_key, endpoint_id))
                why = (f"was not ready within {self.deploy_timeout_seconds / 60:g} minutes" if late
                       else f"ended {state.removeprefix('DEPLOYMENT_STATE_')}: {deployment.status.message}")
                raise TrainerError(self._mask(
                    f"Together's deployment of {model} {why}. It was deleted with its endpoint; try the evaluation "
                    "again later (Together's dashboard shows the deployment's events)."))
            await asyncio.sleep(self.deploy_poll_seconds)
            deployment = await self._call(f"read deployment {deployment_id}", lambda: self._client(
            ).endpoints.deployments.retrieve(deployment_id, project_id=project, endpoint_id=endpoint_id))
        return deployment

    async def _delete_when_stopped(self, endpoint_id: str, deployment_id: str) -> None:
        """Delete a deployment once it has no running replica (Together refuses before: it scales down first)."""
        project = await self._project()
        deadline = time.monotonic() + self.deploy_timeout_seconds
        while True:
            try:
                current = await self._call(f"read deployment {deployment_id}", lambda: self._client(
                ).endpoints.deployments.retrieve(deployment_id, project_id=project, endpoint_id=endpoint_id))
            except _Failure as failure:
                if failure.status == 404:
                    return
                raise
            if current.status.state in (STOPPED, FAILED) or time.monotonic() > deadline:
                await self._ignoring_404(f"delete deployment {deployment_id}", lambda: self._client(
                ).endpoints.deployments.delete(deployment_id, project_id=project, endpoint_id=endpoint_id))
                return
            await asyncio.sleep(self.deploy_poll_seconds)

    async def _ignoring_404(self, what: str, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await self._call(what, call)
        except _Failure as failure:
            if failure.status != 404:
                raise

    async def _events(self, external_id: str) -> list[JobEvent]:
        listed = (await self._call(f"list the events of fine-tuning job {external_id}",
                                   lambda: self._client().fine_tuning.list_events(external_id))).data or []
        return [self._event(position, item) for position, item in enumerate(listed)]

    async def _reason(self, external_id: str) -> str | None:
        """Why the job ended: its newest error-level (else warning) event, as Together wrote it."""
        events = await self._events(external_id)
        for level in ("error", "warn"):
            found = [e for e in events if e.level == level]
            if found:
                return found[-1].message
        return None

    def _event(self, position: int, item: Any) -> JobEvent:
        message = self._mask(str(item.message or ""))
        created = str(item.created_at or "")
        kind = str(item.type)
        event_id = getattr(item, "hash", None) or hashlib.sha256(
            f"{position}\x00{created}\x00{kind}\x00{message}".encode()).hexdigest()[:32]
        data = {key: getattr(item, key, None) for key in _EVENT_DATA}
        return JobEvent(str(event_id), _unix(created), _LEVELS.get(str(item.level).lower(), "info"), message,
                        {k: v for k, v in data.items() if v is not None})

    async def _all(self, what: str, pages: AsyncIterable[T]) -> list[T]:
        """Every item of a cursor-paginated list (the SDK fetches the next pages as it is iterated)."""

        async def collect() -> list[T]:
            return [item async for item in pages]

        return await self._call(what, collect)

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """One SDK call (its own retries included); a refusal, an unreachable server or a request the SDK refuses
        to send raises _Failure with Together's reason, the API key masked."""
        try:
            return await call()
        except together.APIStatusError as exc:
            status = exc.status_code
            raise _Failure(self._mask(f"Together refused to {what} (HTTP {status}): {_reason(exc)}"), status=status,
                           retryable=status in RETRYABLE_STATUSES,
                           retry_after=retry_after_seconds(exc.response.headers)) from exc
        except together.APIConnectionError as exc:
            raise _Failure(self._mask(
                f"Could not reach Together at {self.base_url} to {what} ({type(exc).__name__}: {exc}). "
                "Check TOGETHER_BASE_URL and the network, then try again."), status=None, retryable=True) from exc
        except (ValueError, together.TogetherError) as exc:  # the SDK's own checks, before anything is sent
            raise _Failure(self._mask(f"Could not {what}: {exc}"), status=None, retryable=False) from exc

    def _mask(self, text: str) -> str:
        return mask_secrets(text, [self.api_key.reveal()])


def job_suffix(name: str | None, idempotency_key: str) -> str:
    """The job's suffix: the run's name made safe, then 8 hex of the key's hash (at most 40 characters)."""
    tag = hashlib.sha256(idempotency_key.encode()).hexdigest()[:8]
    clean = re.sub(r"[^a-z0-9]+", "-", (name or "distill").lower()).strip("-") or "distill"
    return f"{clean[: MAX_SUFFIX_CHARS - len(tag) - 1].rstrip('-')}-{tag}"


def endpoint_name_for(job_id: str) -> str:
    """The eval endpoint's name, derived from the job alone so a retried or resumed deploy finds the one made."""
    return f"distill-eval-{hashlib.sha256(job_id.encode()).hexdigest()[:12]}"


def _progress(job: Any, succeeded: bool) -> float | None:
    if succeeded:
        return 1.0
    done, total = getattr(job, "steps_completed", None), getattr(job, "total_steps", None)
    if isinstance(total, int) and total and isinstance(done, int):
        return min(1.0, done / total)
    if job.n_epochs and job.epochs_completed is not None:
        return min(1.0, job.epochs_completed / job.n_epochs)
    return None


def _reason(exc: together.APIStatusError) -> str:
    """Together's message: {"error": {"message"}} on the OpenAI-compatible routes, {"message"} on others."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
    return (str(body) if body else exc.message)[:500] or "no reason given"


def _unix(iso: str) -> int:
    try:
        return int(dt.datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return 0


def _timestamp(value: object) -> dt.datetime | None:
    """An aware datetime from the SDK's datetime or Together's ISO 8601 text; None when missing or odd."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
