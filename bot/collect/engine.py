"""The collection engine: answers for every row of a split from one model, stored as they arrive.

It is the most expensive thing the bot does, so it is built around four promises:
- never lose a paid answer: each answer is written as soon as it arrives (answers that arrive together
  share one commit) and a row that keeps failing is stored as failed with its error;
- never pay twice: rows already answered by the same request are skipped, and a request identical to one
  answered before (same model, messages, response format, and for a reasoning model the same effort; any run)
  reuses that answer for free; only an answer cut off at a smaller max_completion_tokens is asked again;
- keep the provider's limit busy without tripping it: every attempt passes through the shared
  `RateLimiter`; retries back off with jitter and honour Retry-After;
- stay inside the approved budget: each request reserves its most expensive outcome first (`Budget`): its
  prompt plus the max_completion_tokens it sends, which bounds hidden reasoning too (bot/prices/reasoning.py).

An answer cut off by that bound (finish_reason "length") with no label in it is stored as invalid with an
error that names the fix, and counted apart (`CollectOutcome.cut_off`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.collect.ratelimit import RateLimiters
from bot.core.money import format_usd
from bot.core.provider import ChatAnswer, ChatProvider, ProviderFailure
from bot.core.retries import backoff_seconds
from bot.costs.budget import Budget
from bot.prices.reasoning import AnswerBudget
from bot.prices.table import PriceTable
from bot.prompts.answers import AnswerFormat
from storage import Storage
from storage.completions import Completion

log = logging.getLogger(__name__)

# Statuses after which no other row can succeed either: stop the whole collection and say why.
FATAL_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class CollectRequest:
    row_index: int
    messages: list[dict[str, Any]]
    prompt_tokens: int  # counted exactly by the estimator; books the limiter and the budget before sending


@dataclass(frozen=True)
class CollectTask:
    run_id: int
    split: str
    role: str
    model: str
    requests: Sequence[CollectRequest]
    answer: AnswerFormat  # what an answer is: its response_format, and how it is read back
    budget: AnswerBudget  # what each request carries and the most each answer may cost in tokens
    # The price-table entry when it is not the model's name (a fine-tuned model served under an endpoint's
    # name is priced as "ft:<base model>").
    price_model: str | None = None
    run_name: str = ""  # the run's name, carried in the requests' metadata

    def metadata(self) -> dict[str, str]:
        """What each request's stored completion carries (store=true): the run by name (so a team can list or
        import a run's answers with `metadata.distill_run=NAME`) and by id, the split, and the role: teacher,
        student_base or student_ft."""
        return {"distill_run": self.run_name or str(self.run_id), "distill_run_id": str(self.run_id),
                "split": self.split, "role": self.role}

    @property
    def response_format(self) -> dict[str, Any] | None:
        return self.answer.response_format

    @property
    def max_completion_tokens(self) -> int:
        """Sent with every request: the most completion tokens (answer and reasoning) one answer may bill."""
        return self.budget.max_completion_tokens

    def request_hash(self, messages: Sequence[dict[str, Any]]) -> str:
        return request_hash(self.model, messages, self.response_format, self.budget.effort)

    def still_answered(self, stored: tuple[str, int | None] | None, hashed: str) -> bool:
        """Whether a stored answer (its request hash, and its tokens when it was cut off) answers this request:
        the same request, and not cut off at a budget smaller than this one's."""
        return stored is not None and stored[0] == hashed and (stored[1] is None or
                                                               stored[1] >= self.max_completion_tokens)


@dataclass(frozen=True)
class Progress:
    run_id: int
    split: str
    role: str
    done: int
    failed: int
    total: int
    spend_micro_usd: int
    rows_per_second: float


@dataclass
class CollectOutcome:
    total: int = 0
    already_answered: int = 0
    reused: int = 0
    answered: int = 0
    invalid: int = 0
    cut_off: int = 0  # of the invalid: answers that ran out of max_completion_tokens
    failed: int = 0
    spend_micro_usd: int = 0
    stopped: str = "done"  # done | budget | cancelled | fatal
    message: str = ""
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def unanswered(self) -> int:
        return self.total - self.already_answered - self.reused - self.answered - self.invalid - self.failed


