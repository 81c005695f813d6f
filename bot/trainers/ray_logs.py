"""What the job scripts of bot/trainers/ray_job report in their logs, read back: one `DISTILL_<KIND> {json}` line per
fact (STARTED, METRICS per logging step, MANIFEST at the end, SERVING with the server's URL). Each becomes at most
one event, with an id derived from what it says, so a bot that reads the same logs again posts nothing twice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.trainers.base import JobEvent

PREFIX = "DISTILL_"


@dataclass(frozen=True)
class Report:
    kind: str  # STARTED, METRICS, MANIFEST, SERVING
    data: dict[str, Any]


def reports(logs: str) -> list[Report]:
    found = []
    for line in logs.splitlines():
        head, _, payload = line.strip().partition(" ")
        if not head.startswith(PREFIX):
            continue
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if isinstance(data, dict):
            found.append(Report(head.removeprefix(PREFIX), data))
    return found


def latest(logs: str, kind: str) -> dict[str, Any] | None:
    matching = [r.data for r in reports(logs) if r.kind == kind]
    return matching[-1] if matching else None


def training_events(logs: str, created_at: int) -> list[JobEvent]:
    """The training script's reports as events, oldest first."""
    events = []
    for report in reports(logs):
        data = report.data
        if report.kind == "STARTED":
            events.append(JobEvent("started", created_at, "info", (
                f"Training started: {data.get('examples', '?')} examples, {int(data.get('tokens_per_epoch') or 0):,} "
                f"tokens per epoch, on {'GPU' if data.get('cuda') else 'CPU'}."), data))
        elif report.kind == "METRICS" and "step" in data:
            events.append(JobEvent(f"step-{data['step']}", created_at, "info", (
                f"Step {data['step']}/{data.get('total_steps', '?')} (epoch {float(data.get('epoch', 0)):.2f}): "
                f"loss {float(data.get('loss', 0)):.4f}"), data))
        elif report.kind == "MANIFEST":
            events.append(JobEvent("manifest", created_at, "info", (
                f"Adapter saved: {data.get('adapter_path')} (final loss {float(data.get('final_loss') or 0):.4f}, "
                f"{int(data.get('trained_tokens') or 0):,} trained tokens)."), data))
    return events
