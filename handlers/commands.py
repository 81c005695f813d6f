"""The /distill command: one slash command, a registry of subcommands, each documented where it is declared.

`/distill help` is generated from this registry and from bot.spec.SETTINGS, never written twice. The text
is split like a shell would (shlex), so `template="Ticket: {subject}"` is one argument; bad input gets an
ephemeral usage message in the ack, and the work itself runs after the ack (see handlers/followups.py).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.collect.pilot import PILOT_ROWS, pilot_rows
from bot.collect.pilot import STAGE as PILOT
from bot.data.stored_completions import parse_filter
from bot.runs.reevaluation import STAGE as REEVAL
from bot.spec.settings import SETTABLE_KEYS
from handlers import messages
from handlers.modals import open_template_modal
from handlers.mrkdwn import unescape
from handlers.packer import code_chunks, ephemeral, section, split
from handlers.render import actions, button
from handlers.surface import Respond, Surface
from handlers.tables import format_table, label_counts
from storage.runs import Run

AUDIT_SHOWN = 40
# Slack's limit for a message (https://docs.slack.dev/reference/methods/chat.postMessage: text past 40,000 characters
# is cut). Longer text does not come from Slack's composer, and shlex takes quadratic time (70 s for 1 MB, on the
# event loop, before the ack), so it is refused before it is read.
MAX_COMMAND_TEXT = 40_000
# Slack clients may turn typed quotes into typographic ones; shlex only knows the ASCII ones.
SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"'})


class UsageError(Exception):
    """The command cannot be run as typed; `lines` say why and how to type it."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__(lines[0])
        self.lines = list(lines)


@dataclass
class Invocation:
    surface: Surface
    channel_id: str
    user_id: str
    trigger_id: str
    args: list[str]
    client: AsyncWebClient
    respond: Respond
    resolved: Run | None = field(default=None)

    async def run(self) -> Run:
        """The run named by the first argument, in this channel only."""
        self.resolved = await self.surface.service.find(self.channel_id, self.args[0])
        return self.resolved


Action = Callable[[Invocation], Awaitable[list[str] | None]]  # returns lines for an ephemeral reply


@dataclass(frozen=True)
class Subcommand:
    name: str
    args: str  # NAME required, [NAME] optional, a trailing "..." repeats the last one
    summary: str
    example: str
    action: Action
    check: Callable[[list[str]], str | None] = lambda args: None  # a problem with the arguments, or None

    @property
    def arity(self) -> tuple[int, float]:
        words = self.args.split()
        required = [w for w in words if not w.startswith("[") and w != "..."]
        return len(required), float("inf") if "..." in words else len(words)

    def usage(self) -> str:
        return messages.usage(self.name, self.args, self.summary, self.example)


# ----- actions ---------------------------------------------------------------------------------------------

async def _help(inv: Invocation) -> list[str]:
    return messages.help_lines(((c.name, c.args, c.summary, c.example) for c in COMMANDS), SETTABLE_KEYS)


async def _new(inv: Invocation) -> None:
    await inv.surface.service.create(channel_id=inv.channel_id, name=inv.args[0], requester=inv.user_id)


def _pairs(args: Sequence[str]) -> dict[str, str]:
    return dict(arg.split("=", 1) for arg in args)


def _check_pairs(args: list[str]) -> str | None:
    bad = next((a for a in args[1:] if "=" not in a or a.startswith("=")), None)
    return messages.not_key_value(bad) if bad is not None else None


async def _set(inv: Invocation) -> None:
    await inv.surface.service.set_spec(await inv.run(), _pairs(inv.args[1:]), inv.user_id)


async def _template(inv: Invocation) -> None:
    await open_template_modal(inv.surface, inv.client, inv.trigger_id, await inv.run())


async def _estimate(inv: Invocation) -> None:
    await inv.surface.service.estimate(await inv.run())


def _stage(stage: str) -> Action:
    async def request(inv: Invocation) -> None:
        await inv.surface.service.request_stage(await inv.run(), stage, inv.user_id)

    return request


def _check_pilot(args: list[str]) -> str | None:
    extra = args[1:]
    if extra and not extra[0].startswith("rows="):
        return messages.not_pilot_rows(extra[0])
    return None


async def _pilot(inv: Invocation) -> None:
    rows = pilot_rows(inv.args[1].removeprefix("rows=")) if len(inv.args) > 1 else PILOT_ROWS
    await inv.surface.service.request_stage(await inv.run(), PILOT, inv.user_id, rows=rows)


def _check_filters(args: list[str]) -> str | None:
    bad = next((a for a in args[1:] if "=" not in a or a.startswith("=")), None)
    return messages.not_key_value(bad) if bad is not None else None


