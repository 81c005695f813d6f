"""Every sentence the bot says in Slack, as small functions returning mrkdwn.

User text (run names aside, which are checked to be plain) is escaped here, where it meets the sentence.
Messages written by bot/ (DistillError texts, notes) are passed through as they are, escaped.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.core.money import format_usd
from handlers.mrkdwn import code, escape, escape_keep_mentions, mention

COMMAND = "/distill"
TEMPLATE_EXAMPLE = 'template="Ticket: {subject}"'
LIST_SHOWN = 10  # labels a thread message lists; `/distill status NAME` lists them all


# ----- commands --------------------------------------------------------------------------------------------

def usage(name: str, args: str, summary: str, example: str) -> str:
    return f"Usage: {code(f'{COMMAND} {name} {args}'.strip())} — {escape(summary)}\nExample: {code(example)}"


def help_lines(commands: Iterable[tuple[str, str, str, str]], settings: Mapping[str, str]) -> list[str]:
    """`/distill help`: each (name, args, summary, example) and every key `set` accepts."""
    lines = [f"*{COMMAND}* runs a distillation in a thread: a big model labels your CSV, a small one learns it."]
    for name, args, summary, example in commands:
        typed = f"{COMMAND} {name} {args}".strip()
        lines.append(f"• {code(typed)} — {escape(summary)}" + (f" e.g. {code(example)}" if example != typed else ""))
    lines.append(f"*Settings* ({code(f'{COMMAND} set NAME key=value …')}; quote values with spaces: "
                 f"{code(TEMPLATE_EXAMPLE)}):")
    lines.extend(f"• {code(key)} — {escape(text)}" for key, text in settings.items())
    return lines


def unknown_command(word: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, names, n=1)
    hint = f" Did you mean {code(f'{COMMAND} {close[0]}')}?" if close else ""
    return (f"There is no {code(f'{COMMAND} {word}')}.{hint} Commands: {', '.join(names)}. "
            f"{code(f'{COMMAND} help')} shows each with an example.")


def wrong_argument_count(name: str, given: int, args: str) -> str:
    wanted = args or "no arguments"
    return f"{code(f'{COMMAND} {name}')} takes {escape(wanted)}, not {given} argument{'s' if given != 1 else ''}."


def unbalanced_quotes(problem: str) -> str:
    return (f"Could not read the command: {escape(problem.lower())}. Close every quote you open, e.g. "
            f"{code(TEMPLATE_EXAMPLE)}.")


def command_too_long(length: int, limit: int) -> str:
    return (f"The command is {length:,} characters long; {code(COMMAND)} reads at most {limit:,}, as much as a Slack "
            f"message holds. Write a long prompt in the form that {code(f'{COMMAND} template NAME')} opens, or "
            "shorten it.")


def not_key_value(arg: str) -> str:
    return f"{code(arg)} is not a setting: write {code('key=value')}, e.g. {code('label=category')}."


def not_pilot_rows(arg: str) -> str:
    return f"{code(arg)} is not how many rows to pilot: write {code('rows=N')}, e.g. {code('rows=20')}."


def refused(message: str) -> str:
    """A DistillError's message, shown as it is."""
    return f":no_entry: {escape(message)}"


def failed(message: str) -> str:
    return f":x: {escape(message)}"


SLACK_ERRORS = {
    "not_in_channel": "I am not a member of this channel, so I cannot post here. Invite me with "
                      "`/invite @distill`, then `/distill status NAME` posts the run card.",
    "channel_not_found": "I cannot see this channel. Invite me with `/invite @distill` (private channels need it "
                         "too) and try again.",
    "is_archived": "This channel is archived; unarchive it or use another channel.",
    "missing_scope": "The Slack app lacks a permission it needs ({needed}). Add it under OAuth & Permissions (or "
                     "recreate the app from slack-app-manifest.yml) and reinstall the app.",
}


