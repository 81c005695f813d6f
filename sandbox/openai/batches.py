"""The Batch API: `POST /v1/batches`, `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`.

The input file is checked when the batch is created (one JSON request per line, unique `custom_id`, `POST` to
the batch's endpoint, one model for the whole file, as OpenAI requires); its lines run through the same chat
logic as live calls, so a batch answers exactly what live mode answers. In simulated seconds a batch is
validating for 2, in_progress for 30 and finalizing for 3. The answers are computed, written to an output
file (and failed lines to an error file) and logged as paid with `batch=True` the first time the batch is seen
completed. With `expire_batches` every batch expires instead of finishing: no answer, nothing paid.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web

from sandbox.openai.chat import ChatAnswer, ChatEngine
from sandbox.openai.clock import JobClock
from sandbox.openai.errors import APIError, bad_request, not_found
from sandbox.openai.files import Files
from sandbox.openai.ids import new_id, request_id
from sandbox.openai.paging import limit_param, list_body, page
from sandbox.openai.params import json_body, metadata, required_str
from sandbox.openai.requestlog import RequestLog, RequestRecord

VALIDATING_SECONDS = 2.0
IN_PROGRESS_SECONDS = 30.0
FINALIZING_SECONDS = 3.0
CANCELLING_SECONDS = 2.0
ENDPOINT = "/v1/chat/completions"
MAX_REQUESTS = 50_000  # per batch (platform.openai.com/docs/guides/batch, "Rate limits")
_WINDOW_SECONDS = 24 * 3600


@dataclass
class Batch:
    id: str
    input_file_id: str
    metadata: dict[str, str]
    created_at: float
    in_progress_at: float
    finalizing_at: float
    completed_at: float
    expires: bool
    requests: list[tuple[str, dict]]  # (custom_id, body)
    model: str | None
    errors: list[dict] = field(default_factory=list)
    cancelling_at: float | None = None
    cancelled_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"completed": 0, "failed": 0})
    usage: dict | None = None
    settling: asyncio.Task | None = None

    def status(self, now: float) -> str:
        if self.cancelling_at is not None:
            return "cancelled" if now >= self.cancelled_at else "cancelling"
        if now < self.in_progress_at:
            return "validating"
        if self.errors:
            return "failed"
        if now < self.finalizing_at:
            return "in_progress"
        if self.expires:
            return "expired"
        return "finalizing" if now < self.completed_at else "completed"

    def as_json(self, now: float) -> dict:
        status = self.status(now)

        def reached(at: float | None, *statuses: str) -> int | None:
            return int(at) if at is not None and status in statuses else None

        # OpenAI's spec types these fields without null (though its own example shows nulls): leave unset ones out.
        body = {
            "id": self.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "model": self.model,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created_at),
            "in_progress_at": reached(self.in_progress_at, "in_progress", "finalizing", "completed", "expired"),
            "expires_at": int(self.created_at + _WINDOW_SECONDS),
            "finalizing_at": reached(self.finalizing_at, "finalizing", "completed"),
            "completed_at": reached(self.completed_at, "completed"),
            "failed_at": reached(self.in_progress_at, "failed"),
            "expired_at": reached(self.finalizing_at, "expired"),
            "cancelling_at": reached(self.cancelling_at, "cancelling", "cancelled"),
            "cancelled_at": reached(self.cancelled_at, "cancelled"),
            "request_counts": {"total": len(self.requests), **self.counts},
            "usage": self.usage,
            "metadata": self.metadata or None,
        }
        return {key: value for key, value in body.items() if value is not None}


def _line_error(line: int, code: str, message: str) -> dict:
    return {"code": code, "message": message, "param": None, "line": line}


def parse_input(content: bytes) -> tuple[list[tuple[str, dict]], str | None, list[dict]]:
    """The (custom_id, body) requests of a batch input file, their model, and the errors that fail it."""
    requests: list[tuple[str, dict]] = []
    models: set[str] = set()
    for n, line in enumerate(content.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            return [], None, [_line_error(n, "invalid_json_line", f"Line {n} is not valid JSON.")]
        if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str) or not isinstance(
                item.get("body"), dict):
            return [], None, [_line_error(n, "invalid_request", f"Line {n} needs a string 'custom_id' and an object "
                                                                "'body'.")]
        if item.get("method") != "POST" or item.get("url") != ENDPOINT:
            return [], None, [_line_error(n, "invalid_url", f"Line {n} must be method 'POST' to url '{ENDPOINT}', "
                                                            "the endpoint of this batch.")]
        if any(item["custom_id"] == c for c, _ in requests):
            return [], None, [_line_error(n, "duplicate_custom_id",
                                          f"The custom_id '{item['custom_id']}' on line {n} is already used.")]
        models.add(str(item["body"].get("model")))
        requests.append((item["custom_id"], item["body"]))
    if not requests:
        return [], None, [_line_error(1, "empty_file", "The input file has no requests.")]
    if len(models) > 1:
        return [], None, [_line_error(1, "mismatched_model", "A batch input file must use one model; this one "
                                                             f"uses {', '.join(sorted(models))}. Split it by model.")]
    if len(requests) > MAX_REQUESTS:
        return [], None, [_line_error(1, "too_many_requests", f"A batch takes at most {MAX_REQUESTS} requests.")]
    return requests, models.pop(), []


class Batches:
    def __init__(self, files: Files, engine: ChatEngine, clock: JobClock, log: RequestLog,
                 expire_batches: bool = False) -> None:
        self.files = files
        self.engine = engine
        self.clock = clock
        self.log = log
        self.expire_batches = expire_batches
        self._batches: dict[str, Batch] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/batches", self.create),
            web.get("/v1/batches", self.list),
            web.get("/v1/batches/{batch_id}", self.retrieve),
            web.post("/v1/batches/{batch_id}/cancel", self.cancel),
        ]

    async def create(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        file_id = required_str(body, "input_file_id")
        if required_str(body, "endpoint") != ENDPOINT:
            raise bad_request(f"Invalid 'endpoint': {body['endpoint']!r}. The sandbox batches only '{ENDPOINT}'.",
                              param="endpoint")
        if required_str(body, "completion_window") != "24h":
            raise bad_request(f"Invalid 'completion_window': {body['completion_window']!r}. Supported: '24h'.",
                              param="completion_window")
        stored = self.files.get(file_id, "input_file_id")
        if stored.purpose != "batch":
            raise bad_request(f"Invalid 'input_file_id': file {file_id} has purpose '{stored.purpose}'; upload it "
                              "with purpose 'batch'.", param="input_file_id")
        requests, model, errors = await asyncio.to_thread(parse_input, stored.content)
        now = self.clock.now()
        in_progress_at = self.clock.later(now, VALIDATING_SECONDS)
        finalizing_at = self.clock.later(in_progress_at, IN_PROGRESS_SECONDS)
        batch = Batch(new_id("batch_"), file_id, metadata(body), now, in_progress_at, finalizing_at,
                      self.clock.later(finalizing_at, FINALIZING_SECONDS), self.expire_batches, requests, model,
                      errors)
        self._batches[batch.id] = batch
        return web.json_response(batch.as_json(now))

    async def list(self, request: web.Request) -> web.Response:
        """Newest first, paged with `after` and `limit` (the API has no filter: callers match metadata)."""
        batches = list(reversed(self._batches.values()))
        chunk, has_more = page(batches, request.query.get("after"), limit_param(request), key=lambda b: b.id)
        now = self.clock.now()
        return web.json_response(list_body([b.as_json(now) for b in chunk], has_more, cursor_ids=bool(chunk)))

    def _batch(self, request: web.Request) -> Batch:
        batch_id = request.match_info["batch_id"]
        if batch_id not in self._batches:
            raise not_found(f"No batch found with id '{batch_id}'.", param="batch_id")
        return self._batches[batch_id]

    async def retrieve(self, request: web.Request) -> web.Response:
        batch = self._batch(request)
        if batch.status(self.clock.now()) in ("completed", "expired"):
            if batch.settling is None:
                batch.settling = asyncio.create_task(self._settle(batch))
            await asyncio.shield(batch.settling)
        return web.json_response(batch.as_json(self.clock.now()))

    async def cancel(self, request: web.Request) -> web.Response:
        batch, now = self._batch(request), self.clock.now()
        status = batch.status(now)
        if status not in ("validating", "in_progress"):
            raise bad_request(f"Cannot cancel batch {batch.id}: it is {status}.", param="batch_id")
        batch.cancelling_at, batch.cancelled_at = now, self.clock.later(now, CANCELLING_SECONDS)
        return web.json_response(batch.as_json(now))

    def _run(self, batch: Batch) -> tuple[list[dict], list[dict], list[RequestRecord]]:
        outputs: list[dict] = []
        failures: list[dict] = []
        records: list[RequestRecord] = []
        for custom_id, body in batch.requests:
            line = {"id": new_id("batch_req_"), "custom_id": custom_id}
            record = RequestRecord(self.clock.now(), "POST", ENDPOINT, request_id(), model=batch.model, batch=True)
            if batch.expires:
                failures.append({**line, "response": None, "error": {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion window expired."}})
                continue
            try:
                answer: ChatAnswer = self.engine.answer(body)
            except APIError as exc:
                record.status = exc.status
                failures.append({**line, "response": {"status_code": exc.status, "request_id": record.request_id,
                                                      "body": exc.body()}, "error": None})
            else:
                usage = answer.usage
                record.status, record.paid = 200, True
                record.metadata, record.messages_hash = answer.metadata, answer.messages_hash
                record.last_user_text = answer.last_user_text
                record.usage = {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
                outputs.append({**line, "response": {"status_code": 200, "request_id": record.request_id,
                                                     "body": answer.completion}, "error": None})
            records.append(record)
        return outputs, failures, records

    async def _settle(self, batch: Batch) -> None:
        outputs, failures, records = await asyncio.to_thread(self._run, batch)

        def jsonl(lines: list[dict]) -> bytes:
            return "".join(json.dumps(line) + "\n" for line in lines).encode()

        if outputs:
            batch.output_file_id = self.files.add(f"{batch.id}_output.jsonl", "batch_output", jsonl(outputs)).id
        if failures:
            batch.error_file_id = self.files.add(f"{batch.id}_error.jsonl", "batch_output", jsonl(failures)).id
        batch.counts = {"completed": len(outputs), "failed": len(failures)}
        used = [r.usage for r in records if r.usage]
        prompt, completion = sum(u["prompt_tokens"] for u in used), sum(u["completion_tokens"] for u in used)
        batch.usage = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
                       "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
                       "total_tokens": prompt + completion}
        self.log.extend(records)
