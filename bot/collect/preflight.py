"""What a stage that asks models does before it spends: check the models are still served, store the run's rows,
and read what earlier pilots measured."""

from __future__ import annotations

from bot.collect.context import StageContext
from bot.core.errors import StateError
from bot.core.events import Note
from bot.data.splits import PreparedRun
from bot.prices.reasoning import ReasoningExpectation
from bot.spec.settings import RunSpec
from bot.trainers.base import SHUTDOWN_WARNING_DAYS
from storage import Storage
from storage.pilots import Pilot
from storage.runs import Run, RunRow


async def check_models(context: StageContext, run: Run, spec: RunSpec,
                       settings: tuple[str, ...] = ("teacher", "student")) -> None:
    """Refuse a teacher or base student (those of `settings`) that its provider no longer serves; warn in the
    thread (once) when one shuts down within SHUTDOWN_WARNING_DAYS."""
    today = context.clock.today()
    student = context.trainer_for(spec.trainer).base_model_endpoint(spec.student)
    for setting, model, endpoint in (("teacher", spec.teacher, None), ("student", spec.student, student)):
        if setting not in settings:
            continue
        shutdown = await context.collector_for(endpoint).provider.shutdown_date(model)
        days = None if shutdown is None else (shutdown - today).days
        if days is None or days > SHUTDOWN_WARNING_DAYS:
            continue
        if days <= 0:
            raise StateError(f"{model} was shut down on {shutdown.isoformat()}: the provider no longer serves "
                             f"it. Pick another {setting} model (`/distill set {run.name} {setting}=...`).")
        await context.post_once(run, f"serving-shutdown-{model}", Note(
            f"{model} shuts down on {shutdown.isoformat()} (in {days} days): its provider stops answering "
            f"then. Collect before that date, or pick another {setting} model ({setting}=...).", "warning"))


async def store_rows(storage: Storage, run: Run, prepared: PreparedRun) -> None:
    """The run's rows by split, so answers and scores can be matched to them."""
    rows = [RunRow(split, r.row_index, r.input_hash, r.gold_label)
            for split, group in (("train", prepared.train), ("validation", prepared.validation),
                                 ("eval", prepared.eval))
            for r in group]
    await storage.runs.replace_rows(run.id, rows)


def expectation(pilot: Pilot) -> ReasoningExpectation:
    return ReasoningExpectation(pilot.model, pilot.effort, pilot.answered, pilot.mean_reasoning_tokens,
                                pilot.p90_reasoning_tokens, pilot.max_reasoning_tokens, pilot.cut_off)


async def expectations(storage: Storage, run: Run) -> list[ReasoningExpectation]:
    """The newest measurement of each model and effort the run has piloted."""
    newest: dict[tuple[str, str | None], Pilot] = {}
    for pilot in await storage.pilots.for_run(run.id):
        newest[(pilot.model, pilot.effort)] = pilot
    return [expectation(pilot) for pilot in newest.values()]
