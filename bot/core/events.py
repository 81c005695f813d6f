"""What the product tells a run's thread, as data. handlers/ turns each event into Slack messages.

bot/ decides *what* to say and *when* (and that some things are said only once); the Slack layer decides
how it looks. Every event carries the facts a message needs, already computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.approvals import Approval


@dataclass(frozen=True)
class DatasetLoaded:
    filename: str
    dataset_id: int
    rows: int
    columns: list[str]
    profile: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    seen_before: bool = False  # the same bytes were uploaded before: the stored copy is reused
    label: str | None = None  # the run's label column, when set


@dataclass(frozen=True)
class DatasetRefused:
    filename: str
    message: str


@dataclass(frozen=True)
class SpecUpdated:
    user: str
    changes: dict[str, str]
    spec: dict[str, Any]
    voided: int  # pending approvals voided by the change
    back_to_ready: bool  # the change affects prompts: collected answers must be checked again


@dataclass(frozen=True)
class QuoteReady:
    quote: Any  # bot.costs.Quote


@dataclass(frozen=True)
class ApprovalRequested:
    approval: Approval
    quote: dict[str, Any]  # the stage's quote as stored with the approval
    approvers: list[str]  # user and group IDs (empty: anyone in the channel)
    min_approvals: int


@dataclass(frozen=True)
class ApprovalDecided:
    """Re-renders the approval request message (approval.message_ts) after a decision."""

    approval: Approval
    actor: str
    outcome: str
    message: str


@dataclass(frozen=True)
class StageStarted:
    stage: str  # collect | train | evaluate
    detail: str
    cap_micro_usd: int | None = None


@dataclass(frozen=True)
class CollectionFinished:
    stopped: str  # done | budget | cancelled | fatal
    message: str
    spend_micro_usd: int
    cap_micro_usd: int | None
    counts: dict[str, dict[str, int]]  # "role/split" -> {"ok", "invalid", "cut_off" (of invalid), "failed", "reused"}
    errors: dict[str, int] = field(default_factory=dict)
    cut_off_fix: str = ""  # what to change when answers were cut off (bot/prices/reasoning.py)


@dataclass(frozen=True)
class PilotFinished:
    """The teacher answered a run's first train rows and its reasoning was measured (bot/collect/pilot.py)."""

    stopped: str  # done | budget | cancelled | fatal
    message: str
    model: str
    effort: str | None
    rows: int  # rows asked
    answered: int
    cut_off: int  # answers that ran out of max_completion_tokens
    measured: str  # "expected from a pilot of N rows: ..." (empty when nothing was answered)
    max_completion_tokens: int
    spend_micro_usd: int
    cap_micro_usd: int | None


@dataclass(frozen=True)
class TableReady:
    """A table for the thread: the baseline after collection, or an eval report."""

    title: str
    text: str  # monospace table
    summary: str = ""
    chart: Path | None = None


@dataclass(frozen=True)
class CodeSample:
    """Code for the team to copy (how to use a run's result outside the bot), shown as a code block, with the file
    it reads uploaded after it."""

    title: str
    lines: list[str]
    summary: str = ""
    file: Path | None = None
    file_title: str = ""


@dataclass(frozen=True)
class TrainingUpdate:
    state: str  # QUEUED | RUNNING | SUCCEEDED | FAILED | CANCELLED
    raw_state: str
    message: str
    events: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Note:
    text: str
    level: str = "info"  # info | warning


@dataclass(frozen=True)
class RunCancelled:
    user: str  # the Slack user who cancelled it


@dataclass(frozen=True)
class RunFailed:
    message: str
    error_id: str | None = None


Event = (DatasetLoaded | DatasetRefused | SpecUpdated | QuoteReady | ApprovalRequested | ApprovalDecided
         | StageStarted | CollectionFinished | PilotFinished | TableReady | CodeSample | TrainingUpdate | Note
         | RunCancelled | RunFailed)
