"""The train and evaluate stages of trainer=dicl (bot/trainers/dicl.py): index the teacher's answers, then have the
student answer the eval split with the nearest of them in its prompt.

Quote: the run's estimate (bot/costs/quotes.py) on the train rows whose teacher answer is usable, each carrying that
answer as its label: embedding their inputs, embedding each eval row's query, and the student's eval requests
with k examples each (expected: k of the mean size; at most: the k longest) at their max_completion_tokens. The
most is the approved cap, and one budget holds the embeddings and the answers to it. The eval runs live whatever
the run's mode.

Train ("indexing"): a job record like a fine-tuning job's (no provider job: nothing to poll), then the inputs
embedded in batches, each batch's vectors stored with what it cost before the next request is sent. A restart
embeds only the rows without a vector of the same text and model, and a row an earlier job of the run embedded is
not paid again. The job's cost is the sum of what its vectors cost, read back from them.

Evaluate: each eval row's query is embedded (per job: an evaluation pays for its queries, as serving would, and
that is the distilled model's cost beyond its tokens), its k nearest examples found, and the requests answered
through the collection engine as the distilled student, so a restart asks only the rows without an answer and a
request asked before is reused for free (with k=0 the requests are the base student's, so its answers are). Then
the report, with the student's name as the distilled model's, and the export: the index file and the snippet
that uses it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.collect.context import StageContext
from bot.collect.embeddings import Embedder, check_texts, count_tokens
from bot.collect.engine import CollectRequest, CollectTask
from bot.core.errors import SpecError, StateError
from bot.core.events import CodeSample, StageStarted, TrainingUpdate
from bot.core.money import format_usd
from bot.costs.budget import Budget
from bot.costs.quotes import EVALUATE, TRAIN, Quote, count_chat_tokens, estimate, in_context_note
from bot.data.splits import PreparedRow, PreparedRun
from bot.evaluate.scores import DISTILLED, EVAL_SPLIT
from bot.prompts.templates import answer_json
from bot.spec.budgets import budget_for
from bot.spec.settings import RunSpec
from bot.train.dicl_export import index_document, usage_snippet, write_index
from bot.train.examples import TEACHER, usable_answers
from bot.train.neighbours import NearestIndex
from bot.trainers.dicl import DiclTrainer, distilled_name, example_messages
from storage.approvals import Approval
from storage.jobs import Job
from storage.runs import Run
from storage.states import RunState
from storage.vectors import StoredVector

Example = tuple[PreparedRow, str]  # a train row and the teacher's label for it


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DiclQuote:
    """The train stage of trainer=dicl: its estimate's train and evaluate stages on the usable examples."""

    estimate: Quote
    examples: list[Example]

    @property
    def quote_hash(self) -> str:
        chosen = json.dumps([[row.row_index, label] for row, label in self.examples])
        return hashlib.sha256(f"{self.estimate.quote_hash}:{chosen}".encode()).hexdigest()

    def _total(self, field: str) -> int:
        return sum(self.estimate.stage(name).total(field) for name in (TRAIN, EVALUATE))

    @property
    def estimate_micro_usd(self) -> int:
        return self._total("cost_micro_usd")  # live prices: the stage embeds and answers live

    @property
    def max_micro_usd(self) -> int:
        return self._total("max_cost_micro_usd")

    @property
    def embedding_micro_usd(self) -> int:
        return self.estimate.stage(TRAIN).cost_micro_usd

    def to_dict(self, spec: RunSpec, eval_rows: int) -> dict[str, Any]:
        """The approval request's view: tokens, rows, models, and what the stage is."""
        lines = [*self.estimate.stage(TRAIN).lines, *self.estimate.stage(EVALUATE).lines]
        distilled = self.estimate.stage(EVALUATE).lines[0]
        return {
            "stage": "train", "trainer": DiclTrainer.name, "student": spec.student,
            "train": {"prompt_tokens": sum(line.prompt_tokens for line in lines),
                      "completion_tokens": distilled.completion_tokens},
            "rows": {"train": len(self.examples), "eval": eval_rows},
            "lines": [line.to_dict() for line in lines],
            "notes": [in_context_note(spec, len(self.examples), distilled),
                      *(entry["text"] for entry in self.estimate.reasoning if entry["role"] == "distilled"),
                      "The evaluation answers live at the provider's standard prices, whatever the run's mode."],
        }


