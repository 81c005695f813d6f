"""The run lifecycle: one run per Slack thread, from a CSV to a distilled model.

States: created -> ready -> (awaiting_approval) -> collecting -> collected -> (awaiting_approval) ->
training -> evaluating -> done, and cancelled / failed from anywhere. A pilot (bot/collect/pilot.py) goes from ready
through (awaiting_approval) and piloting back to ready. Every transition is stored before it
is announced, so a restarted bot resumes where it stopped (`resume`). Spending stages need an approval
(bot/runs/approvals.py); the approved amount is the stage's spending cap.

The Slack layer calls the public methods here; they raise DistillError subclasses with messages meant for
the user. Slow work runs as tracked background tasks: the collect stage (bot/collect/stage.py), the train and
evaluate stages (bot/train/stage.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.collect.context import Collectors, StageContext
from bot.collect.engine import Collector
from bot.collect.imported import answers_imported
from bot.collect.pilot import PILOT_ROWS, PilotStage
from bot.collect.pilot import STAGE as PILOT
from bot.collect.preflight import expectations
from bot.collect.stage import CollectionStage
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.errors import USER_ERRORS, BudgetExceeded, DatasetError, SpecError, StateError
from bot.core.events import (
    ApprovalDecided,
    ApprovalRequested,
    DatasetLoaded,
    DatasetRefused,
    Event,
    Note,
    QuoteReady,
    RunCancelled,
    RunFailed,
    SpecUpdated,
    StageStarted,
)
from bot.core.money import format_usd
from bot.core.tasks import BackgroundTasks, describe
from bot.costs.budget import over_run_budget
from bot.costs.quotes import Billing, Quote, StageQuote, check_template_window
from bot.data.splits import PreparedRun
from bot.prices.table import PriceTable
from bot.prompts.schemas import field_names, schema_from_text
from bot.runs.approvals import ApprovalPolicy, DecisionResult, Directory
from bot.runs.cards import Card, build_card, spend_micro_usd
from bot.runs.catalog import ModelInfo, list_models
from bot.runs.erasure import Deletion, Eraser
from bot.runs.eval_files import EvalFiles
from bot.runs.import_stage import ImportStage
from bot.runs.notify import DeliveryError, Notifier
from bot.runs.reevaluation import STAGE as REEVAL
from bot.runs.reevaluation import ReevalStage
from bot.runs.watch import STAGE as WATCH
from bot.runs.watch import WatchStage
from bot.runs.worker import DatasetWorker, check_dataset, ingest_csv, prepare_dataset, quote_dataset
from bot.spec.settings import EVAL_FILE, TRAINERS, RunSpec
from bot.train.stage import TrainingStage
from bot.trainers import billing_for, get_trainer
from bot.trainers.base import Trainer
from storage import Storage
from storage.approvals import Approval
from storage.datasets import Dataset
from storage.runs import Run
from storage.states import BUSY, RunState

log = logging.getLogger(__name__)

RUN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
# Stages beside a finished run: asking for them or running them leaves the run's state as it is.
SIDE_STAGES = (REEVAL, WATCH)
# Spec keys whose change alters the prompts or the rows: answers must be collected (or reused) again.
PROMPT_KEYS = {"label", "template", "system", "choices", "min_per_label", "train", "eval", "seed", "teacher",
               "student", "validation", "teacher_effort", "max_answer_tokens", "task", "reference", "fields",
               "schema"}


@dataclass(frozen=True)
class RunSummary:
    run: Run
    spend_micro_usd: int
    next_step: str


class RunService:
    def __init__(self, *, storage: Storage, settings: Settings, prices: PriceTable, notifier: Notifier,
                 directory: Directory, collector: Collector, approvals: ApprovalPolicy | None = None,
                 trainers: Callable[[str], Trainer] | None = None, clock: Clock | None = None) -> None:
        self.storage = storage
        self.clock = clock or Clock()
        self.settings = settings
        self.prices = prices
        self.notifier = notifier
        self.collector = collector
        self.approvals = approvals or ApprovalPolicy(storage, settings, directory, self.clock)
        self.tasks = BackgroundTasks(self._stage_failed)
        self.datasets = DatasetWorker(storage, prices, prices_path=settings.prices_path,
                                      process_over_bytes=settings.process_over_bytes)
        self._make_trainer = trainers or (lambda name: get_trainer(name, settings, self.clock))
        self._trainers: dict[str, Trainer] = {}
        self.collectors = Collectors(collector, storage, prices)
        context = StageContext(
            storage=storage, settings=settings, prices=prices, clock=self.clock, tasks=self.tasks,
            post=notifier.post, upload=notifier.upload, prepare_run=self.prepare_run, refresh_card=self.refresh_card,
            post_once=self.post_once, run_folder=self.run_folder, billing=self.billing, trainer_for=self.trainer,
            collector_for=self.collectors.collector_for)
        self.training = TrainingStage(context)
        self.collection = CollectionStage(context, self.training.post_baseline)
        self.pilot = PilotStage(context)
        self.imports = ImportStage(self)
        self.eval_files = EvalFiles(self)
        self.reevals = ReevalStage(self)
        self.watch = WatchStage(self)
        self.erasure = Eraser(self)

    # ----- finding runs -------------------------------------------------------------------------------

    async def find(self, channel_id: str, name: str) -> Run:
        """The run of this channel with this name; runs of other channels are invisible."""
        run = await self.storage.runs.by_name(channel_id, name)
        if run is None:
            names = [r.name for r in await self.storage.runs.in_channel(channel_id)]
            known = f" Runs in this channel: {', '.join(names)}." if names else " This channel has no runs yet."
            raise StateError(f"No run named '{name}' in this channel.{known} Create one with `/distill new NAME`.")
        return run

    async def run(self, run_id: int) -> Run | None:
        return await self.storage.runs.get(run_id)

    async def run_of_thread(self, channel_id: str, thread_ts: str) -> Run | None:
        return await self.storage.runs.by_thread(channel_id, thread_ts)

    async def approval(self, approval_id: int) -> Approval | None:
        return await self.storage.approvals.get(approval_id)

    async def card(self, run: Run) -> Card:
        return await build_card(self.storage, run)

    async def dataset(self, run: Run) -> Dataset | None:
        return await self.storage.datasets.get(run.dataset_id) if run.dataset_id else None

    async def columns(self, run: Run) -> list[str]:
        """The columns of the run's dataset (none before a CSV is shared)."""
        return (await self.storage.datasets.get(run.dataset_id)).columns if run.dataset_id else []

    async def first_delivery(self, event_id: str) -> bool:
        """Whether this Slack event id is seen for the first time (Slack retries a delivery it thinks failed)."""
        return await self.storage.slack_events.first_time(event_id)

    async def summaries(self, channel_id: str) -> list[RunSummary]:
        summaries = []
        for run in await self.storage.runs.in_channel(channel_id):
            card = await build_card(self.storage, run)
            summaries.append(RunSummary(run, await spend_micro_usd(self.storage, run.id), card.next_step))
        return summaries

    # ----- creating a run and giving it data ------------------------------------------------------------

    async def create(self, *, channel_id: str, name: str, requester: str) -> Run:
        if not RUN_NAME.match(name):
            raise SpecError(
                f"'{name}' cannot be a run name: use up to 40 lowercase letters, digits, '-' and '_', "
                "starting with a letter or digit (for example wine-v1)."
            )
        if await self.storage.runs.by_name(channel_id, name):
            raise StateError(f"A run named '{name}' already exists in this channel. Pick another name.")
        spec = RunSpec.defaults(teacher=self.settings.teacher_model, student=self.settings.student_model,
                                trainer=self.settings.trainer)
        run = await self.storage.runs.create(name=name, channel_id=channel_id, requester=requester,
                                             spec=spec.to_dict())
        await self.storage.audit.add(run_id=run.id, actor=requester, action="run-created", detail={"name": name})
        ts = await self.notifier.show_card(run, await build_card(self.storage, run))
        if ts:
            run = await self.storage.runs.update(run.id, thread_ts=ts, card_ts=ts)
        return run

    async def attach_csv(self, run: Run, *, data: bytes, filename: str, user: str) -> None:
        """Load, profile and store a CSV shared in the run's thread; any problem is posted there."""
        self.require_idle(run, "upload a new CSV")
        try:
            ingested = await self.datasets.run(len(data), ingest_csv, data, filename, self.settings.max_csv_bytes,
                                               self.settings.max_rows)
        except DatasetError as exc:
            await self._post(run, DatasetRefused(filename, str(exc)))
            return
        dataset = await self.storage.datasets.get(ingested.dataset_id)
        assert dataset is not None
        voided = await self.storage.approvals.void_pending(run.id)
        run = await self.storage.runs.update(run.id, dataset_id=dataset.id, state=RunState.READY, error=None)
        await self.storage.audit.add(run_id=run.id, actor=user, action="dataset-attached",
                                     detail={"dataset": dataset.id, "filename": filename, "sha256": dataset.sha256,
                                             "voided_approvals": len(voided)})
        await self._post(run, DatasetLoaded(
            filename=filename, dataset_id=dataset.id, rows=dataset.row_count, columns=list(dataset.columns),
            profile=dataset.profile, warnings=ingested.warnings, seen_before=ingested.seen_before,
            label=run.spec.get("label"),
        ))
        await self.refresh_card(run)

    async def attach_schema(self, run: Run, *, text: str, filename: str, user: str) -> RunSpec:
        """A JSON Schema shared in the thread: the answers of an extract run (the run becomes one)."""
        changes = {"schema": text, **({"task": "extract"} if run.spec.get("task") != "extract" else {})}
        fields = ", ".join(field_names(schema_from_text(text, filename)))
        return await self.set_spec(run, changes, user, shown={"schema": f"{filename} ({fields})"})

    async def set_spec(self, run: Run, assignments: dict[str, str], user: str,
                       shown: dict[str, str] | None = None) -> RunSpec:
        """Apply `key=value` settings; checked against the dataset at once; voids pending approvals. `shown`: how
        to show a value too long to repeat in the thread. `eval_file` picks the eval split's file
        (bot/runs/eval_files.py)."""
        self.require_idle(run, "change the settings")
        if EVAL_FILE in assignments:
            assignments = dict(assignments)
            await self.eval_files.select(run, assignments.pop(EVAL_FILE), user)
            run = await self.storage.runs.require(run.id)
            if not assignments:
                return RunSpec.from_dict(run.spec)
        spec = RunSpec.from_dict(run.spec).with_assignments(assignments, self.prices)
        await asyncio.to_thread(check_template_window, spec, self.prices)  # before any row is rendered with it
        awaiting_schema = spec.task == "extract" and spec.schema is None  # checked once the schema is shared
        if run.dataset_id and not awaiting_schema:
            dataset = await self._dataset(run)
            # Raises SpecError or DatasetError naming what does not fit the data.
            await self.datasets.run(dataset.size_bytes, check_dataset, dataset.id, spec, run.eval_dataset_id)
        voided = await self.storage.approvals.void_pending(run.id)
        before = (run.state_before if run.state == RunState.AWAITING_APPROVAL else run.state) or RunState.READY
        changes_prompts = bool(PROMPT_KEYS & set(assignments)) and before in (RunState.COLLECTED, RunState.DONE,
                                                                              RunState.FAILED)
        state = RunState.READY if changes_prompts and run.dataset_id else before
        back_to_ready = state != before
        run = await self.storage.runs.update(run.id, spec=spec.to_dict(), state=state)
        await self.storage.audit.add(run_id=run.id, actor=user, action="spec-changed",
                                     detail={"changes": assignments, "voided_approvals": len(voided)})
        for approval in voided:
            await self._update_approval_message(run, approval, user, "voided",
                                                "Voided: the run's settings changed. Ask again for a new quote.")
        await self.notifier.post(run, SpecUpdated(user, {**assignments, **(shown or {})}, spec.to_dict(), len(voided),
                                                  back_to_ready))
        if awaiting_schema:
            await self.notifier.post(run, Note(f"task=extract needs the answers' JSON Schema: share it as a .json file "
                                               f"in this thread, or `/distill set {run.name} fields=name:string,...`."))
        await self.refresh_card(run)
        return spec

    # ----- quotes and approvals ------------------------------------------------------------------------

    def trainer(self, name: str) -> Trainer:
        """The run's fine-tuning back end by name, made once and closed with the service."""
        if name not in self._trainers:
            self._trainers[name] = self._make_trainer(name)
        return self._trainers[name]

    def billing(self, spec: RunSpec) -> Billing:
        """How the run's trainer bills beyond the per-model prices, from the price table (no credentials needed)."""
        return billing_for(spec.trainer, spec.student, self.settings)

    async def estimate(self, run: Run) -> Quote:
        dataset = await self._dataset(run)
        spec = RunSpec.from_dict(run.spec)
        quote = await self.datasets.run(dataset.size_bytes, quote_dataset, dataset.id, spec, self.billing(spec),
                                        await expectations(self.storage, run),
                                        await answers_imported(self.storage, run), run.eval_dataset_id)
        await self.notifier.post(run, QuoteReady(quote))
        return quote

    async def request_stage(self, run: Run, stage: str, user: str, *, rows: int | None = None) -> Approval:
        """Ask the team to approve a spending stage (`rows`: a pilot's); it starts at once when auto-approved."""
        if stage == "collect":
            self._require_state(run, (RunState.READY, RunState.COLLECTED, RunState.FAILED, RunState.CANCELLED),
                                "collect answers")
            quote = await self.collection.quote(run)
        elif stage == "train":
            self._require_state(run, (RunState.COLLECTED, RunState.DONE, RunState.FAILED, RunState.CANCELLED),
                                "train the student")
            quote = await self._train_quote(run)
        elif stage == PILOT:
            self._require_state(run, (RunState.READY, RunState.COLLECTED, RunState.FAILED, RunState.CANCELLED),
                                "run a pilot")
            if await answers_imported(self.storage, run):
                raise StateError(f"Run '{run.name}' has the teacher's answers with its data: there is no teacher "
                                 "reasoning to measure, and collecting asks only the base student.")
            quote = await self.pilot.quote(run, rows or PILOT_ROWS)
        elif stage == REEVAL:
            quote = await self.reevals.quote(run)
        elif stage == WATCH:
            quote = await self.watch.quote(run)
        else:
            raise ValueError(f"unknown stage {stage!r}")
        problem = await self._over_budget(run, stage, quote.max_micro_usd)
        if problem:
            raise BudgetExceeded(f"{problem} No approver was asked.")
        approval = await self.approvals.request(
            run_id=run.id, stage=stage, quote_hash=quote.quote_hash, amount_micro_usd=quote.max_micro_usd,
            quote=quote.to_dict(), requester=user,
        )
        if approval.status == "approved":
            await self.notifier.post(run, Note(f"Auto-approved: at most {format_usd(quote.max_micro_usd)}, within the "
                                       f"{format_usd(self.settings.auto_approve_micro_usd)} threshold."))
            await self._start(run, approval)
            return approval
        if stage not in SIDE_STAGES:
            run = await self.storage.runs.update(
                run.id, state=RunState.AWAITING_APPROVAL,
                state_before=run.state if run.state != RunState.AWAITING_APPROVAL else run.state_before,
            )
        # Posted directly: if the request cannot reach the thread, the person asking must hear why.
        ts = await self.notifier.post(run, ApprovalRequested(approval, approval.quote, list(self.settings.approvers),
                                                     self.settings.min_approvals))
        if ts:
            await self.storage.approvals.set_message_ts(approval.id, ts)
        await self.refresh_card(run)
        return await self.storage.approvals.require(approval.id)

    async def decide(self, approval_id: int, user: str, decision: str) -> DecisionResult:
        """Record an approver's click; start the stage when the approval is complete."""
        result = await self.approvals.decide(approval_id, user, decision)
        run = await self.storage.runs.require(result.approval.run_id)
        if result.changed:
            await self._update_approval_message(run, result.approval, user, result.outcome, result.message)
        if result.outcome == "approved":
            await self._start(run, result.approval)
        elif result.outcome == "rejected" or result.approval.status in ("expired", "voided"):
            if run.state == RunState.AWAITING_APPROVAL:
                run = await self.storage.runs.update(run.id, state=run.state_before or RunState.READY)
                await self.refresh_card(run)
        return result

    async def expire_approvals(self) -> None:
        """The scheduler's tick: requests past their expiry lose their buttons and give their run back."""
        for approval in await self.approvals.expire_due():
            run = await self.storage.runs.require(approval.run_id)
            await self._update_approval_message(run, approval, "system", "expired", self.approvals.expired_message())
            if run.state == RunState.AWAITING_APPROVAL:
                run = await self.storage.runs.update(run.id, state=run.state_before or RunState.READY)
                await self.refresh_card(run)

    async def _over_budget(self, run: Run, stage: str, most_micro_usd: int) -> str | None:
        return over_run_budget(run_name=run.name, stage=stage, most_micro_usd=most_micro_usd,
                               budget_micro_usd=RunSpec.from_dict(run.spec).budget_micro_usd,
                               spent_micro_usd=await spend_micro_usd(self.storage, run.id))

    async def _train_quote(self, run: Run) -> StageQuote:
        spec, prepared = await self.prepare_run(run)
        if not await self.storage.completions.answered_rows(run.id, "train", "teacher"):
            raise StateError(f"Run '{run.name}' has no teacher answers to train on: `/distill collect {run.name}` "
                             "first.")
        await self.training.check_model(run, spec)
        quote = await self.training.quote(run, spec, prepared)
        return StageQuote(stage="train", quote_hash=quote.quote_hash,
                          estimate_micro_usd=quote.estimate_micro_usd, max_micro_usd=quote.max_micro_usd,
                          detail=quote.to_dict(spec, len(prepared.eval)))

    async def _quote(self, run: Run, approval: Approval) -> StageQuote:
        if approval.stage == PILOT:
            return await self.pilot.quote(run, int(approval.quote["pilot_rows"]))
        if approval.stage == REEVAL:
            return await self.reevals.quote(run)
        if approval.stage == WATCH:
            return await self.watch.quote(run, approval)
        return await (self.collection.quote(run) if approval.stage == "collect" else self._train_quote(run))

    # ----- running stages -------------------------------------------------------------------------------

    async def _start(self, run: Run, approval: Approval) -> None:
        """Start an approved stage, after checking that its quote still holds."""
        try:
            current = await self._quote(run, approval)
            problem = await self._over_budget(run, approval.stage, approval.amount_micro_usd)
        except USER_ERRORS as exc:
            current, problem = None, str(exc)
        if current is None or current.quote_hash != approval.quote_hash or problem:
            await self.storage.approvals.set_status(approval.id, "voided", only_if=None)
            if approval.stage not in SIDE_STAGES:
                run = await self.storage.runs.update(run.id, state=run.state_before or RunState.READY)
            why = (f"The stage cannot start: {problem}" if problem else
                   "The quote changed since it was approved (data, settings or prices)")
            await self._post(run, Note(f"{why}, so the approval was voided. Ask again to see the new quote.",
                                       "warning"))
            await self.refresh_card(run)
            return
        if approval.stage == REEVAL:
            await self.reevals.start(run, approval)
            return
        if approval.stage == WATCH:
            await self.watch.start(run, approval)
            return
        if approval.stage == "train":
            run = await self.storage.runs.update(run.id, state=RunState.TRAINING, error=None)
            await self.refresh_card(run)
            self.tasks.spawn(f"run-{run.id}", run.id, self.training.start(run.id, approval))
            return
        if approval.stage == PILOT:
            run = await self.storage.runs.update(run.id, state=RunState.PILOTING, error=None)
            await self._post(run, StageStarted(PILOT, f"Pilot: {run.spec['teacher']} answers "
                                                      f"{approval.quote['pilot_rows']} train rows.",
                                               approval.amount_micro_usd))
            await self.refresh_card(run)
            self.tasks.spawn(f"run-{run.id}", run.id, self.pilot.run(run.id, approval))
            return
        run = await self.storage.runs.update(run.id, state=RunState.COLLECTING, error=None)
        await self._post(run, StageStarted("collect", f"Collecting with {run.spec['teacher']} (teacher) and "
                                                      f"{run.spec['student']} (base student).",
                                           approval.amount_micro_usd))
        await self.refresh_card(run)
        self.tasks.spawn(f"run-{run.id}", run.id, self.collection.run(run.id, approval))

    async def poll_external_work(self) -> None:
        """The scheduler's tick: training jobs, then batches. One failing poll does not stop the others."""
        for job in await self.storage.jobs.active():
            if not job.external_id:
                continue
            try:
                await self.training.poll(job)
            except USER_ERRORS as exc:
                log.warning("polling job %s of run %s: %s", job.id, job.run_id, exc)
            except Exception as exc:
                log.warning("polling job %s of run %s failed: %s", job.id, job.run_id, describe(exc)[0])
        try:
            await self.collection.poll_batches()
        except Exception as exc:
            log.warning("polling batches failed: %s", describe(exc)[0])

    async def cancel(self, run: Run, user: str) -> None:
        if run.state in (RunState.DONE, RunState.CANCELLED, RunState.DELETED):
            raise StateError(f"Run '{run.name}' is already {run.state}; there is nothing to cancel.")
        self.collection.cancel(run.id)
        self.pilot.cancel(run.id)
        if run.state == RunState.TRAINING:
            await self.training.cancel(run)
        voided = await self.storage.approvals.void_pending(run.id)
        run = await self.storage.runs.update(run.id, state=RunState.CANCELLED)
        await self.storage.audit.add(run_id=run.id, actor=user, action="run-cancelled",
                                     detail={"voided_approvals": len(voided)})
        for approval in voided:
            await self._update_approval_message(run, approval, user, "voided", "Voided: the run was cancelled.")
        await self.notifier.post(run, RunCancelled(user))
        await self.refresh_card(run)

    async def delete(self, run: Run, user: str) -> None:
        """Delete the run's data (bot/runs/erasure.py), after the person confirmed it; the audit trail stays."""
        await self._deleted(run, await self.erasure.erase(run, actor=user, why="asked with /distill delete"),
                            f"<@{user}>")

    async def purge_expired(self) -> None:
        """The scheduler's tick: delete the data of runs finished more than DISTILL_RETENTION_DAYS ago."""
        days = self.settings.retention_days
        for run in await self.erasure.expired():
            deletion = await self.erasure.erase(run, actor="system",
                                                why=f"DISTILL_RETENTION_DAYS={days}: finished over {days} days ago")
            await self._deleted(run, deletion, f"The retention period (DISTILL_RETENTION_DAYS={days})")

    async def _deleted(self, run: Run, deletion: Deletion, who: str) -> None:
        run = await self.storage.runs.require(run.id)
        for approval in deletion.voided:
            await self._update_approval_message(run, approval, "system", "voided", "Voided: the run was deleted.")
        await self._post(run, Note(deletion.describe(who).replace("NAME", run.name)))
        await self.refresh_card(run)

    async def resume(self) -> None:
        """After a restart: pick up the work of every busy run. Polling jobs and batches is the scheduler's;
        here, a collection or an evaluation that was running, and a training job not yet started. Every
        unfinished run's card is shown again first: a stop between storing a state and editing the card
        would otherwise leave the card behind."""
        for run in await self.storage.runs.in_states(s for s in RunState if s.unfinished):
            await self.refresh_card(run)
        for run in await self.storage.runs.in_states(BUSY):
            stage = {RunState.TRAINING: "train", RunState.EVALUATING: "train",
                     RunState.PILOTING: PILOT}.get(run.state, "collect")
            approval = await self.storage.approvals.latest(run.id, stage)
            if approval is None or approval.status != "approved":
                await self.storage.runs.update(run.id, state=RunState.FAILED,
                                               error=f"the {stage} stage had no approval")
                continue
            jobs = await self.storage.jobs.for_run(run.id)
            if run.state == RunState.COLLECTING:
                work, what = self.collection.run(run.id, approval), "the collection"
            elif run.state == RunState.PILOTING:
                work, what = self.pilot.run(run.id, approval), "the pilot"
            elif run.state == RunState.EVALUATING:
                work, what = self.training.evaluate(run.id), "the evaluation of the distilled model"
            elif not jobs or jobs[-1].external_id is None:
                work, what = self.training.start(run.id, approval), "starting the fine-tuning job"
            else:
                continue  # a job under way: the scheduler polls it
            log.info("resuming %s of run %s (%s)", what, run.id, run.name)
            await self._post(run, Note(f"The bot restarted; resuming {what}. Answers already stored are not "
                                       "asked (or paid for) again."))
            self.tasks.spawn(f"run-{run.id}", run.id, work)
        await self.reevals.resume()
        await self.watch.resume()

    async def report(self, run: Run) -> None:
        """Post the latest table again: the eval report, or the baseline before training."""
        await self.training.post_report(run)

    async def export(self, run: Run) -> Path:
        """Upload the per-row predictions on the eval split as CSV into the thread."""
        return await self.training.export(run)

    async def close(self) -> None:
        await self.tasks.shutdown()
        for trainer in self._trainers.values():
            await trainer.close()
        await self.collectors.close()
        await self.datasets.close()

    async def models(self, channel_id: str) -> tuple[list[ModelInfo], list[str]]:
        """What a run here can pick, and the models the defaults and this channel's runs use (bot/runs/catalog.py)."""
        uses: dict[str, list[str]] = {self.settings.teacher_model: ["default teacher"]}
        uses.setdefault(self.settings.student_model, []).append("default student")
        for run in await self.storage.runs.in_channel(channel_id):
            for key in ("teacher", "student"):
                uses.setdefault(run.spec.get(key), []).append(f"run {run.name}: {key}")
            for job in await self.storage.jobs.for_run(run.id):
                if job.fine_tuned_model:
                    uses.setdefault(job.fine_tuned_model, []).append(f"run {run.name}: distilled")
        return await list_models(self.collector.provider, self.prices, TRAINERS, self.trainer, uses,
                                 self.clock.today())

    async def audit(self, run: Run) -> list[Any]:
        return await self.storage.audit.for_run(run.id)

    # ----- helpers ----------------------------------------------------------------------------------

    async def prepare_run(self, run: Run, spec: RunSpec | None = None) -> tuple[RunSpec, PreparedRun]:
        """The run's spec and its rows rendered and split (off the event loop: see bot/runs/worker.py)."""
        spec = spec or RunSpec.from_dict(run.spec)
        self.prices.add(self.billing(spec).models)  # a self-hosted student's lines (trainer=ray), priced by GPU time
        dataset = await self._dataset(run)
        return spec, await self.datasets.run(dataset.size_bytes, prepare_dataset, dataset.id, spec,
                                             run.eval_dataset_id)

    async def _dataset(self, run: Run) -> Dataset:
        dataset = await self.storage.datasets.get(run.dataset_id) if run.dataset_id else None
        if run.state == RunState.DELETED:
            raise StateError(_deleted_message(run))
        if dataset is None:
            raise StateError(f"Run '{run.name}' has no data yet: reply in its thread with a CSV file.")
        return dataset

    def require_idle(self, run: Run, doing: str) -> None:
        if run.state == RunState.DELETED:
            raise StateError(_deleted_message(run))
        if run.state.busy:
            raise StateError(f"Run '{run.name}' is {run.state}; wait for it to finish (or "
                             f"`/distill cancel {run.name}`) before you {doing}.")

    @staticmethod
    def _require_state(run: Run, allowed: Iterable[str], doing: str) -> None:
        if run.state == RunState.DELETED:
            raise StateError(_deleted_message(run))
        if run.state not in allowed:
            hint = {"created": "reply in the thread with a CSV first",
                    RunState.AWAITING_APPROVAL: "a request is already waiting for approval"}.get(run.state, "")
            raise StateError(f"Cannot {doing} while run '{run.name}' is {run.state}" + (f": {hint}." if hint else "."))

    async def refresh_card(self, run: Run) -> None:
        try:
            await self.notifier.show_card(run, await build_card(self.storage, run))
        except DeliveryError as exc:
            log.warning("run %s: the card could not be shown: %s", run.id, exc)

    async def _post(self, run: Run, event: Event) -> str | None:
        """Tell the thread from a stage: a message that cannot be delivered is logged and the stage goes on.
        (Commands post with notifier.post, so the person who typed one hears why nothing appeared.)"""
        try:
            return await self.notifier.post(run, event)
        except DeliveryError as exc:
            log.warning("run %s: %s could not be posted: %s", run.id, type(event).__name__, exc)
            return None

    async def post_once(self, run: Run, key: str, event: Event) -> str | None:
        """Post a message that must appear once however often this is called, across restarts too."""
        if not await self.storage.notices.claim(run.id, key):
            return None
        try:
            ts = await self.notifier.post(run, event)
        except DeliveryError as exc:
            await self.storage.notices.release(run.id, key)
            log.warning("run %s: %s could not be posted: %s", run.id, type(event).__name__, exc)
            return None
        except BaseException:
            await self.storage.notices.release(run.id, key)
            raise
        if ts:
            await self.storage.notices.set_message_ts(run.id, key, ts)
        return ts

    def run_folder(self, run: Run) -> Path:
        """Where the run's files go (training file, chart, export)."""
        return self.settings.data_dir / f"run-{run.id}-{run.name}"

    async def _update_approval_message(self, run: Run, approval: Approval, actor: str, outcome: str,
                                       message: str) -> None:
        approval = await self.storage.approvals.require(approval.id)
        if approval.message_ts:
            try:
                await self.notifier.update(run, approval.message_ts,
                                           ApprovalDecided(approval, actor, outcome, message))
            except DeliveryError as exc:
                log.warning("run %s: approval %s could not be updated: %s", run.id, approval.id, exc)

    async def _stage_failed(self, run_id: int, message: str, error_id: str | None) -> None:
        run = await self.storage.runs.update(run_id, state=RunState.FAILED, error=message)
        await self._post(run, RunFailed(message, error_id))
        await self.refresh_card(run)


def _deleted_message(run: Run) -> str:
    return (f"Run '{run.name}' was deleted: only its audit trail is left (`/distill audit {run.name}`). Start a new "
            "run with `/distill new NAME`.")
