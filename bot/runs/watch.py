"""`/distill watch NAME every=7d sample=200 [metadata.KEY=VALUE ...] [alert=90%] [cap=USD]`: after a run is done,
on a schedule, a sample of its distilled model's real answers is scored against the teacher, and the trend posted.

Each period the watch lists the distilled model's stored completions of the period (`model` = the fine-tuned model,
and the metadata pairs given; bot/data/stored_completions.py), or takes a JSONL file of its answers shared in the thread
with the comment `watch`, and samples `sample` of them (seeded by the period, so a period done again after a stop
samples the same ones). The teacher answers the same requests (the collection engine: rate limits, retries, each
answer stored, none paid twice), and bot/evaluate/scoring.py scores the distilled model's answers against the teacher's.
The thread gets one line per period: the score with its 95% interval, the distilled model's cost per 1,000
answers (from the usage its completions report) and its error rate, after the scores of the periods before; a
score under `alert` says so.

Spend has a standing approval: its amount is a monthly cap (`cap=`, or what `sample` answers a period cost at most
at the eval split's longest prompt), and every teacher request reserves its worst case against what the watch has
spent in the calendar month. The scheduler (bot/runs/scheduler.py) looks for due watches on every tick by the bot's
clock; a period is claimed in the database before its work starts and its line is posted once, so a restart
neither repeats nor skips one (periods missed while the bot was down are not made up: the next one is due from now).
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.collect.engine import CollectRequest, CollectTask
from bot.core.errors import DatasetError, PriceError, SpecError, StateError
from bot.core.events import DatasetRefused, Note
from bot.core.money import format_usd, usd_to_micro
from bot.core.tasks import describe
from bot.costs.budget import Budget
from bot.costs.quotes import StageQuote, count_chat_tokens
from bot.data.chat_examples import ChatExample, parse_jsonl
from bot.data.imports import ANSWER, INPUT, MODEL, SOURCE, chat_data, label_of, store_chat_data
from bot.data.splits import input_hash
from bot.data.stored_completions import StoredFilter, examples_of, list_stored, parse_filter
from bot.evaluate.scores import DISTILLED, TEACHER
from bot.evaluate.scoring import Score, score
from bot.runs.ops import RunOps
from bot.spec.budgets import budget_for
from bot.spec.messages import build_messages
from storage.approvals import Approval
from storage.completions import Completion
from storage.runs import Run, RunRow
from storage.states import RunState
from storage.watches import Watch, WatchTick

STAGE = "watch"
DEFAULT_EVERY_SECONDS = 7 * 86400
DEFAULT_SAMPLE = 200
MAX_SAMPLE = 2000
MIN_EVERY_SECONDS = 3600
MONTH_SECONDS = 30 * 86400
LISTED_PER_PERIOD = 20_000  # the most stored completions a period's sample is drawn from
TREND_SHOWN = 6
OFF = "off"
_EVERY = re.compile(r"^(\d+)\s*([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class WatchRequest:
    every_seconds: int
    sample: int
    metadata: dict[str, str]
    alert_below: float | None
    cap_micro_usd: int | None


def every_seconds(value: str) -> int:
    found = _EVERY.match(value.strip().lower())
    seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)] if found else 0
    if seconds < MIN_EVERY_SECONDS:
        raise SpecError(f"every={value} is not a period of an hour or more: write every=7d, every=12h or every=2w.")
    return seconds


def _share(value: str) -> float:
    text = value.strip().rstrip("%")
    try:
        share = float(text) / (100 if value.strip().endswith("%") or float(text) > 1 else 1)
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise SpecError(f"alert={value} is not a score: write alert=90% or alert=0.9 (alert below 90%).")
    return share


def parse_watch(args: Sequence[str]) -> WatchRequest:
    """The settings of `/distill watch NAME ...`; SpecError names what is wrong."""
    every, sample, alert, cap, rest = DEFAULT_EVERY_SECONDS, DEFAULT_SAMPLE, None, None, []
    for arg in args:
        key, _, value = arg.partition("=")
        if key == "every":
            every = every_seconds(value)
        elif key == "sample":
            sample = int(value) if value.isdigit() else 0
            if not 1 <= sample <= MAX_SAMPLE:
                raise SpecError(f"sample={value} is not a number of answers from 1 to {MAX_SAMPLE:,}.")
        elif key == "alert":
            alert = _share(value)
        elif key == "cap":
            try:
                cap = usd_to_micro(value)
            except ValueError as exc:
                raise SpecError(f"cap={value}: {exc}") from None
        else:
            rest.append(arg)
    wanted = parse_filter(rest, allowed=())
    return WatchRequest(every, sample, wanted.metadata, alert, cap)


def _when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _iso(moment: dt.datetime) -> str:
    """As the database stores times (bot/core/clock.py), so they compare as text."""
    return moment.isoformat(timespec="microseconds")


def _period(seconds: int) -> str:
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class WatchStage:
    def __init__(self, service: RunOps) -> None:
        self.service = service

    # ----- asking for it and stopping it -------------------------------------------------------------------

    async def request(self, run: Run, args: Sequence[str], user: str) -> None:
        """Create the watch and ask for its standing approval (`off`: stop the run's watch)."""
        if list(args) == [OFF]:
            await self.stop(run, user)
            return
        wanted = parse_watch(args)
        await self._distilled(run)
        for watch in await self.service.storage.watches.for_run(run.id):
            if watch.state in ("on", "asked"):
                await self.service.storage.watches.update(watch.id, state=OFF)
        watch = await self.service.storage.watches.add(
            run_id=run.id, every_seconds=wanted.every_seconds, sample=wanted.sample, metadata=wanted.metadata,
            alert_below=wanted.alert_below, cap_micro_usd=wanted.cap_micro_usd, created_by=user)
        await self.service.storage.audit.add(run_id=run.id, actor=user, action="watch-asked",
                                             detail={"watch_id": watch.id, "cap_micro_usd": wanted.cap_micro_usd})
        await self.service.request_stage(run, STAGE, user)

    async def stop(self, run: Run, user: str) -> None:
        active = [w for w in await self.service.storage.watches.for_run(run.id) if w.state in ("on", "asked")]
        if not active:
            raise StateError(f"Run '{run.name}' has no watch to stop.")
        for watch in active:
            await self.service.storage.watches.update(watch.id, state=OFF)
        await self.service.storage.audit.add(run_id=run.id, actor=user, action="watch-stopped",
                                             detail={"watches": [w.id for w in active]})
        await self.service.notifier.post(run, Note(f"<@{user}> stopped the watch of {run.name}: no more periods are "
                                                   "sampled or paid. `/distill watch NAME` starts a new one."))

    async def _distilled(self, run: Run) -> str:
        if run.state != RunState.DONE:
            raise StateError(f"Run '{run.name}' is {run.state}: a watch follows a finished run's distilled model.")
        job = next((j for j in reversed(await self.service.storage.jobs.for_run(run.id)) if j.fine_tuned_model), None)
        if job is None:
            raise StateError(f"Run '{run.name}' has no distilled model to watch.")
        return job.fine_tuned_model

    async def _asked(self, run: Run) -> Watch:
        asked = [w for w in await self.service.storage.watches.for_run(run.id) if w.state == "asked"]
        if not asked:
            raise StateError(f"Run '{run.name}' has no watch waiting for approval: `/distill watch {run.name}`.")
        return asked[-1]

    async def quote(self, run: Run, approval: Approval | None = None) -> StageQuote:
        """The standing approval's amount: the monthly cap."""
        service = self.service
        watch = await self._asked(run) if approval is None else await service.storage.watches.require(
            int(approval.quote["watch_id"]))
        model = await self._distilled(run)
        spec, prepared = await service.prepare_run(run)
        price = service.prices.get(spec.teacher)
        answer = spec.answer_format(prepared.choices)
        budget = budget_for(spec, service.prices, TEACHER, spec.teacher,
                            answer.longest_tokens(spec.teacher, spec.max_answer_tokens))
        prompts = [count_chat_tokens(build_messages(spec, r.user_prompt), spec.teacher) for r in prepared.eval]
        longest, mean = max(prompts), sum(prompts) / len(prompts)
        periods = math.ceil(MONTH_SECONDS / watch.every_seconds)
        most = periods * watch.sample * price.cost_micro_usd(longest, budget.max_completion_tokens)
        expected = periods * watch.sample * price.cost_micro_usd(round(mean), budget.answer_tokens)
        cap = watch.cap_micro_usd or most
        source = ", ".join([f"model {model}", *(f"metadata.{k}={v}" for k, v in watch.metadata.items())])
        notes = [
            f"Every {_period(watch.every_seconds)}: {watch.sample:,} of the distilled model's stored completions of "
            f"the period ({source}) are sampled and the teacher {spec.teacher} answers the same requests; the scores "
            "are posted here" + (f", with an alert below {watch.alert_below:.0%}." if watch.alert_below else "."),
            f"A standing approval: at most {format_usd(cap)} a calendar month ({periods} periods; at most "
            f"{format_usd(most)} at the eval split's longest prompt with every answer at its whole budget). Each "
            "request reserves its worst case; a period that would pass the month's cap stops there. "
            "`/distill watch NAME off` stops it.",
        ]
        digest = hashlib.sha256(json.dumps({"stage": STAGE, "watch": watch.id, "cap": cap, "model": model,
                                            "teacher": spec.teacher, "price": price.to_dict()},
                                           sort_keys=True).encode()).hexdigest()
        return StageQuote(stage=STAGE, quote_hash=digest, estimate_micro_usd=min(expected, cap), max_micro_usd=cap,
                          detail={"watch_id": watch.id, "teacher": spec.teacher, "notes": notes,
                                  "rows": {"sample": watch.sample}})

    async def start(self, run: Run, approval: Approval) -> None:
        """The approval is granted: the first period is due now."""
        watch = await self.service.storage.watches.update(int(approval.quote["watch_id"]), state="on",
                                                          approval_id=approval.id,
                                                          next_due_at=self.service.clock.iso())
        await self.service.post_once(run, f"watch{watch.id}-on", Note(
            f"Watching {run.name}'s distilled model every {_period(watch.every_seconds)}, {watch.sample:,} answers a "
            f"period, within {format_usd(approval.amount_micro_usd)} a month. The first period is sampled now."))

    # ----- a file of the model's answers -----------------------------------------------------------------------

    async def attach_file(self, run: Run, *, data: bytes, filename: str, user: str) -> None:
        """A JSONL of the distilled model's answers (requests and replies), sampled by the next period instead of the
        stored completions."""
        service = self.service
        active = [w for w in await service.storage.watches.for_run(run.id) if w.state in ("on", "asked")]
        if not active:
            raise StateError(f"Run '{run.name}' has no watch for this file: start one with "
                             f"`/distill watch {run.name}`.")
        settings = service.settings
        try:
            parsed = await asyncio.to_thread(parse_jsonl, data, filename, max_bytes=settings.max_csv_bytes,
                                             max_rows=settings.max_rows)
        except DatasetError as exc:
            await service.notifier.post(run, DatasetRefused(filename, str(exc)))
            return
        examples = await asyncio.to_thread(chat_data, parsed.examples, parsed.unusable)
        dataset, _ = await store_chat_data(service.storage, examples, filename, len(data))
        await service.storage.watches.update(active[-1].id, dataset_id=dataset.id)
        await service.storage.audit.add(run_id=run.id, actor=user, action="watch-file-shared",
                                        detail={"watch": active[-1].id, "dataset": dataset.id, "filename": filename})
        await service.notifier.post(run, Note(f"The watch's next period samples the {len(examples.rows):,} answers of "
                                              f"{filename} instead of the stored completions."))

    # ----- periods ----------------------------------------------------------------------------------------------

    async def tick_due(self) -> None:
        """The scheduler's tick: claim each due period (and move its watch's next one on), then work on it."""
        service = self.service
        now = service.clock.now()
        for watch in await service.storage.watches.due(now.isoformat()):
            due = _when(watch.next_due_at)
            number = len(await service.storage.watches.ticks(watch.id)) + 1
            step = dt.timedelta(seconds=watch.every_seconds)
            following = due + step * max(1, math.ceil((now - due) / step + 1e-9))
            if await service.storage.watches.claim_tick(watch.id, number, _iso(due), _iso(due - step), _iso(following)):
                service.tasks.spawn(f"watch{watch.id}-{number}", watch.run_id, self.period(watch.id, number))

    async def resume(self) -> None:
        """After a restart: finish the periods a stop interrupted."""
        for tick in await self.service.storage.watches.running_ticks():
            watch = await self.service.storage.watches.require(tick.watch_id)
            self.service.tasks.spawn(f"watch{tick.watch_id}-{tick.number}", watch.run_id,
                                     self.period(tick.watch_id, tick.number))

    async def period(self, watch_id: int, number: int) -> None:
        """Sample, have the teacher answer, score, and post the period's line once."""
        service = self.service
        watch = await service.storage.watches.require(watch_id)
        tick = next(t for t in await service.storage.watches.ticks(watch_id) if t.number == number)
        run = await service.storage.runs.require(watch.run_id)
        try:
            result = await self._work(run, watch, tick)
        except Exception as exc:  # the run stays done: only this period failed
            message, _ = describe(exc)
            await service.storage.watches.finish_tick(watch_id, number, "failed", {"error": message})
            await service.post_once(run, f"watch{watch_id}-tick{number}", Note(
                f"Watch of {run.name}, period {number}: it could not be scored: {message}", "warning"))
            return
        await service.storage.watches.finish_tick(watch_id, number, "done", result)
        done = [t.result for t in await service.storage.watches.ticks(watch_id, "done") if "score" in t.result]
        alert = bool(watch.alert_below is not None and result.get("score", {}).get("value") is not None
                     and result["score"]["value"] < watch.alert_below)
        await service.post_once(run, f"watch{watch_id}-tick{number}",
                                Note(trend_line(run.name, watch, tick, result, done), "warning" if alert else "info"))

    async def _work(self, run: Run, watch: Watch, tick: WatchTick) -> dict[str, Any]:
        service = self.service
        model = await self._distilled_model(run)
        spec, prepared = await service.prepare_run(run)
        sampled, available, production = await self._sample(run, watch, tick, model)
        if watch.dataset_id is not None:
            await service.storage.watches.update(watch.id, dataset_id=None)  # a shared file is sampled once
        window = {"from": tick.window_start, "to": tick.due_at, "available": available}
        if not sampled:
            return {**window, "sampled": 0}
        choices = set(prepared.choices)
        rows, answers, requests = [], [], []
        for index, example in enumerate(sampled):
            label = label_of(example.answer)
            rows.append(RunRow(tick.split, index, input_hash(example.user), None))
            answers.append(Completion(
                run_id=run.id, row_index=index, split=tick.split, role=DISTILLED, model=example.model or model,
                request_hash=hashlib.sha256(f"watched:{example.where}".encode()).hexdigest(),
                status="ok" if label in choices else "invalid", raw_output=example.answer,
                parsed_label=label if label in choices else None, attempts=0,
                provider_completion_id=example.where if example.where.startswith("chatcmpl") else None,
                error=None if label in choices else "the answer is not one of the run's choices"))
            messages = build_messages(dataclasses.replace(spec, system=example.system), example.user)
            requests.append(CollectRequest(index, messages, count_chat_tokens(messages, spec.teacher)))
        stored = await service.storage.completions.answered_rows(run.id, tick.split, DISTILLED)
        await service.storage.completions.save_many([a for a in answers if a.row_index not in stored])
        answer = spec.answer_format(prepared.choices)
        task = CollectTask(
            run_id=run.id, split=tick.split, role=TEACHER, model=spec.teacher, requests=requests, answer=answer,
            budget=budget_for(spec, service.prices, TEACHER, spec.teacher,
                              answer.longest_tokens(spec.teacher, spec.max_answer_tokens)), run_name=run.name)
        approval = await service.storage.approvals.require(watch.approval_id)
        budget = Budget(cap_micro_usd=approval.amount_micro_usd,
                        spent_micro_usd=await self.month_spend(run, watch, _when(tick.due_at)))
        outcome = await service.collectors.collector_for(None).collect(task, budget)
        completions = await service.storage.completions.for_run(run.id, split=tick.split)
        scored: Score = await asyncio.to_thread(score, rows, completions, DISTILLED)
        cost = (sum(production) * 1000 // len(production)) if production else None
        scored = dataclasses.replace(scored, cost_per_1k_micro_usd=cost)
        spent = sum(c.cost_micro_usd for c in completions if c.role == TEACHER and c.reused_from is None)
        return {**window, "sampled": len(sampled), "score": scored.to_dict(), "teacher_spend_micro_usd": spent,
                "stopped": outcome.stopped, "message": outcome.message}

    async def _distilled_model(self, run: Run) -> str:
        job = next((j for j in reversed(await self.service.storage.jobs.for_run(run.id)) if j.fine_tuned_model), None)
        if job is None:
            raise StateError(f"Run '{run.name}' has no distilled model to watch.")
        return job.fine_tuned_model

    async def _sample(self, run: Run, watch: Watch, tick: WatchTick,
                      model: str) -> tuple[list[ChatExample], int, list[int]]:
        """The period's sample (seeded by the watch and the period), how many there were to sample from, and the
        cost of each sampled answer as its usage reports it (empty when unknown: a shared file)."""
        rng = random.Random(f"{watch.id}:{tick.number}")
        if watch.dataset_id is not None:
            dataset = await self.service.storage.datasets.require(watch.dataset_id)
            rows = list((await self.service.storage.datasets.rows(dataset.id)).values())
            chosen = sorted(rng.sample(range(len(rows)), min(watch.sample, len(rows))))
            system = dataset.profile.get("system")
            return [ChatExample(rows[i][SOURCE], system, rows[i][INPUT], rows[i][ANSWER], rows[i][MODEL])
                    for i in chosen], len(rows), []
        client = self.service.collectors.default.provider.client
        start, end = _when(tick.window_start).timestamp(), _when(tick.due_at).timestamp()
        listed = await list_stored(client, StoredFilter(model, dict(watch.metadata), None, LISTED_PER_PERIOD),
                                   newer_than=start)
        in_window = sorted((c for c in listed if c.created < end), key=lambda c: c.id)
        chosen = sorted(rng.sample(range(len(in_window)), min(watch.sample, len(in_window))))
        picked = [in_window[i] for i in chosen]
        examples = (await examples_of(client, picked)).examples
        try:
            price = self.service.prices.get(model)
        except PriceError:  # a model served under a deployment's name: its cost is the deployment's, not per token
            return examples, len(in_window), []
        costs = [price.cost_micro_usd(c.usage.prompt_tokens, c.usage.completion_tokens) for c in picked if c.usage]
        return examples, len(in_window), costs

    async def month_spend(self, run: Run, watch: Watch, when: dt.datetime) -> int:
        """What the watch's teacher answers cost in `when`'s calendar month (UTC)."""
        month = when.strftime("%Y-%m")
        prefix = f"watch{watch.id}."
        return sum(c.cost_micro_usd for c in await self.service.storage.completions.for_run(run.id, role=TEACHER)
                   if c.split.startswith(prefix) and c.reused_from is None and c.created_at[:7] == month)


def trend_line(run_name: str, watch: Watch, tick: WatchTick, result: dict[str, Any],
               done: Sequence[dict[str, Any]]) -> str:
    """The period's line: the score with its interval, cost per 1,000, error rate, and the scores before it."""
    head = f"Watch of {run_name}, period {tick.number} ({tick.window_start[:10]} to {tick.due_at[:10]}):"
    if not result.get("sampled"):
        return (f"{head} no answers of the distilled model to sample in this period ({result.get('available', 0)} "
                "stored completions matched). Check that the app sends store=true and the watch's metadata.")
    scored = Score.from_dict(result["score"])
    if scored.value is None:
        return f"{head} the teacher gave no valid answer on the {result['sampled']} sampled requests."
    interval = (f" (95% CI {100 * scored.interval.low:.1f}–{100 * scored.interval.high:.1f})"
                if scored.interval else "")
    what = "agrees with the teacher on" if scored.metric == "agreement" else "is right on"
    cost = format_usd(scored.cost_per_1k_micro_usd) if scored.cost_per_1k_micro_usd is not None else "unknown"
    errors = f"{100 * scored.error_rate:.1f}%" if scored.error_rate is not None else "—"
    trend = [f"{100 * r['score']['value']:.1f}%" for r in done if r.get("score", {}).get("value") is not None]
    line = (f"{head} the distilled model {what} {100 * scored.value:.1f}%{interval} of {result['sampled']:,} sampled "
            f"answers (of {result['available']:,}) · cost per 1,000 {cost} · errors {errors}")
    if len(trend) > 1:
        line += " · trend " + " → ".join(trend[-TREND_SHOWN:])
    if result.get("stopped") == "budget":
        line += ". The month's cap stopped the teacher before every sampled request was answered"
    if watch.alert_below is not None and scored.value < watch.alert_below:
        line += (f". ALERT: below the {watch.alert_below:.0%} threshold: check the model's recent answers, or distill "
                 "again on fresh data")
    return line + "."
