"""Together's fine-tuning jobs on the sandbox clock, as together-py 3.1.1 drives them (notes §3, §4.6):
`GET /v1/fine-tunes/models/limits` (catalog.py), `POST /v1/fine-tunes/estimate-price`, `POST /v1/fine-tunes`,
`GET /v1/fine-tunes`, `GET /v1/fine-tunes/{id}`, `GET /v1/fine-tunes/{id}/events`, `POST /v1/fine-tunes/{id}/cancel`.

Request and job shapes follow the SDK (lib/types/fine_tuning.py FinetuneRequest, types/finetune_response.py,
finetune_event.py): `training_type` {"type": "Lora", "lora_r", "lora_alpha", ...} or {"type": "Full"},
`training_method` {"method": "sft", "train_on_inputs"}, n_epochs (no "auto": the SDK's default is 1),
learning_rate (absolute, default 1e-5), batch_size (an integer or "max"), suffix (at most 40 characters),
random_seed, and the scheduler fields the SDK always sends. Events have no ids: each carries a `hash`, timestamps
are ISO strings, and the list comes oldest first in {"data": [...]}.

In simulated seconds a job is pending for 2, queued for 5, running for 40 (downloads, then training with an
event per epoch), compressing for 5 and uploading for 5, then completed with `model_output_name`
"distill-sandbox/<model>-<suffix>-<6 hex>" and `model_object_id` (an "ml_" project model, what a v2 deployment
serves). The training file is checked when the data is downloaded (the OpenAI sandbox's rules, with Together's
minimum of one example, together-py lib/constants.py MIN_SAMPLES): a broken file ends the job in `error` with the
reason in a `job_error` event, as Together reports it. `fail_jobs_with` makes every job fail that way halfway
through training. A cancel is `cancel_requested` for 2 simulated seconds, then `cancelled`. The price estimate is
Together's formula (epochs x training tokens + evals x validation tokens, at the size bracket's rate) with its
$4.00 minimum (docs.together.ai/docs/fine-tuning/pricing).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.openai.clock import JobClock
from sandbox.openai.errors import APIError, bad_request, not_found
from sandbox.openai.learned import LearnedModel
from sandbox.openai.params import json_body, required_str
from sandbox.openai.training_file import TrainingFileError, parse_training_file
from sandbox.together.catalog import MINIMUM_CHARGE_USD, OWNER, PROJECT_ID, TogetherCatalog, TogetherModel, iso
from sandbox.together.files import TogetherFiles

PENDING_SECONDS = 2.0
QUEUED_SECONDS = 5.0
RUNNING_SECONDS = 40.0
DOWNLOAD_SECONDS = 4.0  # of the running time, before training starts
COMPRESSING_SECONDS = 5.0
UPLOADING_SECONDS = 5.0
CANCELLING_SECONDS = 2.0
DEFAULT_LEARNING_RATE = 1e-5  # together-py FineTuningResource.create
MAX_SUFFIX_CHARS = 40
MAX_BATCH = 8  # what "max" resolves to for the sandbox's step count
USER_ID = "user-sandbox"
CANCELLABLE = ("pending", "queued", "running")


@dataclass(frozen=True)
class Event:
    at: float
    type: str
    message: str
    level: str = "info"
    step: int | None = None
    total_steps: int | None = None
    token_count: int | None = None

    def as_json(self, job_id: str, index: int) -> dict:
        digest = hashlib.sha256(f"{job_id}:{index}:{self.type}".encode()).hexdigest()[:32]
        body = {"object": "fine-tune-event", "created_at": iso(self.at), "level": self.level,
                "message": self.message, "type": self.type, "hash": digest, "step": self.step,
                "total_steps": self.total_steps, "token_count": self.token_count}
        return {key: value for key, value in body.items() if value is not None}


@dataclass
class Job:
    id: str
    model: TogetherModel
    request: dict[str, Any]  # the checked create parameters, echoed back as Together does
    output_name: str
    created_at: float
    queued_at: float
    running_at: float
    compressing_at: float
    uploading_at: float
    completed_at: float
    events: list[Event] = field(default_factory=list)
    downloaded_at: float = 0.0  # when the training data is downloaded (and counted)
    training_start_at: float = 0.0
    total_steps: int = 0
    token_count: int = 0
    classifier: LearnedModel | None = None
    model_object_id: str = field(default_factory=lambda: f"ml_{secrets.token_hex(10)}")
    failed_at: float | None = None
    cancel_requested_at: float | None = None
    cancelled_at: float | None = None

    def status(self, now: float) -> str:
        if self.cancel_requested_at is not None:
            return "cancelled" if now >= self.cancelled_at else "cancel_requested"
        if self.failed_at is not None and now >= self.failed_at:
            return "error"
        for status, until in (("pending", self.queued_at), ("queued", self.running_at),
                              ("running", self.compressing_at), ("compressing", self.uploading_at),
                              ("uploading", self.completed_at)):
            if now < until:
                return status
        return "completed"

    def steps_completed(self, now: float) -> int:
        if not self.total_steps or now < self.training_start_at:
            return 0
        end = min(now, self.compressing_at, self.failed_at or now, self.cancel_requested_at or now)
        share = (end - self.training_start_at) / (self.compressing_at - self.training_start_at)
        return min(self.total_steps, math.floor(share * self.total_steps))

    def visible_events(self, now: float) -> list[Event]:
        return [e for e in self.events if e.at <= now]

    @property
    def model_resource(self) -> str:
        """The project model the completed job made (`projects/{project}/models/{model_object_id}`)."""
        return f"projects/{PROJECT_ID}/models/{self.model_object_id}"

    def as_json(self, now: float) -> dict:
        status = self.status(now)
        steps = self.steps_completed(now)
        return {
            "id": self.id, "object": "fine-tune", "status": status, "user_id": USER_ID,
            "owner_address": f"{USER_ID}@sandbox.invalid", "model": self.model.id,
            "model_output_name": self.output_name, "suffix": self.request.get("suffix"),
            "created_at": iso(self.created_at), "updated_at": iso(min(now, self.completed_at)),
            "started_at": iso(self.running_at) if now >= self.running_at else None,
            **{k: self.request.get(k) for k in ("training_file", "validation_file", "n_epochs", "n_evals",
                                                "n_checkpoints", "batch_size", "learning_rate", "training_type",
                                                "training_method", "random_seed")},
            "token_count": self.token_count if self.token_count and now >= self.downloaded_at else None,
            "param_count": int(self.model.billion_params * 1e9),
            "total_steps": self.total_steps or None, "steps_completed": steps,
            "epochs_completed": steps * self.request["n_epochs"] // self.total_steps if self.total_steps else 0,
            "queue_depth": 0 if now >= self.queued_at else 1,
            "events": [],  # Together's job object can embed events; the list comes from /events here
            **({"model_object_id": self.model_object_id, "model_object_name": self.output_name,
                "adapter_object_id": f"ml_{hashlib.sha256(self.id.encode()).hexdigest()[:20]}"}
               if status == "completed" else {}),
        }


def _positive_int(body: dict, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"Invalid '{name}': {value!r}. Expected an integer from {low} to {high}.", param=name)
    return value


def checked_request(body: dict, model: TogetherModel, files: TogetherFiles) -> dict[str, Any]:
    """The create parameters with Together's defaults filled in; 400 naming the first one that is wrong."""
    limits = model.limits()
    required_str(body, "training_file")
    for param in ("training_file", "validation_file"):
        if body.get(param):
            stored = files.stored(str(body[param]), param)
            if stored.purpose != "fine-tune":
                raise bad_request(f"File {stored.id} has purpose '{stored.purpose}'; upload it with purpose "
                                  "'fine-tune'.", param=param)
    rate = body.get("learning_rate", DEFAULT_LEARNING_RATE)
    if not isinstance(rate, int | float) or not limits["min_learning_rate"] <= rate <= limits["max_learning_rate"]:
        raise bad_request(f"Invalid 'learning_rate': {rate!r}. Expected a number from {limits['min_learning_rate']} "
                          f"to {limits['max_learning_rate']}.", param="learning_rate")
    batch = body.get("batch_size", "max")
    lora = limits["lora_training"]
    if batch != "max" and (isinstance(batch, bool) or not isinstance(batch, int)
                           or not lora["min_batch_size"] <= batch <= lora["max_batch_size"]):
        raise bad_request(f"Invalid 'batch_size': {batch!r}. Expected 'max' or an integer from "
                          f"{lora['min_batch_size']} to {lora['max_batch_size']}.", param="batch_size")
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > MAX_SUFFIX_CHARS):
        raise bad_request(f"Invalid 'suffix': expected a string of at most {MAX_SUFFIX_CHARS} characters.",
                          param="suffix")
    training_type = body.get("training_type") or {"type": "Lora", "lora_r": lora["default_rank"],
                                                  "lora_alpha": 2 * lora["default_rank"]}
    if training_type.get("type") == "Full":
        if not model.full_training:
            raise bad_request(f"Full fine-tuning is not supported for {model.id}; use LoRA.", param="training_type")
    elif training_type.get("type") == "Lora":
        _positive_int(training_type, "lora_r", lora["default_rank"], 1, lora["max_rank"])
    else:
        raise bad_request(f"Invalid 'training_type.type': {training_type.get('type')!r}. Expected 'Lora' or 'Full'.",
                          param="training_type")
    method = body.get("training_method") or {"method": "sft"}
    if method.get("method") != "sft":
        raise bad_request(f"Invalid 'training_method.method': {method.get('method')!r}. The sandbox trains 'sft' "
                          "only.", param="training_method")
    n_evals = _positive_int(body, "n_evals", 0, 0, limits["max_num_evals"])
    if n_evals and not body.get("validation_file"):
        raise bad_request("n_evals needs a validation_file to evaluate on.", param="n_evals")
    seed = body.get("random_seed")
    return {
        "training_file": body["training_file"], "validation_file": body.get("validation_file") or None,
        "n_epochs": _positive_int(body, "n_epochs", 1, 1, limits["max_num_epochs"]), "n_evals": n_evals,
        "n_checkpoints": _positive_int(body, "n_checkpoints", 1, 1, limits["max_num_checkpoints"]),
        "batch_size": batch, "learning_rate": rate, "suffix": suffix, "random_seed": seed,
        "training_type": training_type, "training_method": {"method": "sft", "train_on_inputs": "auto",
                                                            **method},
    }


