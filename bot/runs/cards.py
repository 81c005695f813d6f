"""The run card: the live summary at the root of a run's thread, built from what is stored."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.money import format_usd
from storage import Storage
from storage.runs import Run
from storage.states import RunState


@dataclass(frozen=True)
class Action:
    """A button: `action_id` names what it does; its value is the run id."""

    action_id: str
    label: str
    style: str | None = None  # primary | danger


@dataclass(frozen=True)
class Card:
    run_name: str
    state: str
    next_step: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)


NEXT_STEP = {
    RunState.CREATED: "Reply in this thread with a CSV of examples.",
    RunState.READY: "Set the label column with `/distill set {name} label=COLUMN` (without one the run measures "
                    "agreement with the teacher), check `/distill estimate {name}`, then `/distill collect {name}`.",
    "ready_with_label": "Check the cost with `/distill estimate {name}` (a reasoning teacher: `/distill pilot "
                        "{name}` measures its reasoning on 20 rows first), then `/distill collect {name}`.",
    RunState.AWAITING_APPROVAL: "Waiting for an approver to review the spending request below.",
    RunState.PILOTING: "Pilot: the teacher answers a few train rows, to measure how long it reasons.",
    RunState.COLLECTING: "Collecting answers from the teacher and the base student.",
    RunState.COLLECTED: "Compare teacher and student below, then `/distill train {name}` to distill.",
    RunState.TRAINING: "Fine-tuning the student (trainer=dicl: indexing the teacher's examples); progress is posted in "
                       "this thread.",
    RunState.EVALUATING: "Evaluating the distilled student on the eval split.",
    RunState.DONE: "Done. `/distill report {name}` shows the table again; `/distill export {name}` the predictions.",
    RunState.FAILED: "Stopped on an error (see the thread). Fix it and run the stage again.",
    RunState.CANCELLED: "Cancelled. Answers collected so far are kept; run a stage again to continue.",
    RunState.DELETED: "Deleted: its data is gone. `/distill audit {name}` shows who did what, and when.",
}

ACTIONS = {
    RunState.READY: [Action("estimate", "Estimate"), Action("collect", "Collect", "primary")],
    RunState.COLLECTED: [Action("train", "Train", "primary"), Action("estimate", "Estimate")],
    RunState.PILOTING: [Action("cancel", "Cancel", "danger")],
    RunState.COLLECTING: [Action("cancel", "Cancel", "danger")],
    RunState.TRAINING: [Action("cancel", "Cancel", "danger")],
    RunState.EVALUATING: [Action("cancel", "Cancel", "danger")],
    RunState.DONE: [Action("report", "Report"), Action("export", "Export CSV")],
    RunState.FAILED: [Action("status", "Status")],
    RunState.CANCELLED: [Action("collect", "Collect"), Action("status", "Status")],
}

RUN_SPLITS = ("train", "validation", "eval")
ROLE_NAMES = {"teacher": "teacher", "student_base": "base student", "student_ft": "distilled"}
JUDGMENT = "judge:"  # the roles bot/evaluate/grading.py stores judgments under


async def spend_micro_usd(storage: Storage, run_id: int) -> int:
    """All the run has cost: its paid answers, its training jobs and the endpoints their models were hosted on."""
    jobs = sum((job.cost_micro_usd or 0) + job.hosting_micro_usd for job in await storage.jobs.for_run(run_id))
    return await storage.completions.spend_micro_usd(run_id) + jobs


async def build_card(storage: Storage, run: Run) -> Card:
    figures: list[tuple[str, str]] = []
    if run.dataset_id:
        dataset = await storage.datasets.get(run.dataset_id)
        figures.append(("Dataset", f"{dataset.filename} ({dataset.row_count:,} rows)"))
    spec = run.spec
    figures.append(("Models", f"{spec.get('teacher')} → {spec.get('student')}"))
    if spec.get("label"):
        figures.append(("Label", spec["label"]))
    approved = sum(a.amount_micro_usd for a in await storage.approvals.for_run(run.id, statuses=("approved",)))
    spent = await spend_micro_usd(storage, run.id)
    spend = f"{format_usd(spent)} of {format_usd(approved)} approved" if approved else format_usd(spent)
    figures.append(("Spend", spend))
    counts = await storage.completions.counts(run.id)
    if counts:
        totals: dict[tuple[str, str], list[int]] = {}
        judged = 0
        for (split, role, status), n in counts.items():
            if split not in RUN_SPLITS:
                continue  # a re-evaluation's or a watch period's answers: reported in their own messages
            if role.startswith(JUDGMENT):  # the graders' judgments of answers, not answers
                judged += n if status == "ok" else 0
                continue
            done_failed = totals.setdefault((role, split), [0, 0])
            done_failed[1 if status == "failed" else 0] += n
        parts = []
        for (role, split), (done, failed) in sorted(totals.items()):
            parts.append(f"{ROLE_NAMES.get(role, role)} {split} {done:,}" + (f" ({failed} failed)" if failed else ""))
        figures.append(("Answers", " · ".join(parts)))
        if judged:
            figures.append(("Graded", f"{judged:,} judgments (model graders and embeddings)"))
    jobs = await storage.jobs.for_run(run.id)
    if jobs:
        job = jobs[-1]
        detail = job.raw_status or job.status.lower()
        if job.fine_tuned_model:
            detail += f" → {job.fine_tuned_model}"
        figures.append(("Training", f"{job.trainer}: {detail}"))
    evals = await storage.evals.latest(run.id)
    if evals:
        figures.append(eval_figure({role: result.metrics for role, result in evals.items()}))
    if run.error and run.state == RunState.FAILED:
        figures.append(("Error", run.error))
    return Card(
        run_name=run.name,
        state=run.state,
        next_step=_next_step(run),
        figures=figures,
        actions=list(ACTIONS.get(run.state, [])),
    )


def eval_figure(metrics: dict[str, dict]) -> tuple[str, str]:
    """The card's line for the eval: each model's headline score (the report's `primary`: accuracy, agreement with
    the teacher, or the first grader) and which way the distilled student moved from the base student."""
    primary = {role: m.get("primary") or {} for role, m in metrics.items()}
    metric = next((p["metric"] for p in primary.values() if p.get("metric")), "accuracy")
    values = {role: p.get("value") for role, p in primary.items()}
    shown = " · ".join(f"{ROLE_NAMES.get(role, role)} {_share(values[role])}" for role in sorted(metrics)
                       if values[role] is not None) or "n/a"
    base, distilled = values.get("student_base"), values.get("student_ft")
    if base is not None and distilled is not None and distilled != base:
        way = "up" if distilled > base else "down"
        shown += f" ({way} {abs(distilled - base) * 100:.1f} points from the base student)"
    return metric[0].upper() + metric[1:], shown


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _next_step(run: Run) -> str:
    chosen = run.spec.get("label") or run.spec.get("choices")  # a label column, or choices given (or imported)
    key = "ready_with_label" if run.state == RunState.READY and chosen else run.state
    return NEXT_STEP.get(key, "").format(name=run.name)