async def _import(inv: Invocation) -> None:
    run = await inv.run()
    preview = await inv.surface.service.imports.preview(run, parse_filter(inv.args[1:]))
    value = json.dumps({"run": run.id, "args": preview.wanted.to_args()})
    blocks = [section(messages.import_question(run.name, preview.matching)),
              actions([button("import_confirmed", f"Import {preview.matching:,}", value, "primary"),
                       button("import_kept", "Not now", value)])]
    await inv.respond(**inv.surface.outgoing(split(blocks)[0]), response_type="ephemeral")


async def _eval(inv: Invocation) -> None:
    await inv.surface.service.request_stage(await inv.run(), REEVAL, inv.user_id)


async def _watch(inv: Invocation) -> None:
    await inv.surface.service.watch.request(await inv.run(), inv.args[1:], inv.user_id)


def _check_watch(args: list[str]) -> str | None:
    return None if args[1:] == ["off"] else _check_filters(args)


async def _status(inv: Invocation) -> list[str]:
    if not inv.args:
        return await _list(inv)
    run = await inv.run()
    await inv.surface.service.refresh_card(run)  # posts the card again if its first post failed
    card = await inv.surface.service.card(run)
    return [messages.run_status(run.name, run.state, card.figures, card.next_step), *await _labels(inv, run)]


async def _labels(inv: Invocation, run: Run) -> list[str]:
    """Every choice and every label's rows, in full: thread messages list the first few only."""
    lines = []
    choices = run.spec.get("choices")
    if choices:
        lines += [messages.choices_title(len(choices)), *code_chunks(choices)]
    dataset = await inv.surface.service.dataset(run)
    counts = (dataset.profile.get("label_counts") or {}).get(run.spec.get("label")) if dataset else None
    if counts:
        lines += [messages.label_counts_title(run.spec["label"]),
                  *code_chunks(label_counts(list(counts.items())), header_lines=2)]
    return lines


async def _list(inv: Invocation) -> list[str]:
    summaries = await inv.surface.service.summaries(inv.channel_id)
    return [messages.run_line(s.run.name, s.run.state, s.spend_micro_usd, s.next_step) for s in summaries] or [
        messages.no_runs()]


async def _report(inv: Invocation) -> None:
    await inv.surface.service.report(await inv.run())


async def _export(inv: Invocation) -> None:
    await inv.surface.service.export(await inv.run())


def _confirm(what: str, question: Callable[[str], str], yes: str, no: str) -> Action:
    """Ask the person first, with buttons `{what}_confirmed` and `{what}_kept` (handlers/actions.py answers them)."""

    async def ask(inv: Invocation) -> None:
        run = await inv.run()
        blocks = [section(question(run.name)),
                  actions([button(f"{what}_confirmed", yes, str(run.id), "danger"),
                           button(f"{what}_kept", no, str(run.id))])]
        await inv.respond(**inv.surface.outgoing(split(blocks)[0]), response_type="ephemeral")

    return ask


async def _audit(inv: Invocation) -> list[str]:
    run = await inv.run()
    entries = await inv.surface.service.audit(run)
    shown = entries[-AUDIT_SHOWN:]
    rows = [(e.created_at[:19].replace("T", " "), e.actor, e.action,
             ", ".join(f"{k}={v}" for k, v in sorted(e.detail.items()))) for e in shown]
    return [messages.audit_title(run.name, len(shown), len(entries)),
            *code_chunks(format_table(("when (UTC)", "who", "what", "detail"), rows), header_lines=2)]


async def _models(inv: Invocation) -> list[str]:
    models, notes = await inv.surface.service.models(inv.channel_id)
    rows = [(m.model, ", ".join(m.picks) or "-", messages.model_prices(m.input_usd_per_1m, m.output_usd_per_1m),
             messages.model_efforts(m.efforts), messages.model_training(m.training_usd_per_1m),
             messages.model_shutdown(m.shutdown_date, m.shut_down), ", ".join(m.uses) or "-")
            for m in models]
    return [messages.models_title(),
            *code_chunks(format_table(("model", "pick as", "$/1M in/out", "efforts", "fine-tune", "shutdown",
                                       "in use here"), rows), header_lines=2),
            *messages.model_warnings([m.model for m in models if m.listed is False and m.uses]),
            *messages.model_notes(notes)]


