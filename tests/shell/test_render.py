"""Slack messages as the shell prints them."""

from __future__ import annotations

from sandbox.shell.render import Renderer
from sandbox.slack import SlackEvent

NAMES = {"U0ALICE": "alice", "U0BOB": "bob", "U0DISTILL": "distill"}
CARD = {
    "ts": "100.000001", "user": "U0DISTILL", "text": "Run tickets: ready",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Distill run: tickets"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*State*\nready"},
                                       {"type": "mrkdwn", "text": "*Dataset*\nit-tickets.csv (480 rows)"},
                                       {"type": "mrkdwn", "text": "*Label*\ncategory"}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Next: `/distill collect tickets`"}]},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": "collect", "text": {"type": "plain_text", "text": "Collect"}}]},
    ],
}


def _renderer() -> Renderer:
    return Renderer(lambda uid: NAMES.get(uid, uid), lambda cid: {"C0GENERAL": "general"}.get(cid, cid))


def _reply(text: str, ts: str = "100.000002", **extra) -> dict:
    return {"ts": ts, "thread_ts": "100.000001", "user": "U0DISTILL", "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}], **extra}


def test_a_card_shows_its_fields_in_columns_its_next_step_and_the_action_names_of_its_buttons():
    assert _renderer().render(SlackEvent("message", "C0GENERAL", CARD)) == "\n".join([
        "#general · distill",
        "  Distill run: tickets",
        "  State: ready   Dataset: it-tickets.csv (480 rows)",
        "  Label: category",
        "  » Next: `/distill collect tickets`",
        "  buttons: [Collect → :click collect]",
    ])


def test_thread_replies_are_indented_under_their_thread_and_tables_keep_their_alignment():
    renderer = _renderer()
    renderer.render(SlackEvent("message", "C0GENERAL", CARD))
    table = ":white_check_mark: Done for <@U0ALICE>, see <https://x.test/a?b=1&amp;c=2|the docs>.\n" \
            "```model    p\n-------  ------\nteacher  &lt;0.001```"
    assert _renderer_output(renderer, table) == "\n".join([
        "    ↳ #general thread of 'Distill run: tickets' · distill",
        "      ✅ Done for @alice, see the docs (https://x.test/a?b=1&c=2).",
        "      model    p",
        "      -------  ------",
        "      teacher  <0.001",
    ])


def _renderer_output(renderer: Renderer, text: str) -> str | None:
    return renderer.render(SlackEvent("message", "C0GENERAL", _reply(text)))


def test_an_ephemeral_message_says_who_alone_sees_it():
    event = SlackEvent("message", "C0GENERAL", {"ts": "5.000001", "user": "U0DISTILL", "text": "Only approvers"},
                       visible_to="U0BOB")
    assert _renderer().render(event) == "#general · distill (only @bob sees this)\n  Only approvers"


def test_an_edit_is_shown_marked_only_when_something_visible_changed_and_a_deletion_is_told():
    renderer = _renderer()
    renderer.render(SlackEvent("message", "C0GENERAL", CARD))
    assert renderer.render(SlackEvent("message_changed", "C0GENERAL", CARD)) is None
    collecting = {**CARD, "blocks": [CARD["blocks"][0], {"type": "section", "text": {"type": "mrkdwn",
                                                                                       "text": "*State* collecting"}}]}
    assert renderer.render(SlackEvent("message_changed", "C0GENERAL", collecting)) == \
        "#general · distill (edited)\n  Distill run: tickets\n  *State* collecting"
    assert renderer.render(SlackEvent("message_deleted", "C0GENERAL", collecting)) == \
        "#general · distill deleted a message: Distill run: tickets"


def test_a_shared_file_is_named_with_its_title():
    upload = _reply("", files=[{"name": "eval-chart.png", "title": "Eval: teacher vs students"}], user="U0BOB")
    upload.pop("blocks")
    assert _renderer().render(SlackEvent("message", "C0GENERAL", upload)) == \
        "    ↳ #general thread of '100.000001' · bob\n      [file: eval-chart.png — Eval: teacher vs students]"