def request_hash(model: str, messages: Sequence[dict[str, Any]], response_format: dict[str, Any] | None,
                 reasoning_effort: str | None = None) -> str:
    """What identifies a request's answer. A reasoning model's answer also depends on its effort, so that counts
    for it (a model that does not reason keeps the hash it always had)."""
    request: dict[str, Any] = {"model": model, "messages": messages, "response_format": response_format}
    if reasoning_effort is not None:
        request["reasoning_effort"] = reasoning_effort
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_answer(answer: AnswerFormat, content: str | None, refusal: str | None, finish_reason: str | None,
                cut_off: str) -> tuple[str | None, str | None]:
    """The stored answer and the error of a reply (one is None); `cut_off` is the error of a reply cut off at
    max_completion_tokens, which is invalid unless it is a whole label: a cut-off text or object is not the whole
    answer."""
    parsed = answer.parse(content)
    if refusal:
        return None, f"refusal: {refusal}"
    if finish_reason == "length" and (parsed is None or answer.task != "classify"):
        return None, cut_off
    return (parsed, None) if parsed is not None else (None, answer.invalid)


def is_cut_off(completion: Completion) -> bool:
    """An answer that ran out of max_completion_tokens before it was done (see AnswerBudget.cut_off)."""
    return completion.status == "invalid" and (completion.error or "").startswith("cut off:")


class _Fatal(Exception):
    """A failure that no retry and no other row can fix (a wrong key, a forbidden model)."""