def no_such_group(group_id: str) -> str:
    """Plain text: an ApprovalError's message, escaped where it is shown."""
    return (f"DISTILL_APPROVERS names the user group {group_id}, which does not exist in this workspace (Slack: "
            "no_such_subteam), so its members cannot approve. Fix DISTILL_APPROVERS (a group's ID starts with S: "
            "open the group in Slack, then Copy group ID) and restart the bot.")


def card_moved() -> str:
    return (":card_index: This run's card was deleted, so the bot posted it again here: the run continues in this "
            "thread. Share files for it here.")


def slack_refused(error: str, needed: str | None = None) -> str | None:
    """What a Slack API error means for the user, for the errors a user can fix; None for the others.
    Plain text: it travels as an error message and is escaped where it is shown."""
    text = SLACK_ERRORS.get(error)
    return text.format(needed=needed or "see the logs") if text else None


def run_line(name: str, state: str, spend_micro_usd: int, next_step: str) -> str:
    return f"*{escape(name)}* — {escape(state)}, spent {format_usd(spend_micro_usd)}. {escape_keep_mentions(next_step)}"


def no_runs() -> str:
    return f"This channel has no runs yet. Start one with {code(f'{COMMAND} new NAME')}."


def run_status(name: str, state: str, figures: Sequence[tuple[str, str]], next_step: str) -> str:
    lines = [f"*{escape(name)}* is *{escape(state)}*."]
    lines += [f"{escape(label)}: {escape(value)}" for label, value in figures]
    lines.append(escape_keep_mentions(next_step))
    return "\n".join(lines)


def models_title() -> str:
    return ("*Models* a run can pick here: teachers (answering at the provider) and each trainer's students, with "
            "prices per 1M tokens, the reasoning efforts each takes, the training price, and the shutdown date the "
            "provider reports (else the price table's); then the models in use here.")


def model_prices(input_usd: Any, output_usd: Any) -> str:
    return "-" if input_usd is None else f"${input_usd} / ${output_usd}"


def model_efforts(efforts: Sequence[str]) -> str:
    return "-" if not efforts else efforts[0] if len(efforts) == 1 else f"{efforts[0]}..{efforts[-1]}"


def model_training(usd_per_1m: Any) -> str:
    return "no" if usd_per_1m is None else f"${usd_per_1m}"


def model_shutdown(date: Any, past: bool) -> str:
    if date is None:
        return "none announced"
    return f"SHUT {date.isoformat()}" if past else date.isoformat()


def model_warnings(unlisted: Sequence[str]) -> list[str]:
    return [f":warning: {code(m)} is not offered by the provider's models endpoint; runs using it will fail."
            for m in unlisted]


def model_notes(notes: Sequence[str]) -> list[str]:
    return [f":information_source: {escape(n)}" for n in notes]


def audit_title(name: str, shown: int, total: int) -> str:
    more = f" (the latest {shown} of {total})" if shown < total else ""
    return f"*Audit log of {escape(name)}*{more}:"


def cancel_question(name: str) -> str:
    return f"Cancel run *{escape(name)}*? Work in progress stops; answers collected so far are kept."


def import_question(name: str, matching: int) -> str:
    return (f"Import these {matching:,} stored completions as the data of *{escape(name)}*? Their answers become the "
            "teacher's; the run's current data and settings are replaced (answers stored so far are kept).")


def import_kept(name: str) -> str:
    return f"Nothing was imported into *{escape(name)}*."


def cancel_kept(name: str) -> str:
    return f"Run *{escape(name)}* was not cancelled."


def delete_question(name: str) -> str:
    return (f"Delete the data of run *{escape(name)}*? Its uploaded rows, every answer, its eval, its files and the "
            "files it uploaded to providers go, for good; who did what stays in its audit trail.")


def delete_kept(name: str) -> str:
    return f"Run *{escape(name)}* was not deleted."


MODAL_COLUMNS_CHARS = 2000  # of the modal's 3,000-character help: the rest says what the placeholders are for


