"""The trainer interface: what every fine-tuning back end (OpenAI, Together, a self-hosted one) provides, and the
part of it (`BackEnd`) that trainer=dicl, which fine-tunes nothing, provides too.

A back end turns chat examples into its training file, uploads it, starts a job (idempotently: the same key
never starts a second job), reports the job's state in normalized terms, lists its events after a cursor
(oldest first, so a poller posts each event once), cancels it, and makes the resulting model callable
(`deploy`; a no-op where the provider serves fine-tuned models on its normal endpoint). Job references,
cursors and endpoints are plain strings, so the caller stores them and a restart picks everything up. How a back
end bills beyond the price table (fixed or automatic epochs, a dedicated deployment for the eval) is its `Billing`
(bot/costs/quotes.py), which the run's quote prices once.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot.core.config import Secret, Settings
from bot.core.errors import ProviderError
from bot.costs.quotes import Billing

if TYPE_CHECKING:
    from bot.prices.table import PriceTable

# DESIGN.md: the bot warns in the thread when a model it is about to use shuts down within this many days.
SHUTDOWN_WARNING_DAYS = 90

Message = Mapping[str, str]


class TrainerError(ProviderError):
    """The trainer refused or failed a request; the message quotes the provider's reason."""


class JobStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class TrainingLimits:
    """What the provider accepts in one training file for a base model."""

    min_examples: int
    max_example_tokens: int


@dataclass(frozen=True)
class JobRequest:
    base_model: str
    training_file_id: str
    idempotency_key: str  # stable for one training attempt of one run: a retried start finds the job made before
    validation_file_id: str | None = None
    epochs: int | Literal["auto"] = "auto"
    learning_rate_multiplier: float | Literal["auto"] = "auto"
    batch_size: int | Literal["auto"] = "auto"
    suffix: str | None = None
    seed: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobState:
    external_id: str
    status: JobStatus
    raw_status: str  # the provider's own word for it
    progress: float | None = None  # 0..1 when the provider reports steps
    metrics: Mapping[str, float] = field(default_factory=dict)  # the latest reported (train_loss, ...)
    error: str | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    # A trainer that bills by time (Ray: GPU minutes at the team's rate) measures the job's cost itself, and says how
    # it compares with the quote; None: trained tokens at the price table's training price.
    cost_micro_usd: int | None = None
    cost_note: str | None = None


@dataclass(frozen=True)
class JobEvent:
    id: str
    created_at: int  # Unix seconds
    level: str  # info, warn or error
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventPage:
    events: list[JobEvent]  # oldest first, all newer than the cursor given
    cursor: str | None  # pass it back next time; unchanged when there is nothing new


@dataclass(frozen=True)
class ModelCheck:
    """Whether a base model can be trained now, from the provider's models endpoint."""

    model: str
    trainable: bool
    shutdown_date: dt.date | None
    message: str  # why it is refused, or a warning when it shuts down soon; empty when there is nothing to say

    @property
    def warning(self) -> bool:
        return self.trainable and bool(self.message)


@dataclass(frozen=True)
class Deployment:
    """Where to call a fine-tuned model: any OpenAI-compatible Chat Completions endpoint."""

    model: str  # the name to send as `model`
    base_url: str
    api_key: Secret
    endpoint_id: str | None = None  # set by back ends that run a dedicated endpoint (stored so undeploy can stop it)
    # A dedicated deployment bills while its replicas are ready, at this hourly price: from `billed_from` (when the
    # back end saw it ready) to when undeploy stops it. None: nothing bills by the minute.
    billed_from: dt.datetime | None = None
    usd_per_hour: Decimal | None = None


@dataclass(frozen=True)
class StudentOption:
    """A base model a back end can fine-tune, with what training it costs and when it goes away."""

    model: str
    training_usd_per_1m: Decimal | None  # per 1M trained tokens (Together: the rate of its size, LoRA by default)
    shutdown_date: dt.date | None = None


@dataclass(frozen=True)
class TrainerQuote:
    """How a back end bills training the file, in words for the approval request (the amounts are the quote's)."""

    notes: tuple[str, ...] = ()


