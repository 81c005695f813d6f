"""Fine-tuning jobs on the sandbox clock: `/v1/fine_tuning/jobs` create, list, retrieve, events and cancel.

A job's whole course is decided when it is created (its file is checked and its naive Bayes trained at once,
off the event loop); the clock only reveals it. In simulated seconds: validating_files for 5, queued for 5,
running for 50 with a metrics event every few steps (`Step N/M: training loss=...`), then succeeded with its
`ft:` model callable, about 60 in all. The loss curve decays towards the trained classifier's real mean
log-loss on its examples. A bad file fails the job at the end of validation; `fail_jobs_with` fails every job
halfway through training with that message.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import string
from dataclasses import dataclass, field

from aiohttp import web

from sandbox.openai.clock import JobClock
from sandbox.openai.errors import APIError, bad_request, not_found
from sandbox.openai.files import Files
from sandbox.openai.ids import new_id
from sandbox.openai.learned import LearnedModel
from sandbox.openai.models import FINE_TUNABLE, FineTunedModel, ModelCatalog
from sandbox.openai.paging import limit_param, list_body, page
from sandbox.openai.params import json_body, metadata, metadata_filter, required_str
from sandbox.openai.training_file import Example, TrainingFileError, parse_training_file

VALIDATING_SECONDS = 5.0
QUEUED_SECONDS = 5.0
RUNNING_SECONDS = 50.0
METRIC_EVENTS = 20
ORGANIZATION = "distill-sandbox"
_ACTIVE = ("validating_files", "queued", "running")


@dataclass(frozen=True)
class Event:
    at: float
    id: str
    message: str
    level: str = "info"
    type: str = "message"
    data: dict | None = None

    def as_json(self) -> dict:
        return {"object": "fine_tuning.job.event", "id": self.id, "created_at": int(self.at), "level": self.level,
                "message": self.message, "type": self.type, "data": self.data or {}}


@dataclass
class Job:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    created_at: float
    hyperparameters: dict
    seed: int
    suffix: str | None
    metadata: dict[str, str]
    queued_at: float
    running_at: float
    finished_at: float
    fine_tuned_model: str
    events: list[Event] = field(default_factory=list)
    error: dict | None = None
    failed_at: float | None = None
    cancelled_at: float | None = None
    trained_tokens: int = 0
    classifier: LearnedModel | None = None

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if self.failed_at is not None and now >= self.failed_at:
            return "failed"
        if now < self.queued_at:
            return "validating_files"
        if now < self.running_at:
            return "queued"
        return "running" if now < self.finished_at else "succeeded"

    def visible_events(self, now: float) -> list[Event]:
        """Newest first, as OpenAI lists them."""
        shown = [e for e in self.events if e.at <= now]
        return sorted(shown, key=lambda e: (e.at, self.events.index(e)), reverse=True)

    def as_json(self, now: float) -> dict:
        status = self.status(now)
        ended = {"succeeded": self.finished_at, "failed": self.failed_at, "cancelled": self.cancelled_at}.get(status)
        return {
            "object": "fine_tuning.job",
            "id": self.id,
            "model": self.model,
            "created_at": int(self.created_at),
            "finished_at": int(ended) if ended else None,
            "fine_tuned_model": self.fine_tuned_model if status == "succeeded" else None,
            "organization_id": "org-sandbox",
            "result_files": [],
            "status": status,
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": dict(self.hyperparameters),
            "trained_tokens": self.trained_tokens if status == "succeeded" else None,
            "integrations": [],
            "seed": self.seed,
            "estimated_finish": int(self.finished_at) if status in _ACTIVE else None,
            "method": {"type": "supervised", "supervised": {"hyperparameters": dict(self.hyperparameters)}},
            "metadata": self.metadata or None,
            "error": self.error if status == "failed" else None,
            "user_provided_suffix": self.suffix,
        }


def _hyperparameters(body: dict) -> dict:
    """Resolved hyperparameters from `method.supervised` or the legacy top-level field ("auto" -> a value)."""
    method = body.get("method") or {"type": "supervised"}
    if method.get("type") != "supervised":
        raise bad_request(f"Invalid 'method.type': {method.get('type')!r}. The sandbox trains only 'supervised'.",
                          param="method.type")
    given = {**(body.get("hyperparameters") or {}), **(method.get("supervised") or {}).get("hyperparameters", {})}
    ranges = {"n_epochs": (1, 50), "batch_size": (1, 256)}
    for name, (low, high) in ranges.items():
        value = given.get(name, "auto")
        if value != "auto" and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
            raise bad_request(f"Invalid '{name}': {value!r}. Expected 'auto' or an integer between {low} and {high}.",
                              param=f"hyperparameters.{name}")
    rate = given.get("learning_rate_multiplier", "auto")
    if rate != "auto" and (not isinstance(rate, int | float) or rate <= 0):
        raise bad_request(f"Invalid 'learning_rate_multiplier': {rate!r}. Expected 'auto' or a number above 0.",
                          param="hyperparameters.learning_rate_multiplier")
    return {"n_epochs": given.get("n_epochs", "auto"), "batch_size": given.get("batch_size", "auto"),
            "learning_rate_multiplier": rate}


def _resolve_auto(hyper: dict, n_examples: int) -> dict:
    # The sandbox's own defaults for "auto": 3 epochs, batches of about 0.2% of the examples, multiplier 1.8.
    return {
        "n_epochs": 3 if hyper["n_epochs"] == "auto" else hyper["n_epochs"],
        "batch_size": max(1, min(256, round(n_examples * 0.002))) if hyper["batch_size"] == "auto"
        else hyper["batch_size"],
        "learning_rate_multiplier": 1.8 if hyper["learning_rate_multiplier"] == "auto"
        else hyper["learning_rate_multiplier"],
    }


def _train(training: bytes, validation: bytes | None, model: str) -> tuple[list[Example], LearnedModel]:
    examples = parse_training_file(training, model)
    if validation is not None:
        parse_training_file(validation, model, min_examples=1, param="validation_file")
    return examples, LearnedModel([(e.text, e.label) for e in examples])


class FineTuning:
    def __init__(self, files: Files, catalog: ModelCatalog, clock: JobClock, fail_jobs_with: str | None = None) -> None:
        self.files = files
        self.catalog = catalog
        self.clock = clock
        self.fail_jobs_with = fail_jobs_with
        self._jobs: dict[str, Job] = {}

    def succeeded_models(self) -> list[FineTunedModel]:
        now = self.clock.now()
        return [FineTunedModel(j.fine_tuned_model, j.model, int(j.finished_at), j.classifier)
                for j in self._jobs.values() if j.status(now) == "succeeded"]

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/fine_tuning/jobs", self.create),
            web.get("/v1/fine_tuning/jobs", self.list),
            web.get("/v1/fine_tuning/jobs/{job_id}", self.retrieve),
            web.get("/v1/fine_tuning/jobs/{job_id}/events", self.events),
            web.post("/v1/fine_tuning/jobs/{job_id}/cancel", self.cancel),
        ]

    def _job(self, request: web.Request) -> Job:
        job_id = request.match_info["job_id"]
        if job_id not in self._jobs:
            raise not_found(f"No fine-tuning job found with id '{job_id}'.", param="fine_tuning_job_id")
        return self._jobs[job_id]

    def _file(self, body: dict, param: str) -> bytes:
        file_id = body[param]
        try:
            stored = self.files.get(file_id, param)
        except APIError:
            raise bad_request(f"Invalid '{param}': file {file_id} does not exist. Upload it first with "
                              "purpose 'fine-tune'.", param=param) from None
        if stored.purpose != "fine-tune":
            raise bad_request(f"Invalid '{param}': file {file_id} has purpose '{stored.purpose}'; upload it with "
                              "purpose 'fine-tune'.", param=param)
        return stored.content

    async def create(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        model = self.catalog.find(required_str(body, "model"))
        if model is None or model.family not in FINE_TUNABLE or model.kind == "fine-tuned":
            raise bad_request(f"Model {body['model']} is not available for fine-tuning or does not exist. "
                              f"Fine-tunable: {', '.join(sorted(FINE_TUNABLE))}.", param="model",
                              code="model_not_available")
        self.catalog.get(model.id)  # a model past its shutdown date takes no new jobs (404, as for chat)
        required_str(body, "training_file")
        training = self._file(body, "training_file")
        validation = self._file(body, "validation_file") if body.get("validation_file") else None
        hyper = _hyperparameters(body)
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            raise bad_request("Invalid 'suffix': expected a string of at most 64 characters.", param="suffix")
        seed = body.get("seed")
        failure: TrainingFileError | None = None
        try:
            examples, classifier = await asyncio.to_thread(_train, training, validation, model.snapshot)
        except TrainingFileError as exc:
            failure = exc
        # The clock starts once the file is read, so a slow check never skips the validating_files stage.
        job = self._schedule(body, model.snapshot, hyper, suffix, seed if isinstance(seed, int) else None)
        if failure is None:
            self._plan_training(job, examples, classifier, hyper)
        else:
            job.error, job.failed_at = failure.as_json(), job.queued_at
            job.events.append(Event(job.queued_at, new_id("ftevent-"), f"Training file validation failed: "
                                    f"{failure.message}", level="error"))
        self._jobs[job.id] = job
        # As OpenAI answers a create: the job as it was created, however fast the sandbox clock runs.
        return web.json_response(job.as_json(job.created_at))

    def _schedule(self, body: dict, snapshot: str, hyper: dict, suffix: str | None, seed: int | None) -> Job:
        now = self.clock.now()
        queued_at = self.clock.later(now, VALIDATING_SECONDS)
        running_at = self.clock.later(queued_at, QUEUED_SECONDS)
        tag = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        job = Job(
            id=new_id("ftjob-"), model=snapshot, training_file=body["training_file"],
            validation_file=body.get("validation_file"), created_at=now, hyperparameters=hyper,
            seed=seed if seed is not None else random.randrange(2**31), suffix=suffix, metadata=metadata(body),
            queued_at=queued_at, running_at=running_at, finished_at=self.clock.later(running_at, RUNNING_SECONDS),
            fine_tuned_model=f"ft:{snapshot}:{ORGANIZATION}:{suffix or ''}:{tag}",
        )
        job.events += [Event(now, new_id("ftevent-"), f"Created fine-tuning job: {job.id}"),
                       Event(now, new_id("ftevent-"), f"Validating training file: {job.training_file}")]
        return job

    def _plan_training(self, job: Job, examples: list[Example], classifier: LearnedModel, hyper: dict) -> None:
        job.hyperparameters = _resolve_auto(hyper, len(examples))
        epochs, batch = job.hyperparameters["n_epochs"], job.hyperparameters["batch_size"]
        job.classifier = classifier
        job.trained_tokens = sum(e.tokens for e in examples) * epochs
        total = math.ceil(len(examples) / batch) * epochs
        final = classifier.mean_log_loss()
        initial = max(final + 1.0, math.log(max(2, len(classifier.labels))) + 1.0)
        noise = random.Random(job.seed)
        job.events += [Event(job.queued_at, new_id("ftevent-"), "Files validated, moving job to queued state"),
                       Event(job.running_at, new_id("ftevent-"), "Fine-tuning job started")]
        fail_step = total // 2 if self.fail_jobs_with else None
        every = max(1, total // METRIC_EVENTS)
        for step in sorted({*range(every, total + 1, every), total}):
            at = self.clock.later(job.running_at, RUNNING_SECONDS * step / total)
            if fail_step is not None and step >= fail_step:
                job.error = {"code": "job_failed", "message": self.fail_jobs_with, "param": None}
                job.failed_at = at
                job.events.append(Event(at, new_id("ftevent-"), f"Fine-tuning job failed: {self.fail_jobs_with}",
                                        level="error"))
                return
            loss = final + (initial - final) * math.exp(-4 * step / total) * (1 + 0.1 * noise.uniform(-1, 1))
            data = {"step": step, "train_loss": round(loss, 4), "total_steps": total,
                    "train_mean_token_accuracy": round(math.exp(-loss), 4)}
            job.events.append(Event(at, new_id("ftevent-"), f"Step {step}/{total}: training loss={loss:.4f}",
                                    type="metrics", data=data))
        job.events += [Event(job.finished_at, new_id("ftevent-"), f"New fine-tuned model created: "
                             f"{job.fine_tuned_model}"),
                       Event(job.finished_at, new_id("ftevent-"), "The job has successfully completed")]

    async def list(self, request: web.Request) -> web.Response:
        wanted = metadata_filter(request)
        jobs = [j for j in reversed(self._jobs.values()) if wanted.items() <= j.metadata.items()]
        chunk, has_more = page(jobs, request.query.get("after"), limit_param(request), key=lambda j: j.id)
        now = self.clock.now()
        return web.json_response(list_body([j.as_json(now) for j in chunk], has_more))

    async def retrieve(self, request: web.Request) -> web.Response:
        return web.json_response(self._job(request).as_json(self.clock.now()))

    async def events(self, request: web.Request) -> web.Response:
        events = self._job(request).visible_events(self.clock.now())
        chunk, has_more = page(events, request.query.get("after"), limit_param(request), key=lambda e: e.id)
        return web.json_response(list_body([e.as_json() for e in chunk], has_more))

    async def cancel(self, request: web.Request) -> web.Response:
        job, now = self._job(request), self.clock.now()
        status = job.status(now)
        if status not in _ACTIVE:
            raise bad_request(f"Job {job.id} has already {status}; only a job that is validating, queued or running "
                              "can be cancelled.", param="fine_tuning_job_id")
        job.cancelled_at = now
        job.events = [e for e in job.events if e.at <= now]
        job.events.append(Event(now, new_id("ftevent-"), "Fine-tuning job cancelled"))
        return web.json_response(job.as_json(now))