COMMANDS: list[Subcommand] = [
    Subcommand("new", "NAME", "Start a run in this channel; its card opens a thread for the CSV.",
               "/distill new tickets", _new),
    Subcommand("set", "NAME key=value ...", "Change the run's settings (listed below); pending approvals are voided.",
               '/distill set tickets label=category train=400 template="Ticket: {subject}"', _set, _check_pairs),
    Subcommand("template", "NAME", "Edit the prompt template in a form, for long templates.",
               "/distill template tickets", _template),
    Subcommand("estimate", "NAME", "Post what every stage will cost, from exact token counts.",
               "/distill estimate tickets", _estimate),
    Subcommand("pilot", "NAME [rows=N]", f"Measure how long a reasoning teacher thinks on the first N train rows "
               f"(default {PILOT_ROWS}; kept as their answers; needs an approval).", "/distill pilot tickets rows=20",
               _pilot, _check_pilot),
    Subcommand("collect", "NAME", "Ask to have the teacher label the rows (needs an approval).",
               "/distill collect tickets", _stage("collect")),
    Subcommand("train", "NAME", "Ask to fine-tune the student on the teacher's answers (needs an approval).",
               "/distill train tickets", _stage("train")),
    Subcommand("import", "NAME [filter] ...", "Show the provider's stored completions that match (model=M "
               "metadata.KEY=VALUE since=YYYY-MM-DD limit=N), then, once confirmed, make them the run's data: their "
               "answers are the teacher's.", "/distill import tickets2 metadata.distill_run=tickets "
               "metadata.role=teacher", _import, _check_filters),
    Subcommand("eval", "NAME", "Ask to evaluate a finished run's distilled model on the newest file shared with the "
               "comment eval (needs an approval); the report comes next to the first.", "/distill eval tickets",
               _eval),
    Subcommand("watch", "NAME [setting] ...", "Every period, score a sample of the distilled model's stored answers "
               "against the teacher (every=7d sample=200 metadata.KEY=VALUE alert=90% cap=USD; a standing approval); "
               "`off` stops it.", "/distill watch tickets every=7d sample=200 alert=90%", _watch, _check_watch),
    Subcommand("status", "[NAME]", "Show a run's state, spend and next step (all runs here without a NAME).",
               "/distill status tickets", _status),
    Subcommand("list", "", "List the runs of this channel.", "/distill list", _list),
    Subcommand("report", "NAME", "Post the latest eval table again.", "/distill report tickets", _report),
    Subcommand("export", "NAME", "Share the eval predictions as a CSV.", "/distill export tickets", _export),
    Subcommand("cancel", "NAME", "Stop the run (asks first); answers collected so far are kept.",
               "/distill cancel tickets", _confirm("cancel", messages.cancel_question, "Cancel the run",
                                                   "Keep it running")),
    Subcommand("delete", "NAME", "Delete the run's data (asks first): its rows, answers, files and the files it "
               "uploaded to providers; the audit trail stays.", "/distill delete tickets",
               _confirm("delete", messages.delete_question, "Delete its data", "Keep it")),
    Subcommand("audit", "NAME", "Show who did what to the run, and when.", "/distill audit tickets", _audit),
    Subcommand("models", "", "List the teachers and students a run can pick, with prices, reasoning efforts and "
               "shutdown dates, and the models in use here.", "/distill models", _models),
    Subcommand("help", "", "Show the commands and the settings.", "/distill help", _help),
]
BY_NAME = {c.name: c for c in COMMANDS}


def parse(text: str) -> tuple[Subcommand, list[str]]:
    """The subcommand and its arguments, or UsageError saying what is wrong and how to type it."""
    if len(text) > MAX_COMMAND_TEXT:
        raise UsageError([messages.command_too_long(len(text), MAX_COMMAND_TEXT)])
    text = unescape(text).translate(SMART_QUOTES)
    try:
        words = shlex.split(text)
    except ValueError as exc:
        named = BY_NAME.get(text.split()[0].lower()) if text.split() else None
        raise UsageError([messages.unbalanced_quotes(str(exc)), *([named.usage()] if named else [])]) from None
    if not words:
        return BY_NAME["help"], []
    command = BY_NAME.get(words[0].lower())
    if command is None:
        raise UsageError([messages.unknown_command(words[0], list(BY_NAME))])
    args = words[1:]
    low, high = command.arity
    if not low <= len(args) <= high:
        raise UsageError([messages.wrong_argument_count(command.name, len(args), command.args), command.usage()])
    problem = command.check(args)
    if problem:
        raise UsageError([problem, command.usage()])
    return command, args


def listener(surface: Surface) -> Callable[..., Awaitable[None]]:
    async def on_distill(ack: Any, command: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        try:
            subcommand, args = parse(command.get("text", ""))
        except UsageError as exc:
            [message, *_] = ephemeral(exc.lines)
            await ack(**surface.outgoing(message), response_type="ephemeral")
            return
        await ack()
        inv = Invocation(surface, command["channel_id"], command["user_id"], command.get("trigger_id", ""), args,
                         client, respond)
        surface.spawn(answer(subcommand, inv), surface.reporter(respond, lambda: inv.resolved))

    return on_distill


async def answer(subcommand: Subcommand, inv: Invocation) -> None:
    lines = await subcommand.action(inv)
    if lines:
        await inv.surface.reply(inv.respond, lines)