class Collector:
    """Answers collection tasks against one provider."""

    def __init__(self, storage: Storage, provider: ChatProvider, prices: PriceTable, limiters: RateLimiters, *,
                 concurrency: int = 16, max_attempts: int = 6, progress_seconds: float = 3.0,
                 cancel_grace_seconds: float = 0.5) -> None:
        self.storage = storage
        self.provider = provider
        self.prices = prices
        self.limiters = limiters
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.progress_seconds = progress_seconds
        self.cancel_grace_seconds = cancel_grace_seconds

    async def collect(self, task: CollectTask, budget: Budget, *, cancel: asyncio.Event | None = None,
                      on_progress: Callable[[Progress], Awaitable[None]] | None = None) -> CollectOutcome:
        cancel = cancel or asyncio.Event()
        outcome = CollectOutcome(total=len(task.requests))
        answered = await self.storage.completions.answered_requests(task.run_id, task.split, task.role)
        hashed = await asyncio.to_thread(lambda: [(r, task.request_hash(r.messages)) for r in task.requests])
        hashed = [(r, h) for r, h in hashed if not task.still_answered(answered.get(r.row_index), h)]
        outcome.already_answered = len(task.requests) - len(hashed)
        todo_pairs = await self._reuse_paid_answers(task, hashed, outcome)
        if not todo_pairs:
            return outcome

        price = self.prices.get(task.price_model or task.model)
        limiter = self.limiters.for_model(self.provider.base_url, task.model)
        # Each answer travels with a future the writer resolves once it is committed.
        results: asyncio.Queue[tuple[Completion, asyncio.Future[None]] | None] = asyncio.Queue()
        pending = iter(todo_pairs)
        started = time.monotonic()

        async def attempt_row(request: CollectRequest, hashed: str) -> Completion:
            attempts = 0
            tokens = request.prompt_tokens + task.max_completion_tokens
            while True:
                attempts += 1
                await limiter.acquire(tokens)
                try:
                    answer = await self.provider.complete(
                        model=task.model, messages=request.messages, response_format=task.response_format,
                        metadata=task.metadata(),
                        options=task.budget.request_options(),
                    )
                except BaseException as failure:
                    limiter.release(tokens)
                    if not isinstance(failure, ProviderFailure):
                        raise
                    if failure.status == 429:
                        limiter.pause(failure.retry_after if failure.retry_after is not None else 1.0)
                    if failure.status in FATAL_STATUSES:
                        raise _Fatal(str(failure)) from failure
                    if not failure.retryable or attempts >= self.max_attempts:
                        return self._failed(task, request, hashed, attempts, str(failure))
                    await asyncio.sleep(backoff_seconds(attempts, failure.retry_after))
                    continue
                limiter.observe(answer.headers, tokens)
                return self._answered(task, request, hashed, attempts, answer, price)

        async def worker() -> None:
            for request, hashed in pending:
                if cancel.is_set() or outcome.stopped != "done":
                    return
                reserve = price.cost_micro_usd(request.prompt_tokens, task.max_completion_tokens)
                if not await budget.reserve_when_possible(reserve):
                    outcome.stopped = "budget"
                    return
                try:
                    completion = await attempt_row(request, hashed)
                except BaseException:
                    await budget.settle(reserve, 0)
                    raise
                await budget.settle(reserve, completion.cost_micro_usd)
                # Wait for the commit before the next request: a paid answer that is not stored yet counts as
                # in flight, and a crash may only ever lose (and pay again for) what is in flight.
                stored = asyncio.get_running_loop().create_future()
                await results.put((completion, stored))
                await stored

        writer = asyncio.create_task(self._write(results, outcome))
        reporter = asyncio.create_task(self._report(task, outcome, started, on_progress)) if on_progress else None
        workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(todo_pairs)))]
        try:
            await self._wait_for_workers(workers, cancel, outcome)
        finally:
            await results.put(None)
            await writer
            if reporter:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
        if on_progress:
            await on_progress(self._progress(task, outcome, started))
        if outcome.stopped == "budget":
            outcome.message = (
                f"Stopped before the approved cap: the next request could have taken spend past "
                f"{format_usd(budget.cap_micro_usd)}. {outcome.unanswered} rows are still unanswered."
            )
        elif outcome.stopped == "cancelled":
            outcome.message = f"Cancelled; {outcome.unanswered} rows are still unanswered. Answers so far are kept."
        return outcome

    async def _wait_for_workers(self, workers: list[asyncio.Task], cancel: asyncio.Event,
                                outcome: CollectOutcome) -> None:
        """Run the workers to the end, a fatal failure, or a cancel (then give in-flight requests a moment)."""
        cancelled = asyncio.create_task(cancel.wait())
        try:
            remaining = set(workers)
            while remaining:
                done, remaining = await asyncio.wait(remaining | {cancelled}, return_when=asyncio.FIRST_COMPLETED)
                remaining.discard(cancelled)
                for finished in done - {cancelled}:
                    if finished.exception() is not None:
                        error = finished.exception()
                        if not isinstance(error, _Fatal):
                            raise error
                        outcome.stopped, outcome.message = "fatal", f"The provider refused the requests: {error}"
                        cancel.set()
                if cancel.is_set() and remaining:
                    if outcome.stopped == "done":
                        outcome.stopped = "cancelled"
                    _, late = await asyncio.wait(remaining, timeout=self.cancel_grace_seconds)
                    for task in late:
                        task.cancel()
                    await asyncio.gather(*late, return_exceptions=True)
                    remaining = set()
        finally:
            cancelled.cancel()
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _reuse_paid_answers(self, task: CollectTask, hashed: list[tuple[CollectRequest, str]],
                                  outcome: CollectOutcome) -> list[tuple[CollectRequest, str]]:
        """Store free copies of answers already paid for; return the requests still to send."""
        paid = await self.storage.completions.paid_answers([h for _, h in hashed])
        copies, remaining = [], []
        for request, request_hashed in hashed:
            original = paid.get(request_hashed)
            cut_off = original.completion_tokens if original is not None and is_cut_off(original) else None
            if original is None or not task.still_answered((request_hashed, cut_off), request_hashed):
                remaining.append((request, request_hashed))
                continue
            copies.append(Completion(
                **{**original.__dict__, "id": None, "run_id": task.run_id, "row_index": request.row_index,
                   "split": task.split, "role": task.role, "reused_from": original.id, "created_at": ""}
            ))
        await self.storage.completions.save_many(copies)
        outcome.reused = len(copies)
        return remaining

    async def _write(self, results: asyncio.Queue[tuple[Completion, asyncio.Future[None]] | None],
                     outcome: CollectOutcome) -> None:
        """Store answers as they arrive; whatever arrived together is committed together."""
        finished = False
        while not finished:
            batch = [await results.get()]
            while not results.empty():
                batch.append(results.get_nowait())
            finished = batch[-1] is None
            items = [item for item in batch if item is not None]
            completions = [completion for completion, _ in items]
            try:
                await self.storage.completions.save_many(completions)
            except BaseException as exc:
                for _, stored in items:
                    if not stored.done():
                        stored.set_exception(exc)
                raise
            for _, stored in items:
                if not stored.done():
                    stored.set_result(None)
            for completion in completions:
                outcome.spend_micro_usd += completion.cost_micro_usd
                if completion.status == "ok":
                    outcome.answered += 1
                elif completion.status == "invalid":
                    outcome.invalid += 1
                    outcome.cut_off += is_cut_off(completion)
                else:
                    outcome.failed += 1
                    reason = (completion.error or "unknown").split(":")[0]
                    outcome.errors[reason] = outcome.errors.get(reason, 0) + 1

    async def _report(self, task: CollectTask, outcome: CollectOutcome, started: float,
                      on_progress: Callable[[Progress], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(self.progress_seconds)
            try:
                await on_progress(self._progress(task, outcome, started))
            except Exception:  # a progress message that cannot be shown must not stop the collection
                log.exception("progress callback failed for run %s", task.run_id)

    @staticmethod
    def _progress(task: CollectTask, outcome: CollectOutcome, started: float) -> Progress:
        sent = outcome.answered + outcome.invalid + outcome.failed
        elapsed = max(time.monotonic() - started, 1e-6)
        return Progress(
            run_id=task.run_id, split=task.split, role=task.role,
            done=outcome.already_answered + outcome.reused + outcome.answered + outcome.invalid,
            failed=outcome.failed, total=outcome.total, spend_micro_usd=outcome.spend_micro_usd,
            rows_per_second=sent / elapsed,
        )

    @staticmethod
    def _failed(task: CollectTask, request: CollectRequest, hashed: str, attempts: int, error: str) -> Completion:
        return Completion(run_id=task.run_id, row_index=request.row_index, split=task.split, role=task.role,
                          model=task.model, request_hash=hashed, status="failed", attempts=attempts,
                          error=error[:1000])

    @staticmethod
    def _answered(task: CollectTask, request: CollectRequest, hashed: str, attempts: int, answer: ChatAnswer,
                  price: Any) -> Completion:
        label, error = read_answer(task.answer, answer.content, answer.refusal, answer.finish_reason,
                                   task.budget.cut_off(answer.reasoning_tokens))
        # A provider that omits usage still billed the prompt; fall back to the exact count we made.
        prompt_tokens = answer.prompt_tokens or request.prompt_tokens
        return Completion(
            run_id=task.run_id, row_index=request.row_index, split=task.split, role=task.role, model=task.model,
            request_hash=hashed, status="ok" if error is None else "invalid",
            raw_output=answer.content if answer.content is not None else answer.refusal,
            parsed_label=label if error is None else None, prompt_tokens=prompt_tokens,
            completion_tokens=answer.completion_tokens, reasoning_tokens=answer.reasoning_tokens,
            cost_micro_usd=price.cost_micro_usd(prompt_tokens, answer.completion_tokens),
            latency_ms=answer.latency_ms, provider_request_id=answer.request_id,
            provider_completion_id=answer.completion_id, attempts=attempts, error=error,
        )
