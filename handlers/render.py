"""Block Kit for the run card and for every event bot/ posts into a run's thread.

Long content is packed by handlers/packer.py (several sections and, past 50 blocks, several messages), which
also keeps every text within Slack's limits before anything is sent. Every message carries fallback `text`
(shown in notifications and by clients that cannot draw blocks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.cli.estimate import render_quote
from bot.core.config import Settings
from bot.core.events import (
    ApprovalDecided,
    ApprovalRequested,
    CodeSample,
    CollectionFinished,
    DatasetLoaded,
    DatasetRefused,
    Event,
    Note,
    PilotFinished,
    QuoteReady,
    RunCancelled,
    RunFailed,
    SpecUpdated,
    StageStarted,
    TableReady,
    TrainingUpdate,
)
from bot.runs.cards import Card
from handlers import messages
from handlers.packer import Message, code_sections, section, sections, split
from handlers.tables import format_table, label_counts
from storage.approvals import Approval
from storage.runs import Run

TABLE_RULE = set("-=+| :")


# ----- blocks ---------------------------------------------------------------------------------------------

def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def button(action_id: str, label: str, value: str, style: str | None = None) -> dict[str, Any]:
    element = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label},
               "value": value}
    if style:
        element["style"] = style
    return element


def actions(buttons: Sequence[dict[str, Any]], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(buttons)}
    if block_id:
        block["block_id"] = block_id
    return block


# ----- events --------------------------------------------------------------------------------------------

class Renderer:
    """Turns the run card and bot/ events into Slack messages; settings say who may approve."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._by_type: dict[type, Callable[[Run, Any], list[Message]]] = {
            DatasetLoaded: self.dataset_loaded,
            DatasetRefused: lambda run, e: split([section(messages.dataset_refused(e.filename, e.message))]),
            SpecUpdated: lambda run, e: split([section(messages.spec_updated(run.name, e.user, e.changes, e.voided,
                                                                             e.back_to_ready))]),
            QuoteReady: self.quote,
            ApprovalRequested: lambda run, e: [self.approval(run, e.approval, "")],
            ApprovalDecided: lambda run, e: [self.approval(run, e.approval, e.message)],
            StageStarted: lambda run, e: split([section(messages.stage_started(e.detail, e.cap_micro_usd))]),
            CollectionFinished: self.collection_finished,
            PilotFinished: lambda run, e: split([section(messages.pilot_finished(
                e.stopped, e.message, e.model, e.effort, e.rows, e.answered, e.measured, e.spend_micro_usd,
                e.cap_micro_usd))]),
            TableReady: self.table,
            CodeSample: lambda run, e: split([section(messages.table_title(e.title, e.summary)),
                                              *code_sections(e.lines)]),
            TrainingUpdate: self.training_update,
            Note: lambda run, e: split([section(messages.note(e.text, e.level))]),
            RunCancelled: lambda run, e: split([section(messages.run_cancelled(e.user))]),
            RunFailed: lambda run, e: split([section(messages.run_failed(e.message))]),
        }

    def event(self, run: Run, event: Event) -> list[Message]:
        return self._by_type[type(event)](run, event)

    def card(self, run: Run, card: Card) -> Message:
        fields = [messages.card_field("State", card.state)]
        fields += [messages.card_field(label, value) for label, value in card.figures]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": messages.card_header(run.name)}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        ]
        if card.next_step:
            blocks.append(context(messages.card_next_step(card.next_step)))
        if card.actions:
            blocks.append(actions([button(a.action_id, a.label, str(run.id), a.style) for a in card.actions]))
        return Message(f"Run {run.name}: {card.state}. {messages.card_next_step(card.next_step)}", blocks)

    def dataset_loaded(self, run: Run, event: DatasetLoaded) -> list[Message]:
        profile = event.profile
        blocks = [section(messages.dataset_loaded(event.filename, event.rows, len(event.columns), event.seen_before))]
        blocks += sections([messages.warnings(event.warnings)] if event.warnings else [])
        columns = format_table(("column", "filled", "distinct", "sample values"),
                               [(c["name"], f"{c['non_null']:,}", f"{c['distinct']:,}", " | ".join(c["sample"]))
                                for c in profile.get("columns", [])])
        blocks += code_sections(columns, header_lines=2)
        candidates = list(profile.get("label_candidates", []))
        label = event.label if event.label in profile.get("label_counts", {}) else None
        if not event.label:
            blocks.append(section(messages.label_hint(run.name, candidates)))
        shown = label or (candidates[0] if candidates else None)
        if shown:
            counts = list(profile["label_counts"][shown].items())
            blocks.append(section(messages.label_counts_title(shown)))
            blocks += code_sections(label_counts(counts[:messages.LIST_SHOWN]), header_lines=2)
            if len(counts) > messages.LIST_SHOWN:
                rest = counts[messages.LIST_SHOWN:]
                blocks.append(section(messages.more_labels(run.name, len(rest), sum(n for _, n in rest))))
        return split(blocks)

    def quote(self, run: Run, event: QuoteReady) -> list[Message]:
        lines = render_quote(event.quote, title=run.name).splitlines()
        return split([section(messages.quote_title(run.name)), *code_sections(lines)])

    def approval(self, run: Run, approval: Approval, message: str) -> Message:
        """The approval request, as first posted and as re-rendered after each decision."""
        blocks = [section(messages.approval_request(approval.stage, run.name, approval.requester, approval.quote))]
        approvers = sorted(approval.approvers())
        rejecters = sorted(d.user_id for d in approval.decisions if d.decision == "reject")
        status = messages.approval_status(approval.status, approvers, rejecters, message)
        if status:
            blocks.append(section(status))
        if approval.status == "pending":
            blocks.append(context(messages.approval_rules(
                list(self.settings.approvers), self.settings.min_approvals, self.settings.allow_self_approval,
                approval.expires_at)))
            blocks.append(actions([button("approve", "Approve", str(approval.id), "primary"),
                                   button("reject", "Reject", str(approval.id), "danger")]))
        return split(blocks)[0]

    def collection_finished(self, run: Run, event: CollectionFinished) -> list[Message]:
        blocks = [section(messages.collection_finished(event.stopped, event.message, event.spend_micro_usd,
                                                       event.cap_micro_usd))]
        rows = [(key, *(f"{counts.get(k, 0):,}" for k in ("ok", "invalid", "cut_off", "failed", "reused")))
                for key, counts in event.counts.items()]
        blocks += code_sections(format_table(("answers", "ok", "invalid", "cut off", "failed", "reused"), rows,
                                             right_from=1), header_lines=2)
        cut_off = sum(counts.get("cut_off", 0) for counts in event.counts.values())
        if cut_off:
            blocks.append(section(messages.cut_off_counts(cut_off, event.cut_off_fix)))
        if event.errors:
            blocks.append(section(messages.error_counts(event.errors)))
        return split(blocks)

    def table(self, run: Run, event: TableReady) -> list[Message]:
        lines = event.text.splitlines()
        has_rule = len(lines) > 1 and bool(lines[1].strip()) and set(lines[1]) <= TABLE_RULE
        return split([section(messages.table_title(event.title, event.summary)),
                      *code_sections(lines, header_lines=2 if has_rule else 0)])

    def training_update(self, run: Run, event: TrainingUpdate) -> list[Message]:
        blocks = [section(messages.training_update(event.state, event.raw_state, event.message))]
        if event.events:
            blocks += code_sections(event.events)
        return split(blocks)