def _tokens(content: bytes, model: str, param: str) -> int:
    return sum(e.tokens for e in parse_training_file(content, model, min_examples=1, param=param))


def _learn(training: bytes, validation: bytes | None, model: str) -> tuple[int, int, LearnedModel]:
    """(examples, tokens per epoch, classifier), or TrainingFileError for the first broken rule."""
    examples = parse_training_file(training, model, min_examples=1)
    if validation is not None:
        parse_training_file(validation, model, min_examples=1, param="validation_file")
    return len(examples), sum(e.tokens for e in examples), LearnedModel([(e.text, e.label) for e in examples])


class FineTunes:
    def __init__(self, files: TogetherFiles, catalog: TogetherCatalog, clock: JobClock,
                 fail_jobs_with: str | None = None) -> None:
        self.files = files
        self.catalog = catalog
        self.clock = clock
        self.fail_jobs_with = fail_jobs_with
        self._jobs: dict[str, Job] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/fine-tunes/estimate-price", self.estimate_price),
            web.post("/v1/fine-tunes", self.create),
            web.get("/v1/fine-tunes", self.list),
            web.get("/v1/fine-tunes/{job_id}", self.retrieve),
            web.get("/v1/fine-tunes/{job_id}/events", self.events),
            web.post("/v1/fine-tunes/{job_id}/cancel", self.cancel),
        ]

    def completed(self, model_resource: str) -> Job | None:
        """The completed job that made the project model `model_resource` (a revision suffix is ignored)."""
        now = self.clock.now()
        wanted = model_resource.split("/revisions/", 1)[0]
        return next((j for j in self._jobs.values() if j.model_resource == wanted and j.status(now) == "completed"),
                    None)

    def _job(self, request: web.Request) -> Job:
        job_id = request.match_info["job_id"]
        if job_id not in self._jobs:
            raise not_found(f"Fine-tune job {job_id} not found.", param="id")
        return self._jobs[job_id]

    async def create(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        model = self.catalog.trainable(required_str(body, "model"))
        params = checked_request(body, model, self.files)
        training = self.files.content(params["training_file"])
        validation = self.files.content(params["validation_file"], "validation_file") if params["validation_file"] \
            else None
        try:
            learned: tuple[int, int, LearnedModel] | TrainingFileError = await asyncio.to_thread(
                _learn, training, validation, model.id)
        except TrainingFileError as exc:
            learned = exc
        job = self._schedule(model, params)
        self._plan(job, learned)
        self._jobs[job.id] = job
        return web.json_response(job.as_json(job.created_at))  # the job as created, however fast the clock runs

    async def estimate_price(self, request: web.Request) -> web.Response:
        """Together's formula on the files' tokens, with the minimum charge; what `fine_tuning.create` asks first."""
        body = await json_body(request)
        model = self.catalog.trainable(required_str(body, "model"))
        epochs = _positive_int(body, "n_epochs", 1, 1, model.limits()["max_num_epochs"])
        evals = _positive_int(body, "n_evals", 0, 0, model.limits()["max_num_evals"])
        full = (body.get("training_type") or {}).get("type") == "Full"
        try:
            train = await asyncio.to_thread(_tokens, self.files.content(required_str(body, "training_file")),
                                            model.id, "training_file")
            validation = await asyncio.to_thread(_tokens, self.files.content(body["validation_file"],
                                                                             "validation_file"),
                                                 model.id, "validation_file") if body.get("validation_file") else 0
        except TrainingFileError as exc:
            reason = "train_file_invalid" if exc.param == "training_file" else "eval_file_invalid"
            return web.json_response({"estimation_available": False, "unavailable_reason": reason})
        trained = epochs * train + evals * validation
        price = max(MINIMUM_CHARGE_USD, trained * model.usd_per_1m_trained(full) / 1_000_000)
        return web.json_response({"estimation_available": True, "allowed_to_proceed": True,
                                  "estimated_total_price": round(price, 6),
                                  "estimated_train_token_count": epochs * train,
                                  "estimated_eval_token_count": evals * validation, "user_limit": 1000.0})

    def _schedule(self, model: TogetherModel, params: dict[str, Any]) -> Job:
        later = self.clock.later
        now = self.clock.now()
        queued = later(now, PENDING_SECONDS)
        running = later(queued, QUEUED_SECONDS)
        compressing = later(running, RUNNING_SECONDS)
        uploading = later(compressing, COMPRESSING_SECONDS)
        name = "-".join(part for part in (model.id.split("/", 1)[-1], params["suffix"], secrets.token_hex(3)) if part)
        return Job(f"ft-{uuid.uuid4()}", model, params, f"{OWNER}/{name}", now, queued, running, compressing,
                   uploading, later(uploading, UPLOADING_SECONDS),
                   [Event(now, "job_pending", "Fine tune request created")])

    def _plan(self, job: Job, learned: tuple[int, int, LearnedModel] | TrainingFileError) -> None:
        """Every event of the job's future, on the clock; a failure cuts the plan where it happens."""
        later, model = self.clock.later, job.model.id
        job.downloaded_at = downloaded = later(job.running_at, DOWNLOAD_SECONDS / 2)
        job.training_start_at = later(job.running_at, DOWNLOAD_SECONDS)
        job.events += [Event(job.running_at, "job_start", f"Job started at {iso(job.running_at)}"),
                       Event(job.running_at, "model_downloading", f"Downloading model data for {model}"),
                       Event(downloaded, "model_download_complete", f"Model data downloaded for {model}")]
        if isinstance(learned, TrainingFileError):
            self._fail(job, downloaded, f"Data validation failed for {learned.param}: {learned.message}")
            return
        examples, tokens, job.classifier = learned
        job.token_count = tokens
        epochs = job.request["n_epochs"]
        batch = MAX_BATCH if job.request["batch_size"] == "max" else job.request["batch_size"]
        per_epoch = math.ceil(examples / batch)
        job.total_steps = per_epoch * epochs
        job.events += [Event(downloaded, "training_data_download_complete", f"Training data downloaded for {model}",
                             token_count=tokens),
                       Event(job.training_start_at, "training_start", f"Training started for model {model}")]
        training_seconds = job.compressing_at - job.training_start_at
        for epoch in range(1, epochs + 1):
            at = job.training_start_at + training_seconds * epoch / epochs
            if self.fail_jobs_with and epoch > epochs / 2:
                self._fail(job, job.training_start_at + training_seconds / 2, self.fail_jobs_with)
                return
            job.events.append(Event(at, "epoch_complete", f"Epoch completed, at step {per_epoch * epoch}",
                                    step=per_epoch * epoch, total_steps=job.total_steps))
        job.events += [
            Event(job.compressing_at, "training_complete", f"Training completed for {model} at "
                                                           f"{iso(job.compressing_at)}"),
            Event(job.compressing_at, "model_compressing", "Compressing output model"),
            Event(job.uploading_at, "model_compression_complete", "Model compression complete"),
            Event(job.uploading_at, "model_uploading", "Uploading output model"),
            Event(job.completed_at, "model_upload_complete", "Model upload complete"),
            Event(job.completed_at, "job_complete", f"Job finished at {iso(job.completed_at)}"),
        ]

    @staticmethod
    def _fail(job: Job, at: float, message: str) -> None:
        job.failed_at = at
        job.events.append(Event(at, "job_error", message, level="error"))

    async def list(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        return web.json_response({"data": [j.as_json(now) for j in reversed(self._jobs.values())]})

    async def retrieve(self, request: web.Request) -> web.Response:
        return web.json_response(self._job(request).as_json(self.clock.now()))

    async def events(self, request: web.Request) -> web.Response:
        job = self._job(request)
        return web.json_response({"data": [e.as_json(job.id, i)
                                           for i, e in enumerate(job.visible_events(self.clock.now()))]})

    async def cancel(self, request: web.Request) -> web.Response:
        job, now = self._job(request), self.clock.now()
        status = job.status(now)
        if status not in CANCELLABLE:
            raise APIError(400, f"Job {job.id} is {status}; only a pending, queued or running job can be cancelled.",
                           param="id")
        job.cancel_requested_at, job.cancelled_at = now, self.clock.later(now, CANCELLING_SECONDS)
        job.events = [*job.visible_events(now), Event(now, "cancel_requested", "Job cancellation requested"),
                      Event(job.cancelled_at, "job_stopped", "Job cancelled")]
        return web.json_response(job.as_json(now))