def template_modal_help(name: str, columns: Sequence[str]) -> str:
    shown, size = [], 0
    for column in columns:
        placeholder = code("{" + column + "}")
        if size + len(placeholder) > MODAL_COLUMNS_CHARS:
            break
        shown.append(placeholder)
        size += len(placeholder) + 2
    more = f" and {len(columns) - len(shown):,} more columns (the CSV's profile in the thread lists them all)" if (
        len(shown) < len(columns)) else ""
    placeholders = ", ".join(shown) + more or "the CSV's columns, once one is loaded"
    return (f"The prompt each row of *{escape(name)}* is sent with. Placeholders: {placeholders}, and "
            f"{code('{choices}')} for the allowed labels. Leave it empty for the default.")


# ----- files (plain text: shown as the reason a file was refused, escaped there) ----------------------------

def not_a_csv(kind: str) -> str:
    return (f"it is {kind}, not a CSV or a .jsonl file of chat examples. Export the sheet as 'CSV UTF-8 (comma "
            "delimited)', or save the examples one JSON object a line as .jsonl, and share that file in this thread.")


def sign_in_page() -> str:
    return ("Slack answered with a sign-in page instead of the file: the app is missing the files:read scope. Add it "
            "under OAuth & Permissions (it is in slack-app-manifest.yml), reinstall the app, and share the file again.")


def download_failed(status: int) -> str:
    return f"Slack answered HTTP {status} when I downloaded it. Share the file again."


def foreign_url() -> str:
    return "it is not hosted by Slack, so I will not send it the bot token. Upload the file itself into this thread."


# ----- events in a run's thread --------------------------------------------------------------------------------

def dataset_loaded(filename: str, rows: int, columns: int, seen_before: bool) -> str:
    again = " It was uploaded before; the stored copy is reused." if seen_before else ""
    return f":white_check_mark: Loaded *{escape(filename)}*: {rows:,} rows, {columns} columns.{again}"


def warnings(items: Sequence[str]) -> str:
    return "\n".join(f":warning: {escape(w)}" for w in items)


def label_hint(run_name: str, candidates: Sequence[str]) -> str:
    if not candidates:
        return (f"No column looks like a label. Set one with {code(f'{COMMAND} set {run_name} label=COLUMN')} or "
                f"list the answers with {code('choices=a,b,c')}. For free-text answers: "
                f"{code(f'{COMMAND} set {run_name} task=generate reference=COLUMN')}; for JSON objects "
                f"{code('task=extract')} with {code('fields=name:string,...')} or a shared .json schema.")
    return (f"Likely label column: *{escape(candidates[0])}*"
            + (f" (others: {', '.join(escape(c) for c in candidates[1:4])})" if len(candidates) > 1 else "")
            + f". Set it with {code(f'{COMMAND} set {run_name} label={candidates[0]}')}.")


def label_counts_title(column: str) -> str:
    return f"Rows per label in *{escape(column)}*:"


def schema_not_utf8() -> str:
    return "it is not UTF-8 text. Save the JSON Schema as UTF-8 and share it again."


def more_labels(run_name: str, more: int, rows: int) -> str:
    return (f"… and {more:,} more labels ({rows:,} rows). {code(f'{COMMAND} status {run_name}')} lists every "
            "label.")


def choices_shown(run_name: str, value: str) -> str:
    """A `choices=` setting as a confirmation shows it: in full when short, else its size and first labels."""
    choices = [c.strip() for c in value.split(",") if c.strip()]
    if len(choices) <= LIST_SHOWN:
        return code(f"choices={value}")
    first = ", ".join(choices[:LIST_SHOWN])
    return (f"{code(f'choices={first}, …')} ({len(choices):,} labels; {code(f'{COMMAND} status {run_name}')} lists "
            "them all)")


def choices_title(count: int) -> str:
    return f"*Choices* ({count:,}), the labels the models may answer:"