def shutdown_check(model: str, shutdown_date: dt.date | None, today: dt.date) -> ModelCheck:
    """Refuse a model past its shutdown date; warn when it is within SHUTDOWN_WARNING_DAYS."""
    if shutdown_date is None:
        return ModelCheck(model, True, None, "")
    days = (shutdown_date - today).days
    if days <= 0:
        return ModelCheck(model, False, shutdown_date, (
            f"{model} was shut down on {shutdown_date.isoformat()}: the provider no longer trains or serves it. "
            "Pick a current student model (student=...)."
        ))
    if days <= SHUTDOWN_WARNING_DAYS:
        return ModelCheck(model, True, shutdown_date, (
            f"{model} shuts down on {shutdown_date.isoformat()} (in {days} days); a model fine-tuned from it stops "
            "answering then too."
        ))
    return ModelCheck(model, True, shutdown_date, "")


def chat_jsonl(examples: Sequence[Sequence[Message]]) -> bytes:
    """The chat fine-tuning format OpenAI and Together share: one {"messages": [...]} object per line."""
    return "".join(
        json.dumps({"messages": [dict(m) for m in example]}, ensure_ascii=False, separators=(",", ":")) + "\n"
        for example in examples
    ).encode("utf-8")


class BackEnd(Protocol):
    """What every trainer provides, whether it fine-tunes the student (`Trainer`) or, `in_context`, trains nothing
    and puts the teacher's nearest examples into the student's prompt (bot/trainers/dicl.py). Every method that
    talks to the provider raises TrainerError on refusal."""

    name: str
    default_student: str  # a student it trains (and serves), for the shell and the demo
    in_context: bool

    @classmethod
    def price_billing(cls, student: str, settings: Settings) -> Billing:
        """How a run of `student` bills, from the price table (DISTILL_PRICES) and the settings alone (no
        credentials: estimates use it)."""
        ...

    def base_model_endpoint(self, model: str) -> Deployment | None:
        """Where the untuned student answers when that is the trainer's own API rather than OPENAI_BASE_URL
        (Together serves its base models serverless); None to use OPENAI_BASE_URL."""
        ...

    async def check_base_model(self, model: str) -> ModelCheck:
        """Whether `model` can be trained today (the trainer's clock), with a warning when it shuts down soon."""
        ...

    async def billing(self, base_model: str) -> Billing:
        """`price_billing` with what the provider says today (its hardware's live price) where it bills more."""
        ...

    def students(self, prices: PriceTable) -> list[StudentOption]:
        """The base models this back end can train today, as the price table knows them (no network call):
        what `/distill models` offers as students."""
        ...

    async def close(self) -> None: ...


class Trainer(BackEnd, Protocol):
    """A fine-tuning back end."""

    auto_epochs: bool  # the provider picks n_epochs itself for "auto"; else the stage sends what its quote assumed

    def limits(self, base_model: str) -> TrainingLimits: ...

    def training_file(self, examples: Sequence[Sequence[Message]]) -> bytes:
        """The bytes to upload for these chat examples (system/user/assistant messages each)."""
        ...

    async def upload(self, content: bytes, filename: str) -> str:
        """Upload a training or validation file; returns the provider's file id."""
        ...

    async def delete_file(self, file_id: str) -> None:
        """Delete a file it uploaded (`/distill delete`, the retention period); one already gone is no error."""
        ...

    async def start(self, request: JobRequest) -> str:
        """Start the job, or find the one already started with request.idempotency_key; returns its id."""
        ...

    async def poll(self, external_id: str) -> JobState: ...

    async def events(self, external_id: str, cursor: str | None) -> EventPage: ...

    async def cancel(self, external_id: str) -> JobState: ...

    async def deploy(self, fine_tuned_model: str) -> Deployment: ...

    async def deploy_base(self, model: str) -> Deployment | None:
        """Start a server for the untuned student where the trainer runs one itself (Ray without
        DISTILL_SERVE_BASE_URL), stopped with `undeploy`; None: it answers at `base_model_endpoint`."""
        ...

    async def undeploy(self, deployment: Deployment) -> int:
        """Stop what `deploy` started; returns what hosting the model cost, in micro-USD (0 when nothing bills by
        the minute)."""
        ...

    async def quote(self, base_model: str, file_tokens: int, epochs: int, eval_requests: int) -> TrainerQuote:
        """How this back end bills training `file_tokens` for `epochs`, in words."""
        ...