class DiclStage:
    def __init__(self, context: StageContext, check_model: Callable[[Run, RunSpec], Awaitable[None]],
                 post_report: Callable[..., Awaitable[None]]) -> None:
        self.context = context
        self.check_model = check_model  # the train stage's: refuse a student its provider no longer serves
        self.post_report = post_report  # the train stage's: the report, posted once
        collector = context.collector_for(None)
        provider = collector.provider
        self.embedder = Embedder(provider.client, context.prices, collector.limiters, provider.base_url)

    # ----- before approval ---------------------------------------------------------------------------

    async def examples(self, run: Run, spec: RunSpec, prepared: PreparedRun) -> list[Example]:
        """The train rows whose teacher answer is usable (as for a fine-tuning file), with its label."""
        answers = await self.context.storage.completions.for_run(run.id, split="train", role=TEACHER)
        return usable_answers(spec, prepared.train, {c.row_index: c for c in answers}, Counter())

    async def quote(self, run: Run, spec: RunSpec, prepared: PreparedRun) -> DiclQuote:
        prices = self.context.prices
        if prices.get(spec.student).facts.kind != "chat":
            raise SpecError(f"{spec.student} is not a chat model, so it cannot answer as the student. Pick one such "
                            f"as {DiclTrainer.default_student} (student=...).")
        examples = await self.examples(run, spec, prepared)
        if spec.k and not examples:
            raise StateError(f"Run '{run.name}' has no usable teacher answer on the train split to use as an "
                             f"example: `/distill collect {run.name}` first (or k=0 to evaluate the base student).")
        if spec.k:
            rows = [row for row, _ in examples] + list(prepared.eval)
            texts = [row.user_prompt for row in rows]
            tokens = await asyncio.to_thread(count_tokens, texts, spec.embedding_model)
            check_texts(texts, tokens, spec.embedding_model, [f"The prompt of dataset row {r.row_index}" for r in rows])
        labelled = dataclasses.replace(prepared, validation=[], train=[
            dataclasses.replace(row, gold_label=label) for row, label in examples])
        quote = await asyncio.to_thread(estimate, labelled, spec, prices, DiclTrainer.price_billing(spec.student))
        return DiclQuote(quote, examples)

    # ----- train: the index --------------------------------------------------------------------------

    async def start(self, run_id: int, approval: Approval) -> None:
        """Embed the examples' inputs (resuming where a stop left off), then evaluate."""
        context = self.context
        storage = context.storage
        run = await storage.runs.require(run_id)
        spec, prepared = await context.prepare_run(run)
        await self.check_model(run, spec)
        quote = await self.quote(run, spec, prepared)
        job = await storage.jobs.create(run_id=run.id, trainer=DiclTrainer.name, base_model=spec.student,
                                        idempotency_key=f"distill-run{run.id}-approval{approval.id}",
                                        quote_micro_usd=quote.embedding_micro_usd)
        examples = quote.examples
        what = (f"Indexing {len(examples):,} teacher answers with {spec.embedding_model}: {spec.student} will answer "
                f"with the {min(spec.k, len(examples))} nearest in its prompt (nothing is fine-tuned)."
                if spec.k else f"k=0: {spec.student} answers as the base student did (nothing to index).")
        await context.post_once(run, f"job{job.id}-started", StageStarted("train", what, approval.amount_micro_usd))
        await context.refresh_card(run)
        if spec.k and not await self._embed(run, job, spec, "train", [row for row, _ in examples],
                                            await self._budget(run, job, approval)):
            await storage.jobs.update(job.id, status="CANCELLED", raw_status="cancelled",
                                      finished_at=context.clock.iso())
            return
        cost, tokens = await storage.vectors.spend_micro_usd(job.id, "train")
        name = distilled_name(spec.student, spec.k)
        job = await storage.jobs.update(job.id, status="SUCCEEDED", raw_status="indexed", fine_tuned_model=name,
                                        trained_tokens=tokens, cost_micro_usd=cost, finished_at=context.clock.iso())
        run = await storage.runs.update(run.id, expect=RunState.TRAINING, state=RunState.EVALUATING)
        await storage.audit.add(run_id=run.id, actor="system", action="training-succeeded",
                                detail={"job": job.id, "model": name, "embedded_tokens": tokens,
                                        "cost_micro_usd": cost})
        await context.post_once(run, f"job{job.id}-succeeded", TrainingUpdate(
            "SUCCEEDED", "indexed",
            f"Training finished: {name} is ready, the index embedded {tokens:,} tokens for "
            f"{format_usd(cost)} (quoted {format_usd(job.quote_micro_usd or 0)}; inputs embedded before are not paid "
            "again). Evaluating it on the eval split now."))
        await context.refresh_card(run)
        await self.evaluate(run.id)

    async def _budget(self, run: Run, job: Job, approval: Approval) -> Budget:
        """The approved cap, less what the stage has spent under this approval: its vectors and its answers."""
        storage = self.context.storage
        embedded, _ = await storage.vectors.spend_micro_usd(job.id)
        answered = await storage.completions.spend_micro_usd(run.id, roles=[DISTILLED], since=approval.decided_at)
        return Budget(cap_micro_usd=approval.amount_micro_usd, spent_micro_usd=embedded + answered)

    async def _embed(self, run: Run, job: Job, spec: RunSpec, split: str, rows: Sequence[PreparedRow],
                     budget: Budget) -> bool:
        """Embed the rows' prompts that have no vector yet (train: from any job of the run; eval: from this job),
        storing each batch before the next; False when the run was cancelled meanwhile."""
        storage = self.context.storage
        stored = await storage.vectors.latest(run.id, split, spec.embedding_model,
                                              job_id=job.id if split == EVAL_SPLIT else None)
        todo = [row for row in rows if (found := stored.get(row.row_index)) is None
                or found.text_sha256 != text_sha256(row.user_prompt)]
        async for batch in self.embedder.batches([row.user_prompt for row in todo], spec.embedding_model, budget):
            shares = _shares(batch.cost_micro_usd, batch.text_tokens)
            await storage.vectors.save_many(StoredVector(
                run.id, job.id, split, todo[p].row_index, spec.embedding_model, text_sha256(todo[p].user_prompt),
                vector.astype("<f4").tobytes(), tokens, share)
                for p, vector, tokens, share in zip(batch.positions, batch.vectors, batch.text_tokens, shares,
                                                    strict=True))
            train_cost, _ = await storage.vectors.spend_micro_usd(job.id, "train")
            eval_cost, _ = await storage.vectors.spend_micro_usd(job.id, EVAL_SPLIT)
            await storage.jobs.update(job.id, cost_micro_usd=train_cost, hosting_micro_usd=eval_cost)
            await self.context.refresh_card(run)
            if (await storage.runs.require(run.id)).state == RunState.CANCELLED:
                return False
        return True

    # ----- evaluate ----------------------------------------------------------------------------------

    async def evaluate(self, run_id: int) -> None:
        """The student answers the eval split with its nearest examples; then the report and the export."""
        context = self.context
        storage = context.storage
        run = await storage.runs.require(run_id)
        spec, prepared = await context.prepare_run(run)
        job = next(j for j in reversed(await storage.jobs.for_run(run.id))
                   if j.trainer == DiclTrainer.name and j.fine_tuned_model)
        approval = await storage.approvals.latest(run.id, "train")
        if approval is None:
            raise StateError(f"Run '{run.name}' has no approved train stage to evaluate under.")
        examples = await self.examples(run, spec, prepared)
        budget = await self._budget(run, job, approval)
        k = min(spec.k, len(examples))
        nearest = np.zeros((len(prepared.eval), 0), dtype=np.int64)
        index = queries = None
        if k:
            if not await self._embed(run, job, spec, EVAL_SPLIT, prepared.eval, budget):
                return
            index = await self._vectors(run, spec, "train", [row for row, _ in examples])
            queries = await self._vectors(run, spec, EVAL_SPLIT, prepared.eval, job)
            nearest = await asyncio.to_thread(NearestIndex(index).search, queries, k)
        answer = spec.answer_format(prepared.choices)
        task = CollectTask(
            run_id=run.id, split=EVAL_SPLIT, role=DISTILLED, model=spec.student,
            requests=await asyncio.to_thread(_requests, spec, prepared.eval, examples, nearest),
            answer=answer, run_name=run.name,
            budget=budget_for(spec, context.prices, DISTILLED, spec.student,
                              answer.longest_tokens(spec.student, spec.max_answer_tokens)),
        )
        outcome = await context.collector_for(None).collect(task, budget)
        eval_cost, _ = await storage.vectors.spend_micro_usd(job.id, EVAL_SPLIT)
        job = await storage.jobs.update(job.id, hosting_micro_usd=eval_cost)
        if (await storage.runs.require(run.id)).state == RunState.CANCELLED:
            return
        if outcome.stopped != "done":
            raise StateError(f"The distilled model's evaluation stopped: {outcome.message}")
        await self.post_report(run, once=True)
        if index is not None:
            await self._export(run, spec, prepared, job, examples, index, task)
        run = await storage.runs.update(run.id, expect=RunState.EVALUATING, state=RunState.DONE)
        await storage.audit.add(run_id=run.id, actor="system", action="run-done", detail={})
        await context.refresh_card(run)

    async def _vectors(self, run: Run, spec: RunSpec, split: str, rows: Sequence[PreparedRow],
                       job: Job | None = None) -> np.ndarray:
        """The stored vectors of the rows, in their order (each of the rows' current prompt)."""
        stored = await self.context.storage.vectors.latest(run.id, split, spec.embedding_model,
                                                           job_id=job.id if job else None)
        missing = [row.row_index for row in rows if (found := stored.get(row.row_index)) is None
                   or found.text_sha256 != text_sha256(row.user_prompt)]
        if missing:
            raise StateError(f"{len(missing)} {split} rows of run '{run.name}' have no {spec.embedding_model} vector "
                             f"(dataset row {missing[0]} first): `/distill train {run.name}` embeds them again.")
        return np.vstack([np.frombuffer(stored[row.row_index].vector, dtype="<f4") for row in rows])

    async def _export(self, run: Run, spec: RunSpec, prepared: PreparedRun, job: Job, examples: list[Example],
                      index: np.ndarray, task: CollectTask) -> None:
        """The index file and the request to send, posted once per job."""
        context = self.context
        request = {"response_format": task.response_format, **task.budget.request_options()}
        document = index_document(spec, prepared.template.text,
                                  [(row.row_index, row.user_prompt, answer_json(label)) for row, label in examples],
                                  index, request)
        path = await write_index(context.run_folder(run), document)
        await context.post_once(run, f"dicl-export-job{job.id}", CodeSample(
            "Use the distilled model outside the bot", usage_snippet(),
            f"{job.fine_tuned_model} is {spec.student} with the {min(spec.k, len(examples))} nearest teacher "
            f"examples in its prompt: embed the row with {spec.embedding_model}, take the nearest from the file below "
            "and send this request.", path,
            f"The {len(examples):,} teacher examples of run {run.name} and their {spec.embedding_model} vectors"))


def _requests(spec: RunSpec, rows: Sequence[PreparedRow], examples: Sequence[Example],
              nearest: np.ndarray) -> list[CollectRequest]:
    """Each eval row's request with its nearest examples, most similar last (CPU work)."""
    requests = []
    for row, found in zip(rows, nearest, strict=True):
        shown = [(examples[i][0].user_prompt, answer_json(examples[i][1])) for i in reversed(found.tolist())]
        messages = example_messages(spec, shown, row.user_prompt)
        requests.append(CollectRequest(row.row_index, messages, count_chat_tokens(messages, spec.student)))
    return requests


def _shares(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` into whole numbers that add up to it (largest remainders first)."""
    whole = sum(weights)
    if not whole:
        return [total] + [0] * (len(weights) - 1)
    exact = [total * w / whole for w in weights]
    shares = [int(x) for x in exact]
    for i in sorted(range(len(weights)), key=lambda i: exact[i] - shares[i], reverse=True)[:total - sum(shares)]:
        shares[i] += 1
    return shares