def dataset_refused(filename: str, message: str) -> str:
    return f":warning: Could not use *{escape(filename)}*: {escape(message)}"


def spec_updated(run_name: str, user: str, changes: Mapping[str, str], voided: int, back_to_ready: bool) -> str:
    shown = ", ".join(choices_shown(run_name, v) if k == "choices" else code(f"{k}={v}") for k, v in changes.items())
    lines = [f"{mention(user)} changed {shown}."]
    if voided:
        were = "s were" if voided > 1 else " was"
        lines.append(f"{voided} pending approval{were} voided: ask again for a new quote.")
    if back_to_ready:
        lines.append("The prompts changed, so the run is ready again: collect once more (answers already paid for "
                     "are reused).")
    return "\n".join(lines)


def quote_title(run_name: str) -> str:
    return f":abacus: *Estimate for {escape(run_name)}* (nothing is spent until a stage is approved):"


def approval_request(stage: str, run_name: str, requester: str, quote: Mapping[str, Any]) -> str:
    detail = quote.get(stage) or {}
    tokens = ", ".join(f"{detail[k]:,} {label}" for k, label in
                       (("prompt_tokens", "prompt"), ("completion_tokens", "completion"), ("trained_tokens", "trained"))
                       if detail.get(k))
    rows = quote.get("rows") or {}
    models = ", ".join(f"{role} {code(quote[role])}" for role in ("teacher", "student") if quote.get(role))
    if quote.get("effort"):
        models += f" at effort {escape(quote['effort'])}"
    lines = [f":moneybag: *Spending request: {escape(stage)}* for *{escape(run_name)}*, asked by {mention(requester)}",
             f"Expected *{format_usd(int(quote.get('estimate_micro_usd', 0)))}*, at most "
             f"*{format_usd(int(quote.get('max_micro_usd', 0)))}* (the approved cap: spending stops there)."]
    counts = f"rows: train {rows['train']:,}, eval {rows['eval']:,}" if "train" in rows else ""
    facts = [part for part in (models, f"tokens: {tokens}" if tokens else "", counts) if part]
    if facts:
        lines.append(" · ".join(facts))
    lines += [escape(note) for note in quote.get("notes") or []]
    return "\n".join(lines)


def approval_rules(approvers: Sequence[str], min_approvals: int, self_allowed: bool, expires_at: str) -> str:
    who = ", ".join(mention(a) for a in approvers) if approvers else "anyone in this channel"
    own = "" if self_allowed else " The requester cannot approve their own request."
    plural = "s" if min_approvals > 1 else ""
    expires = expires_at[:16].replace("T", " ")
    return f"Needs {min_approvals} approval{plural} from {who}.{own} Expires {expires} UTC."


def approval_status(status: str, approvers: Sequence[str], rejecters: Sequence[str], message: str) -> str:
    people = ", ".join(mention(u) for u in approvers)
    if status == "approved":
        return f":white_check_mark: Approved by {people or 'auto-approval'}."
    if status == "rejected":
        return f":no_entry_sign: Rejected by {', '.join(mention(u) for u in rejecters)}."
    if status == "voided":
        return f":wastebasket: {escape(message)}"
    if status == "expired":
        return ":hourglass: Expired without enough approvals. Ask again for a fresh quote."
    return f":ballot_box_with_check: Approved so far by {people}." if people else ""


def stage_started(detail: str, cap_micro_usd: int | None) -> str:
    cap = f" Spending cap: {format_usd(cap_micro_usd)}." if cap_micro_usd is not None else ""
    return f":arrow_forward: {escape_keep_mentions(detail)}{cap}"


STOPPED = {
    "done": ":white_check_mark: Collection finished.",
    "budget": ":money_with_wings: Collection stopped at the approved cap.",
    "cancelled": ":stop_sign: Collection cancelled.",
    "fatal": ":x: Collection stopped: the provider refused the requests.",
}


