"""The run card: the live summary at the root of a run's thread, built from what is stored."""

from __future__ import annotations

from dataclasses import dataclass, field

from storage import Storage
from storage.runs import Run


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
    "created": "Reply in this thread with a CSV of examples.",
    "ready": "Set the label column with `/distill set {name} label=COLUMN` (without one the run measures agreement "
             "with the teacher), check `/distill estimate {name}`, then `/distill collect {name}`.",
    "ready_with_label": "Check the cost with `/distill estimate {name}` (a reasoning teacher: `/distill pilot "
                        "{name}` measures its reasoning on 20 rows first), then `/distill collect {name}`.",
    "awaiting_approval": "Waiting for an approver to review the spending request below.",
    "piloting": "Pilot: the teacher answers a few train rows, to measure how long it reasons.",
    "collecting": "Collecting answers from the teacher and the base student.",
    "collected": "Compare teacher and student below, then `/distill train {name}` to distill.",
    "training": "Fine-tuning the student; progress is posted in this thread.",
    "evaluating": "Evaluating the distilled student on the eval split.",
    "done": "Done. `/distill report {name}` shows the table again; `/distill export {name}` the predictions.",
    "failed": "Stopped on an error (see the thread). Fix it and run the stage again.",
    "cancelled": "Cancelled. Answers collected so far are kept; run a stage again to continue.",
    "deleted": "Deleted: its data is gone. `/distill audit {name}` shows who did what, and when.",
}

ACTIONS = {
    "ready": [Action("estimate", "Estimate"), Action("collect", "Collect", "primary")],
    "collected": [Action("train", "Train", "primary"), Action("estimate", "Estimate")],
    "piloting": [Action("cancel", "Cancel", "danger")],
    "collecting": [Action("cancel", "Cancel", "danger")],
    "training": [Action("cancel", "Cancel", "danger")],
    "evaluating": [Action("cancel", "Cancel", "danger")],
    "done": [Action("report", "Report"), Action("export", "Export CSV")],
    "failed": [Action("status", "Status")],
    "cancelled": [Action("collect", "Collect"), Action("status", "Status")],
}

ROLE_NAMES = {"teacher": "teacher", "student_base": "base student", "student_ft": "distilled"}


def usd(micro_usd: int) -> str:
    return f"${micro_usd / 1_000_000:,.2f}" if micro_usd >= 10_000 or micro_usd == 0 else f"${micro_usd / 1e6:.4f}"


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
    figures.append(("Spend", f"{usd(spent)} of {usd(approved)} approved" if approved else usd(spent)))
    counts = await storage.completions.counts(run.id)
    if counts:
        totals: dict[tuple[str, str], list[int]] = {}
        for (split, role, status), n in counts.items():
            done_failed = totals.setdefault((role, split), [0, 0])
            done_failed[1 if status == "failed" else 0] += n
        parts = []
        for (role, split), (done, failed) in sorted(totals.items()):
            parts.append(f"{ROLE_NAMES.get(role, role)} {split} {done:,}" + (f" ({failed} failed)" if failed else ""))
        figures.append(("Answers", " · ".join(parts)))
    jobs = await storage.jobs.for_run(run.id)
    if jobs:
        job = jobs[-1]
        detail = job.raw_status or job.status.lower()
        if job.fine_tuned_model:
            detail += f" → {job.fine_tuned_model}"
        figures.append(("Training", f"{job.trainer}: {detail}"))
    evals = await storage.evals.latest(run.id)
    if evals:
        figures.append(("Accuracy", " · ".join(
            f"{ROLE_NAMES.get(role, role)} {_accuracy(result.metrics)}" for role, result in sorted(evals.items())
        )))
    if run.error and run.state == "failed":
        figures.append(("Error", run.error))
    return Card(
        run_name=run.name,
        state=run.state,
        next_step=_next_step(run),
        figures=figures,
        actions=list(ACTIONS.get(run.state, [])),
    )


def _accuracy(metrics: dict) -> str:
    value = metrics.get("accuracy")
    if value is None:
        value = metrics.get("agreement")
    return "n/a" if value is None else f"{value:.1%}"


def _next_step(run: Run) -> str:
    key = "ready_with_label" if run.state == "ready" and run.spec.get("label") else run.state
    return NEXT_STEP.get(key, "").format(name=run.name)
