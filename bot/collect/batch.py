"""Collection through the Batch API: the same answers as live mode at half the price, for teams that can wait.

`submit` writes the unanswered rows as a JSONL of chat requests (custom_id = the row index), uploads it
(purpose "batch") and creates the batch. The batch is recorded before anything is sent, and each id is
stored as soon as it exists, so the scheduler's `poll` resumes after a restart. A record left without the
provider's id (a stop, or an error, between the steps) is taken up by the next `submit` of its task: the
provider's batch made for it is found by its metadata key and adopted, or the batch is created then. The create
call itself is retried only after such a look (bot/core/retries.py), so a timeout never makes a second batch. When
the batch completes, the output file's answers are stored by custom_id with the same checks, hashes and
costs (at the batch discount) as live answers; rows listed in the error file are stored as failed. An expired
or cancelled batch keeps whatever part of the output exists.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from typing import Any

import openai
from openai import AsyncOpenAI

from bot.collect.engine import CollectTask, read_answer, request_hash
from bot.core.errors import BudgetExceeded
from bot.core.money import format_usd
from bot.core.provider import delete_file
from bot.core.retries import find_or_create
from bot.costs.budget import Budget
from bot.prices.reasoning import cut_off_error
from bot.prices.table import PriceTable
from bot.prompts.answers import AnswerFormat
from storage import Storage
from storage.batches import BATCH_TERMINAL, Batch
from storage.completions import Completion

log = logging.getLogger(__name__)

RUNNING_STATUSES = ("validating", "in_progress", "finalizing", "cancelling")
KEY_METADATA = "distill_batch_key"  # ties the provider's batch to its record, across installations
CREATE_ATTEMPTS = 4
CLOCK_SKEW_SECONDS = 300  # how far the provider's clock may trail ours when looking for a batch made before a stop


def _key(batch: Batch) -> str:
    return f"{batch.id}@{batch.created_at}"


def _custom_id(row_index: int) -> str:
    return f"row-{row_index}"


def _row_of(custom_id: str) -> int:
    return int(custom_id.removeprefix("row-"))


def _hash_of(batch: Batch, body: dict[str, Any]) -> str:
    return request_hash(batch.model, body["messages"], body.get("response_format"), body.get("reasoning_effort"))


class BatchCollector:
    def __init__(self, storage: Storage, client: AsyncOpenAI, prices: PriceTable, *, store: bool = True) -> None:
        self.storage = storage
        self.client = client
        self.prices = prices
        self.store = store

    async def delete_files(self, batch: Batch) -> list[str]:
        """Delete the batch's files at the provider (input, output, errors); returns those that could not be."""
        kept = []
        for file_id in (batch.input_file_id, batch.output_file_id, batch.error_file_id):
            if file_id is None:
                continue
            try:
                await delete_file(self.client, file_id)
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                log.warning("could not delete batch file %s: %s", file_id, exc)
                kept.append(file_id)
        return kept

    async def submit(self, task: CollectTask, budget: Budget) -> Batch | None:
        """Send the task's unanswered rows as one batch; None when every row already has an answer."""
        answered = await self.storage.completions.answered_requests(task.run_id, task.split, task.role)
        todo = [r for r in task.requests if not task.still_answered(answered.get(r.row_index),
                                                                     task.request_hash(r.messages))]
        if not todo:
            return None
        price = self.prices.get(task.model)
        most = sum(price.cost_micro_usd(r.prompt_tokens, task.max_completion_tokens, batch=True) for r in todo)
        if not budget.reserve(most):
            raise BudgetExceeded(
                f"The batch for {task.role} on {task.split} could cost up to {format_usd(most)}, more than is "
                f"left of the approved budget. Ask for a new approval with a larger budget."
            )
        lines = []
        for request in todo:
            body: dict[str, Any] = {"model": task.model, "messages": request.messages,
                                    **task.budget.request_options()}
            if task.response_format is not None:
                body["response_format"] = task.response_format
            if self.store:
                body.update(store=True, metadata=task.metadata())
            lines.append(json.dumps({"custom_id": _custom_id(request.row_index), "method": "POST",
                                     "url": "/v1/chat/completions", "body": body}, ensure_ascii=False))
        batch = await self._interrupted(task) or await self.storage.batches.create(
            run_id=task.run_id, split=task.split, role=task.role, model=task.model)
        remote = await self._created_before(batch) if batch.status == "uploaded" else None
        if remote is None:
            upload = await self.client.files.create(
                file=(f"distill-run{task.run_id}-{task.split}-{task.role}.jsonl",
                      io.BytesIO("\n".join(lines).encode("utf-8"))),
                purpose="batch",
            )
            batch = await self.storage.batches.update(batch.id, input_file_id=upload.id, status="uploaded")
            remote = await find_or_create(lambda: self._created_before(batch), lambda: self._create(batch),
                                          attempts=CREATE_ATTEMPTS)
        return await self.storage.batches.update(batch.id, external_id=remote.id, status=remote.status)

    async def _create(self, batch: Batch) -> Any:
        # Without the SDK's retries: the API takes no idempotency key (see find_or_create).
        return await self.client.with_options(max_retries=0).batches.create(
            input_file_id=batch.input_file_id, endpoint="/v1/chat/completions", completion_window="24h",
            metadata={"distill_run": str(batch.run_id), "distill_batch": str(batch.id), KEY_METADATA: _key(batch)},
        )

    async def _interrupted(self, task: CollectTask) -> Batch | None:
        """The task's batch record that a stop or an error left before the provider's id was stored."""
        records = await self.storage.batches.for_run(task.run_id)
        return next((b for b in reversed(records) if (b.split, b.role) == (task.split, task.role)
                     and b.external_id is None and b.status not in BATCH_TERMINAL), None)

    async def _created_before(self, batch: Batch) -> Any | None:
        """The provider's batch made for this record, if the create call got through before the stop. The list
        has no filter: walk it, newest first, back to the record's creation."""
        since = datetime.fromisoformat(batch.created_at).timestamp() - CLOCK_SKEW_SECONDS
        async for remote in self.client.batches.list(limit=100):
            if (remote.metadata or {}).get(KEY_METADATA) == _key(batch):
                return remote
            if remote.created_at < since:
                break
        return None

    async def poll(self, batch: Batch) -> Batch:
        """Check the batch once; store its answers when it has finished. Returns the updated record."""
        remote = await self.client.batches.retrieve(batch.external_id)
        if remote.status in RUNNING_STATUSES:
            if remote.status != batch.status:
                batch = await self.storage.batches.update(batch.id, status=remote.status)
            return batch
        answered = failed = 0
        requests = await self._requests(batch) if remote.output_file_id or remote.error_file_id else {}
        if remote.output_file_id:
            answered, failed = await self._store_output(batch, remote.output_file_id, requests)
        if remote.error_file_id:
            failed += await self._store_errors(batch, remote.error_file_id, requests)
        if remote.status == "completed":
            return await self.storage.batches.update(
                batch.id, status="stored", output_file_id=remote.output_file_id, error_file_id=remote.error_file_id
            )
        reasons = "; ".join(e.message or e.code or "" for e in (remote.errors.data if remote.errors else []) or [])
        message = {
            "expired": "The batch expired before the provider finished it (24 h window).",
            "cancelled": "The batch was cancelled.",
            "failed": "The provider failed the batch.",
        }.get(remote.status, f"The batch ended as {remote.status}.")
        return await self.storage.batches.update(
            batch.id, status=remote.status, output_file_id=remote.output_file_id,
            error_file_id=remote.error_file_id,
            error=(f"{message} {reasons} {answered} answers were stored and {failed} rows failed; collect again to "
                   "finish the rest.").replace("  ", " "),
        )

    async def _requests(self, batch: Batch) -> dict[str, dict[str, Any]]:
        """The request bodies as sent, by custom_id (read back from the uploaded input file)."""
        content = await self.client.files.content(batch.input_file_id)
        bodies = {}
        for line in content.text.splitlines():
            if line.strip():
                item = json.loads(line)
                bodies[item["custom_id"]] = item["body"]
        return bodies

    async def _store_output(self, batch: Batch, file_id: str,
                            requests: dict[str, dict[str, Any]]) -> tuple[int, int]:
        """Store the output file's lines; returns (answers, failed rows)."""
        price = self.prices.get(batch.model)
        content = await self.client.files.content(file_id)
        completions = []
        for line in content.text.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            body = requests.get(item["custom_id"])
            response = item.get("response") or {}
            if body is None:
                log.warning("batch %s: output line for unknown custom_id %r", batch.external_id, item["custom_id"])
                continue
            hashed = _hash_of(batch, body)
            answer_format = AnswerFormat.from_request(body.get("response_format"))
            common = dict(run_id=batch.run_id, row_index=_row_of(item["custom_id"]), split=batch.split,
                          role=batch.role, model=batch.model, request_hash=hashed,
                          provider_request_id=response.get("request_id"))
            if response.get("status_code") != 200:
                error = (item.get("error") or {}).get("message") or f"HTTP {response.get('status_code')}"
                completions.append(Completion(**common, status="failed", error=f"batch: {error}"))
                continue
            result = response["body"]
            choice = result["choices"][0]
            message = choice["message"]
            usage = result.get("usage") or {}
            prompt_tokens, completion_tokens = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
            reasoning_tokens = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
            label, error = read_answer(
                answer_format, message.get("content"), message.get("refusal"), choice.get("finish_reason"),
                cut_off_error(body.get("max_completion_tokens"), body.get("reasoning_effort"), reasoning_tokens))
            completions.append(Completion(
                **common, status="ok" if error is None else "invalid",
                raw_output=message.get("content") or message.get("refusal"),
                parsed_label=label if error is None else None, prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens, reasoning_tokens=reasoning_tokens,
                cost_micro_usd=price.cost_micro_usd(prompt_tokens, completion_tokens, batch=True),
                provider_completion_id=result.get("id"), error=error,
            ))
        await self.storage.completions.save_many(completions)
        failed = sum(c.status == "failed" for c in completions)
        return len(completions) - failed, failed

    async def _store_errors(self, batch: Batch, file_id: str, requests: dict[str, dict[str, Any]]) -> int:
        content = await self.client.files.content(file_id)
        answered = await self.storage.completions.answered_rows(batch.run_id, batch.split, batch.role)
        failures = []
        for line in content.text.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            row = _row_of(item["custom_id"])
            body = requests.get(item["custom_id"])
            if row in answered or body is None:
                continue
            error = (item.get("error") or {}).get("message") or "no answer in the batch"
            failures.append(Completion(run_id=batch.run_id, row_index=row, split=batch.split, role=batch.role,
                                       model=batch.model, request_hash=_hash_of(batch, body), status="failed",
                                       error=f"batch: {error}"))
        await self.storage.completions.save_many(failures)
        return len(failures)