def collection_finished(stopped: str, message: str, spend_micro_usd: int, cap_micro_usd: int | None) -> str:
    cap = f" of {format_usd(cap_micro_usd)} approved" if cap_micro_usd is not None else ""
    detail = f" {escape(message)}" if message else ""
    return f"{STOPPED.get(stopped, escape(stopped))}{detail} Spent {format_usd(spend_micro_usd)}{cap}."


def cut_off_counts(cut_off: int, fix: str) -> str:
    plural = "s were" if cut_off != 1 else " was"
    return (f":scissors: {cut_off:,} answer{plural} cut off before the answer was complete: the model ran out of its "
            f"max_completion_tokens (counted as invalid, and billed). {escape(fix)}")


def pilot_finished(stopped: str, message: str, model: str, effort: str | None, rows: int, answered: int,
                   measured: str, spend_micro_usd: int, cap_micro_usd: int | None) -> str:
    cap = f" of {format_usd(cap_micro_usd)} approved" if cap_micro_usd is not None else ""
    at = f" at effort {escape(effort)}" if effort else ""
    head = {"done": ":test_tube: Pilot finished", "budget": ":money_with_wings: Pilot stopped at the approved cap",
            "cancelled": ":stop_sign: Pilot cancelled",
            "fatal": ":x: Pilot stopped: the provider refused the requests"}.get(stopped, escape(stopped))
    lines = [f"{head}: {code(model)}{at} answered {answered:,} of {rows:,} train rows. "
             f"Spent {format_usd(spend_micro_usd)}{cap}." + (f" {escape(message)}" if message else "")]
    if measured:
        lines.append(f"Reasoning {escape(measured)}.")
        lines.append("These answers are the run's own: the collection does not pay for them again. "
                     f"{code('/distill estimate')} now shows the expected cost from this measurement.")
    return "\n".join(lines)


def error_counts(errors: Mapping[str, int]) -> str:
    return "Errors: " + ", ".join(f"{escape(reason)} ×{n:,}" for reason, n in errors.items())


def table_title(title: str, summary: str) -> str:
    return f"*{escape(title)}*" + (f"\n{escape(summary)}" if summary else "")


def training_update(state: str, raw_state: str, message: str) -> str:
    icon = {"SUCCEEDED": ":white_check_mark:", "FAILED": ":x:", "CANCELLED": ":stop_sign:"}.get(state, ":gear:")
    return f"{icon} Training {escape(raw_state or state.lower())}: {escape(message)}"


def note(text: str, level: str) -> str:
    return (":warning: " if level == "warning" else ":information_source: ") + escape_keep_mentions(text)


def run_cancelled(user: str) -> str:
    return f":information_source: Cancelled by {mention(user)}. Answers collected so far are kept."


def run_failed(message: str) -> str:
    return f":x: {escape(message)}"


def continued(text: str, part: int, parts: int) -> str:
    return f"{text} ({part}/{parts})"


# ----- what the packer left out (handlers/packer.py) ----------------------------------------------------------

def left_out(characters: int) -> str:
    """Where a text over Slack's limit was cut (plain text: it may land inside code or bold)."""
    return f" … [{characters:,} characters left out] … "


def blocks_left_out(blocks: int) -> str:
    return f"… and {blocks:,} more parts, left out: Slack takes 50 blocks in one message."


def initial_value_left_out(characters: int, field_limit: int) -> str:
    return (f":warning: The current value has {characters:,} characters, more than the {field_limit:,} this field "
            "holds, so it is not shown here. *Save* replaces it with what you type above; *Cancel* keeps it. "
            f"Longer text goes in with {code(f'{COMMAND} set NAME key=...')}.")


# ----- the run card ----------------------------------------------------------------------------------------------

def card_header(run_name: str) -> str:
    return f"Distill run: {run_name}"  # plain_text: no escaping needed


def card_field(label: str, value: str) -> str:
    return f"*{escape(label)}*\n{escape(value)}"


def card_next_step(text: str) -> str:
    return escape_keep_mentions(text)
