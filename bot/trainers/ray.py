"""trainer=ray: LoRA fine-tuning on the team's own Ray cluster through the Ray Jobs REST API (bot/trainers/ray_jobs.py),
and the eval's OpenAI-compatible server of the base model with the adapter.

- Files: the training file goes to the folder DISTILL_RAY_STORAGE names, which the bot and every node share; its path
  is the file id. The adapter and its manifest (base model, adapter path, trained tokens, final loss) come back there.
- Jobs: the scripts of bot/trainers/ray_job are the job's working_dir (uploaded once per version); the submission_id
  is derived from the idempotency key, so a retried start, or a bot restarted mid-job, finds the same job. The job
  asks Ray for DISTILL_RAY_GPUS GPUs. Its `DISTILL_*` log lines become the thread's events (bot/trainers/ray_logs.py);
  a failed job's reason is Ray's message with the log's last line. Cancel is `POST /api/jobs/{id}/stop`.
- Serving: with DISTILL_SERVE_BASE_URL, a server the team runs (vLLM with --enable-lora and
  VLLM_ALLOW_RUNTIME_LORA_UPDATING) answers for the base model, and the adapter is loaded into it for the eval and
  unloaded after (`/v1/load_lora_adapter`). Without it, `deploy` (and `deploy_base`, for the baseline) start
  ray_job/serve.py as a Ray job (vLLM where installed), wait for its `DISTILL_SERVING` URL to answer, and `undeploy`
  stops that job. The fine-tuned model's name is the adapter's path.
- Costs: GPU time at DISTILL_GPU_HOUR_USD (bot/trainers/ray_pricing.py), measured from Ray's start and end times.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import math
import shlex
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import aiohttp

from bot.core.clock import Clock
from bot.core.config import Secret, Settings
from bot.costs.quotes import Billing
from bot.trainers.base import (
    Deployment,
    EventPage,
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
)
from bot.trainers.ray_jobs import TERMINAL, RayJobs
from bot.trainers.ray_logs import latest, training_events
from bot.trainers.ray_pricing import RayPrices

if TYPE_CHECKING:
    from bot.prices.table import PriceTable

log = logging.getLogger(__name__)

JOB_SCRIPTS = Path(__file__).with_name("ray_job")
MAX_EXAMPLE_TOKENS = 4_096  # the job's --max-length: longer examples would be cut
DEFAULT_EPOCHS = 3
BATCH_SIZE = 8
JOB_ENV = {"HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}
SERVER_KEY = Secret("EMPTY")  # vLLM's and the bot's own server take any key unless started with --api-key
QUOTED_TOKENS = "quoted_trained_tokens"
_STATUSES = {"PENDING": JobStatus.QUEUED, "RUNNING": JobStatus.RUNNING, "SUCCEEDED": JobStatus.SUCCEEDED,
             "FAILED": JobStatus.FAILED, "STOPPED": JobStatus.CANCELLED}


def submission_id(kind: str, key: str) -> str:
    return f"distill-{kind}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


class RayTrainer:
    name = "ray"
    in_context = False  # it fine-tunes the student
    auto_epochs = False  # the job trains the epochs it is given: the bot sends what its quote assumed
    default_student = ""  # any open model the cluster can read; the shell and the demo build a tiny one

    def __init__(self, *, address: str, storage: Path, prices: RayPrices, serve_base_url: str | None = None,
                 env: dict[str, str] | None = None, serve_timeout_seconds: float = 15 * 60,
                 poll_seconds: float = 1.0, clock: Clock | None = None) -> None:
        self.jobs = RayJobs(address)
        self.storage = storage
        self.prices = prices
        self.serve_base_url = serve_base_url.rstrip("/") if serve_base_url else None
        self.env = {**JOB_ENV, **(env or {})}
        self.serve_timeout_seconds = serve_timeout_seconds
        self.poll_seconds = poll_seconds
        self.clock = clock or Clock()
        host = urlparse(address).hostname or ""
        # A head on this machine: the server listens on loopback only. Elsewhere on every interface of its node.
        self.serve_host = "127.0.0.1" if host == "localhost" or _loopback(host) else "0.0.0.0"
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> RayTrainer:
        settings.require("RAY_ADDRESS", "DISTILL_RAY_STORAGE")
        assert settings.ray_address is not None and settings.ray_storage is not None
        return cls(address=settings.ray_address, storage=settings.ray_storage,
                   prices=RayPrices.load(settings.gpu_hour_usd, settings.ray_gpus, settings.prices_path),
                   serve_base_url=settings.serve_base_url, clock=clock)

    async def close(self) -> None:
        await self.jobs.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ----- files and jobs ----------------------------------------------------------------------------

    def limits(self, base_model: str) -> TrainingLimits:
        return TrainingLimits(1, MAX_EXAMPLE_TOKENS)

    def training_file(self, examples: Sequence[Sequence[Message]]) -> bytes:
        return chat_jsonl(examples)

    async def upload(self, content: bytes, filename: str) -> str:
        """Write the file into the shared storage under its content hash; its path is its id."""
        digest = hashlib.sha256(content).hexdigest()[:16]
        path = self.storage / "distill" / "files" / f"{digest}-{Path(filename).name}"
        try:
            await asyncio.to_thread(_write_once, path, content)
        except OSError as exc:
            raise TrainerError(f"Could not write {filename} to DISTILL_RAY_STORAGE ({path}): {exc.strerror}. The "
                               "folder must exist and be writable by the bot and readable by every Ray node.") from exc
        return str(path)

    def _job_folder(self, job_id: str) -> Path:
        return self.storage / "distill" / "jobs" / job_id

    async def start(self, request: JobRequest) -> str:
        if request.epochs == "auto":
            raise TrainerError("Ray has no epochs=auto: the job needs the number of epochs the quote assumed.")
        job_id = submission_id("train", request.idempotency_key)
        rate = 1.0 if request.learning_rate_multiplier == "auto" else float(request.learning_rate_multiplier)
        batch = BATCH_SIZE if request.batch_size == "auto" else int(request.batch_size)
        arguments = ["--base", request.base_model, "--data", request.training_file_id,
                     "--out", str(self._job_folder(job_id)), "--epochs", str(int(request.epochs)),
                     "--learning-rate", repr(2e-4 * rate), "--batch-size", str(batch),
                     "--max-length", str(MAX_EXAMPLE_TOKENS), "--seed", str(request.seed or 0)]
        metadata = {"distill_trainer": self.name, **{k: str(v) for k, v in request.metadata.items()}}
        return await self._submit(job_id, "train.py", arguments, metadata)

    async def _submit(self, job_id: str, script: str, arguments: list[str], metadata: dict[str, str]) -> str:
        package = await self.jobs.upload_package(JOB_SCRIPTS)
        gpus = self.prices.gpus
        body: dict[str, Any] = {
            "entrypoint": shlex.join(["python", script, *arguments]), "submission_id": job_id,
            "runtime_env": {"working_dir": package, "env_vars": self.env}, "metadata": metadata,
        }
        if gpus:
            body["entrypoint_num_gpus"] = gpus
        return await self.jobs.submit(body)

    async def poll(self, external_id: str) -> JobState:
        info = await self.jobs.info(external_id)
        raw = str(info.get("status") or "PENDING")
        status = _STATUSES.get(raw, JobStatus.RUNNING)
        logs = await self.jobs.logs(external_id) if raw != "PENDING" else ""
        metrics = latest(logs, "METRICS") or {}
        progress = None
        if status is JobStatus.SUCCEEDED:
            progress = 1.0
        elif metrics.get("total_steps"):
            progress = min(1.0, metrics["step"] / metrics["total_steps"])
        state = JobState(external_id=external_id, status=status, raw_status=raw, progress=progress,
                         metrics={"train_loss": float(metrics["loss"])} if "loss" in metrics else {})
        if status is JobStatus.FAILED:
            return _replace(state, error=_failure(info, logs))
        if status is JobStatus.CANCELLED:
            return _replace(state, error=str(info.get("message") or "Ray stopped the job."))
        if status is not JobStatus.SUCCEEDED:
            return state
        manifest = latest(logs, "MANIFEST") or await asyncio.to_thread(
            _read_json, self._job_folder(external_id) / "manifest.json")
        if not manifest:
            return _replace(state, status=JobStatus.FAILED, error=(
                f"Ray says job {external_id} succeeded, but it left no manifest (DISTILL_MANIFEST in its logs, or "
                f"{self._job_folder(external_id)}/manifest.json). Check the job's logs in the Ray dashboard."))
        cost, note = self._cost(info, int(manifest.get("trained_tokens") or 0))
        return _replace(state, fine_tuned_model=str(manifest["adapter_path"]),
                        trained_tokens=int(manifest.get("trained_tokens") or 0), cost_micro_usd=cost, cost_note=note)

    def _cost(self, info: dict[str, Any], trained_tokens: int) -> tuple[int, str]:
        """The job's GPU minutes (Ray's start to end, times its GPUs) at the team's rate, against the quote's."""
        seconds = max(0, int(info.get("end_time") or 0) - int(info.get("start_time") or 0)) / 1000
        actual = Decimal(seconds) / 60 * self.prices.devices
        quoted_tokens = int((info.get("metadata") or {}).get(QUOTED_TOKENS) or trained_tokens)
        quoted = self.prices.quoted_gpu_minutes(quoted_tokens)
        device = "GPU" if self.prices.gpus else "CPU device"
        return self.prices.gpu_minutes_cost_micro_usd(actual), (
            f"GPU time: quoted {quoted:.2f} minutes, actual {actual:.2f} minutes ({self.prices.devices} {device}"
            f"{'s' if self.prices.devices > 1 else ''} x {seconds:.0f} s on Ray, at ${self.prices.gpu_hour_usd}/hour).")

    async def events(self, external_id: str, cursor: str | None) -> EventPage:
        info = await self.jobs.info(external_id)
        if info.get("status") == "PENDING":
            return EventPage([], cursor)
        started = int(info.get("start_time") or 0) // 1000
        events = training_events(await self.jobs.logs(external_id), started)
        ids = [event.id for event in events]
        start = ids.index(cursor) + 1 if cursor in ids else 0
        if cursor is not None and cursor not in ids:
            log.warning("Event %s of Ray job %s is not in its logs; returning every event", cursor, external_id)
        newer = events[start:]
        return EventPage(newer, newer[-1].id if newer else cursor)

    async def cancel(self, external_id: str) -> JobState:
        await self.jobs.stop(external_id)
        deadline = time.monotonic() + 30
        while True:  # Ray stops the job's process group within seconds (SIGTERM, SIGKILL after 3 s)
            state = await self.poll(external_id)
            if state.status.terminal or time.monotonic() > deadline:
                return state
            await asyncio.sleep(self.poll_seconds)

    async def check_base_model(self, model: str) -> ModelCheck:
        """Any model the cluster can load trains here; a bad name or path fails the job with Ray's reason."""
        return ModelCheck(model, True, None, "")

    def students(self, prices: PriceTable) -> list[StudentOption]:
        """None to list: Ray trains any open model the cluster can read (a Hugging Face id or a path)."""
        return []

    # ----- serving -----------------------------------------------------------------------------------

    def base_model_endpoint(self, model: str) -> Deployment | None:
        return Deployment(model, self.serve_base_url, SERVER_KEY) if self.serve_base_url else None

    async def deploy_base(self, model: str) -> Deployment | None:
        if self.serve_base_url:
            return None
        return await self._serve(model, model, [])

    async def deploy(self, fine_tuned_model: str) -> Deployment:
        adapter = Path(fine_tuned_model)
        manifest = await asyncio.to_thread(_read_json, adapter.parent / "manifest.json")
        if not manifest:
            raise TrainerError(f"No manifest next to the adapter {adapter} in DISTILL_RAY_STORAGE, so the bot does "
                               "not know its base model. Train it again.")
        if self.serve_base_url:
            await self._post(f"{self.serve_base_url}/load_lora_adapter",
                             {"lora_name": fine_tuned_model, "lora_path": fine_tuned_model},
                             ok_if="already been loaded", what=f"load adapter {fine_tuned_model}")
            return Deployment(fine_tuned_model, self.serve_base_url, SERVER_KEY, f"lora:{fine_tuned_model}",
                              billed_from=self.clock.now(), usd_per_hour=self._usd_per_hour)
        return await self._serve(str(manifest["base_model"]), fine_tuned_model, [f"{fine_tuned_model}={adapter}"])

    @property
    def _usd_per_hour(self) -> Decimal:
        return self.prices.gpu_hour_usd * self.prices.devices

    async def _serve(self, base_model: str, name: str, adapters: list[str]) -> Deployment:
        """Start (or find) the serving job of `name` and wait until it answers for it."""
        job_id = submission_id("serve", name)
        with_adapters = [part for pair in adapters for part in ("--adapter", pair)]
        arguments = ["--base", base_model, *with_adapters, "--host", self.serve_host]
        info = await self._info_or_none(job_id)
        if info is not None and info.get("status") in TERMINAL:
            await self.jobs.delete(job_id)  # an old server of the same model: start a new one under its id
        await self._submit(job_id, "serve.py", arguments, {"distill_trainer": self.name, "distill_serves": name})
        deadline = time.monotonic() + self.serve_timeout_seconds
        while True:
            info = await self.jobs.info(job_id)
            if info.get("status") in TERMINAL:
                logs = await self.jobs.logs(job_id)
                raise TrainerError(f"The Ray job serving {name} ended {info.get('status')}: {_failure(info, logs)}")
            serving = latest(await self.jobs.logs(job_id), "SERVING")
            if serving and await self._serves(serving["url"], name):
                log.info("Ray job %s serves %s at %s", job_id, name, serving["url"])
                return Deployment(name, serving["url"], SERVER_KEY, job_id, billed_from=self.clock.now(),
                                  usd_per_hour=self._usd_per_hour)
            if time.monotonic() > deadline:
                await self.jobs.stop(job_id)
                raise TrainerError(f"The Ray job serving {name} did not answer within "
                                   f"{self.serve_timeout_seconds / 60:g} minutes; it was stopped. Its logs are in the "
                                   "Ray dashboard.")
            await asyncio.sleep(self.poll_seconds)

    async def undeploy(self, deployment: Deployment) -> int:
        """Stop the serving job (or unload the adapter from the team's server); returns its GPU minutes' cost."""
        if deployment.endpoint_id is None:
            return 0
        if deployment.endpoint_id.startswith("lora:"):
            await self._post(f"{deployment.base_url}/unload_lora_adapter", {"lora_name": deployment.model},
                             ok_if="cannot be found", what=f"unload adapter {deployment.model}")
        else:
            await self.jobs.stop(deployment.endpoint_id)
        if deployment.billed_from is None or deployment.usd_per_hour is None:
            return 0
        minutes = max(1, math.ceil((self.clock.now() - deployment.billed_from).total_seconds() / 60))
        return self.prices.gpu_minutes_cost_micro_usd(Decimal(minutes) * self.prices.devices)

    # ----- costs -------------------------------------------------------------------------------------

    @classmethod
    def price_billing(cls, student: str, settings: Settings) -> Billing:
        return RayPrices.load(settings.gpu_hour_usd, settings.ray_gpus, settings.prices_path).billing(student)

    async def billing(self, base_model: str) -> Billing:
        return self.prices.billing(base_model)

    async def quote(self, base_model: str, file_tokens: int, epochs: int, eval_requests: int) -> TrainerQuote:
        return TrainerQuote((self.prices.explain(file_tokens * epochs, epochs),))

    # ----- helpers ------------------------------------------------------------------------------------

    async def _info_or_none(self, job_id: str) -> dict[str, Any] | None:
        try:
            return await self.jobs.info(job_id)
        except TrainerError as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        return self._http

    async def _serves(self, url: str, name: str) -> bool:
        try:
            async with self._session().get(f"{url}/models", timeout=aiohttp.ClientTimeout(total=5)) as response:
                listed = (await response.json()).get("data", []) if response.status == 200 else []
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False
        return any(model.get("id") == name for model in listed)

    async def _post(self, url: str, body: dict[str, str], *, ok_if: str, what: str) -> None:
        try:
            async with self._session().post(url, json=body) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TrainerError(f"Could not reach the serving server at {url} to {what} ({exc}). Check "
                               "DISTILL_SERVE_BASE_URL.") from exc
        if response.status != 200 and ok_if not in text:
            raise TrainerError(f"The serving server refused to {what} (HTTP {response.status}): {text[:300]}. A vLLM "
                               "server needs --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True.")


def _failure(info: dict[str, Any], logs: str) -> str:
    """Ray's reason: its message's first line and the last line of the job's output (the script's exception)."""
    message = str(info.get("message") or "").strip()
    head = message.splitlines()[0] if message else f"Ray reports the job {info.get('status')}"
    head = head.split(", last available logs")[0].rstrip(".:")
    tail = [line.strip() for line in (logs or message).splitlines() if line.strip()]
    return f"{head}: {tail[-1][:500]}" if tail and tail[-1] not in head else head


def _replace(state: JobState, **changes: Any) -> JobState:
    import dataclasses

    return dataclasses.replace(state, **changes)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _write_once(path: Path, content: bytes) -> None:
    if path.exists() and path.read_bytes() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(content)
    partial.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

